"""The serving plan and launcher's checks: per-architecture vLLM flags, CPU pinning, LoRA models and their
contracts, bad input refused before anything starts, start failures diagnosed."""
import json
import os
import socket

import pytest

from core.errors import ConfigError
from core.procs import spawn
from serving import deployments as D
from serving import launch
from serving import plan as P
from serving.config import DeploymentError, ServeConfig, load_serve_config
from serving.launch import diagnose
from serving.plan import device_defaults, plan, served_models


def test_launcher_defaults_are_computed_per_architecture(monkeypatch):
    
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
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8"   # a quantized checkpoint still gets the FP8 KV cache
    args, why = device_defaults(h200, dict(facts, weights_gib=0.25), cfg)   # SmolLM2-135M: overhead-bound
    assert "--quantization" not in args and "--kv-cache-dtype" not in args and any("small model" in w for w in why)
    args, _ = device_defaults(h200, dict(facts, weights_gib=0.25), ServeConfig(quantization="fp8"))
    assert args[args.index("--quantization") + 1] == "fp8"     # asked for explicitly: honoured
    args, _ = device_defaults(None, facts, cfg)
    assert args[args.index("--max-model-len") + 1] == "2048"


def test_full_cuda_graphs_only_when_asked_and_never_over_the_users_own():
    facts = {"quantized": False, "quant_method": None, "weights_gib": 0.25, "max_len": 8192,
             "kv_bytes_per_token": 2 * 30 * 3 * 64 * 2, "draft": None}
    h200 = {"name": "H200", "capability": "9.0", "total_gib": 139.8}

    def mode(cfg):
        args, why = device_defaults(h200, facts, cfg)
        cc = [json.loads(args[i + 1]) for i, a in enumerate(args) if a == "--compilation-config"]
        return (cc[0]["cudagraph_mode"] if cc else None), why

    assert mode(ServeConfig())[0] is None          # first token sooner, greedy answers change: off by default
    got, why = mode(load_serve_config(tree={"model": "x"}, overrides=["gpu_full_graphs=on"]))   # YAML's on: true
    assert got == "FULL" and any("first token" in w and "greedy answers" in w for w in why)   # the cost is said
    for own in (["--compilation-config", '{"mode": 0}'], ["-cc.cudagraph_mode=PIECEWISE"], ["-O0"]):
        got, why = mode(ServeConfig(gpu_full_graphs=True, extra_args=own))
        assert got is None and any("extra_args set the compilation" in w for w in why)
    with pytest.raises(ConfigError, match="gpu_full_graphs: expected true/false, got 'sometimes'"):
        load_serve_config(tree={"model": "x", "gpu_full_graphs": "sometimes"})


