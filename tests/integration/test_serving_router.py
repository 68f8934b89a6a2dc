"""Two real vLLM CPU replicas of SmolLM2 behind real vllm-router: balancing, the client, failover, bad input."""
from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    from serving import launch
    from serving.config import ServeConfig
    from tests.conftest import home_env, share_models

    if not launch.SERVE_VENV.joinpath("python").exists():
        pytest.skip("serving environment missing: make setup-serve")
    with home_env(share_models(tmp_path_factory.mktemp("serve-home"))):
        cfg = ServeConfig(model="embedded:smollm2-135m-instruct", name="itest", replicas=2, base_port=18100,
                          router_port=18000, metrics_port=18090, max_model_len=1024, warmup_requests=1)
        state = launch.up(cfg, progress=lambda *_: None, supervised=True)   # this process is its supervisor
        yield state
        launch.down("itest")


def _routed(metrics_url: str) -> dict[str, float]:
    from serving.stats import router_snapshot

    return {w: v.get("routed", 0.0) for w, v in router_snapshot(metrics_url)["workers"].items()}


SCHEMA = "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary REAL);"
ROWS = "INSERT INTO employees VALUES (1,'Ann','Sales',5000),(2,'Bob','IT',7000),(3,'Cid','IT',6500);"


def test_requests_alternate_and_client_returns_validated_sql(deployment):
    from serving.text_to_sql import TextToSql

    router = deployment["router"]
    before = _routed(router["metrics"])
    t2s = TextToSql.for_deployment("itest")
    answers = [t2s.ask(SCHEMA, "What is the average salary in the IT department?", target="postgres",
                       sample_rows=ROWS, execute=True) for _ in range(4)]
    after = _routed(router["metrics"])
    delta = {w: after.get(w, 0) - before.get(w, 0) for w in after}
    assert sorted(delta.values()) == [2, 2], delta  # round robin: 4 requests, 2 each
    # each answer names the replica that wrote it (x-sqlgenie-replica, passed on by the router): both, twice
    named = sorted(r for a in answers for r in a.replicas)
    assert named == sorted([f"{r['index']}@{r['device']}" for r in deployment["replicas"]] * 2), named
    ans = answers[0]
    assert ans.sql.upper().startswith("SELECT") and ans.check.parses, (ans.raw, ans.check.errors)
    assert ans.server_prompt_ids == ans.prompt_ids          # the server used exactly the ids we rendered
    assert ans.check.formatted.startswith("SELECT\n")  # pretty-printed
    assert ans.columns and ans.rows  # executed on the in-memory copy


def test_sweep_reports_the_decode_rate_after_the_first_token(deployment):
    """bench.load (the load generator) through the router at batch 1: every request finishes, and the per-stream decode rate
    (tokens after the first / time after the first) is above the tok/s that also counts the TTFT."""
    from bench.load import sweep

    (lv,) = sweep(deployment["router"]["url"], concurrency=(1,), requests=2, prompt_tokens=64, max_tokens=16,
                  warmup=0)
    assert lv.requests == 2 and lv.failures == 0 and lv.output_tokens == 32
    assert lv.decode_tok_s_p50 > lv.tokens_per_s > 0
    assert lv.latency_p50_ms > lv.ttft_p50_ms > 0


def test_bad_input_is_refused_clearly_and_leaves_the_service_up(deployment):
    from serving.text_to_sql import AskError, TextToSql

    t2s = TextToSql.for_deployment("itest")
    with pytest.raises(AskError, match="question is empty"):
        t2s.ask(SCHEMA, "   ")
    with pytest.raises(AskError, match="schema does not parse"):
        t2s.ask("CREATE TABLE (id INT", "how many?")
    wide = t2s.ask(SCHEMA + "\n" + "\n".join(f"CREATE TABLE t{i} (a INT, b TEXT, c REAL);" for i in range(150)),
                   "how many?", max_tokens=8)               # too wide: fitted, and the answer says what was left out
    assert wide.schema_left_out and wide.prompt_tokens + 8 <= 1024
    with pytest.raises(AskError, match="prompt is .* tokens, the model's limit is 1024: not even table 'w' alone fits"):
        t2s.ask("CREATE TABLE w (" + ", ".join(f"column_{i} INT" for i in range(400)) + ");", "how many?")
    # an over-long prompt sent anyway is refused by vLLM with a 400, the router stays healthy
    r = requests.post(deployment["router"]["url"] + "/v1/completions", timeout=30,
                      json={"model": "itest", "prompt": "SELECT " * 3000, "max_tokens": 4})
    assert r.status_code == 400
    assert requests.get(deployment["router"]["url"] + "/health", timeout=5).status_code == 200


