"""Process ownership with real processes: a group whose leader was killed -9 is still found and stopped whole
(as vLLM's EngineCore outlives its killed API server); a reused pid is never taken for ours; a command we wait
for (run_owned) takes its grandchildren down with it when we are terminated."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.procs import ProcRecord, alive, group_alive, group_members, spawn, stop, stop_all

ROOT = Path(__file__).resolve().parents[2]

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


RUNNER = ("import sys\nfrom pathlib import Path\nfrom core.procs import run_owned\n"
          "print('code', run_owned([sys.executable, '-c', sys.argv[1]], Path(sys.argv[2])), flush=True)\n")


def test_run_owned_stops_the_grandchildren_when_the_waiting_process_is_terminated(tmp_path):
    log = tmp_path / "child.log"
    # the child starts a grandchild that ignores SIGTERM (as an engine core would stay), both in the child's group
    waiter = subprocess.Popen([sys.executable, "-c", RUNNER, LEADER, str(log)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert _wait(lambda: log.is_file() and log.read_text().strip() != "")
    grandchild = int(log.read_text().split()[0])
    assert alive(grandchild)
    waiter.send_signal(signal.SIGTERM)                              # `kill <pid>` of an evaluation, say
    assert waiter.wait(timeout=30) == -signal.SIGTERM               # it still dies by SIGTERM ...
    assert _wait(lambda: not alive(grandchild))                     # ... after stopping the whole group
    # and a command that simply ends gives its exit code
    done = subprocess.run([sys.executable, "-c", RUNNER, "raise SystemExit(3)", str(log)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "code 3"


# A group leader as serving/vllm_offline.py is one: it takes its group down on SIGTERM, and has a child that
# ignores SIGTERM (an engine core that would stay).
OWNED_LEADER = "from core.procs import end_group_on_sigterm\nend_group_on_sigterm()\n" + LEADER


def test_run_owned_command_and_its_children_die_when_the_waiting_process_is_killed_outright(tmp_path):
    """kill -9 of `sqlgenie evaluate` while vLLM generates offline: no clean-up of ours can run, yet the
    generation's leader gets the kernel's parent-death SIGTERM and takes its whole group with it."""
    log = tmp_path / "child.log"
    waiter = subprocess.Popen([sys.executable, "-c", RUNNER, OWNED_LEADER, str(log)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert _wait(lambda: log.is_file() and log.read_text().strip() != "")
    grandchild = int(log.read_text().split()[0])
    group = os.getpgid(grandchild)                                  # the leader's group (run_owned's new session)
    assert alive(grandchild) and group != os.getpgid(0) and len(group_members(group)) == 2
    waiter.kill()                                                   # SIGKILL: nothing of ours runs
    waiter.wait(timeout=10)
    assert _wait(lambda: not group_members(group), 15), group_members(group)
