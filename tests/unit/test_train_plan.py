"""Training plans: every decision and every config error happens before a model is loaded."""
import json

import pytest

from core.errors import ConfigError
from core.modelinfo import count_params
from core.settings import REPO_ROOT
from pipeline import config
from pipeline.train.plan import Device, GiB, make_plan

LLAMA_8B = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}
H200 = Device("cuda", "NVIDIA H200", 139 * GiB, 141 * GiB, True, capability=(9, 0))
RTX4090 = Device("cuda", "RTX 4090", 23 * GiB, 24 * GiB, True)
CPU = Device("cpu", "CPU x2", 20 * GiB, 24 * GiB, True)


@pytest.fixture
def llama_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    return tmp_path


def _cfg(*over):
    return config.load(REPO_ROOT / "configs" / "llama31-8b-qlora.yaml", list(over))


def test_param_count_of_llama_8b():
    assert abs(count_params(LLAMA_8B)[0] - 8.03e9) < 0.01e9


def test_auto_picks_the_fp8_base_without_recompute_on_an_h200_and_bf16_on_an_a100(llama_dir, monkeypatch):
    """Where bf16 fits: FP8 tensor cores (compute capability 8.9+) get the FP8 base on the trl backend,
    older GPUs bf16 on trl (varlen packing); Unsloth installed or not makes no difference there."""
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    plan = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto"), llama_dir, H200)
    assert plan.precision == "fp8" and not plan.gradient_checkpointing and plan.backend == "trl"
    assert plan.micro_batch * plan.grad_accum == 128 * 2  # the effective batch is kept
    assert "precision auto -> fp8" in plan.describe() and "backend auto -> trl" in plan.describe()
    a100 = Device("cuda", "NVIDIA A100-SXM4-80GB", 79 * GiB, 80 * GiB, True, capability=(8, 0))
    plan = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto"), llama_dir, a100)
    assert (plan.precision, plan.backend) == ("bf16", "trl")
    # asking for unsloth keeps bf16 (the FP8 base is a trl-backend feature)
    plan = make_plan(_cfg("train.precision=auto", "train.backend=unsloth"), llama_dir, H200)
    assert (plan.precision, plan.backend) == ("bf16", "unsloth")


def test_auto_picks_4bit_on_a_24gb_card_and_keeps_the_effective_batch(llama_dir, monkeypatch):
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    plan = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto"), llama_dir, RTX4090)
    assert plan.precision == "4bit" and plan.backend == "unsloth"
    assert plan.micro_batch * plan.grad_accum == 256
    assert plan.estimate_bytes <= 0.85 * RTX4090.free_bytes


def test_a_config_that_cannot_fit_is_refused_before_loading(llama_dir, monkeypatch):
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    tiny = Device("cuda", "small GPU", 8 * GiB, 8 * GiB, True)
    with pytest.raises(ConfigError, match="does not fit: bf16"):
        make_plan(_cfg("train.precision=bf16"), llama_dir, tiny)


def test_unsloth_on_cpu_and_missing_model_are_config_errors(llama_dir, tmp_path):
    with pytest.raises(ConfigError, match="unsloth needs a CUDA GPU"):
        make_plan(_cfg("train.backend=unsloth"), llama_dir, CPU)
    with pytest.raises(ConfigError, match="has no config.json"):
        make_plan(_cfg(), tmp_path / "nowhere", CPU)


def test_unknown_lora_target_is_a_config_error(llama_dir):
    with pytest.raises(ConfigError, match="qkv_proj"):
        make_plan(_cfg("train.lora.target_modules=[qkv_proj]", "train.precision=bf16"), llama_dir, H200)


def test_cpu_auto_precision_follows_bf16_support(llama_dir):
    small = dict(LLAMA_8B, hidden_size=256, intermediate_size=512, num_hidden_layers=2, vocab_size=1000)
    (llama_dir / "config.json").write_text(json.dumps(small))
    assert make_plan(_cfg("train.precision=auto"), llama_dir, CPU).precision == "bf16"
    no_bf16 = Device("cpu", "old CPU", 20 * GiB, 24 * GiB, False)
    assert make_plan(_cfg("train.precision=auto"), llama_dir, no_bf16).precision == "fp32"


