"""python -m pipeline.jobs ... : the job store commands (pipeline/jobs/cli.py)."""
import sys

from pipeline.jobs.cli import main

sys.exit(main(sys.argv[1:]))
