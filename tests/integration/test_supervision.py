"""Nothing leaks, nothing vanishes: real vLLM CPU replicas of SmolLM2 and the real router, real signals.

- kill -9 of a replica, then `down`: no process of the deployment is left (checked by process group);
- kill -9 of `serve up` while its replicas start, then `up` again: the orphans are cleaned and it starts clean;
- a supervised deployment (`serve run`) restarts a dead replica; meanwhile the router reads "degraded";
- the router fronts a replica started with `serve replica` on another host: two network namespaces made by
  the test on this machine, joined by a veth pair (traffic stays inside them).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from core.procs import ProcRecord, alive, group_alive, group_members, stop_all
from serving import deployments as D
from serving import launch
from serving.config import load_serve_config
from serving.plan import free_ports
from tests.conftest import share_models

pytestmark = pytest.mark.integration
MODEL = "embedded:smollm2-135m-instruct"


@pytest.fixture
def home(tmp_path, monkeypatch):
    if not launch.SERVE_VENV.joinpath("python").exists():
        pytest.skip("serving environment missing: make setup-serve")
    h = share_models(tmp_path / "home")
    monkeypatch.setenv("SQLGENIE_HOME", str(h))
    yield h
    for name in D.names():          # whatever a failed test left behind
        stop_all(D.records(D.load(name)), 5)


def _cfg(name: str, replicas: int = 1, **kw):
    base, router, metrics = free_ports(3)
    over = [f"model={MODEL}", f"name={name}", f"replicas={replicas}", f"base_port={base}", f"router_port={router}",
            f"metrics_port={metrics}", "max_model_len=1024", "warmup_requests=1", *[f"{k}={v}" for k, v in kw.items()]]
    return load_serve_config(None, over), over


def _groups(state: dict) -> list[int]:
    return [r.pgid for r in D.records(state)]


def _wait(cond, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_down_after_a_replica_was_killed_leaves_no_process(home):
    cfg, _ = _cfg("k9")
    st = launch.up(cfg, progress=lambda *_: None)
    rec = ProcRecord.from_dict(st["replicas"][0]["proc"])
    os.kill(rec.pid, signal.SIGKILL)
    _wait(lambda: not alive(rec.pid), 10, "the replica's leader to die")
    groups = _groups(D.load("k9"))
    launch.down("k9")
    assert all(not group_members(g) for g in groups), "a process of the deployment outlived down"
    assert D.load("k9")["phase"] == "stopped"


def test_killed_up_while_starting_then_up_again_starts_clean(home):
    cfg, over = _cfg("mid")
    up = subprocess.Popen([sys.executable, "-m", "serving", "up", *over], env=dict(os.environ),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: D.exists("mid") and D.load("mid")["replicas"][0].get("proc"), 60, "the replica to be recorded")
    orphan = ProcRecord.from_dict(D.load("mid")["replicas"][0]["proc"])
    up.send_signal(signal.SIGKILL)                       # the launcher dies mid-start: no clean-up runs
    up.wait()
    assert group_alive(orphan) and D.load("mid")["phase"] == "starting"
    st = launch.up(cfg, progress=lambda *_: None)        # reaps the orphan, then starts fresh
    assert not group_alive(orphan)
    assert st["phase"] == "ready"
    assert D.status("mid")["router"]["health"] == "healthy"
    r = requests.post(st["router"]["url"] + "/v1/completions", json={"model": "mid", "prompt": "SELECT", "max_tokens": 2},
                      timeout=60)
    assert r.status_code == 200
    groups = _groups(D.load("mid"))
    launch.down("mid")
    assert all(not group_members(g) for g in groups)


def test_sigterm_of_up_while_starting_is_one_line_and_leaves_nothing(home):
    """(was: an `_Interrupted` traceback) SIGTERM while the replicas start: what was started is stopped, one
    line says so, exit code 143."""
    _, over = _cfg("term")
    up = subprocess.Popen([sys.executable, "-m", "serving", "up", *over], env=dict(os.environ),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: D.exists("term") and D.load("term")["replicas"][0].get("proc"), 60, "the replica to be recorded")
    groups = _groups(D.load("term"))
    up.send_signal(signal.SIGTERM)
    out, err = up.communicate(timeout=60)
    assert up.returncode == 143, (out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted: SIGTERM while the "
                                                                              "deployment was starting"), err
    assert all(not group_members(g) for g in groups) and D.load("term")["phase"] == "stopped"


def _serve_run(name: str, **kw) -> subprocess.Popen:
    """`serve run` (what a serve job runs) in a session of its own; returns once its deployment is ready."""
    _, over = _cfg(name, **kw)
    run = subprocess.Popen([sys.executable, "-m", "serving", "run", *over], env=dict(os.environ),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait(lambda: D.exists(name) and D.load(name)["phase"] == "ready", 300, "the deployment")
    except AssertionError:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)
        raise
    return run


def test_a_supervised_deployment_restarts_a_dead_replica(home):
    run = _serve_run("sup", replicas=2)
    try:
        st = D.load("sup")
        victim = ProcRecord.from_dict(st["replicas"][1]["proc"])
        os.killpg(victim.pgid, signal.SIGKILL)
        _wait(lambda: "degraded" in D.status("sup")["router"]["health"], 30, "health to read degraded")
        _wait(lambda: any("replica 1 is back" in e["what"] for e in D.load("sup")["events"]), 300, "the restart")
        st = D.status("sup")
        assert st["router"]["health"] == "healthy" and st["replicas"][1]["restarts"] == 1
        assert ProcRecord.from_dict(st["replicas"][1]["proc"]).pid != victim.pid
        events = [e["what"] for e in st["events"]]
        assert any("replica 1 died" in e for e in events) and any("restarting (attempt 1" in e for e in events)
        groups = _groups(st)
    finally:
        os.killpg(run.pid, signal.SIGTERM)               # a serve job being cancelled
        run.wait(60)
    assert all(not group_members(g) for g in groups) and D.load("sup")["phase"] == "stopped"


def test_an_idle_supervised_deployment_stops_by_itself_and_a_request_keeps_it_up(home):
    """idle_stop_s (what Try it sets to an hour): with no request through the router for that long the serve run
    stops the deployment, says why, exits 0 and leaves no process; a request meanwhile restarts the clock."""
    run = _serve_run("idle", idle_stop_s=25)
    try:
        st = D.load("idle")
        groups = _groups(st)
        time.sleep(15)
        r = requests.post(st["router"]["url"] + "/v1/completions", timeout=120,
                          json={"model": "idle", "prompt": "SELECT", "max_tokens": 2})
        assert r.status_code == 200
        asked = time.time()
        _wait(lambda: run.poll() is not None, 120, "the idle deployment to stop by itself")
        assert time.time() - asked >= 20                   # the request at ~15 s kept it up past the first 25 s
        out = run.stdout.read()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(60)
    assert run.returncode == 0, out[-2000:]
    st = D.load("idle")
    assert st["phase"] == "stopped" and any("no request for 25 s" in e["what"] for e in st["events"])
    assert all(not group_members(g) for g in groups)


NS_A, NS_B, ADDR_A, ADDR_B = "sqg-router", "sqg-remote", "10.213.7.1", "10.213.7.2"


def test_a_hung_replica_keeps_nobody_waiting_and_is_restarted(home):
    """SIGSTOP of a replica (alive, silent): the requests it held are retried on the other one after the
    router's per-request timeout instead of waiting for the client's, and the supervisor, seeing no answer to
    its health checks, stops the frozen group and starts the replica again."""
    from concurrent.futures import ThreadPoolExecutor

    _, over = _cfg("hang", replicas=2, request_timeout_s=10, hang_timeout_s=15)
    run = subprocess.Popen([sys.executable, "-m", "serving", "run", *over], env=dict(os.environ),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    victim = None
    try:
        _wait(lambda: D.exists("hang") and D.load("hang")["phase"] == "ready", 300, "the deployment")
        st = D.load("hang")
        victim = ProcRecord.from_dict(st["replicas"][1]["proc"])
        os.killpg(victim.pgid, signal.SIGSTOP)           # the whole replica freezes: its port still accepts

        def ask(i: int) -> int:
            return requests.post(st["router"]["url"] + "/v1/completions", timeout=75,
                                 json={"model": "hang", "prompt": f"SELECT {i}", "max_tokens": 4}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(ask, range(8)))
        assert codes == [200] * 8                        # none waited out the client's 75 s
        _wait(lambda: any("replica 1 is back" in e["what"] for e in D.load("hang")["events"]), 300, "the restart")
        events = [e["what"] for e in D.load("hang")["events"]]
        assert any("replica 1 answered no health check" in e and "hung" in e for e in events), events
        assert not group_members(victim.pgid)            # the frozen group is gone, not left stopped
        st = D.status("hang")
        assert st["router"]["health"] == "healthy" and st["replicas"][1]["restarts"] == 1
        groups = _groups(st)
    finally:
        if victim is not None and group_members(victim.pgid):
            os.killpg(victim.pgid, signal.SIGCONT)
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)
    assert all(not group_members(g) for g in groups) and D.load("hang")["phase"] == "stopped"


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair: 'router host' A and 'replica host' B."""
    ip = ["ip"]
    if subprocess.run(ip + ["netns", "add", NS_A], capture_output=True).returncode:
        pytest.skip("network namespaces are not available here (needs root and `ip netns`)")
    try:
        for cmd in (["netns", "add", NS_B], ["link", "add", "sqg-va", "type", "veth", "peer", "name", "sqg-vb"],
                    ["link", "set", "sqg-va", "netns", NS_A], ["link", "set", "sqg-vb", "netns", NS_B],
                    ["netns", "exec", NS_A, "ip", "addr", "add", f"{ADDR_A}/30", "dev", "sqg-va"],
                    ["netns", "exec", NS_B, "ip", "addr", "add", f"{ADDR_B}/30", "dev", "sqg-vb"],
                    ["netns", "exec", NS_A, "ip", "link", "set", "sqg-va", "up"],
                    ["netns", "exec", NS_B, "ip", "link", "set", "sqg-vb", "up"],
                    ["netns", "exec", NS_A, "ip", "link", "set", "lo", "up"],
                    ["netns", "exec", NS_B, "ip", "link", "set", "lo", "up"]):
            subprocess.run(ip + cmd, check=True, capture_output=True)
        yield
    finally:
        for ns in (NS_A, NS_B):
            subprocess.run(ip + ["netns", "del", ns], capture_output=True)