def test_failover_kill_one_replica_under_load(deployment):
    from bench.load import SteadyLoad
    from core.procs import ProcRecord, stop
    from serving import launch

    router = deployment["router"]
    dead = deployment["replicas"][1]
    dead_url = f"http://127.0.0.1:{dead['port']}"
    with SteadyLoad(router["url"], "itest", concurrency=4, max_tokens=8) as load:
        time.sleep(4)
        ok_before = load.ok
        stop(ProcRecord.from_dict(dead["proc"]), grace_s=0)  # SIGTERM then SIGKILL at once: a crash
        time.sleep(8)  # health checks every 2 s, 2 failures mark it down
        at_kill = _routed(router["metrics"]).get(dead_url, 0)
        time.sleep(6)
        still = _routed(router["metrics"]).get(dead_url, 0)
    assert ok_before > 0 and load.ok > ok_before
    assert still == at_kill, "the router kept sending to the dead replica"
    # requests are small and not streamed: none may fail (the router retries on the other replica)
    assert load.failed == [], load.failed[:3]

    state = launch.restart_replica("itest", 1)
    deployment["replicas"][1] = state["replicas"][1]
    time.sleep(5)  # the router's health check sees it again
    before = _routed(router["metrics"]).get(dead_url, 0)
    for i in range(6):
        requests.post(router["url"] + "/v1/completions", timeout=60,
                      json={"model": "itest", "prompt": f"SELECT {i}", "max_tokens": 2}).raise_for_status()
    assert _routed(router["metrics"]).get(dead_url, 0) > before, "traffic did not return to the restarted replica"


def test_a_restart_the_user_asks_for_is_done_by_the_supervisor(deployment):
    """The Serving page's button only asks (ask_restart): the supervisor's next check stops the replica whole and
    starts it again; the asker starts no process; the restart is not counted against max_restarts."""
    from core.procs import ProcRecord, alive
    from serving import deployments as D
    from serving import launch
    from serving.config import DeploymentError, ServeConfig

    with pytest.raises(DeploymentError, match="no replica 7"):
        launch.ask_restart("itest", 7)
    before = D.load("itest")["replicas"][0]
    old = ProcRecord.from_dict(before["proc"])
    state = launch.ask_restart("itest", 0)
    assert state["replicas"][0]["restart_asked"] and alive(old.pid)     # asked, nothing done by the asker
    sup = launch.Supervisor("itest", ServeConfig(**state["config"]), progress=lambda *_: None)
    sup.check()
    deadline = time.time() + 240
    while time.time() < deadline:
        r = D.load("itest")["replicas"][0]
        if r.get("state") == "ready" and ProcRecord.from_dict(r["proc"]).pid != old.pid:
            break
        time.sleep(2)
    r = D.load("itest")["replicas"][0]
    assert r["state"] == "ready" and not alive(old.pid), r
    assert "restart_asked" not in r and r["restarts"] == before["restarts"]
    said = [e["what"] for e in D.load("itest")["events"]]
    assert "replica 0: restarting as asked" in said and "replica 0 is back (restarted as asked)" in said
    requests.post(r["url"] + "/v1/completions", timeout=60,
                  json={"model": "itest", "prompt": "SELECT 1", "max_tokens": 2}).raise_for_status()


