"""Our fix of vLLM CPU 0.32's rejection sampler (serving/vllm_plugins/sqlgenie_vllm_fixes.py), on the real engine.

- vLLM's own CPU expansion of per-request temperatures returns uninitialised memory, and after vLLM's plugin
  loader ran with the replica's PYTHONPATH it returns each request's value per token (the Triton kernel's
  result);
- a real replica started by the launcher with n-gram speculation (the CPU default) loads the plugin in its
  engine, and a schema-constrained vote (n=8 sampled under the grammar) sent while greedy answers run beside
  it is answered (was: HTTP 500 "grammar rejected tokens [0]", then the router's circuit opened).
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.data import ood
from serving import launch
from serving.config import load_serve_config
from serving.plan import SERVE_VENV, VLLM_PLUGINS, free_ports, served_models
from serving.text_to_sql import TextToSql
from sql.prompt import PromptContract
from tests.conftest import share_models

pytestmark = pytest.mark.integration

EXPAND = """
import json, torch
from vllm.platforms import current_platform
current_platform.register_triton_kernel_overrides()
import vllm.v1.sample.rejection_sampler as rs
x = torch.tensor([0.7, 0.25, 1.0]); cu = torch.tensor([2, 5, 6], dtype=torch.int32)
before = [rs.expand_batch_to_tokens(x, cu, 6).tolist() for _ in range(3)]
from vllm.plugins import load_general_plugins
load_general_plugins()
print(json.dumps({"before": before, "after": rs.expand_batch_to_tokens(x, cu, 6).tolist(),
                  "by": rs.expand_batch_to_tokens.__module__}))
"""
WANT = [0.7, 0.7, 0.25, 0.25, 0.25, 1.0]


@pytest.fixture
def serve_python():
    py = SERVE_VENV / "python"
    if not py.exists():
        pytest.skip("serving environment missing: make setup-serve")
    return py


def test_vllms_cpu_expansion_is_garbage_and_the_plugin_loader_swaps_in_ours(serve_python):
    out = subprocess.run([str(serve_python), "-c", EXPAND], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(VLLM_PLUGINS), "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["by"] == "sqlgenie_vllm_fixes"
    assert got["after"] == pytest.approx(WANT)
    assert any(b != pytest.approx(WANT) for b in got["before"]), (
        "vLLM's own CPU expansion is right now: serving/vllm_plugins/sqlgenie_vllm_fixes.py can go")


def test_a_constrained_vote_beside_greedy_answers_is_answered_by_a_speculating_replica(serve_python, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setenv("SQLGENIE_HOME", str(share_models(tmp_path / "home")))
    base, router, metrics = free_ports(3)
    cfg = load_serve_config(None, ["model=embedded:smollm2-135m-instruct", "name=fix", "replicas=1",
                                   f"base_port={base}", f"router_port={router}", f"metrics_port={metrics}",
                                   "max_model_len=2048", "warmup_requests=1"])
    state = launch.up(cfg, progress=lambda s: None)
    try:
        rep = state["replicas"][0]
        assert "--speculative-config" in rep["args"], "the CPU default should speculate (n-gram)"
        m = served_models(cfg)["fix"]
        t2s = TextToSql(state["router"]["url"], m["tokenizer"], PromptContract(**m["contract"]), model="fix",
                        timeout_s=600)
        schemas = ood.schemas()
        qs = [(schemas[q["db_id"]], q["question"]) for q in ood.questions()[:4]]

        def greedy(q):
            return t2s.ask(*q, max_tokens=64).sql

        def vote(q):
            return t2s.ask(*q, constrained=True, candidates=8, max_tokens=64)

        with ThreadPoolExecutor(3) as pool:
            votes = [pool.submit(vote, q) for q in qs[:2]]
            plain = [pool.submit(greedy, q) for q in qs]
            answers = [f.result() for f in votes]
            [f.result() for f in plain]
        assert all(a.candidates >= 8 for a in answers)
        log = open(rep["log"], encoding="utf-8", errors="replace").read()
        assert "sqlgenie_vllm_fixes: CPU expand_batch_to_tokens replaced" in log
        assert "grammar rejected tokens" not in log
    finally:
        launch.down("fix")      # raises if a process group of the deployment survives
