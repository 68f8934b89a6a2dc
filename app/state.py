"""What the dashboard's pages share in one process: the job store (one per process) and the page objects
(for links between pages, filled in by app/dashboard.py)."""
from __future__ import annotations

import streamlit as st

from pipeline.jobs import JobStore

PAGES: dict = {}


@st.cache_resource
def store() -> JobStore:
    return JobStore()
