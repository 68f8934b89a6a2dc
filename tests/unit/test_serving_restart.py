"""A user's replica restart is a request to the deployment's supervisor (launch.ask_restart): it is recorded
for a supervised deployment whose supervisor runs, and refused with what to do for one nobody supervises or
whose supervisor is gone. The restart itself (the supervisor stopping and starting a real vLLM replica) is
tests/integration/test_serving_router.py."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from core.procs import ProcRecord, start_ticks


def _state(name: str, supervised: bool, owner_pid: int) -> dict:
    from serving import deployments as D

    owner = ProcRecord(owner_pid, os.getpgid(0), start_ticks(owner_pid), ["x"], "owner", time.time())
    st = {"name": name, "config": {}, "created": time.time(), "phase": "ready", "supervised": supervised,
          "owner": owner.to_dict(), "replicas": [{"index": 0, "state": "ready", "restarts": 0, "proc": None}],
          "workers": [], "router": {}, "events": []}
    D.state_dir(name).mkdir(parents=True, exist_ok=True)
    D.save(st)
    return st


def test_a_supervised_deployment_records_the_request_for_its_supervisor(home):
    from serving import deployments as D
    from serving import launch

    _state("sup", supervised=True, owner_pid=os.getpid())
    st = launch.ask_restart("sup", 0)
    assert st["replicas"][0]["restart_asked"] > 0 and st["replicas"][0]["state"] == "ready"
    assert D.load("sup")["events"][-1]["what"] == "replica 0: restart asked for by the user"


@pytest.mark.parametrize("case", ["unsupervised", "supervisor gone"])
def test_without_a_running_supervisor_the_restart_is_refused_with_what_to_do(home, case):
    from serving import deployments as D
    from serving import launch
    from serving.config import DeploymentError

    if case == "unsupervised":
        _state("dep", supervised=False, owner_pid=os.getpid())
    else:
        gone = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        _state("dep", supervised=True, owner_pid=gone.pid)     # recorded while it runs, then it ends
        gone.communicate(b"")
    with pytest.raises(DeploymentError, match=r"no running supervisor.*serve job"):
        launch.ask_restart("dep", 0)
    assert "restart_asked" not in D.load("dep")["replicas"][0]


def test_idle_watch_stops_only_after_the_counter_stood_still_for_the_limit():
    """IdleWatch (serving/launch.py, a supervised deployment's idle stop): a moving request counter or a router
    that does not answer is never idleness; 0 means never."""
    from serving.launch import IdleWatch

    w = IdleWatch(60, now=0)
    assert not w.seen(5, 10) and not w.seen(5, 60)          # the first reading is the baseline (t=10)
    assert not w.seen(6, 65) and not w.seen(6, 124)          # a request at t=65 resets the clock
    assert w.seen(6, 125)
    w = IdleWatch(60, now=0)
    assert not w.seen(3, 0) and not w.seen(None, 70) and not w.seen(3, 100) and not w.seen(3, 159)
    assert w.seen(3, 160)                                    # an unanswered reading restarted the clock at t=100
    never = IdleWatch(0, now=0)
    assert not never.seen(1, 0) and not never.seen(1, 10 ** 6)
