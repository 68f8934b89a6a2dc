"""`sqlgenie console --only PART` (the Procfile's lines): the part's own command, the same one the console
starts; a taken port or a public bind without a token is refused before anything starts."""
from __future__ import annotations

import socket

import pytest

from app import cli, console


def test_each_part_runs_the_command_the_console_starts():
    ports = {"dashboard": 8601, "playground": 7861, "router": 8001}
    cmds = console.part_commands("embedded:smollm2-135m-instruct", 2, "127.0.0.1", ports)
    assert sorted(cmds) == ["dashboard", "playground", "serve"]
    assert "--server.port=8601" in cmds["dashboard"] and "--server.address=127.0.0.1" in cmds["dashboard"]
    assert cmds["serve"][2:4] == ["serving", "run"] and "router_port=8001" in cmds["serve"]
    assert "--replicas" in cmds["serve"] and cmds["serve"][cmds["serve"].index("--replicas") + 1] == "2"
    assert "serve" not in console.part_commands("m", 1, "127.0.0.1", ports, serve=False)


def test_a_taken_port_is_named_before_anything_starts(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("PLAYGROUND_PORT", str(port))
        monkeypatch.delenv("SQLGENIE_HOST", raising=False)
        with pytest.raises(console.ConsoleError, match=f"playground port {port} is held"):
            console.run_one("playground", "embedded:smollm2-135m-instruct", None)


def test_a_public_bind_without_a_token_is_refused(monkeypatch):
    monkeypatch.setenv("SQLGENIE_HOST", "0.0.0.0")
    monkeypatch.delenv("SQLGENIE_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="token"):
        console.run_one("dashboard", "embedded:smollm2-135m-instruct", None)


def test_only_takes_the_three_parts():
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["console", "--only", "router"])
    assert cli.parser().parse_args(["console", "--only", "serve"]).only == "serve"


def test_ctrl_c_names_what_it_leaves_running_and_how_to_stop_it(home):
    """Jobs started from the dashboard (a training, a Try-it deployment) outlive the console on purpose; its last
    lines name each with the command that stops it; finished jobs are not named."""
    from app.console import left_running
    from pipeline.jobs import JobStore

    assert left_running() == []
    store = JobStore()
    for kind, name, config, status in (("train", "smollm2-cpu", "name: x\n", "running"),
                                       ("serve", "try-1", "name: try-1\nmodel: embedded:smollm2-135m-instruct\n",
                                        "running"),
                                       ("evaluate", "old", "name: y\n", "succeeded")):
        store._exec("INSERT INTO jobs (kind, name, config, status, created, log_path) VALUES (?,?,?,?,?,?)",
                    (kind, name, config, status, 1.0, str(home / "none.log")))
    lines = left_running()
    assert lines[0] == "still running, not started by this console (2):"
    assert sorted(lines[1:]) == ["  job #1: train 'smollm2-cpu' (running); stop it: sqlgenie jobs cancel 1",
                                 "  job #2: deployment try-1 (running); stop it: sqlgenie jobs cancel 2"]
