"""Supervisor of one job (started detached by JobStore.schedule; not for direct use).

    python -m pipeline.jobs.supervise JOB_ID JOBS_DB            # run the job
    python -m pipeline.jobs.supervise JOB_ID JOBS_DB --adopt    # watch a job whose supervisor died

Runs the job's stage through the exit-code runner (pipeline/jobs/exitcode.py) in its own process group (so
cancel reaches all of them), output appended to the job's log, GPUs pinned with CUDA_VISIBLE_DEVICES; then
records the outcome and schedules the next queued jobs. SIGTERM (cancel) is passed on, so the stage gets
to clean up. The supervisor is its descendants' subreaper: if the runner is killed while the stage runs on,
the stage becomes the supervisor's child, the job stays running (noted "adopted") and the stage's own exit
code is recorded when it ends. With --adopt it only waits for the recorded group to end, then records its
outcome.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

from core.procs import group_alive, group_members, signal_name
from core.settings import REPO_ROOT
from pipeline.jobs.exitcode import stage_pid_file, wait_forwarding
from pipeline.jobs.store import Job, JobStore

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants (the stage, once its runner is killed) become our children, so we can wait for them."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _others() -> list[int]:
    """Live members of our process group (the job's) other than this supervisor."""
    return [p for p in group_members(os.getpgrp()) if p != os.getpid()]


def _reap() -> None:
    """Collect the exit status of any ended child (orphans handed to us), so none stays a zombie."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def outlive_runner(store: JobStore, job: Job, runner_pid: int, runner_code: int) -> int | None:
    """The runner ended without writing the exit code (killed): while the stage or anything else of the job's
    group runs on, the job stays running; the stage's exit code once the group has ended (None: not ours to
    wait for, e.g. no subreaper)."""
    try:
        stage = int(stage_pid_file(job.exit_file).read_text())
    except (OSError, ValueError):
        stage = None
    if _others():
        store.update(job.id, note=f"adopted at {time.strftime('%H:%M:%S')}: its exit-code runner (pid {runner_pid}) "
                                  f"died ({signal_name(runner_code)}) while the stage ran on; the supervisor waits "
                                  "for the stage")
    code = None
    if stage is not None:
        try:
            code = os.waitstatus_to_exitcode(os.waitpid(stage, 0)[1])
        except ChildProcessError:      # not our child: we are no subreaper, or it was reaped already
            pass
    while True:                        # the rest of the group (the stage's own children) ends too
        _reap()
        if not _others():
            return code
        time.sleep(1)


def run(job_id: int, db: str) -> int:
    become_subreaper()
    store = JobStore(Path(db))
    job = store.get(job_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1", SQLGENIE_JOB_ID=str(job_id), SQLGENIE_HOME=str(Path(db).parent),
               TQDM_MININTERVAL="5")
    if job.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpus))
    job.exit_file.unlink(missing_ok=True)
    stage_pid_file(job.exit_file).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pipeline.jobs.exitcode", str(job.exit_file), "--", *store.command(job)]
    with open(job.log_path, "ab") as log:
        log.write(f"$ {' '.join(store.command(job))}\n".encode())
        log.flush()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 cwd=str(REPO_ROOT))
        runner_code = wait_forwarding(child)
    if job.exit_file.exists():
        store.finish(job_id)
    else:
        store.finish(job_id, outlive_runner(store, job, child.pid, runner_code),
                     unknown=f"the stage ended; exit code unknown (its exit-code runner, pid {child.pid}, ended "
                             f"{signal_name(runner_code)} without recording it)")
    store.schedule()
    return 0


def adopt(job_id: int, db: str) -> int:
    store = JobStore(Path(db))
    job = store.get(job_id)
    (job.dir / "watcher.pid").write_text(str(os.getpid()))
    rec = job.record()
    while group_alive(rec):
        time.sleep(1)
    store.finish(job_id, unknown="the stage ended; exit code unknown (its exit-code runner recorded none: it was "
                                 "killed too)")
    store.schedule()
    return 0


if __name__ == "__main__":
    fn = adopt if "--adopt" in sys.argv else run
    sys.exit(fn(int(sys.argv[1]), sys.argv[2]))