def test_launcher_refuses_bad_input_before_starting_anything(tmp_path, monkeypatch, home):
    with pytest.raises(DeploymentError, match="has no config.json"):
        plan(ServeConfig(model=str(tmp_path)))
    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, '
                                          '"intermediate_size": 128, "vocab_size": 400}')
    monkeypatch.setattr(P, "gpu_inventory", lambda: [])
    monkeypatch.setattr(P.os, "cpu_count", lambda: 2)
    with pytest.raises(DeploymentError, match="replicas=3 but this machine has 2 CPU cores"):
        plan(ServeConfig(model=str(tmp_path), replicas=3))
    with pytest.raises(ConfigError) as e:
        load_serve_config(None, ["gpu_api_servers=-1", "cpu_stream_interval=0", "lora_adapters=[ft]", "replicas=0"])
    assert {"gpu_api_servers: -1 must be >= 0", "cpu_stream_interval: 0 must be >= 1"} <= set(e.value.problems)
    monkeypatch.delenv("SQLGENIE_TOKEN", raising=False)
    with pytest.raises(DeploymentError, match="needs SQLGENIE_TOKEN"):
        launch.up(ServeConfig(model=str(tmp_path), host="0.0.0.0"))
    monkeypatch.setattr(launch, "check_engine", lambda: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(DeploymentError, match=rf"replica 0 port {port} is held by another program \(pid {os.getpid()}\)"):
            launch.up(ServeConfig(model=str(tmp_path), base_port=port, router_port=0, metrics_port=0))
        assert not D.exists("sqlgenie")  # nothing was started or recorded
    with pytest.raises(DeploymentError, match=r"router_port and replica 0 port are both 8123: give each its own"):
        launch.up(ServeConfig(model=str(tmp_path), base_port=8123, router_port=8123, metrics_port=0))
    assert not D.exists("sqlgenie")


def test_free_ports_are_distinct_and_below_the_ephemeral_range(tmp_path):
    """Ports the OS hands out on its own (any bind to port 0) are never picked where the range leaves room."""
    rng = tmp_path / "range"
    rng.write_text("32768\t60999\n")
    avoid = {20000 + i for i in range(0, 12000, 2)}
    got = P.free_ports(40, avoid=avoid, ephemeral_range=str(rng))
    assert len(set(got)) == 40 and all(20000 <= p < 32768 and p not in avoid for p in got)
    assert all(P.port_free(p) for p in got)
    rng.write_text("1024 65535")   # no room below the range: the OS's picks, still distinct and not avoided
    got = P.free_ports(5, avoid=set(got), ephemeral_range=str(rng))
    assert len(set(got)) == 5
    assert P.free_ports(3, ephemeral_range=str(tmp_path / "missing"))   # no such file: the OS's picks


def test_cpu_replicas_one_per_core_are_pinned_whole(tmp_path, monkeypatch):
    """As many CPU replicas as cores: each replica (API server + engine) is confined to its core and runs its
    worker in the engine process; fewer replicas than cores: only the compute is pinned."""
    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, '
                                          '"intermediate_size": 128, "vocab_size": 400}')
    monkeypatch.setattr(P, "gpu_inventory", lambda: [])
    monkeypatch.setattr(P.os, "cpu_count", lambda: 2)
    two = plan(ServeConfig(model=str(tmp_path), replicas=2))
    assert [r.cpus for r in two] == [[0], [1]]
    assert [r.env["VLLM_CPU_OMP_THREADS_BIND"] for r in two] == ["0", "1"]
    for r in two:
        assert r.args[r.args.index("--distributed-executor-backend") + 1] == "uni"
        assert r.env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
        assert r.args[r.args.index("--stream-interval") + 1] == "8"
    one = plan(ServeConfig(model=str(tmp_path), replicas=1))
    assert one[0].cpus == [] and "API server unpinned" in " ".join(one[0].reasons)
    # the affinity reaches the child and what it starts
    p, _ = spawn(["python3", "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], {}, tmp_path / "a.log", [0])
    p.wait(timeout=30)
    assert (tmp_path / "a.log").read_text().strip() == "[0]"


@pytest.mark.parametrize("log,cause", [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate", "out of memory"),
    ("OSError: [Errno 98] Address already in use", "port is taken"),
    ("OSError: /x does not appear to have a file named config.json", "bad model path"),
    ("ValueError: User-specified max_model_len (9000) is greater than the derived max_model_len", "max_model_len"),
])
def test_replica_start_failures_are_diagnosed(log, cause):
        assert cause in diagnose(log)


def test_adapters_are_served_by_name_with_their_own_contract(tmp_path, monkeypatch, tiny_llama_dir):
    """A LoRA adapter served beside its base: --enable-lora with the adapter's rank; each served name gets the
    tokenizer and the prompt contract from its own model card (the base, without a card, the defaults)."""
    import json

    from core.modelinfo import write_card
    from sql.prompt import PROMPT_DEFAULT

    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"r": 32}))
    write_card(ad, {"contract": {"system_prompt": "Schema:\n{schema}", "include_sample_rows": False}})
    monkeypatch.setattr(P, "gpu_inventory", lambda: [])
    cfg = ServeConfig(model=str(tiny_llama_dir), name="base", lora_adapters=[f"ft={ad}"])
    (r,) = plan(cfg)
    assert "--enable-lora" in r.args and r.args[r.args.index("--max-lora-rank") + 1] == "32"
    assert r.args[r.args.index("--lora-modules") + 1] == f"ft={ad.resolve()}"
    models = served_models(cfg)
    assert models["base"]["contract"]["system_prompt"] == PROMPT_DEFAULT and models["base"]["kind"] == "base"
    assert models["ft"]["contract"]["include_sample_rows"] is False and models["ft"]["base"] == "base"
    assert models["ft"]["tokenizer"] == str(tiny_llama_dir)      # no tokenizer saved beside it: the base's
    with pytest.raises(ConfigError, match="is the base model's name"):
        load_serve_config(None, ["name=ft", f"lora_adapters=[ft={ad}]"])
    with pytest.raises(ConfigError, match="has no adapter_config.json"):
        load_serve_config(None, [f"lora_adapters=[x={tmp_path}]"])


