"""Supervisor of one job (started detached by JobStore.schedule; not for direct use).

    python -m pipeline.jobs.supervise JOB_ID JOBS_DB            # run the job
    python -m pipeline.jobs.supervise JOB_ID JOBS_DB --adopt    # watch a job whose supervisor died

Runs the job's stage through the exit-code runner (pipeline/jobs/exitcode.py) in its own process group (so
cancel reaches all of them), output appended to the job's log, GPUs pinned with CUDA_VISIBLE_DEVICES; then
records the outcome and schedules the next queued jobs. SIGTERM (cancel) is passed on, so the stage gets
to clean up. With --adopt it only waits for the recorded group to end, then records its outcome.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.procs import group_alive
from core.settings import REPO_ROOT
from pipeline.jobs.exitcode import wait_forwarding
from pipeline.jobs.store import JobStore


def run(job_id: int, db: str) -> int:
    store = JobStore(Path(db))
    job = store.get(job_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1", SQLGENIE_JOB_ID=str(job_id), SQLGENIE_HOME=str(Path(db).parent),
               TQDM_MININTERVAL="5")
    if job.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpus))
    job.exit_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pipeline.jobs.exitcode", str(job.exit_file), "--", *store.command(job)]
    with open(job.log_path, "ab") as log:
        log.write(f"$ {' '.join(store.command(job))}\n".encode())
        log.flush()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 cwd=str(REPO_ROOT))
        wait_forwarding(child)
    store.finish(job_id)
    store.schedule()
    return 0


def adopt(job_id: int, db: str) -> int:
    store = JobStore(Path(db))
    job = store.get(job_id)
    (job.dir / "watcher.pid").write_text(str(os.getpid()))
    rec = job.record()
    while group_alive(rec):
        time.sleep(1)
    store.finish(job_id)
    store.schedule()
    return 0


if __name__ == "__main__":
    fn = adopt if "--adopt" in sys.argv else run
    sys.exit(fn(int(sys.argv[1]), sys.argv[2]))