def test_the_router_fronts_a_replica_on_another_host(home, two_hosts):
    env = dict(os.environ)
    remote = subprocess.Popen(["ip", "netns", "exec", NS_B, sys.executable, "-m", "serving", "replica", "--model", MODEL,
                               "--host", ADDR_B, "--port", "8100", "--name", "twohosts", "max_model_len=1024"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        line = ""
        end = time.time() + 300
        while "replica ready" not in line and time.time() < end:
            line = remote.stdout.readline()
            assert line or remote.poll() is None, "the remote replica exited"
        assert "replica ready" in line
        # a worker that serves another name is refused up front, naming the fix
        wrong = subprocess.run(["ip", "netns", "exec", NS_A, sys.executable, "-m", "serving", "up", f"model={MODEL}",
                                "name=other", f"workers=[http://{ADDR_B}:8100]"], env=env, capture_output=True, text=True,
                               timeout=60)
        assert wrong.returncode == 2 and "serves twohosts, not 'other': start it with --name other" in wrong.stderr
        # the deployment on host A: one local replica + the remote one as a worker, router bound to A's address
        up = subprocess.run(["ip", "netns", "exec", NS_A, sys.executable, "-m", "serving", "up", f"model={MODEL}",
                             "name=twohosts", "replicas=1", "base_port=8100", "router_port=8000", "metrics_port=29000",
                             f"host={ADDR_A}", "max_model_len=1024", "warmup_requests=1",
                             f"workers=[http://{ADDR_B}:8100]"], env={**env, "SQLGENIE_TOKEN": "t0k"},
                            capture_output=True, text=True, timeout=400)
        assert up.returncode == 0, up.stdout[-1500:] + up.stderr[-1500:]
        client = ("import json, requests\n"
                  f"h = {{'Authorization': 'Bearer t0k'}}\nurl = 'http://{ADDR_A}:8000/v1/completions'\n"
                  "codes = [requests.post(url, headers=h, timeout=60, json={'model': 'twohosts', 'prompt': 'SELECT', "
                  "'max_tokens': 2}).status_code for _ in range(6)]\n"
                  f"m = requests.get('http://127.0.0.1:29000/metrics', timeout=5).text\n"
                  "print(json.dumps({'codes': codes, 'remote': [l for l in m.splitlines() if 'processed' in l "
                  f"and '{ADDR_B}' in l]}}))\n")
        out = subprocess.run(["ip", "netns", "exec", NS_A, sys.executable, "-c", client], capture_output=True,
                             text=True, timeout=120, env=env)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["codes"] == [200] * 6
        assert res["remote"] and float(res["remote"][0].rsplit(" ", 1)[-1]) >= 2, res   # round robin reached host B
    finally:
        subprocess.run(["ip", "netns", "exec", NS_A, sys.executable, "-m", "serving", "down", "--name", "twohosts"],
                       env=env, capture_output=True, timeout=120)
        os.killpg(remote.pid, signal.SIGTERM)
        remote.wait(60)
