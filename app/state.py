"""What the dashboard's pages share in one process: the job store (one per process) and the page objects
(for links between pages, filled in by app/dashboard.py)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.settings import home
from pipeline.jobs import JobStore

PAGES: dict = {}


def store() -> JobStore:
    """The job store of this process's home (one per home: a test that changes SQLGENIE_HOME gets its own)."""
    return _store(str(home()))


@st.cache_resource
def _store(where: str) -> JobStore:
    return JobStore(Path(where) / "jobs.db")
