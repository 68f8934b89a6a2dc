"""Supervisor of one job (started detached by JobStore.schedule; not for direct use).

    python -m pipeline.jobs.supervise JOB_ID JOBS_DB

Runs the job's stage as a child in the same process group (so cancel reaches both), output appended to
the job's log, GPUs pinned with CUDA_VISIBLE_DEVICES; then records exit code + status and schedules the
next queued jobs. SIGTERM (cancel) is passed on to the child, which gets to clean up.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(job_id: int, db: str) -> int:
    from pipeline.jobs import JobStore, log_tail

    store = JobStore(Path(db))
    job = store.get(job_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1", SQLGENIE_JOB_ID=str(job_id),
               SQLGENIE_HOME=str(Path(db).parent))
    if job.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpus))
    with open(job.log_path, "ab") as log:
        log.write(f"$ {' '.join(store.command(job))}\n".encode())
        log.flush()
        child = subprocess.Popen(store.command(job), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=str(Path(__file__).resolve().parents[2]))

        def forward(signum, frame):
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
    now = store.get(job_id)
    if now.status == "cancelling":
        store._update(job_id, status="cancelled", finished=time.time(), exit_code=code, error="cancelled by the user")
    elif now.status == "running":
        ok = code == 0
        store._update(job_id, status="succeeded" if ok else "failed", finished=time.time(), exit_code=code,
                      error=None if ok else log_tail(job.log_path, 15))
    store.schedule()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2]))
