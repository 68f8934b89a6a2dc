"""Every door of a console bound beyond localhost with SQLGENIE_TOKEN set, knocked on from another host (a
second network namespace joined by a veth pair), without the token, with a wrong one and with the right one:
each dashboard page URL and its websocket, the playground's page and API, the router's API (a real vLLM
CPU replica behind vllm-router and its gate). And: the token is on no command line and in no state file; a
dashboard started by hand from another folder listens on localhost only, and refuses a public bind without
a token. Screenshots go to tests/e2e/artifacts/door-*.png.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from serving import deployments as D
from serving.plan import free_ports
from tests.conftest import share_models, until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "tests" / "e2e" / "artifacts"
NS = "sqg-door"
HOST_ADDR, OTHER_ADDR = "10.213.7.1", "10.213.7.2"      # this machine, the other host
TOKEN = "door-test-token-7f3a9c"


@pytest.fixture(scope="module")
def other_host():
    """A second network namespace joined to this one by a veth pair: another host at OTHER_ADDR that reaches
    this machine at HOST_ADDR (and nothing else)."""
    if subprocess.run(["ip", "netns", "add", NS], capture_output=True).returncode:
        pytest.skip("network namespaces are not available here (needs root and `ip netns`)")
    try:
        for cmd in (["link", "add", "sqg-door0", "type", "veth", "peer", "name", "sqg-door1"],
                    ["link", "set", "sqg-door1", "netns", NS],
                    ["addr", "add", f"{HOST_ADDR}/30", "dev", "sqg-door0"], ["link", "set", "sqg-door0", "up"],
                    ["netns", "exec", NS, "ip", "addr", "add", f"{OTHER_ADDR}/30", "dev", "sqg-door1"],
                    ["netns", "exec", NS, "ip", "link", "set", "sqg-door1", "up"],
                    ["netns", "exec", NS, "ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", *cmd], check=True, capture_output=True)
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["ip", "link", "del", "sqg-door0"], capture_output=True)


@pytest.fixture(scope="module")
def public_console(tmp_path_factory, other_host):
    home = share_models(tmp_path_factory.mktemp("doors") / "home")
    dash, play, router = free_ports(3)
    env = dict(os.environ, SQLGENIE_HOME=str(home), DASHBOARD_PORT=str(dash), PLAYGROUND_PORT=str(play),
               SQLGENIE_ROUTER_PORT=str(router), SQLGENIE_HOST="0.0.0.0", SQLGENIE_TOKEN=TOKEN,
               PYTHONUNBUFFERED="1")
    out = home.parent / "console.out"
    # another console (another home) holds the replica and router-metrics ports a deployment used to take by
    # default: this one must come up all the same (it could not be given others)
    held = [_hold(p) for p in (8100, 29000)]
    with open(out, "w") as log:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sqlgenie"), "console", "--replicas", "1"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    until(lambda: "console is up" in out.read_text() or proc.poll() is not None, 900, "the console")
    for sock in held:
        if sock is not None:
            sock.close()
    assert proc.poll() is None, out.read_text()
    yield {"home": home, "dash": dash, "play": play, "router": router, "proc": proc, "env": env}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(180)
    assert "nothing left running" in out.read_text(), out.read_text()[-2000:]


def _hold(port: int):
    """Listen on a port (None if something else already does: it is held either way)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


@pytest.fixture(scope="module")
def seen(public_console):
    ART.mkdir(parents=True, exist_ok=True)
    c = public_console
    probe = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-m", "tests.e2e.door_probe",
                            "--dash", f"http://{HOST_ADDR}:{c['dash']}", "--play", f"http://{HOST_ADDR}:{c['play']}",
                            "--router", f"http://{HOST_ADDR}:{c['router']}", "--token", TOKEN, "--shots", str(ART)],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert probe.returncode == 0, probe.stderr[-3000:]
    return json.loads(probe.stdout.strip().splitlines()[-1])


