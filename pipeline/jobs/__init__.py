"""Persistent jobs: the SQLite store and scheduler (store.py), the per-job supervisor (supervise.py), the CLI."""
from pipeline.jobs.store import ACTIVE, FINAL, KINDS, LIVE, Job, JobError, JobStore, Status

__all__ = ["ACTIVE", "FINAL", "KINDS", "LIVE", "Job", "JobError", "JobStore", "Status"]