def test_cpu_dtype_and_ngram_speculation_follow_the_cpu(monkeypatch):
    """A CPU without bf16 instructions serves a small model in float32; n-gram speculation is on by default on
    CPU (it won there) and off on GPUs (it lost), and an explicit setting is honoured."""
    facts = {"quantized": False, "quant_method": None, "weights_gib": 0.25, "max_len": 8192,
             "kv_bytes_per_token": 2 * 30 * 3 * 64}
    monkeypatch.setattr(P, "bf16_native", lambda: False)
    args, why = device_defaults(None, facts, ServeConfig())
    assert args[args.index("--dtype") + 1] == "float32" and any("without bf16 instructions" in w for w in why)
    spec = json.loads(args[args.index("--speculative-config") + 1])
    assert spec == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_min": 2, "prompt_lookup_max": 4}
    big, _ = device_defaults(None, dict(facts, weights_gib=15.0), ServeConfig())
    assert big[big.index("--dtype") + 1] == "bfloat16"             # an 8B model would not fit twice as big
    monkeypatch.setattr(P, "bf16_native", lambda: True)
    args, _ = device_defaults(None, facts, ServeConfig(ngram_speculation=0))
    assert args[args.index("--dtype") + 1] == "bfloat16" and "--speculative-config" not in args
    h200 = {"name": "H200", "capability": "9.0", "total_gib": 139.8}
    args, why = device_defaults(h200, facts, ServeConfig())
    assert "--speculative-config" not in args and any("no n-gram speculation on a GPU" in w for w in why)
    args, _ = device_defaults(h200, facts, ServeConfig(ngram_speculation=8))
    assert json.loads(args[args.index("--speculative-config") + 1])["num_speculative_tokens"] == 8


def test_bf16_native_reads_the_cpu_flags(tmp_path):
    from core.cpu import bf16_native

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse2 avx avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert not bf16_native.__wrapped__(str(avx2)) and bf16_native.__wrapped__(str(amx))


def test_an_fp8_export_is_refused_on_a_cpu_whose_fp8_products_are_far_too_slow(monkeypatch):
    """Whether a CPU can serve an FP8 export is measured (core.cpu.fp8_gemm_ms, in the serving interpreter); here the
    measurement is replaced by the two cases seen: 847 ms on an AVX512/AMX CPU with torch 2.13, a few ms elsewhere."""
    facts = {"quantized": True, "quant_method": "float-quantized", "weights_gib": 0.2, "max_len": 8192,
             "kv_bytes_per_token": 2 * 30 * 3 * 64}
    monkeypatch.setattr(P, "fp8_gemm_ms", lambda py: 847.0)
    with pytest.raises(DeploymentError, match=r"FP8 export.* 847 ms.*use the merged export"):
        device_defaults(None, facts, ServeConfig())
    monkeypatch.setattr(P, "fp8_gemm_ms", lambda py: 3.0)
    _, why = device_defaults(None, facts, ServeConfig())
    assert any("FP8 export on a CPU" in w and "3.0 ms" in w for w in why)

    def probed(py):
        raise AssertionError("measured FP8 where no FP8 checkpoint is served on a CPU")
    monkeypatch.setattr(P, "fp8_gemm_ms", probed)
    device_defaults(None, dict(facts, quantized=False, quant_method=None), ServeConfig())
    device_defaults({"name": "H200", "capability": "9.0", "total_gib": 139.8}, facts, ServeConfig())


def test_the_fp8_probe_measures_in_the_interpreter_it_is_given(tmp_path):
    import sys

    from core.cpu import fp8_gemm_ms

    ms = fp8_gemm_ms.__wrapped__(sys.executable)
    assert ms is not None and ms > 0
    assert fp8_gemm_ms.__wrapped__(str(tmp_path / "no-python")) is None


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "x y", "../../etc"])
def test_a_deployment_name_that_is_not_a_plain_folder_name_is_refused(home, name):
    """'..' put the state in <home> itself, where the reaper never looks: its processes outlived every stop."""
    with pytest.raises(ConfigError) as e:
        load_serve_config(None, [f"name={name}"])
    assert any(p.startswith(f"name: {name!r} must be letters, digits") for p in e.value.problems)
    with pytest.raises(DeploymentError, match="is not a deployment name"):
        D.state_dir(name)


