"""The playground opened on a deployment that is still starting (Try it, then Open the playground at once) says
so and selects it once it is ready; it never falls back to another deployment in silence."""
from __future__ import annotations

import time


def _save(name: str, phase: str) -> None:
    from serving import deployments as D

    D.state_dir(name).mkdir(parents=True, exist_ok=True)
    D.save({"name": name, "phase": phase, "created": time.time() - 12, "router": {"url": "http://127.0.0.1:9"},
            "replicas": [{"device": "cpu:0", "args": []}], "config": {}, "workers": [],
            "models": {name: {"kind": "base", "tokenizer": "/t", "contract": {}},
                       "ft-1": {"kind": "lora", "tokenizer": "/t", "contract": {}, "base": name}}})


def test_a_starting_deployment_is_waited_for_then_selected(home):
    from app.playground import _select, on_tick

    _save("other", "ready")
    _save("try-1", "starting")
    q = {"deployment": "try-1", "a": "try-1", "b": "ft-1"}
    dep, a, _, b, note, timer, wanted = _select(q)
    assert dep["value"] is None and dep["choices"] == ["other"]          # not 'other' in silence
    assert "try-1** is starting (12 s so far" in note["value"] and note["visible"]
    assert timer.active and wanted == q
    _save("try-1", "ready")
    dep, a, compare, b, note, timer, wanted = on_tick(wanted)
    assert dep["value"] == "try-1" and a["value"] == "try-1" and b["value"] == "ft-1" and compare["value"] is True
    assert not note["visible"] and not timer.active and wanted == {}


def test_a_deployment_that_stopped_or_never_existed_is_named_and_not_waited_for(home):
    from app.playground import _select

    _save("try-2", "stopped")
    *_, note, timer, wanted = _select({"deployment": "try-2"})
    assert "stopped before it was ready" in note["value"] and not timer.active and wanted == {}
    *_, note, timer, wanted = _select({"deployment": "nope"})
    assert "No deployment named **nope**, and no serve job is starting one" in note["value"] and not timer.active


def test_a_queued_serve_job_is_waited_for(home):
    from app.playground import _select
    from pipeline.jobs import JobStore

    JobStore()._exec("INSERT INTO jobs (kind, name, config, status, created, log_path) VALUES (?,?,?,?,?,?)",
                     ("serve", "try-3", "name: try-3\nmodel: embedded:smollm2-135m-instruct\n", "queued", 1.0,
                      str(home / "none.log")))
    *_, note, timer, _ = _select({"deployment": "try-3"})
    assert "its serve job #1 is queued" in note["value"] and timer.active


def _save_merged(name: str, model_path: str) -> None:
    """A ready deployment serving one model of its own (a merged export or a full fine-tune), as the launcher saves it."""
    from serving import deployments as D

    D.state_dir(name).mkdir(parents=True, exist_ok=True)
    D.save({"name": name, "phase": "ready", "created": time.time(), "router": {"url": "http://127.0.0.1:9"},
            "replicas": [{"device": "cpu:0", "args": []}], "config": {"model": model_path}, "workers": [],
            "models": {name: {"kind": "merged", "tokenizer": "/t", "contract": {}}}})


def test_the_second_model_may_come_from_another_deployment(home):
    """A full fine-tune's Try-it deployment serves it alone; the base is compared from the console's deployment."""
    from app.playground import _select, b_choices, on_deployment, resolve_model
    from serving import deployments as D

    _save("sqlgenie", "ready")
    _save_merged("try-9", "/runs/x/model")
    assert b_choices("try-9") == ["try-9", "sqlgenie @ sqlgenie", "ft-1 @ sqlgenie"]
    dep, a, compare, b, *_ = _select({"deployment": "try-9", "a": "try-9", "b": "sqlgenie @ sqlgenie"})
    assert dep["value"] == "try-9" and a["value"] == "try-9" and b["value"] == "sqlgenie @ sqlgenie"
    assert compare["value"] is True and a["choices"] == ["try-9"]
    other, model = resolve_model(D.read("try-9"), b["value"])
    assert other.name == "sqlgenie" and model == "sqlgenie" and other.models[model].kind == "base"
    assert resolve_model(D.read("try-9"), "try-9")[0].name == "try-9"
    # the page then selects the URL's deployment, which fires on_deployment: the picked models stay
    a2, b2 = on_deployment("try-9", "try-9", "sqlgenie @ sqlgenie")
    assert a2["value"] == "try-9" and b2["value"] == "sqlgenie @ sqlgenie"
    assert on_deployment("sqlgenie", "try-9", "sqlgenie @ sqlgenie")[0]["value"] == "sqlgenie"   # not offered there
    # a b the URL names that no ready deployment serves is not ticked in silence
    *_, compare, b, _, _, _ = _select({"deployment": "try-9", "a": "try-9", "b": "gone @ nowhere"})
    assert compare["value"] is False and b["value"] is None
