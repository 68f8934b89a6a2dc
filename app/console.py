"""`sqlgenie console`: the dashboard, the playground and a supervised deployment of the default model, one command.

    sqlgenie console [--model embedded:smollm2-135m-instruct] [--replicas N] [--no-serve]
    sqlgenie console --only dashboard|playground|serve      # one part in the foreground (the Procfile's way)
    # ports: DASHBOARD_PORT (8501), PLAYGROUND_PORT (7860), SQLGENIE_ROUTER_PORT (8000); SQLGENIE_HOST to bind
    # beyond localhost (needs SQLGENIE_TOKEN)

Each part runs in its own process group, recorded in <home>/console.json the moment it starts. Once every
part answers, one block says where everything is. Ctrl-C (or SIGTERM) at any moment, during start-up too,
stops every group and the deployment's replicas, and verifies nothing is left; jobs started from the dashboard
(training, evaluation, Try-it deployments) keep running and are named with the command that stops each; a console that was killed
outright is cleaned up by the next `sqlgenie console` (and the deployment by the reaper). If a part dies,
its log tail is printed and the rest is stopped.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import requests

from core import access, envs
from core.errors import SqlgenieError
from core.files import write_atomic
from core.procs import ProcRecord, alive, group_alive, log_tail, spawn, stop, stop_all
from core.settings import REPO_ROOT, home
from pipeline.jobs import ACTIVE, JobStore
from serving import deployments as D
from serving.launch import check_engine
from serving.plan import gpu_inventory, port_free

DEPLOYMENT = "sqlgenie"


class ConsoleError(SqlgenieError):
    """The console cannot start (a port taken, no serving environment, a part that dies while starting)."""


def _state_path() -> Path:
    return home() / "console.json"


def _cleanup_previous(say) -> None:
    path = _state_path()
    if path.is_file():
        try:
            recs = [ProcRecord.from_dict(p) for p in json.loads(path.read_text()).get("parts", {}).values()]
        except (OSError, json.JSONDecodeError):
            recs = []
        live = [r for r in recs if group_alive(r)]
        owner = json.loads(path.read_text()).get("owner") if live else None
        if live and owner and alive(owner):
            raise ConsoleError(f"a console is already running (pid {owner}): open it, or stop it with Ctrl-C there")
        if live:
            say(f"stopping {stop_all(live, 10)} part(s) left by a console that was killed")
        path.unlink(missing_ok=True)
    for msg in D.reap():
        say(msg)


def _default_replicas() -> int:
    gpus = gpu_inventory()
    return len(gpus) if gpus else max(1, min(2, os.cpu_count() or 1))


def _wait(url: str, what: str, rec: ProcRecord, log: Path, timeout_s: float, ok=lambda r: r.status_code < 500) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not group_alive(rec):
            raise ConsoleError(f"{what} exited while starting; last lines of {log}:\n{log_tail(log, 15)}")
        try:
            if ok(requests.get(url, timeout=2, headers=access.auth_header())):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise ConsoleError(f"{what} did not answer at {url} within {timeout_s:.0f} s; see {log}")


def _ports() -> dict[str, int]:
    return {"dashboard": envs.port("DASHBOARD_PORT"), "playground": envs.port("PLAYGROUND_PORT"),
            "router": envs.port("SQLGENIE_ROUTER_PORT")}


def part_commands(model: str, replicas: int, host: str, ports: dict[str, int], serve: bool = True) -> dict[str, list[str]]:
    """The command of each part, the one place that says how the console starts them (also `--only PART`, the
    Procfile's way: one part per process, in the foreground)."""
    py = sys.executable
    cmds = {
        "dashboard": [py, "-m", "streamlit", "run", str(REPO_ROOT / "app" / "dashboard.py"),
                      f"--server.address={host}", f"--server.port={ports['dashboard']}", "--server.headless=true",
                      "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal"],
        "playground": [py, "-m", "app.playground"],
    }
    if serve:
        # replicas and the router's metrics on free ports: a second console (another home) never collides there
        cmds = {"serve": [py, "-m", "serving", "run", "--model", model, "--replicas", str(replicas), "--name",
                          DEPLOYMENT, f"router_port={ports['router']}", "base_port=0", "metrics_port=0",
                          f"host={host}", "max_model_len=2048"], **cmds}
    return cmds


def _taken(wanted: list[tuple[str, int]]) -> list[str]:
    return [f"{what} port {p} is held by {D.port_holder(p)}" for what, p in wanted if not port_free(p, "127.0.0.1")]


def run_one(part: str, model: str, replicas: int | None) -> int:
    """`sqlgenie console --only PART`: one part in the foreground, this process becoming it (exec), so a process
    manager (honcho, systemd, a container) that starts it and sends it SIGTERM stops exactly what it started:
    the dashboard and the playground are single processes; `serving run` takes its replicas, router and gate
    down on SIGTERM (every group signalled at once)."""
    host = access.bind_address()
    access.check_bind(host)
    ports = _ports()
    listens = "router" if part == "serve" else part
    taken = _taken([(listens, ports[listens])])
    if taken:
        raise ConsoleError("; ".join(taken) + ": stop it, or set DASHBOARD_PORT / PLAYGROUND_PORT / SQLGENIE_ROUTER_PORT")
    if part == "serve":
        check_engine()
    cmd = part_commands(model, replicas or _default_replicas(), host, ports, serve=part == "serve")[part]
    sys.stdout.flush()
    os.execve(cmd[0], cmd, {**os.environ, "PYTHONUNBUFFERED": "1", "PLAYGROUND_PORT": str(ports["playground"])})
    return 0   # not reached


def left_running() -> list[str]:
    """What the console did not start and so does not stop: jobs started from the dashboard or the CLI (training,
    evaluation, Try-it deployments) and deployments started by hand, each with the command that stops it. A job
    is the user's work (hours of training): Ctrl-C of the console leaves it to finish, and says so."""
    lines, served = [], {}
    try:
        store = JobStore()
        served = {j.id: name for name, j in store.serving().items()}
        for j in store.list(500):
            if j.status in ACTIVE:
                what = f"deployment {served[j.id]}" if j.id in served else f"{j.kind} {j.name!r}"
                lines.append(f"  job #{j.id}: {what} ({j.status}); stop it: sqlgenie jobs cancel {j.id}")
    except SqlgenieError as e:
        lines.append(f"  (the job store could not be read: {e})")
    for name in D.names():
        if name in served.values() or name == DEPLOYMENT:
            continue
        try:
            st = D.load(name)
        except SqlgenieError:
            continue
        if st.get("phase") in ("starting", "ready") and any(group_alive(r) for r in D.records(st)):
            lines.append(f"  deployment {name}; stop it: sqlgenie serve down {name}")
    if lines:
        lines.insert(0, f"still running, not started by this console ({len(lines)}):")
    return lines


def run(model: str, replicas: int | None, serve: bool = True, say=print) -> int:
    host = access.bind_address()
    access.check_bind(host)
    t0 = time.time()
    _cleanup_previous(say)
    if serve:
        check_engine()
    all_ports = _ports()
    ports = {"dashboard": all_ports["dashboard"], "playground": all_ports["playground"]}
    router_port = all_ports["router"]
    taken = _taken(list(ports.items()) + ([("router", router_port)] if serve else []))
    if taken:
        raise ConsoleError("; ".join(taken) + ": stop it, or set DASHBOARD_PORT / PLAYGROUND_PORT / SQLGENIE_ROUTER_PORT")
    replicas = replicas or _default_replicas()
    logs = home() / "console"
    parts_cmd = part_commands(model, replicas, host, all_ports, serve)
    state = {"owner": os.getpid(), "started": t0, "parts": {}}
    recs: dict[str, ProcRecord] = {}
    stopping: list[int] = []

    def on_signal(*_):
        stopping.append(1)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)     # also when started in the background (SIGINT inherited as ignored)
    try:
        for name, cmd in parts_cmd.items():
            def save(rec: ProcRecord, name=name) -> None:
                recs[name] = rec
                state["parts"][name] = rec.to_dict()
                write_atomic(_state_path(), json.dumps(state, indent=2))
            spawn(cmd, {"PYTHONUNBUFFERED": "1", "PLAYGROUND_PORT": str(ports["playground"])}, logs / f"{name}.log",
                  role=name, on_start=save)
        say(f"starting: dashboard, playground{f', {replicas} replica(s) of {model} behind vllm-router' if serve else ''} "
            f"(logs in {logs})")
        _wait(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health", "the dashboard", recs["dashboard"],
              logs / "dashboard.log", 120)
        _wait(f"http://127.0.0.1:{ports['playground']}/", "the playground", recs["playground"], logs / "playground.log", 120)
        if serve:
            _wait(f"http://127.0.0.1:{router_port}/v1/models", "the deployment", recs["serve"], logs / "serve.log", 900,
                  ok=lambda r: r.status_code == 200)
        lines = [f"sqlgenie console is up ({time.time() - t0:.0f} s)",
                 f"  dashboard   http://{host}:{ports['dashboard']}",
                 f"  playground  http://{host}:{ports['playground']}"]
        if serve:
            st = D.status(DEPLOYMENT)
            devices = ", ".join(r["device"] for r in st["replicas"])
            lines.append(f"  router      {st['router']['url']}/v1  ({len(st['replicas'])} vLLM replica(s) of {model} on "
                         f"{devices}; {st['router']['health']})")
        lines.append("Ctrl-C stops these (jobs you start from the dashboard keep running; it names them).")
        say("\n".join(lines))
        while True:
            for name, rec in recs.items():
                if not alive(rec.pid):
                    raise ConsoleError(f"{name} stopped unexpectedly; last lines of {logs / (name + '.log')}:\n"
                                       f"{log_tail(logs / (name + '.log'), 15)}")
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping ...")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if "serve" in recs:
            stop(recs["serve"], 45)                      # `serve run` takes its replicas down on SIGTERM
        stop_all([r for n, r in recs.items() if n != "serve"], 10)
        for msg in D.reap(DEPLOYMENT if serve else None):
            say(msg)
        left = [n for n, r in recs.items() if group_alive(r)]
        _state_path().unlink(missing_ok=True)
        say("stopped; nothing left running" if not left else f"could not stop: {', '.join(left)}")
        for line in left_running():
            say(line)
        signal.signal(signal.SIGINT, signal.default_int_handler)
