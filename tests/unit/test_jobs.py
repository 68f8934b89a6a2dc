"""Job store: submit/queue/run/cancel/rerun, GPU and CPU-core queueing, survival of the submitting process,
a job's status following its real processes (supervisor killed -> adopted, exit code kept), a damaged or
locked store."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from core.errors import ConfigError
from core.procs import alive, group_alive
from pipeline.jobs import JobError, JobStore

CFG = "name: jobtest\ndata:\n  sources: [{path: 'bundled:train', max_rows: 50}]\n"


def _wait(store, job_id, states, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        store.reconcile()
        j = store.get(job_id)
        if j.status in states:
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {store.get(job_id).status}")


def _sleeper(name: str) -> str:
    """A job that runs for a while: preparing 30 passes over the bundled data (cancelled long before the end)."""
    return f"name: {name}\ndata:\n  sources: [{{path: 'bundled:train', weight: 30}}]\n"


@pytest.fixture
def store(home):
    return JobStore()


@pytest.fixture
def two_gpu_store(home):
    """This machine has no GPU; the GPU queue is tested with a store told there are two (a stand-in for
    hardware we cannot have here: nothing in these jobs touches a GPU)."""
    s = JobStore()
    s._machine_gpus = [0, 1]
    return s


def test_invalid_requests_are_refused_before_queueing(store):
    with pytest.raises(JobError, match="kind 'fly' is not one of"):
        store.submit("fly", CFG)
    with pytest.raises(ConfigError, match="data.max_seq_len"):
        store.submit("prepare", "data:\n  max_seq_len: 4\n")
    with pytest.raises(ConfigError, match="replicas"):
        store.submit("serve", "replicas: two\n")
    with pytest.raises(ConfigError, match="replicas"):         # a name given (Try it, evaluate) skips no check
        store.submit("serve", "replicas: two\n", name="try-1")
    with pytest.raises(JobError, match=r"GPUs \[3\] do not exist here"):
        store.submit("prepare", CFG, gpus=[3])
    assert store.list() == []


def test_a_job_runs_detached_logs_and_succeeds(store):
    job = store.submit("prepare", CFG)
    j = _wait(store, job, ("succeeded", "failed"), 120)
    assert j.status == "succeeded", j.error
    assert j.exit_code == 0 and j.finished >= j.started
    log = open(j.log_path).read()
    assert "python -m pipeline prepare --config" in log.splitlines()[0]
    assert os.getsid(0) != j.pid  # it ran in a session of its own
    assert (j.dir / "job.json").is_file()


def test_failure_records_exit_code_and_log_tail(store):
    job = store.submit("evaluate", "name: nothing-trained\n", args=["--adapter", "/nonexistent"])
    j = _wait(store, job, ("succeeded", "failed"), 60)
    assert j.status == "failed" and j.exit_code == 2
    assert "no run '/nonexistent'" in j.error


def test_gpu_queue_cancel_and_rerun(two_gpu_store):
    store = two_gpu_store
    first = store.submit("prepare", _sleeper("big0"), gpus=[0])
    second = store.submit("prepare", CFG, gpus=[0])
    other = store.submit("prepare", CFG.replace("jobtest", "jobtest1"), gpus=[1])
    assert store.get(first).status == "running"
    assert store.get(second).status == "queued"  # GPU 0 is held
    assert _wait(store, other, ("succeeded", "failed"), 120).status == "succeeded"  # GPU 1 is free
    rec = store.get(first).record()
    store.cancel(first, grace_s=5)
    assert store.get(first).status == "cancelled" and not group_alive(rec)
    assert _wait(store, second, ("running", "succeeded")).status in ("running", "succeeded")  # it got the GPU
    _wait(store, second, ("succeeded",), 120)
    again = store.rerun(second)
    assert again != second and store.get(again).config == store.get(second).config
    _wait(store, again, ("succeeded",), 120)


def test_cpu_jobs_queue_by_cores(store):
    """Three one-core jobs on a machine with fewer cores: the extra one waits instead of crowding the CPU."""
    cores = os.cpu_count() or 1
    jobs = [store.submit("prepare", _sleeper(f"cpu{i}")) for i in range(cores + 1)]
    states = [store.get(j).status for j in jobs]
    assert states.count("running") == cores and states[-1] == "queued", states
    for j in jobs:
        store.cancel(j, grace_s=5)
    assert all(store.get(j).status == "cancelled" for j in jobs)


def test_jobs_outlive_the_process_that_submitted_them(home):
    code = ("from pipeline.jobs import JobStore; s=JobStore(); "
            "print(s.submit('prepare', \"name: big\\ndata:\\n  sources: [{path: 'bundled:train', weight: 30}]\\n\"))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), check=True)
    job = int(out.stdout.strip())
    store = JobStore()
    j = store.get(job)
    assert j.status == "running" and alive(j.pid)  # the submitter has exited, the job has not
    store.cancel(job, grace_s=5)


def test_killed_supervisor_the_stage_is_adopted_and_its_exit_code_kept(store):
    """kill -9 of the supervisor alone: the stage runs on, the store adopts it (still 'running', never
    'failed' while it runs), and when it ends its real exit code is recorded."""
    job = store.submit("prepare", CFG.replace("max_rows: 50", "max_rows: 3000"))
    j = store.get(job)
    time.sleep(1.0)
    os.kill(j.pid, signal.SIGKILL)
    while alive(j.pid):
        time.sleep(0.05)
    assert group_alive(j.record()), "the stage should still be running"
    assert store.reconcile() == [job]
    j2 = store.get(job)
    assert j2.status == "running" and j2.note.startswith("adopted")
    done = _wait(store, job, ("succeeded", "failed"), 180)
    assert done.status == "succeeded" and done.exit_code == 0, done.error


def test_cancel_reaches_the_stage_after_its_supervisor_died(store):
    job = store.submit("prepare", _sleeper("orphan"))
    j = store.get(job)
    time.sleep(1.0)
    os.kill(j.pid, signal.SIGKILL)
    store.reconcile()
    assert group_alive(j.record())
    store.cancel(job, grace_s=5)
    assert store.get(job).status == "cancelled" and not group_alive(j.record())


def test_whole_group_killed_is_failed_with_log_tail(store):
    job = store.submit("prepare", _sleeper("gone"))
    j = store.get(job)
    time.sleep(1)
    os.killpg(j.pid, signal.SIGKILL)  # the machine "rebooted" under the job
    deadline = time.time() + 10
    while group_alive(j.record()) and time.time() < deadline:
        time.sleep(0.1)
    assert store.reconcile() == [job]
    j = store.get(job)
    assert j.status == "failed" and "vanished" in j.error


def test_a_damaged_store_is_rebuilt_from_the_job_folders(home):
    store = JobStore()
    a = store.submit("prepare", CFG, start=False)
    b = store.submit("prepare", CFG.replace("jobtest", "other"), start=False)
    store.cancel(b)
    (home / "jobs.db").write_bytes(b"this is not a database" * 100)
    for extra in ("jobs.db-wal", "jobs.db-shm"):
        (home / extra).unlink(missing_ok=True)
    again = JobStore()
    jobs = {j.id: j for j in again.list()}
    assert set(jobs) == {a, b} and jobs[b].status == "cancelled" and jobs[a].config == CFG
    assert list(home.glob("jobs.db.damaged-*")), "the damaged file is kept aside, not deleted"


def test_a_locked_store_is_one_clear_error_not_a_hang(store):
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.time()
        with pytest.raises(JobError, match="stayed locked"):
            store.submit("prepare", CFG, start=False)
        assert time.time() - t0 < 15
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_monitor_maps_descendants_to_jobs(home):
    from pipeline.monitor import job_of, sample

    child = subprocess.Popen([sys.executable, "-c", "import subprocess,sys,time; "
                              "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(30)'], start_new_session=True); "
                              "print(p.pid, flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    try:
        assert job_of(grandchild, {7: child.pid}) == 7  # its own session, but a descendant
        assert job_of(os.getpid(), {7: child.pid}) is None
    finally:
        child.kill()
        os.kill(grandchild, signal.SIGKILL)
    s = sample()
    assert s["cpu"]["cores"] >= 1 and 0 < s["cpu"]["ram_used_gib"] < s["cpu"]["ram_total_gib"]
    assert s["gpus"] == [] or all("mem_total_gib" in g for g in s["gpus"])


def test_every_job_status_is_active_or_final_and_has_a_badge():
    from app import ui
    from pipeline.jobs import ACTIVE, FINAL, LIVE, Status

    assert set(ACTIVE) | set(FINAL) == set(Status) and not set(ACTIVE) & set(FINAL)
    assert set(LIVE) <= set(ACTIVE) and Status.QUEUED not in LIVE
    assert set(ui.STATUS) == set(Status)
    assert ui.STATUS["running"] == ui.STATUS[Status.RUNNING]      # rows read from SQLite hold plain strings
