"""SQL validation against a schema, formatting, transpiling; the launcher's computed defaults."""
from __future__ import annotations

import pytest

from serving.sql.validate import check, schema_columns

SCHEMA = """CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, signup_date DATE);
CREATE TABLE orders (id INTEGER, user_id INTEGER, amount REAL);"""


def test_schema_columns():
    tables, problems = schema_columns(SCHEMA)
    assert problems == []
    assert tables == {"users": {"id", "name", "signup_date"}, "orders": {"id", "user_id", "amount"}}


def test_valid_query_formats_and_transpiles():
    r = check("select u.name, sum(o.amount) as total from users u join orders o on o.user_id = u.id "
              "group by u.name order by total desc limit 3", SCHEMA, "sqlite", "tsql")
    assert r.ok, r.errors
    assert r.formatted.startswith("SELECT\n")
    assert "TOP 3" in r.transpiled and "LIMIT" not in r.transpiled
    assert r.tables == ["orders", "users"]


def test_unknown_column_and_table_named_with_suggestion():
    r = check("SELECT nme FROM users", SCHEMA)
    assert not r.ok and r.errors == ["unknown column nme (did you mean name?)"]
    r = check("SELECT u.amount FROM users u", SCHEMA)
    assert "unknown column u.amount: table users has id, name, signup_date" in r.errors[0]
    r = check("SELECT * FROM user", SCHEMA)
    assert r.errors == ["unknown table user (did you mean users?)"]


def test_ctes_aliases_and_subqueries_are_understood():
    sql = ("WITH big AS (SELECT user_id, SUM(amount) AS total FROM orders GROUP BY user_id) "
           "SELECT name, total FROM users JOIN big ON big.user_id = users.id WHERE total > 10 ORDER BY total")
    assert check(sql, SCHEMA).ok
    assert check("SELECT t.n FROM (SELECT COUNT(*) AS n FROM orders) t", SCHEMA).ok


def test_parse_error_has_line_and_column():
    r = check("SELECT name\nFROM users WHERE (id = 1", SCHEMA)
    assert not r.ok and r.errors[0].startswith("does not parse: line 2, column")


def test_empty_sql():
    assert check("", SCHEMA).errors == ["no SQL in the model's answer"]


@pytest.mark.parametrize("target,needle", [("postgres", "CAST"), ("mysql", "`"), ("bigquery", "`")])
def test_transpile_targets(target, needle):
    r = check('SELECT CAST(amount AS INTEGER), "name" FROM orders JOIN users ON users.id = orders.user_id', SCHEMA,
              "sqlite", target)
    assert r.ok and needle in r.transpiled


def test_launcher_defaults_are_computed_per_architecture(monkeypatch):
    from serving.launch import ServeConfig, device_defaults

    facts = {"quantized": False, "quant_method": None, "weights_gib": 15.0, "max_len": 131072,
             "kv_bytes_per_token": 2 * 32 * 8 * 128}
    cfg = ServeConfig()
    h200 = {"name": "H200", "capability": "9.0", "total_gib": 139.8}
    args, why = device_defaults(h200, facts, cfg)
    assert args[args.index("--quantization") + 1] == "fp8" and args[args.index("--kv-cache-dtype") + 1] == "fp8"
    assert int(args[args.index("--max-model-len") + 1]) == 131072  # room for the whole context
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert args[args.index("--stream-interval") + 1] == "4"
    assert device_defaults(h200, facts, cfg, 1)[0][args.index("--api-server-count") + 1] == "4"   # 16 cores, 1 GPU
    n8 = device_defaults(h200, facts, cfg, 8)[0]
    assert n8[n8.index("--api-server-count") + 1] == "1"                                           # 16 cores, 8 GPUs
    l4 = {"name": "RTX 4070", "capability": "8.9", "total_gib": 12.0}
    args, why = device_defaults(l4, facts, cfg)
    assert 256 <= int(args[args.index("--max-model-len") + 1]) < 131072  # capped by memory left after weights
    assert any("capped by" in w for w in why)
    t4 = {"name": "T4", "capability": "7.5", "total_gib": 15.0}
    args, _ = device_defaults(t4, dict(facts, weights_gib=4.0), cfg)
    assert args[args.index("--dtype") + 1] == "float16" and "--quantization" not in args and "--kv-cache-dtype" not in args
    args, why = device_defaults(h200, dict(facts, quantized=True, quant_method="nvfp4-pack-quantized"), cfg)
    assert "--quantization" not in args and any("already quantized" in w for w in why)
    args, _ = device_defaults(None, facts, cfg)
    assert args[args.index("--max-model-len") + 1] == "2048"


