"""Job records that must survive faults: a deleted or emptied jobs.db (every job back, ids never reused), a killed
exit-code runner (the stage runs on, still the job's), a cancel racing the adopt watcher (cancel wins), an id too
big for the store. Real store, real subprocesses, real signals (SIGSTOP holds a process where the fault needs it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.procs import alive, group_alive, group_members, stop
from pipeline.jobs import JobStore
from tests.conftest import until

CFG = "name: jobtest\ndata:\n  sources: [{path: 'bundled:train', max_rows: 50}]\n"
LONGER = CFG.replace("max_rows: 50", "max_rows: 3000")            # runs to its end in the test
SLEEPER = "name: sleeper\ndata:\n  sources: [{path: 'bundled:train', weight: 30}]\n"   # cancelled long before its end
FINAL = ("succeeded", "failed", "cancelled")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(home):
    s = JobStore()
    yield s
    for j in s.list():   # nothing a failing test held stays behind: a stopped stage, a watcher
        stop(j.record(), grace_s=1)
        if s._watcher_alive(j):
            os.kill(int((j.dir / "watcher.pid").read_text()), signal.SIGKILL)


def _until(what, check, timeout=120.0):
    return until(check, timeout, what, every=0.1)


def _wait(store, job_id, states, timeout=300.0):
    def reached():
        store.reconcile()
        j = store.get(job_id)
        return j if j.status in states else None
    return _until(f"job {job_id} to be {states}", reached, timeout)


def _member(pgid: int, module: str) -> int | None:
    """The live process of group `pgid` that runs `python -m MODULE`."""
    for pid in group_members(pgid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv[1:3] == ["-m", module]:
            return pid
    return None


def _runner_and_stage(store, job_id) -> tuple[int, int]:
    pgid = store.get(job_id).record().pgid
    return _until("the exit-code runner and the stage", lambda: (lambda r, s: (r, s) if r and s else None)(
        _member(pgid, "pipeline.jobs.exitcode"), _member(pgid, "pipeline")))


def _kill_runner_stage_held(store, job_id) -> tuple[int, int]:
    """SIGSTOP the stage (so it is surely still there), kill -9 its exit-code runner, wait until the job shows a
    reaction (a note, or a final status); (runner pid, stage pid)."""
    runner, stage = _runner_and_stage(store, job_id)
    os.kill(stage, signal.SIGSTOP)
    os.kill(runner, signal.SIGKILL)
    _until("the job to react to its runner's death", lambda: store.get(job_id).note or store.get(job_id).status in FINAL)
    return runner, stage


# ------------------------------------------------------------------------------------ 6: deleted / emptied store
@pytest.mark.parametrize("opener", ["a fresh store", "the store already open"])
@pytest.mark.parametrize("fault", ["deleted", "emptied"])
def test_a_deleted_or_emptied_store_gets_every_job_back_and_no_id_is_reused(home, fault, opener):
    store = JobStore()
    a = store.submit("prepare", CFG, start=False)
    b = store.submit("prepare", CFG.replace("jobtest", "other"), start=False)
    store.cancel(b)
    before = {p: p.read_bytes() for p in (home / "jobs").rglob("*") if p.is_file()}
    if fault == "deleted":
        (home / "jobs.db").unlink()
    else:
        (home / "jobs.db").write_bytes(b"")
    for extra in ("jobs.db-wal", "jobs.db-shm"):
        (home / extra).unlink(missing_ok=True)
    again = store if opener == "the store already open" else JobStore()   # the console keeps one open
    jobs = {j.id: j for j in again.list()}
    assert set(jobs) == {a, b} and jobs[b].status == "cancelled" and jobs[a].config == CFG
    c = again.submit("prepare", CFG.replace("jobtest", "third"), start=False)
    assert c > b
    assert all(p.read_bytes() == data for p, data in before.items()), "an old job's files were overwritten"
    assert (home / "jobs" / str(c) / "config.yaml").read_text() == CFG.replace("jobtest", "third")


def test_no_id_is_reused_even_for_a_job_folder_the_store_cannot_read(home):
    store = JobStore()
    a = store.submit("prepare", CFG, start=False)
    b = store.submit("prepare", CFG.replace("jobtest", "other"), start=False)
    (home / "jobs" / str(b) / "job.json").write_text("{")          # its mirror cut short
    (home / "jobs.db").unlink()
    again = JobStore()
    assert [j.id for j in again.list()] == [a]                     # b's row cannot be read back ...
    c = again.submit("prepare", CFG.replace("jobtest", "third"), start=False)
    assert c > b                                                   # ... but its id and folder stay its own
    assert (home / "jobs" / str(b) / "config.yaml").read_text() == CFG.replace("jobtest", "other")
    assert (home / "jobs" / str(b) / "job.json").read_text() == "{"


# ------------------------------------------------------------------------------------ 7: the exit-code runner killed
def test_killed_runner_the_stage_runs_on_the_queue_waits_and_its_exit_code_is_kept(store):
    """kill -9 of the exit-code runner alone: the job stays running (noted), the GPU it holds stays held (the
    next job waits), and the stage's own exit code is recorded when it ends. (The store is told of two GPUs, a
    stand-in for hardware this machine lacks; nothing here touches a GPU.)"""
    store._machine_gpus = [0, 1]
    first = store.submit("prepare", LONGER, gpus=[0])
    second = store.submit("prepare", CFG, gpus=[0])
    _, stage = _kill_runner_stage_held(store, first)
    j = store.get(first)
    assert j.status == "running" and "adopted" in j.note and "exit-code runner" in j.note, (j.status, j.error)
    assert store.schedule() == [] and store.get(second).status == "queued"   # not started on top of it
    assert group_alive(j.record()) and alive(stage)
    os.kill(stage, signal.SIGCONT)
    done = _wait(store, first, FINAL)
    assert done.status == "succeeded" and done.exit_code == 0, done.error
    assert _wait(store, second, FINAL).status == "succeeded"


def test_killed_runner_cancel_reaches_the_stage(store):
    job = store.submit("prepare", SLEEPER)
    runner, stage = _runner_and_stage(store, job)
    os.kill(runner, signal.SIGKILL)
    _until("the job to react to its runner's death", lambda: store.get(job).note or store.get(job).status in FINAL)
    assert store.get(job).status == "running"
    store.cancel(job, grace_s=5)
    j = store.get(job)
    assert j.status == "cancelled" and not alive(stage) and not group_alive(j.record())


@pytest.mark.parametrize("end", ["the stage succeeds", "the stage is killed"])
def test_runner_and_supervisor_killed_the_stage_end_is_told_honestly(store, end):
    """Both the runner and the supervisor killed: the stage's exit code is lost. A watcher adopts the job; when
    the stage ends, a success it printed reads `succeeded` (noted: exit code unknown); otherwise `failed`:
    "ended; exit code unknown" with the log tail, never a made-up exit code."""
    job = store.submit("prepare", LONGER)
    _, stage = _kill_runner_stage_held(store, job)
    sup = store.get(job)
    assert sup.status == "running", sup.error
    os.kill(sup.pid, signal.SIGKILL)
    _until("the supervisor to die", lambda: not alive(sup.pid))
    store.reconcile()
    assert store.get(job).status == "running" and "supervisor" in store.get(job).note
    os.kill(stage, signal.SIGCONT if end == "the stage succeeds" else signal.SIGKILL)
    done = _wait(store, job, FINAL)
    assert done.exit_code is None
    if end == "the stage succeeds":
        assert done.status == "succeeded" and "exit code unknown" in done.note and "prepared" in done.note
    else:
        assert done.status == "failed" and "the stage ended; exit code unknown" in done.error
        assert "last log lines" in done.error and "-m pipeline prepare" in done.error


# ------------------------------------------------------------------------------------ 8: cancel vs the adopt watcher
def test_cancel_after_the_supervisor_died_stays_cancelled(store):
    """The adopt watcher ends after the cancel (held with SIGSTOP while the cancel runs, as a busy machine
    would delay it): its late finish must not turn `cancelled` into `failed, exit code -15`."""
    job = store.submit("prepare", SLEEPER)
    j = store.get(job)
    _runner_and_stage(store, job)
    os.kill(j.pid, signal.SIGKILL)
    _until("the supervisor to die", lambda: not alive(j.pid))
    store.reconcile()
    pid_file = j.dir / "watcher.pid"
    watcher = _until("the watcher", lambda: pid_file.is_file() and pid_file.read_text() and int(pid_file.read_text()))
    os.kill(watcher, signal.SIGSTOP)
    try:
        store.cancel(job, grace_s=5)
        assert store.get(job).status == "cancelled"
    finally:
        os.kill(watcher, signal.SIGCONT)
    _until("the watcher to end", lambda: not alive(watcher))
    j = store.get(job)
    assert j.status == "cancelled" and j.error == "cancelled by the user", (j.status, j.error)


# ------------------------------------------------------------------------------------ 12: an id too big for SQLite
@pytest.mark.parametrize("cmd", ["show", "cancel", "rerun", "tail"])
def test_an_id_too_big_for_the_store_is_no_such_job(home, cmd):
    big = "99999999999999999999999"
    p = subprocess.run([sys.executable, "-m", "app.cli", "jobs", cmd, big], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, SQLGENIE_HOME=str(home)))
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 2 and f"no job {big}" in out and "\n" not in out, out