def test_the_router_is_started_without_any_secret_and_with_a_request_timeout(monkeypatch):
    """The token travels in the environment: vllm-router's --api-key (what it sends to workers) put it in ps."""
    monkeypatch.setenv("SQLGENIE_TOKEN", "s3cret")
    cmd = launch.router_command(ServeConfig(), ["http://127.0.0.1:8100"], "127.0.0.1", 8000, 29000, timeout_s=17)
    assert "s3cret" not in " ".join(cmd) and "--api-key" not in cmd
    assert cmd[cmd.index("--request-timeout-secs") + 1] == "17"
    # a CPU replica's first answer with an adapter took over a minute on a loaded 2-core machine: 60 s cut it
    assert launch.request_timeout(ServeConfig(), ["cpu:0"]) == 600
    assert launch.request_timeout(ServeConfig(), ["cuda:0"]) == 120
    assert launch.request_timeout(ServeConfig(request_timeout_s=7), ["cpu:0"]) == 7
    assert launch._with_token({"A": "1"}) == {"A": "1", "VLLM_API_KEY": "s3cret"}


def test_a_serve_config_saved_as_utf16_is_read_and_a_binary_one_is_one_line(tmp_path):
    good = tmp_path / "serve.yaml"
    good.write_bytes("replicas: 2\nname: utf16\n".encode("utf-16"))      # with a byte-order mark
    cfg = load_serve_config(good)
    assert (cfg.replicas, cfg.name) == (2, "utf16")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\x00\x01\x02\xff" * 10)
    with pytest.raises(ConfigError) as e:
        load_serve_config(bad)
    assert len(e.value.problems) == 1 and "bin.yaml" in e.value.problems[0]


@pytest.mark.parametrize("field,typo,allowed", [("policy", "roundrobin", "round_robin"), ("dtype", "bf16", "bfloat16"),
                                                ("quantization", "FP8", "fp8"), ("kv_cache_dtype", "fp16", "fp8_e5m2")])
def test_a_typo_in_a_choice_field_is_refused_at_load_naming_the_choices(field, typo, allowed):
    with pytest.raises(ConfigError, match=f"{field}: '{typo}' is not one of .*{allowed}"):
        load_serve_config(None, [f"{field}={typo}"])
    assert getattr(load_serve_config(None, [f"{field}={allowed}"]), field) == allowed


def test_every_replica_loads_our_vllm_addons_and_is_named_in_its_answers(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, '
                                          '"intermediate_size": 128, "vocab_size": 400}')
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    for gpus in ([], [{"index": 0, "name": "H100", "capability": "9.0", "total_gib": 80.0},
                      {"index": 1, "name": "H100", "capability": "9.0", "total_gib": 80.0}]):
        monkeypatch.setattr(P, "gpu_inventory", lambda g=gpus: g)
        monkeypatch.setattr(P.os, "cpu_count", lambda: 2)
        reps = plan(ServeConfig(model=str(tmp_path), replicas=2))
        assert [r.env["SQLGENIE_REPLICA"] for r in reps] == [f"{r.index}@{r.device}" for r in reps]
        assert len({r.env["SQLGENIE_REPLICA"] for r in reps}) == 2
        for r in reps:
            assert r.env["PYTHONPATH"].split(os.pathsep) == [str(P.VLLM_PLUGINS), "/elsewhere"]
            assert r.args[r.args.index("--middleware") + 1] == "sqlgenie_replica_header.ReplicaHeader"
    assert (P.VLLM_PLUGINS / "sqlgenie_replica_header.py").is_file()
    assert (P.VLLM_PLUGINS / "sqlgenie_vllm_fixes-0.1.dist-info" / "entry_points.txt").is_file()


def test_a_gguf_export_is_refused_as_a_served_model_with_where_to_use_it_and_what_to_serve(tmp_path):
    """The GGUF export cannot be served by the vLLM builds we carry (no GGUF loader in vLLM CPU 0.32): the serve
    config says so when it loads, names llama.cpp / Ollama, and points at the merged export beside it."""
    from core.errors import ConfigError
    from serving.config import load_serve_config

    export = tmp_path / "run" / "export"
    (export / "gguf-q8_0").mkdir(parents=True)
    (export / "gguf-q8_0" / "model-q8_0.gguf").write_bytes(b"GGUF")
    (export / "merged").mkdir()
    (export / "merged" / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as e:
        load_serve_config(None, [f"model={export / 'gguf-q8_0' / 'model-q8_0.gguf'}"])
    assert "is a GGUF file, for llama.cpp or Ollama" in str(e.value) and str(export / "merged") in str(e.value)
