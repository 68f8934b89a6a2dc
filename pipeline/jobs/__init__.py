"""Persistent jobs: the SQLite store and scheduler (store.py), the per-job supervisor (supervise.py), the CLI."""
from pipeline.jobs.store import KINDS, Job, JobError, JobStore

__all__ = ["KINDS", "Job", "JobError", "JobStore"]
