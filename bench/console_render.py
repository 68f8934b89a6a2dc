"""Dashboard render time with 200 jobs in the store vs an empty store (Streamlit AppTest, full script run).

    sqlgenie bench console_render          # prints median of 5 runs per page
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(page: str, n: int = 5) -> float:
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(n):
        at = AppTest.from_file(str(ROOT / "app" / "dashboard.py"), default_timeout=60)
        at.session_state["page"] = page
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        assert not at.exception
    return statistics.median(times)


def main() -> None:
    from pipeline.jobs import JobStore

    rows = []
    for jobs in (0, 200):
        os.environ["SQLGENIE_HOME"] = tempfile.mkdtemp()
        store = JobStore()
        for i in range(jobs):                  # finished jobs, through the store's own API
            job_id = store.submit("prepare", f"name: run{i}\n", start=False)
            store.update(job_id, status="succeeded", created=1.0 + i)
        for page in ("Jobs", "GPUs", "Models"):
            rows.append((jobs, page, render(page)))
    print("| jobs | page | render s (median of 5) |\n|---|---|---|")
    for j, p, s in rows:
        print(f"| {j} | {p} | {s:.3f} |")


if __name__ == "__main__":
    main()
