"""Bad input at the command line and at ask(): one clear line (exit code 2), never a traceback, and nothing is
sent to a server before the input is known to be good."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from serving.text_to_sql import AskError, TextToSql

ROOT = Path(__file__).resolve().parents[2]


def _cli(home, *args):
    p = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SQLGENIE_HOME=str(home)))
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("args,says", [
    (["jobs", "submit", "train", "/no/such.yaml"], "/no/such.yaml: no such file"),
    (["jobs", "cancel", "abc"], "'abc' is not a job id"),
    (["jobs", "cancel", "999"], "no job 999"),
    (["ask", "--schema", "missing.sql", "how many?"], "--schema missing.sql: no such file"),
    (["ask", "--target", "klingon", "how many?"], "'klingon' is not a dialect sqlglot knows"),
    (["ask", "how many?"], "no deployment named 'sqlgenie'"),
    (["train", "-c", "configs/smollm2-cpu.yaml", "train.lora.dropout=1.5", "train.threads=-2"], "2 problem(s)"),
    (["serve", "status", "--name", "nope"], "no deployment named 'nope'"),
])
def test_bad_input_is_one_clear_line(home, args, says):
    code, out = _cli(home, *args)
    assert code == 2 and says in out, out
    assert "Traceback" not in out


@pytest.fixture
def t2s(tiny_tokenizer_dir):
    """A client pointed at a port where nothing listens: every check below must fire before any request."""
    return TextToSql("http://127.0.0.1:9", tiny_tokenizer_dir, model="m", max_model_len=256)


@pytest.mark.parametrize("schema,question,says", [
    ("CREATE TABLE t (name TEXT DEFAULT 'unterminated);", "how many?", "the schema does not parse"),
    ("CREATE TABLE t (a INT);", "   ", "the question is empty"),
    ("", "how many?", "the schema is empty"),
    ("INSERT INTO t VALUES (1);", "how many?", "no CREATE TABLE statement"),
    ("CREATE TABLE t (a INT);", "how many rows " * 200, "the question is too long"),
    ("CREATE TABLE t (" + ", ".join(f"c{i} INT" for i in range(300)) + ");",   # wide tables are fitted (they
     "how many?", "not even table 't' alone fits"),                             # are left out), one table is not
])
def test_ask_names_the_input_that_is_wrong(t2s, schema, question, says):
    with pytest.raises(AskError, match=says):
        t2s.ask(schema, question)


def test_votes_are_seeded_only_where_the_engine_takes_a_seed(home, tiny_tokenizer_dir):
    """vLLM CPU 0.32 kills its engine on a seeded request whose prefill is chunked: a client of a CPU deployment
    samples its vote candidates unseeded; one of a GPU deployment seeds them (reproducible votes)."""
    from serving import deployments as D

    for device, seeded in (("cpu:0", False), ("cuda:0", True)):
        D.state_dir("d").mkdir(parents=True, exist_ok=True)
        D.save({"name": "d", "replicas": [{"device": device, "args": []}], "router": {"url": "http://127.0.0.1:9"},
                "models": {"d": {"tokenizer": str(tiny_tokenizer_dir), "contract": {}}}, "config": {}})
        assert TextToSql.for_deployment("d").seeded is seeded


RACE = ("import sys, threading\nfrom serving.text_to_sql import tokenizer_for\n"
        "barrier, errors, got = threading.Barrier(8), [], []\n"
        "def go():\n    barrier.wait()\n    try:\n        got.append(id(tokenizer_for(sys.argv[1])))\n"
        "    except Exception as e:\n        errors.append(repr(e))\n"
        "ts = [threading.Thread(target=go) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n"
        "print(len(errors), len(set(got)), errors[:1])\n")


def test_tabs_asking_at_the_same_moment_all_get_the_one_tokenizer(tiny_tokenizer_dir):
    # a fresh interpreter, so transformers is imported by the racing threads themselves (two playground tabs
    # asking at once got "cannot import name 'AutoTokenizer'": its lazy module is not thread-safe)
    root = Path(__file__).resolve().parents[2]
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", RACE, str(tiny_tokenizer_dir)], cwd=root, capture_output=True,
                             text=True, timeout=120).stdout.split(maxsplit=2)
        assert out[:2] == ["0", "1"], out                     # no error, one tokenizer shared by all


def test_output_into_a_closed_pipe_ends_quietly():
    """`sqlgenie jobs list | head`: the reader stops early; no BrokenPipe traceback, the shell's SIGPIPE code."""
    script = ("import sys; from core.errors import run_command; "
              "sys.exit(run_command(lambda: [print('job', i) for i in range(200000)]))")
    p = subprocess.run(f"{sys.executable} -c \"{script}\" | head -2; echo rc=${{PIPESTATUS[0]}}", shell=True,
                       executable="/bin/bash", cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.stdout.splitlines() == ["job 0", "job 1", "rc=141"], p.stdout
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


class _Prose(BaseHTTPRequestHandler):
    """A stand-in for a model that answers in prose (the base SmolLM2 does for 192 of 216 OOD questions,
    docs/quality-errors.md); a fake server only so that this unit test needs no engine."""

    def do_GET(self):
        self._send({"data": [{"id": "m"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send({"choices": [{"index": 0, "text": "I am sorry, I cannot help with that."}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 9}})

    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_ask_exits_non_zero_when_the_model_wrote_no_sql(home, tiny_tokenizer_dir, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prose)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "s.sql").write_text("CREATE TABLE t (a INT);")
    try:
        for extra in ([], ["--json"]):
            code, out = _cli(home, "ask", "--endpoint", f"http://127.0.0.1:{server.server_port}", "--tokenizer",
                             str(tiny_tokenizer_dir), "--schema", str(tmp_path / "s.sql"), "how many?", *extra)
            assert code == 3, out
            assert ("no SQL that parses" in out) if not extra else ('"parses": false' in out), out
            assert "Traceback" not in out
    finally:
        server.shutdown()


def test_bench_lists_the_lab_and_runs_a_bench_from_anywhere(home, tmp_path):
    """`sqlgenie bench` lists every bench/*.py with its first docstring line; `sqlgenie bench NAME ARGS` runs it as
    `python -m bench.NAME` from the repository root whatever the caller's folder; an unknown name is one line."""
    code, out = _cli(home, "bench")
    names = {p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__"}
    listed = {line.split()[0] for line in out.splitlines() if line and not line.startswith("sqlgenie")}
    assert code == 0 and names <= listed and "train_gpu" in names, out
    code, out = _cli(home, "bench", "nope")
    assert code == 2 and "no bench named 'nope'" in out and "train_gpu" in out and "Traceback" not in out
    rows = ROOT / "docs" / "ood" / "rows" / "cpu-full-finetune-repair.jsonl.gz"
    p = subprocess.run([sys.executable, "-m", "app.cli", "bench", "error_taxonomy", f"ft={rows}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, SQLGENIE_HOME=str(home)))
    assert p.returncode == 0 and "| **right** |" in p.stdout and "of 216" in p.stdout, p.stdout + p.stderr