def test_a_replica_that_dies_while_starting_gives_its_log_tail(tmp_path, monkeypatch):
    import json
    import shutil

    from core import assets
    from core.procs import group_alive
    from serving import deployments as D
    from serving import launch
    from serving.config import DeploymentError, ServeConfig
    from serving.plan import port_free
    from tests.conftest import share_models

    monkeypatch.setenv("SQLGENIE_HOME", str(share_models(tmp_path / "home")))
    broken = tmp_path / "broken"
    shutil.copytree(assets.resolve("embedded:smollm2-135m-instruct"), broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["architectures"] = ["NoSuchModelForCausalLM"]
    (broken / "config.json").write_text(json.dumps(cfg))
    sc = ServeConfig(model=str(broken), name="broken", base_port=18200, router_port=18210, metrics_port=18211,
                     start_timeout_s=180)
    with pytest.raises(DeploymentError, match=r"replica 0 \(cpu:0\) exited while starting") as e:
        launch.up(sc, progress=lambda *_: None)
    assert "NoSuchModelForCausalLM" in str(e.value)  # the log tail names the cause
    assert port_free(18200) and port_free(18210)  # nothing left behind
    st = D.load("broken")
    assert st["phase"] == "stopped" and not any(group_alive(r) for r in D.records(st))


class _GarbageReplica:
    """A FAKE replica, on purpose: the fault 'a replica answers garbage' (HTTP 200 with a body that is not a
    completion) cannot be caused in a real vLLM. It passes health checks and lists the model, then answers
    every completion with HTML or with JSON that has no choices, alternately."""

    def __init__(self, port: int, model: str):
        import http.server
        import json
        import threading

        outer = self
        self.completions = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, body: bytes, ctype: str):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                body = {"object": "list", "data": [{"id": model, "object": "model"}]} if "models" in self.path else {}
                self._send(json.dumps(body).encode(), "application/json")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.completions += 1
                if outer.completions % 2:
                    self._send(b"<html>\x00\xff garbage</html>", "text/html")
                else:
                    self._send(json.dumps({"id": "x", "object": "text_completion"}).encode(), "application/json")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"

    def close(self):
        self.server.shutdown()


def test_a_replica_that_answers_garbage_is_named_and_the_others_carry_on(deployment, tmp_path):
    """A real vLLM replica + a garbage-answering one behind a second real vllm-router: the client names the
    bad server when asked directly; through the router every question still gets SQL (the client retries a
    malformed answer and round robin sends the retry to the healthy replica); router and replica stay up."""
    from core import assets
    from core.procs import spawn, stop
    from serving import launch
    from serving.client import CompletionsClient, EndpointError
    from serving.config import ServeConfig
    from serving.text_to_sql import TextToSql

    bad = _GarbageReplica(18120, "itest")
    good = f"http://127.0.0.1:{deployment['replicas'][0]['port']}"
    cfg = ServeConfig(**deployment["config"])
    _, rec = spawn(launch.router_command(cfg, [good, bad.url], "127.0.0.1", 18020, 18092), {}, tmp_path / "router.log")
    try:
        launch.wait_ready(rec, "http://127.0.0.1:18020", str(tmp_path / "router.log"), "vllm-router", 60)
        with pytest.raises(EndpointError, match=r"18120/v1/completions failed: malformed answer \(not JSON\)"):
            CompletionsClient(bad.url, model="itest", retries=0).complete("SELECT", max_tokens=2)
        with pytest.raises(EndpointError, match=r"malformed answer \(no choices\)"):
            CompletionsClient(bad.url, model="itest", retries=0).complete("SELECT", max_tokens=2)
        t2s = TextToSql("http://127.0.0.1:18020", assets.resolve("embedded:smollm2-135m-instruct"), model="itest",
                        max_model_len=1024)
        before = bad.completions
        answers = [t2s.ask(SCHEMA, "How many employees are there?") for _ in range(4)]
        assert bad.completions > before, "the router never sent to the garbage replica"
        assert all(a.sql.upper().startswith("SELECT") for a in answers), [a.raw for a in answers]
        assert requests.get("http://127.0.0.1:18020/health", timeout=5).status_code == 200
        requests.post(good + "/v1/completions", timeout=60,
                      json={"model": "itest", "prompt": "SELECT", "max_tokens": 2}).raise_for_status()
    finally:
        stop(rec, 5)
        bad.close()
