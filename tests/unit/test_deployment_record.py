"""serving.deployments.read: a deployment's state.json as one typed record (what the playground reads once a
question and hands to its clients and panel titles)."""
from __future__ import annotations

import pytest


def _save(name: str, **over) -> None:
    from serving import deployments as D

    st = {"name": name, "phase": "ready", "created": 5.0, "router": {"url": "http://127.0.0.1:9"},
          "replicas": [{"device": "cpu:0", "args": ["--port", "1", "--max-model-len", "2048"]}],
          "config": {"max_model_len": 1024}, "workers": [],
          "models": {name: {"kind": "base", "tokenizer": "/tok", "contract": {"dialect": "sqlite"}, "base": None},
                     "ft": {"kind": "lora", "tokenizer": "/tok2", "contract": {}, "base": name}}}
    st.update(over)
    D.state_dir(name).mkdir(parents=True, exist_ok=True)
    D.save(st)


def test_the_record_says_what_clients_need(home):
    from serving import deployments as D

    _save("dep")
    dep = D.read("dep")
    assert dep.ready and dep.router_url == "http://127.0.0.1:9" and dep.created == 5.0
    assert dep.max_model_len == 2048            # the replicas' own argument wins over the config's
    assert dep.on_cpu and not dep.has_workers
    assert dep.model("ft").describe() == "ft (fine-tune, LoRA on dep)"
    assert dep.model("dep").describe() == "dep (base)" and dep.model("dep").contract == {"dialect": "sqlite"}
    _save("gpu", replicas=[{"device": "cuda:0", "args": []}], phase="starting")
    gpu = D.read("gpu")
    assert not gpu.on_cpu and not gpu.ready and gpu.max_model_len == 1024


def test_an_unknown_model_or_deployment_is_named(home):
    from serving import deployments as D
    from serving.config import DeploymentError

    _save("dep")
    with pytest.raises(DeploymentError, match="serves dep, ft, not 'nope'"):
        D.read("dep").model("nope")
    with pytest.raises(DeploymentError):
        D.read("missing")


def test_the_playground_answers_a_vanished_deployment_with_one_line(home):
    from app import playground

    out = playground.answer("gone", "gone", False, None, "CREATE TABLE t (a INT);", "", "how many?", "sqlite",
                            False, False, 0, 0.7, [])
    assert "gone" in out[2] and "Error" in out[2]