def test_every_dashboard_url_asks_for_the_token_and_opens_with_it(seen):
    for path, r in seen["plain"]["dash"].items():
        if path.startswith("ws"):
            continue
        if path.startswith("/_stcore"):
            assert r["status"] == 401, (path, r)
        else:
            assert r["status"] == 303 and r["location"].startswith("/_door/login?next="), (path, r)
        assert "Jobs" not in r.get("body", ""), (path, r)
    assert seen["plain"]["dash"]["ws"].startswith("refused"), seen["plain"]["dash"]
    assert seen["plain"]["dash"]["ws_wrong"].startswith("refused"), seen["plain"]["dash"]
    assert seen["plain"]["dash"]["ws_bearer"] == "open"
    for path, s in seen["browser"]["pages"].items():
        assert s["login"] and s["form"] and s["wrong"], (path, s)          # the form first; a wrong token says so
        assert s["opened"], (path, s)                                      # the right one opens that page
    assert seen["browser"]["pages"]["/jobs?job=1"]["url"] == "/?job=1"          # the default page, at /
    assert seen["browser"]["pages"]["/new_job"]["url"] == "/new-job"
    assert seen["browser"]["pages"]["/models"]["url"] == "/models"


def test_the_playground_and_its_api_ask_for_the_token(seen):
    for key, r in seen["plain"]["play"].items():
        if key == "GET /":
            assert r["status"] == 303 and r["location"].startswith("/_door/login"), (key, r)
        elif key.endswith("bearer"):
            assert r["status"] == 200 and "sqlgenie" in r["body"], (key, r)
        else:
            assert r["status"] == 401 and "sqlgenie" not in r["body"], (key, r)     # no deployment names
    assert seen["browser"]["playground_login"]
    assert "sqlgenie" in seen["browser"]["playground_with_dashboard_login"]         # one login opens both
    assert seen["browser"]["playground_answer"].startswith("sqlgenie: ")            # answered through the gate


def test_the_router_answers_only_with_the_token(seen):
    r = seen["plain"]["router"]
    assert r["completion none"]["status"] == 401 and r["completion wrong"]["status"] == 401, r
    assert r["completion right"]["status"] == 200 and "choices" in r["completion right"]["body"], r
    for path in ("/v1/models", "/metrics", "/workers"):
        assert r[path]["status"] == 401, (path, r[path])
    assert r["/health"]["status"] == 200                  # liveness only


def test_the_token_is_on_no_command_line_and_in_no_state_file(public_console, seen):
    home = public_console["home"]
    state = json.loads((home / "serve" / "sqlgenie" / "state.json").read_text())
    groups = [rec.pgid for rec in D.records(state)]
    groups += [p["pgid"] for p in json.loads((home / "console.json").read_text())["parts"].values()]
    ours = [p for p in psutil.process_iter(["cmdline"]) if _pgid(p.pid) in groups]
    assert len(ours) >= 5                                 # dashboard, playground, serve, replica, router, gate ...
    for p in ours:
        assert TOKEN not in " ".join(p.info["cmdline"] or []), p.info["cmdline"]
    for f in [home / "console.json", *home.glob("serve/*/state.json")]:
        assert TOKEN not in f.read_text(), f
    assert state["router"]["gate"]["proc"]["pid"]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_a_dashboard_started_by_hand_elsewhere_stays_local_or_refuses(tmp_path, other_host):
    env = dict(os.environ, SQLGENIE_HOME=str(tmp_path / "home"))
    env.pop("SQLGENIE_TOKEN", None)
    env.pop("SQLGENIE_HOST", None)
    streamlit = str(ROOT / ".venv" / "bin" / "streamlit")
    (port,) = free_ports(1)
    refused = subprocess.run([streamlit, "run", str(ROOT / "app" / "dashboard.py"), "--server.address", "0.0.0.0",
                              "--server.port", str(port)], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in refused.stderr
    local = subprocess.Popen([streamlit, "run", str(ROOT / "app" / "dashboard.py"), "--server.port", str(port)],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        until(lambda: _answers(f"http://127.0.0.1:{port}/_stcore/health"), 120, "the dashboard on localhost")
        from_other = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c",
                                     f"import socket; socket.create_connection(('{HOST_ADDR}', {port}), 5)"],
                                    capture_output=True, text=True, timeout=60)
        assert from_other.returncode != 0 and "refused" in from_other.stderr.lower(), from_other.stderr
    finally:
        os.killpg(local.pid, signal.SIGTERM)
        local.wait(30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
