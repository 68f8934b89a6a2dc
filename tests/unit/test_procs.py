"""Process ownership with real processes: a group whose leader was killed -9 is still found and stopped whole
(as vLLM's EngineCore outlives its killed API server); a reused pid is never taken for ours."""
from __future__ import annotations

import os
import signal
import sys
import time

from core.procs import ProcRecord, alive, group_alive, group_members, spawn, stop, stop_all

LEADER = ("import subprocess, sys, time\n"
          "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
          "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'])\n"
          "print(child.pid, flush=True)\ntime.sleep(300)\n")


def _wait(cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end and not cond():
        time.sleep(0.05)
    return cond()


def test_a_group_whose_leader_died_is_stopped_whole(tmp_path):
    log = tmp_path / "leader.log"
    recorded = []
    proc, rec = spawn([sys.executable, "-c", LEADER], {}, log, on_start=recorded.append)
    assert recorded == [rec] and rec.pgid == proc.pid            # recorded the moment it exists
    assert _wait(lambda: log.read_text().strip() != "")
    child = int(log.read_text().split()[0])
    os.kill(proc.pid, signal.SIGKILL)                             # the API server dies, its engine does not
    proc.wait()
    assert not alive(proc.pid) and alive(child) and child in group_members(rec.pgid)
    assert group_alive(rec)
    assert stop(rec, grace_s=1)                                   # SIGTERM (ignored) then SIGKILL, whole group
    assert not alive(child) and not group_members(rec.pgid) and not group_alive(rec)


def test_a_reused_pid_is_not_ours():
    proc, rec = spawn([sys.executable, "-c", "import time; time.sleep(30)"], {}, None)
    try:
        impostor = ProcRecord(rec.pid, rec.pgid, rec.start_ticks + 12345)   # same pid, another start time
        assert group_alive(rec) and not group_alive(impostor)
        assert stop_all([impostor], grace_s=0.5) == 0 and alive(proc.pid)  # never signalled
    finally:
        stop(rec, 1)
        proc.wait()
