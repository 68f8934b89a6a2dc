"""Job store: submit/queue/run/cancel/rerun, GPU queueing, survival of the submitting process, reconcile."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.jobs import JobError, JobStore, pid_alive

CFG = "name: jobtest\ndata:\n  sources: [{path: 'bundled:train', max_rows: 50}]\n"


def _wait(store, job_id, states, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = store.get(job_id)
        if j.status in states:
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {store.get(job_id).status}")


@pytest.fixture
def store(home):
    return JobStore()


def test_invalid_requests_are_refused_before_queueing(store):
    from pipeline.errors import ConfigError

    with pytest.raises(JobError, match="kind 'fly' is not one of"):
        store.submit("fly", CFG)
    with pytest.raises(ConfigError, match="data.max_seq_len"):
        store.submit("prepare", "data:\n  max_seq_len: 4\n")
    with pytest.raises(ConfigError, match="replicas"):
        store.submit("serve", "replicas: two\n")
    assert store.list() == []


def test_a_job_runs_detached_logs_and_succeeds(store):
    job = store.submit("prepare", CFG)
    j = _wait(store, job, ("succeeded", "failed"), 120)
    assert j.status == "succeeded", j.error
    assert j.exit_code == 0 and j.finished >= j.started
    log = open(j.log_path).read()
    assert "python -m pipeline prepare --config" in log.splitlines()[0]
    assert os.getsid(0) != j.pid  # it ran in a session of its own


def test_failure_records_exit_code_and_log_tail(store):
    job = store.submit("evaluate", "name: nothing-trained\n", args=["--adapter", "/nonexistent"])
    j = _wait(store, job, ("succeeded", "failed"), 60)
    assert j.status == "failed" and j.exit_code == 2
    assert "adapter_config.json" in j.error


def _sleeper_job(store, gpus):
    """A job that runs for a while: preparing 30 passes over the bundled data (cancelled long before the end)."""
    return store.submit("prepare", "name: big\ndata:\n  sources: [{path: 'bundled:train', weight: 30}]\n", gpus=gpus)


def test_gpu_queue_cancel_and_rerun(store):
    first = _sleeper_job(store, [0])
    second = store.submit("prepare", CFG, gpus=[0])
    other = store.submit("prepare", CFG, gpus=[1])
    assert store.get(first).status == "running"
    assert store.get(second).status == "queued"  # GPU 0 is held
    assert _wait(store, other, ("succeeded", "failed"), 120).status == "succeeded"  # GPU 1 is free
    pid = store.get(first).pid
    store.cancel(first, grace_s=5)
    assert store.get(first).status == "cancelled" and not pid_alive(pid)
    assert _wait(store, second, ("running", "succeeded")).status in ("running", "succeeded")  # it got the GPU
    _wait(store, second, ("succeeded",), 120)
    again = store.rerun(second)
    assert again != second and store.get(again).config == store.get(second).config
    _wait(store, again, ("succeeded",), 120)


def test_jobs_outlive_the_process_that_submitted_them(home):
    code = ("from pipeline.jobs import JobStore; s=JobStore(); "
            "print(s.submit('prepare', \"name: big\\ndata:\\n  sources: [{path: 'bundled:train', weight: 30}]\\n\"))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), check=True)
    job = int(out.stdout.strip())
    store = JobStore()
    j = store.get(job)
    assert j.status == "running" and pid_alive(j.pid)  # the submitter has exited, the job has not
    store.cancel(job, grace_s=5)


def test_reconcile_marks_vanished_jobs_failed_with_log_tail(store):
    job = _sleeper_job(store, [])
    j = store.get(job)
    time.sleep(1)
    os.killpg(j.pid, signal.SIGKILL)  # the machine "rebooted" under the job
    deadline = time.time() + 10
    while pid_alive(j.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert store.reconcile() == [job]
    j = store.get(job)
    assert j.status == "failed" and "vanished" in j.error


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
