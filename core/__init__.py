"""The ground layer: errors, settings machinery, files, process ownership, embedded assets, model info.
Imports nothing of the project above it."""