def test_prometheus_parsing_and_rates():
    from serving.stats import parse_metrics, rates

    text = ('# HELP x\nvllm:generation_tokens_total{engine="0",model_name="m"} 120.0\n'
            'vllm_router_processed_requests_total{worker="http://a:1"} 3\n')
    assert parse_metrics(text) == [("vllm:generation_tokens_total", {"engine": "0", "model_name": "m"}, 120.0),
                                   ("vllm_router_processed_requests_total", {"worker": "http://a:1"}, 3.0)]
    snap = lambda t, g, n: {"t": t, "router": {}, "replicas": {"0": {
        "up": True, "generation_tokens": g, "prompt_tokens": 0, "requests": n, "running": 1, "waiting": 0,
        "e2e_sum": n * 0.5, "e2e_count": n, "ttft_sum": 0, "ttft_count": 0}}}
    r = rates(snap(0, 100, 2), snap(2, 300, 6))
    assert r["replicas"]["0"]["tokens_per_s"] == 100 and r["replicas"]["0"]["requests_per_s"] == 2
    assert r["replicas"]["0"]["latency_s"] == 0.5


def test_launcher_refuses_bad_input_before_starting_anything(tmp_path, monkeypatch, home):
    import socket

    from serving import launch

    with pytest.raises(launch.ServeError, match="has no config.json"):
        launch.plan(launch.ServeConfig(model=str(tmp_path)))
    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, '
                                          '"intermediate_size": 128, "vocab_size": 400}')
    monkeypatch.setattr(launch, "gpu_inventory", lambda: [])
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 2)
    with pytest.raises(launch.ServeError, match="replicas=3 but this machine has 2 CPU cores"):
        launch.plan(launch.ServeConfig(model=str(tmp_path), replicas=3))
    with pytest.raises(launch.ServeError, match="gpu_api_servers: -1 must be >= 0"):
        launch.plan(launch.ServeConfig(model=str(tmp_path), gpu_api_servers=-1))
    with pytest.raises(launch.ServeError, match="cpu_stream_interval: 0 must be >= 1"):
        launch.plan(launch.ServeConfig(model=str(tmp_path), cpu_stream_interval=0))
    monkeypatch.delenv("SQLGENIE_API_KEY", raising=False)
    with pytest.raises(launch.ServeError, match="needs SQLGENIE_API_KEY"):
        launch.up(launch.ServeConfig(model=str(tmp_path), host="0.0.0.0"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = launch.plan(launch.ServeConfig(model=str(tmp_path), base_port=port))[0]
        with pytest.raises(launch.ServeError, match=f"port {port} is taken"):
            launch.start_replica(r, launch.ServeConfig(), tmp_path / "logs")
        assert r.pid is None  # nothing was started


def test_cpu_replicas_one_per_core_are_pinned_whole(tmp_path, monkeypatch):
    """As many CPU replicas as cores: each replica (API server + engine) is confined to its core and runs its
    worker in the engine process; fewer replicas than cores: only the compute is pinned."""
    from serving import launch

    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, '
                                          '"intermediate_size": 128, "vocab_size": 400}')
    monkeypatch.setattr(launch, "gpu_inventory", lambda: [])
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 2)
    two = launch.plan(launch.ServeConfig(model=str(tmp_path), replicas=2))
    assert [r.cpus for r in two] == [[0], [1]]
    assert [r.env["VLLM_CPU_OMP_THREADS_BIND"] for r in two] == ["0", "1"]
    for r in two:
        assert r.args[r.args.index("--distributed-executor-backend") + 1] == "uni"
        assert r.env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
        assert r.args[r.args.index("--stream-interval") + 1] == "8"
    one = launch.plan(launch.ServeConfig(model=str(tmp_path), replicas=1))
    assert one[0].cpus == [] and "API server unpinned" in " ".join(one[0].reasons)
    # the affinity reaches the child and what it starts
    p = launch.spawn(["python3", "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], {}, tmp_path / "a.log", [0])
    p.wait(timeout=30)
    assert (tmp_path / "a.log").read_text().strip() == "[0]"


@pytest.mark.parametrize("log,cause", [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate", "out of memory"),
    ("OSError: [Errno 98] Address already in use", "port is taken"),
    ("OSError: /x does not appear to have a file named config.json", "bad model path"),
    ("ValueError: User-specified max_model_len (9000) is greater than the derived max_model_len", "max_model_len"),
])
def test_replica_start_failures_are_diagnosed(log, cause):
    from serving.launch import diagnose

    assert cause in diagnose(log)
