"""Training on the GPU through the product (pipeline.train.stage.run): a few steps on each backend and
precision the plan can choose there, with the kernels the plan names, and a run killed after a checkpoint that
resumes to the uninterrupted run's losses.

    python -m pytest -m gpu tests/gpu/test_train_gpu.py -q
"""
from __future__ import annotations

import json

import pytest

from pipeline import config, runs
from pipeline.train import kernels
from pipeline.train import stage as train
from tests.conftest import gretel_row, save_llama, tiny_train_overrides, train_cli, write_gretel
from tests.gpu.conftest import fp8_gpu, needs

pytestmark = pytest.mark.gpu


@pytest.fixture
def data_file(tmp_path):
    return write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(64)])


@pytest.fixture
def gpu_llama_dir(tiny_tokenizer_dir, tmp_path_factory):
    """A small random Llama whose widths FP8 GEMMs and Unsloth accept (multiples of 16; head_dim 64)."""
    return save_llama(tiny_tokenizer_dir, tmp_path_factory.mktemp("gpu-llama"), hidden_size=256,
                      intermediate_size=512, num_attention_heads=4, num_key_value_heads=2, head_dim=64)


def _losses(run_dir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


def _train(home, model_dir, data, monkeypatch, *extra):
    """One run through stage.run; returns (result, plan.json, what kernels.apply did)."""
    done = []
    real = kernels.apply
    monkeypatch.setattr(kernels, "apply", lambda model, options: done.append(real(model, options)) or done[-1])
    cfg = config.load(None, tiny_train_overrides(model_dir, data, "train.max_steps=12", *extra))
    res = train.run(cfg)
    plan = json.loads((res.out_dir / "plan.json").read_text())
    losses = _losses(res.out_dir)
    assert len(losses) == 12 and sum(list(losses.values())[-3:]) / 3 < 0.9 * losses[1], losses
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
    return res, plan, (done[0] if done else None)


@pytest.mark.parametrize("precision", ["bf16", "fp8", "4bit"])
def test_the_trl_backend_trains_on_the_gpu_with_the_plan_s_kernels(home, gpu_llama_dir, data_file, monkeypatch,
                                                                   precision):
    if precision == "fp8" and not fp8_gpu():
        pytest.skip("fp8 needs FP8 tensor cores (compute capability 8.9+)")
    if precision == "4bit":
        pytest.importorskip("bitsandbytes", reason="4bit needs bitsandbytes")
    res, plan, applied = _train(home, gpu_llama_dir, data_file, monkeypatch, f"train.precision={precision}",
                                f"name=trl-{precision}")
    assert plan["device"]["kind"] == "cuda" and plan["backend"] == "trl"
    fused = precision != "4bit"                  # PEFT's 4-bit LoRA layers keep their own forward
    assert plan["kernels"]["fused_lora"] == fused and applied.fused == (14 if fused else 0)   # 2 layers x 7
    assert plan["kernels"]["fp8_base"] == (precision == "fp8") and applied.fp8_bases == (14 if precision == "fp8" else 0)


@needs("unsloth", "the Unsloth backend")
def test_the_unsloth_backend_trains_qlora_with_fp8_products(home, gpu_llama_dir, data_file):
    """`sqlgenie train` with the Unsloth backend, in a process of its own (Unsloth patches transformers and peft
    when imported): the loss falls, and on FP8 GPUs the plan and the log say the NF4 products ran in FP8."""
    train_cli(home, tiny_train_overrides(gpu_llama_dir, data_file, "train.max_steps=12", "train.precision=4bit",
                                         "train.backend=unsloth", "name=unsloth-4bit"), timeout=900)
    (run,) = runs.list_runs("unsloth-4bit")
    plan = json.loads((run.dir / "plan.json").read_text())
    assert plan["backend"] == "unsloth" and plan["kernels"]["qlora_fp8"] == fp8_gpu()
    losses = _losses(run.dir)
    assert len(losses) == 12 and sum(list(losses.values())[-3:]) / 3 < 0.9 * losses[1], losses
    assert run.has_adapter()


def test_a_run_killed_on_the_gpu_resumes_to_the_same_losses(home, gpu_llama_dir, data_file):
    """SIGKILL after checkpoint-6 of 10 on CUDA, then train.resume=latest: steps 7-10 give the uninterrupted
    run's losses (fp32 and one thread of data: CUDA's reductions may still differ in the last bits)."""
    common = tiny_train_overrides(gpu_llama_dir, data_file, "train.max_steps=10", "train.save_steps=3",
                                  "train.precision=fp32")
    train_cli(home, common + ["name=straight"], timeout=600)
    ref = _losses(runs.list_runs("straight")[0].dir)
    train_cli(home, common + ["name=killed"], kill_when="runs/killed/*/checkpoint-6/COMPLETE", timeout=600)
    (run,) = runs.list_runs("killed")
    assert run.status == "interrupted"
    train_cli(home, common + ["name=killed", "train.resume=latest"], timeout=600)
    resumed = _losses(run.dir)
    assert sorted(resumed) == list(range(1, 11))
    for step in range(7, 11):
        assert resumed[step] == pytest.approx(ref[step], rel=2e-3, abs=1e-4), (step, resumed, ref)
    assert runs.open_run(run.dir).status == "succeeded"