def test_fp8_base_needs_fp8_tensor_cores_and_the_trl_backend(llama_dir):
    plan = make_plan(_cfg(f"model.name_or_path={llama_dir}", "train.precision=fp8"), llama_dir, H200)
    assert plan.precision == "fp8" and plan.backend == "trl"     # auto backend: Unsloth keeps its own weights
    assert any("compute capability 9.0" in r for r in plan.reasons)
    a100 = Device("cuda", "NVIDIA A100", 70 * GiB, 80 * GiB, True, capability=(8, 0))
    with pytest.raises(ConfigError, match=r"needs FP8 tensor cores \(compute capability 8.9\+.*A100 is 8.0: use bf16 or 4bit"):
        make_plan(_cfg(f"model.name_or_path={llama_dir}", "train.precision=fp8"), llama_dir, a100)
    with pytest.raises(ConfigError, match="fp8 runs on the trl backend"):
        make_plan(_cfg(f"model.name_or_path={llama_dir}", "train.precision=fp8", "train.backend=unsloth"), llama_dir, H200)


def test_packing_attention_is_chosen_once_in_the_plan(llama_dir, monkeypatch):
    from pipeline.train.kernels import varlen_attention as varlen

    cfg = _cfg(f"model.name_or_path={llama_dir}")
    monkeypatch.setattr(varlen, "available_on_cuda", lambda: True)
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: m not in ("unsloth", "flash_attn"))
    assert make_plan(cfg, llama_dir, H200).attention == varlen.NAME          # no flash_attn: torch's varlen
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: m != "unsloth")
    assert make_plan(cfg, llama_dir, H200).attention == "flash_attention_2"
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    assert make_plan(cfg, llama_dir, H200).attention == "unsloth"            # Unsloth packs with its own
    cpu = make_plan(cfg, llama_dir, CPU)
    assert not cpu.packing and cpu.attention == "sdpa"
    # no packing on a CPU: one row per micro-batch (no padding), the effective batch kept by accumulation
    assert cpu.micro_batch == 1 and cpu.grad_accum == cfg.train.batch_size * cfg.train.grad_accum


def test_a_batch_that_does_not_split_over_the_processes_is_refused(llama_dir, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="train.batch_size 128 does not split over 3 processes: use a multiple of 3"):
        make_plan(_cfg(f"model.name_or_path={llama_dir}"), llama_dir, H200)
    monkeypatch.setenv("WORLD_SIZE", "4")
    plan = make_plan(_cfg(f"model.name_or_path={llama_dir}"), llama_dir, H200)
    assert plan.world_size == 4 and plan.micro_batch * plan.grad_accum * 4 == 128 * 2


