"""The Procfile: `honcho start` brings up what `sqlgenie console` does (real Streamlit, Gradio, vLLM CPU
replicas of SmolLM2 and vllm-router), one `sqlgenie console --only PART` per line, and SIGINT to honcho (what
Ctrl-C sends) leaves no process of ours: every process that was running under honcho is gone, the
deployment's record says stopped.

    .venv/bin/python -m pytest tests/integration/test_procfile.py -q
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from core.procs import stop_all
from serving import deployments as D
from serving.plan import SERVE_VENV, free_ports
from tests.conftest import share_models

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _up(url: str, ok=lambda r: r.status_code == 200) -> bool:
    try:
        return ok(requests.get(url, timeout=3))
    except requests.RequestException:
        return False


def test_honcho_starts_the_three_parts_and_ctrl_c_leaves_nothing(tmp_path, monkeypatch):
    if not SERVE_VENV.joinpath("python").exists():
        pytest.skip("serving environment missing: make setup-serve")
    assert (BIN / "honcho").exists(), "honcho is not installed in the environment: it is in requirements.txt"
    home = share_models(tmp_path / "home")
    monkeypatch.setenv("SQLGENIE_HOME", str(home))
    dash, play, router = free_ports(3)
    env = {k: v for k, v in os.environ.items() if k not in ("SQLGENIE_TOKEN", "SQLGENIE_HOST")}
    env.update(SQLGENIE_HOME=str(home), DASHBOARD_PORT=str(dash), PLAYGROUND_PORT=str(play),
               SQLGENIE_ROUTER_PORT=str(router), PATH=f"{BIN}:{env.get('PATH', '')}")
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "honcho"), "start", "-f", str(REPO / "Procfile"), "-d", str(REPO)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        checks = {"dashboard": f"http://127.0.0.1:{dash}/_stcore/health", "playground": f"http://127.0.0.1:{play}/",
                  "router": f"http://127.0.0.1:{router}/v1/models"}
        waiting = dict(checks)
        deadline = time.time() + 600
        while waiting and time.time() < deadline:
            assert proc.poll() is None, f"honcho exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            waiting = {k: u for k, u in waiting.items() if not _up(u)}
            time.sleep(2)
        assert not waiting, f"not up in 600 s: {sorted(waiting)}\n{log.read_text()[-3000:]}"
        models = requests.get(checks["router"], timeout=5).json()
        assert [m["id"] for m in models["data"]][:1] == ["sqlgenie"]
        ours = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in ours if p.is_running())
        assert "vllm.entrypoints.openai.api_server" in names and "streamlit" in names and "app.playground" in names

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        gone_by = time.time() + 15
        left = ours
        while left and time.time() < gone_by:
            left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.5)
        assert not left, "left running after Ctrl-C: " + "; ".join(" ".join(p.cmdline())[:100] for p in left)
        assert D.load("sqlgenie")["phase"] == "stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for name in D.names():
            stop_all(D.records(D.load(name)), 5)
