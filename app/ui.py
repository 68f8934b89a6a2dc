"""Small helpers the dashboard pages share: formatting, clean logs, job progress, charts with readable axes.

    from app import ui
    ui.clean_log(text)                 # no escape codes, tqdm's \\r-updates collapsed to their last state
    ui.progress(job)                   # (done, total, eta_s, label) from the run's metrics or the log
    fig = ui.time_chart("GPU memory (GiB)", series, y_min=0)
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import streamlit as st

from core.procs import log_tail
from pipeline import runs
from pipeline.jobs import Job, Status

STATUS = {Status.QUEUED: ("queued", "gray"), Status.RUNNING: ("running", "blue"),
          Status.CANCELLING: ("cancelling", "orange"), Status.SUCCEEDED: ("succeeded", "green"),
          Status.FAILED: ("failed", "red"), Status.CANCELLED: ("cancelled", "gray")}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_TQDM = re.compile(r"(\d+)/(\d+) \[[^\]]*?(?:<([\d:]+))?[,\]]")


def status_text(status: str) -> str:
    """A status in words with a colour (Streamlit markdown), never a bare emoji."""
    word, colour = STATUS.get(status, (status, "gray"))
    return f":{colour}[{word}]"


def fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def ago(t: float | None) -> str:
    if not t:
        return ""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(t))


def clean_log(text: str) -> str:
    """Terminal output made readable: escape codes removed, each line's carriage-return updates (tqdm) reduced
    to the last one, runs of identical progress lines kept once."""
    out: list[str] = []
    for line in _ANSI.sub("", text).split("\n"):
        line = line.split("\r")[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
        if out and _TQDM.search(line) and _TQDM.search(out[-1]) and line.split(":")[0] == out[-1].split(":")[0]:
            out[-1] = line
        else:
            out.append(line)
    return "\n".join(out)


def job_log(job: Job, lines: int = 40) -> str:
    """The end of a job's log, cleaned."""
    return "\n".join(clean_log(log_tail(job.log_path, lines * 3)).splitlines()[-lines:])


def read_jsonl(path: Path | None, last: int = 5000) -> list[dict]:
    if not path or not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines()[-last:]:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written
    return out


def progress(job: Job) -> tuple[int, int, float | None, str] | None:
    """(done, total, eta seconds, label) of a running job: optimizer steps for a train job (from its run's
    metrics), else the last progress bar in its log; None when nothing says."""
    if job.kind == "train":
        run = runs.for_job(job.id)
        if run is not None:
            rows = [r for r in read_jsonl(run.metrics_path, 50) if "loss" in r]
            if rows and rows[-1].get("max_steps"):
                last = rows[-1]
                return last["step"], last["max_steps"], last.get("eta_s"), "steps"
    for line in reversed(clean_log(log_tail(job.log_path, 30)).splitlines()):
        m = _TQDM.search(line)
        if m and int(m.group(2)) > 0:
            eta = None
            if m.group(3):
                parts = [int(x) for x in m.group(3).split(":")]
                eta = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
            return int(m.group(1)), int(m.group(2)), eta, line.split(":")[0].strip()[:40] or "items"
    return None


def time_chart(title: str, series: dict[str, tuple[list[float], list[float | None]]], y_title: str = "",
               y_min: float | None = 0, height: int = 260):
    """A Plotly line chart over wall-clock time: at most ~6 time labels (HH:MM:SS), a y axis that starts at
    `y_min` and does not collapse to -1..1 when everything is idle."""
    import plotly.graph_objects as go

    fig = go.Figure()
    top = 0.0
    for name, (ts, ys) in series.items():
        fig.add_scatter(x=[time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) for t in ts], y=ys, name=name,
                        mode="lines")
        top = max([top] + [y for y in ys if y is not None])
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=36, b=10), title=title,
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(type="date", tickformat="%H:%M:%S", nticks=6)
    if y_min is not None:
        fig.update_yaxes(range=[y_min, max(top * 1.15, 1.0)], title=y_title)
    return fig


def flash(text: str, error: bool = False) -> None:
    """Say `text` at the top of the page after the next rerun (an action's outcome survives st.rerun())."""
    st.session_state["flash_error" if error else "flash"] = text


def show_flash() -> None:
    """What the last action said (flash), once."""
    if st.session_state.get("flash"):
        st.success(st.session_state.pop("flash"))
    if st.session_state.get("flash_error"):
        st.error(st.session_state.pop("flash_error"))