def test_two_visible_gpus_without_torchrun_plan_ddp_over_both(llama_dir, monkeypatch):
    """The plain train command on a 2-GPU machine: the plan says it launches torchrun with 2 processes and
    splits the effective batch over them (nn.DataParallel, which TRL refuses, is never used)."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    two = Device("cuda", "NVIDIA H200", 139 * GiB, 141 * GiB, True, count=2, capability=(9, 0))
    plan = make_plan(_cfg(f"model.name_or_path={llama_dir}", "train.precision=auto"), llama_dir, two)
    assert plan.world_size == 2 and plan.micro_batch * plan.grad_accum * 2 == 128 * 2
    assert "runs torchrun with 2 processes" in plan.describe()
    with pytest.raises(ConfigError, match="does not split over 2 processes"):
        make_plan(_cfg(f"model.name_or_path={llama_dir}", "train.batch_size=7"), llama_dir, two)


def test_a_memory_budget_turns_an_h200_plan_into_qlora_with_recompute(llama_dir, monkeypatch):
    """train.max_memory_gib 13 on an H200: bf16 cannot fit, so auto takes NF4 with Unsloth's offloaded
    recompute at the micro-batch the anchor uses (measured 12.5 GiB on the H200)."""
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    free = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto"), llama_dir, H200)
    capped = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto", "train.max_memory_gib=13"),
                       llama_dir, H200)
    assert (free.precision, free.gradient_checkpointing) == ("fp8", False)
    assert (capped.precision, capped.gradient_checkpointing, capped.backend) == ("4bit", True, "unsloth")
    assert capped.micro_batch >= 8 and capped.estimate_bytes <= 13 * GiB
    assert "memory budget 13 GiB" in capped.describe()
    assert capped.kernels.qlora_fp8 and not capped.kernels.fp8_base and "frozen GEMMs of forward, recompute and the input gradients" in capped.describe()
    off = make_plan(_cfg("train.precision=auto", "train.max_memory_gib=13", "train.qlora_fp8=false"), llama_dir, H200)
    assert (off.precision, off.kernels.qlora_fp8) == ("4bit", False) and "qlora_fp8 false" in off.describe()
    assert not free.kernels.qlora_fp8 and free.kernels.fp8_base   # the FP8 base path has its own FP8
    assert free.kernels.fused_lora and not capped.kernels.fused_lora   # fused LoRA is the TRL backend's
    assert "kernels: fp8_base, fused_lora" in free.describe()
    a100 = Device("cuda", "NVIDIA A100", 79 * GiB, 80 * GiB, True, capability=(8, 0))   # no FP8 tensor cores
    old = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto", "train.max_memory_gib=13"),
                    llama_dir, a100)
    assert (old.precision, old.backend, old.kernels.qlora_fp8) == ("4bit", "unsloth", False)
    # without Unsloth's offload the layer inputs stay on the GPU: the same budget needs a smaller micro-batch
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: m != "unsloth")
    trl = make_plan(_cfg("train.precision=auto", "train.gradient_checkpointing=auto", "train.max_memory_gib=13"),
                    llama_dir, H200)
    assert trl.backend == "trl" and trl.micro_batch < capped.micro_batch and trl.estimate_bytes <= 13 * GiB


def test_a_memory_budget_that_is_not_positive_is_a_config_error():
    with pytest.raises(ConfigError, match="train.max_memory_gib: -2.0 must be > 0"):
        _cfg("train.max_memory_gib=-2")


def test_a_budget_that_nothing_fits_names_the_budget(llama_dir, monkeypatch):
    monkeypatch.setattr("pipeline.train.plan._has", lambda m: True)
    with pytest.raises(ConfigError, match="6.0 GiB usable.*larger train.max_memory_gib"):
        make_plan(_cfg("train.max_memory_gib=6"), llama_dir, H200)


def test_the_dashboards_plan_preview_never_imports_torch(tmp_path):
    """The New-job page plans with probe="nvml": torch (seconds, ~0.5 GB) stays out of the dashboard's process,
    and the preview still says where the job would train (here: the CPU, as the trainer's torch probe says)."""
    import subprocess
    import sys

    smollm2 = {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
               "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(smollm2))
    code = f"""
import sys
import app.views.new_job
from pipeline import config
from pipeline.train.plan import detect_device, make_plan
cfg = config.load({str(REPO_ROOT / 'configs' / 'smollm2-cpu.yaml')!r}, ["train.precision=auto"])
plan = make_plan(cfg, __import__("pathlib").Path({str(tmp_path)!r}), detect_device(probe="nvml"))
print(plan.device.kind, plan.precision, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    kind, precision, torch_loaded = out.stdout.split()[-3:]
    from pipeline.train.plan import detect_device
    assert kind == detect_device().kind                 # the trainer's probe agrees on this machine
    assert precision in ("fp32", "bf16")
    assert torch_loaded == "False"


def test_a_written_plan_reads_back_as_the_same_plan_and_ddp_workers_take_it(llama_dir, monkeypatch, tmp_path):
    """plan.json round-trips (device, kernels and all): the DDP launcher writes it and its workers take it
    instead of planning again (their free memory is already the parent's workers')."""
    import dataclasses

    from pipeline.train import plan as planning
    from pipeline.train import stage

    plan = dataclasses.replace(make_plan(_cfg("train.precision=auto"), llama_dir, H200), world_size=2)
    again = planning.Plan.from_json(plan.to_json())
    assert again == plan and again.kernels.fp8_base and again.device.capability == (9, 0)
    (tmp_path / "plan.json").write_text(plan.to_json())
    monkeypatch.setenv("SQLGENIE_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    real = planning.make_plan
    monkeypatch.setattr(planning, "make_plan", lambda *a: pytest.fail("a worker planned again"))
    assert stage._plan(_cfg(), llama_dir) == plan
    monkeypatch.delenv("SQLGENIE_RUN_DIR")
    with pytest.raises(pytest.fail.Exception, match="planned again"):
        stage._plan(_cfg(), llama_dir)
    monkeypatch.setenv("SQLGENIE_RUN_DIR", str(tmp_path))   # a plan made for another number of processes
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(planning, "make_plan", lambda cfg, path: real(cfg, path, H200))
    assert stage._plan(_cfg(), llama_dir).world_size == 4


def test_the_training_bench_variants_name_real_kernel_options():
    """bench/train_gpu.py asks for its before/after variants through KernelOptions (no patching): each change
    must be a real field with an allowed value, or the bench would measure the default and call it a variant."""
    import dataclasses

    from bench.train_gpu import VARIANTS
    from pipeline.train.kernels import KernelOptions

    fields = {f.name for f in dataclasses.fields(KernelOptions)}
    for suffix, change in VARIANTS.items():
        assert set(change) <= fields, (suffix, set(change) - fields)
        assert dataclasses.replace(KernelOptions(), **change) != KernelOptions(), suffix
