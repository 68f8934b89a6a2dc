"""GPU training benchmark: a random-init Llama-3.1-8B shape, seq 1024, LoRA r=128 on 7 modules, micro-batch 8.

Every stack runs in a process of its own (Unsloth patches transformers at import), on the same model
folder, the same random token batches, AdamW, bf16 compute. Anchors: plain transformers + PEFT (bf16 +
gradient checkpointing; bitsandbytes QLoRA; QLoRA + Liger) and Unsloth (QLoRA; bf16; bf16 without
checkpointing). Ours: the model exactly as pipeline/train builds it from the plan that `auto` makes on
this GPU; our TRL backend in bf16 and with the frozen base in FP8; our QLoRA path, free and under a 13 GiB
budget (train.max_memory_gib). Every step runs under bf16 autocast, as the Trainer (accelerate) runs it:
PEFT keeps LoRA weights in fp32, and without autocast their products would run in fp32. `--profile`
adds one profiled step per stack: its CUDA time by kernel family (where the time goes). Prints one table
last.

    sqlgenie bench train_gpu make-model /tmp/llama8b        # random init, saved once (bf16 safetensors)
    sqlgenie bench train_gpu all /tmp/llama8b [--steps 4]    # every stack, one subprocess each
    sqlgenie bench train_gpu one MODE /tmp/llama8b           # a single stack (used by `all`)
    sqlgenie bench train_gpu pack /tmp/llama8b [--rows 640]   # packing vs padding on Gretel-like lengths
    sqlgenie bench train_gpu qlora /tmp/llama8b               # QLoRA under 13 GiB vs Unsloth QLoRA
    sqlgenie bench train_gpu gemm                             # bf16 vs FP8 (row-wise) GEMMs of the 8B shapes
    sqlgenie bench train_gpu fp8-check                        # the FP8 quantizer's speed (numerics: tests/gpu)
    sqlgenie bench train_gpu nf4-check                        # NF4 -> FP8 kernel vs bitsandbytes (QLoRA in FP8)
    sqlgenie bench train_gpu layers                           # frozen-base LoRA layers: bf16, ours FP8, torchao

`ours_auto_r2` is `ours_auto` with session 9's change undone (torch.compile's two-pass quantizer instead of
the one-pass Triton kernel; the LoRA term as separate nodes after the FP8 base instead of one node that sums
in place), `ours_auto_r1` also session 7's (each projection quantizes its own input), for a same-run
before/after; `ours_qlora13_noblocks` is the 13 GiB QLoRA plan as session 9 left it (only Unsloth's
matmul_lora in FP8; the fused blocks' backward in bf16, without pipeline/train/kernels/nf4_blocks.py);
`ours_auto_mlp8` keeps the attention projections in bf16 and only gate/up/down in FP8
(the `layers` figures suggested it; the whole model says otherwise: docs/benchmarks.md).
`layers`: one LoRA layer (r=128, PEFT, our fused forward) per 8B projection shape at 8192 tokens, forward and
backward under autocast, its frozen base as bf16 nn.Linear, our Fp8FrozenLinear, and torchao's float8
training Linear with row-wise scales (torchao.float8, recipe "rowwise"); milliseconds per layer step.

`pack`: one epoch slice of rows whose lengths follow Gretel's (log-normal, ~230 tokens mean, loss on the
last quarter), the same rows for every stack; optimizer step every 128 rows. The anchor is the best
anchor stack (Unsloth bf16 LoRA, no recompute) with its default: rows padded to the longest of each
micro-batch of 8. Ours: the model pipeline/train builds, rows packed best-fit-decreasing into 1024-token
bins by TRL, 8 bins per micro-batch flattened padding-free, attention per row by kernels/varlen_attention.py
(torch's varlen FlashAttention). Also ours padded (the packing gain alone) and ours with the frozen base in
FP8 (pipeline/train/kernels/fp8_linear.py). Figures: real tokens/s.

Variants are asked for through the plan's public KernelOptions (VARIANTS: a mode's suffix -> the options it
changes), never by patching the kernels. The numerics of every kernel are asserted by tests/gpu/ (pytest -m
gpu); fp8-check and nf4-check here print their speed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODES = ["hf_bf16_gc", "hf_qlora", "hf_qlora_liger", "unsloth_qlora", "unsloth_bf16", "unsloth_bf16_nogc",
         "ours_auto", "ours_bf16", "ours_fp8", "ours_qlora", "ours_qlora13"]
# ours_*: (train.precision, train.backend, train.max_memory_gib) given to the plan
OURS = {"ours_auto": ("auto", "auto", None), "ours_bf16": ("bf16", "trl", None), "ours_fp8": ("fp8", "auto", None),
        "ours_qlora": ("4bit", "auto", None), "ours_qlora13": ("auto", "auto", 13),
        "ours_auto_r1": ("auto", "auto", None), "ours_auto_r2": ("auto", "auto", None), "ours_qlora13_r2": ("auto", "auto", 13),
        "ours_qlora13_noblocks": ("auto", "auto", 13),
        "ours_auto_mlp8": ("auto", "auto", None)}   # their suffixes: VARIANTS
# a mode's suffix -> the KernelOptions fields it changes from what the plan chose (session 9's and 7's changes
# undone, FP8 for the MLP only, QLoRA's blocks in bf16)
VARIANTS = {"_r2": {"triton_quantizer": False, "fp8_lora_one_node": False, "qlora_fp8": False},
            "_r1": {"triton_quantizer": False, "fp8_lora_one_node": False, "qlora_fp8": False,
                    "share_quantized_input": False},
            "_mlp8": {"fp8_layers": "mlp"},
            "_noblocks": {"qlora_fp8_blocks": False, "nf4_transpose_kernel": False}}
MICRO, SEQ, R = 8, 1024, 128
PEAK_BF16 = 790e12  # measured dense bf16 matmul rate of the H200 here (device notes)


def make_model(out: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128009,
                      torch_dtype="bfloat16")
    t0 = time.time()
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model = model.to_empty(device="cuda").to(torch.bfloat16)
    gen = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    model.save_pretrained(out)
    from core.assets import LLAMA_TOKENIZER, models_dir

    tok = models_dir() / LLAMA_TOKENIZER
    if tok.is_dir():
        import shutil

        for f in tok.iterdir():
            shutil.copy(f, Path(out) / f.name)
    print(f"made {out} in {time.time() - t0:.0f} s")


def _plan_cfg(model_dir: str, precision: str, backend: str = "auto", max_memory_gib=None):
    from pipeline import config

    extra = [f"train.max_memory_gib={max_memory_gib}"] if max_memory_gib else []
    return config.load(ROOT / "configs" / "llama31-8b-qlora.yaml",
                       [f"model.name_or_path={model_dir}", f"model.tokenizer={model_dir}", f"train.precision={precision}",
                        "train.gradient_checkpointing=auto", f"train.batch_size={MICRO}", "train.grad_accum=1",
                        f"train.micro_batch_size={MICRO}", f"train.backend={backend}", *extra])


def _amp():
    """bf16 autocast, as the Trainer runs every training and eval step (accelerate, bf16=True)."""
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16)


def _ours_model(cfg, model_dir: str, need_packing: bool = False, mode: str = ""):
    """(model, plan): the model exactly as pipeline/train builds it from the plan for `cfg` on this GPU (with the
    kernel options the mode's VARIANTS suffix changes)."""
    import dataclasses

    from pipeline.train import plan as planning

    plan = planning.make_plan(cfg, Path(model_dir))
    change = next((v for suffix, v in VARIANTS.items() if mode.endswith(suffix)), None)
    if change:
        plan = dataclasses.replace(plan, kernels=dataclasses.replace(plan.kernels, **change))
    print("PLAN " + plan.describe().replace("\n", " | "), flush=True)
    if need_packing and not plan.packing:
        raise SystemExit(f"plan did not turn packing on: {plan.reasons}")
    if plan.backend == "unsloth":
        import unsloth  # noqa: F401

        from pipeline.train.unsloth_backend import load_model
    else:
        from pipeline.train.trl_backend import load_model
    if plan.liger:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama()
    return load_model(cfg, plan, Path(model_dir)), plan


def build(mode: str, model_dir: str):
    """(model, flops multiplier 4 or 6, description)."""
    import torch

    if mode.startswith("unsloth"):
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=SEQ, dtype=torch.bfloat16,
                                                     load_in_4bit=mode == "unsloth_qlora", local_files_only=True)
        gc = mode != "unsloth_bf16_nogc"
        model = FastLanguageModel.get_peft_model(model, r=R, lora_alpha=R, lora_dropout=0, target_modules=TARGETS,
                                                 bias="none", use_gradient_checkpointing="unsloth" if gc else False)
        return model, 6 if gc else 4, mode
    if mode.startswith("ours"):
        model, plan = _ours_model(_plan_cfg(model_dir, *OURS[mode]), model_dir, mode=mode)
        desc = (f"{plan.backend} {plan.precision} gc={'on' if plan.gradient_checkpointing else 'off'} "
                f"liger={'on' if plan.liger else 'off'} micro={plan.micro_batch} kernels: {plan.kernels.describe()}")
        return model, 6 if plan.gradient_checkpointing else 4, desc
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if mode == "hf_qlora_liger":
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama()
    kw = {"dtype": torch.bfloat16, "device_map": {"": 0}, "attn_implementation": "sdpa"}
    if "qlora" in mode:
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    model.config.use_cache = False
    if "qlora" in mode:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=R, lora_alpha=R, lora_dropout=0.0, target_modules=TARGETS,
                                              task_type="CAUSAL_LM"))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model, 6, mode


# ------------------------------------------------------------------------------ packing vs padding
def gretel_like_rows(n: int, seed: int = 0) -> list[dict]:
    """Token rows with Gretel-like lengths (log-normal, median 210, mean ~232, clipped to 48..1024);
    the last quarter is the completion (loss), the rest the prompt (masked)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(210), 0.45, n).astype(int), 48, SEQ)
    rows = []
    for n_tok in lengths:
        ids = rng.integers(5, 128000, int(n_tok)).tolist()
        p = int(n_tok * 0.75)
        rows.append({"input_ids": ids, "labels": [-100] * p + ids[p:]})
    return rows


def _padded_batches(rows):
    import torch

    for i in range(0, len(rows), MICRO):
        chunk = rows[i:i + MICRO]
        width = max(len(r["input_ids"]) for r in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        lab = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, r in enumerate(chunk):
            n = len(r["input_ids"])
            ids[j, :n], lab[j, :n], mask[j, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        yield {"input_ids": ids, "labels": lab, "attention_mask": mask}, len(chunk), int(mask.sum())


def _packed_batches(rows):
    """TRL's own path: pack_dataset(bfd) into SEQ-token bins, padding-free collator over MICRO bins."""
    import datasets
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    packed = pack_dataset(datasets.Dataset.from_list(rows), SEQ, strategy="bfd")
    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    for i in range(0, len(packed), MICRO):
        bins = [packed[j] for j in range(i, min(i + MICRO, len(packed)))]
        batch = collate(bins)
        n_rows = sum(len(b["seq_lengths"]) for b in bins)
        yield {k: batch[k] for k in ("input_ids", "labels", "position_ids")}, n_rows, int(batch["input_ids"].numel())


def _build_pack(mode: str, model_dir: str):
    if mode in ("pack_anchor", "pack_unsloth"):
        model = build("unsloth_bf16_nogc", model_dir)[0]
        if mode == "pack_anchor":
            return model, "Unsloth bf16 LoRA, no recompute, padded batches of 8"
        model.train()
        _check_packed_logits(model)
        return model, "Unsloth bf16 no recompute + TRL bfd packing (padding-free, Unsloth's packed attention)"
    model, plan = _ours_model(_plan_cfg(model_dir, "fp8" if mode == "pack_ours_fp8" else "bf16", "trl"), model_dir,
                              need_packing=True)
    if mode in ("pack_ours", "pack_ours_fp8"):
        _check_packed_logits(model)
    gc = "on" if plan.gradient_checkpointing else "off"
    how = "padded batches of 8" if mode == "pack_ours_padded" else "packed (bfd, varlen attention)"
    return model, f"ours: trl {plan.precision} gc={gc} liger={'on' if plan.liger else 'off'}, {how}"


def _check_packed_logits(model) -> None:
    """On the GPU: three rows packed give each row's own logits. In bf16 on a random 32-layer model top-1
    flips on near-ties, so the check is relative: packed-vs-alone must be far below leaky-vs-alone (the
    same rows attending across their boundaries)."""
    import torch

    rows = [torch.randint(5, 128000, (1, n), device="cuda") for n in (100, 37, 250)]
    packed = torch.cat(rows, dim=1)
    pos = torch.cat([torch.arange(r.shape[1], device="cuda") for r in rows]).unsqueeze(0)
    with torch.no_grad(), _amp():
        together = model(input_ids=packed, position_ids=pos, use_cache=False).logits.float()[:, 100:]
        leaky = model(input_ids=packed, use_cache=False).logits.float()[:, 100:]
        alone = torch.cat([model(input_ids=r, use_cache=False).logits.float() for r in rows[1:]], dim=1)
    d_pack, d_leak = (together - alone).abs().mean().item(), (leaky - alone).abs().mean().item()
    agree = (together.argmax(-1) == alone.argmax(-1)).float().mean().item()
    print(f"VARLEN_CHECK mean|packed-alone|={d_pack:.4f} mean|leaky-alone|={d_leak:.4f} "
          f"top1_agree={agree:.3f} verdict={'per-row' if d_pack < 0.25 * d_leak else 'LEAKS'}", flush=True)


def pack_one(mode: str, model_dir: str, n_rows: int) -> dict:
    if mode in ("pack_anchor", "pack_unsloth"):
        import unsloth  # noqa: F401
    import torch

    torch.manual_seed(0)
    model, desc = _build_pack(mode, model_dir)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rows = gretel_like_rows(n_rows)
    batches = list((_padded_batches if mode in ("pack_anchor", "pack_ours_padded") else _packed_batches)(rows))
    warm = 2
    torch.cuda.reset_peak_memory_stats()
    real = rows_done = 0
    next_opt = 128
    t0 = None
    step_s, t_prev = [], None
    for i, (batch, n_r, _) in enumerate(batches):
        if i >= warm:
            torch.cuda.synchronize()       # per micro-step times: a recompile or a slow shape shows as a spike
            now = time.time()
            if t_prev is not None:
                step_s.append(now - t_prev)
            t_prev = now
        if i == warm:
            t0, real, rows_done = time.time(), 0, 0
        batch = {k: v.cuda() for k, v in batch.items()}
        with _amp():
            loss = model(**batch).loss
        loss.backward()
        real += int(batch["position_ids"].numel() if "position_ids" in batch else batch["attention_mask"].sum())
        rows_done += n_r
        if rows_done >= next_opt or i == len(batches) - 1:
            opt.step()
            opt.zero_grad(set_to_none=True)
            next_opt += 128
    torch.cuda.synchronize()
    dt = time.time() - t0
    mean_len = sum(len(r["input_ids"]) for r in rows) / len(rows)
    step_s.sort()
    if PROFILE and mode.startswith("pack_ours"):
        batch = {k: v.cuda() for k, v in batches[warm][0].items()}

        def one_step():
            with _amp():
                loss = model(**batch).loss
            loss.backward()
        _profile(one_step, mode)
    return {"mode": mode, "desc": desc, "real_tok_s": real / dt, "timed_s": dt, "steps": len(batches) - warm,
            "step_median_s": step_s[len(step_s) // 2] if step_s else 0.0, "step_max_s": step_s[-1] if step_s else 0.0,
            "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "rows": n_rows, "mean_len": mean_len}


def _per_call(fn, reps: int = 20) -> float:
    """Seconds per call of `fn` on the GPU, after one untimed call."""
    import torch

    fn()
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.time() - t0) / reps


PROFILE = "--profile" in sys.argv
FAMILIES = [("fp8 GEMM", ("f8", "e4m3", "fp8")), ("GEMM", ("gemm", "nvjet", "cutlass", "xmma", "sm90")),
            ("attention", ("flash", "fmha", "attention", "sdpa")), ("cross-entropy / lm_head", ("cross_entropy", "liger")),
            ("triton (fused)", ("triton",)), ("copy / cast", ("copy", "cast", "convert")),
            ("elementwise", ("elementwise", "vectorized", "unrolled", "reduce"))]


def _profile(step_fn, mode: str) -> None:
    """One step under torch.profiler: CUDA time by kernel family and the top kernels, as PROFILE lines."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step_fn()
        torch.cuda.synchronize()
    kernels = [(e.key, e.device_time_total) for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(t for _, t in kernels) or 1
    fams: dict[str, float] = {}
    for name, t in kernels:
        low = name.lower()
        fam = next((f for f, keys in FAMILIES if any(k in low for k in keys)), "other")
        fams[fam] = fams.get(fam, 0) + t
    print(f"PROFILE {mode} total CUDA {total / 1e3:.0f} ms: " + ", ".join(
        f"{f} {t / total:.0%}" for f, t in sorted(fams.items(), key=lambda kv: -kv[1])), flush=True)
    for name, t in sorted(kernels, key=lambda kv: -kv[1])[:8]:
        print(f"PROFILE {mode}   {t / total:5.1%} {t / 1e3:7.1f} ms  {name[:110]}", flush=True)


# ------------------------------------------------------------------------------ QLoRA under 13 GiB
def qlora_one(mode: str, model_dir: str, steps: int) -> dict:
    """qlora_mb1_8bit: Unsloth NF4 + LoRA with NO recompute at micro-batch 1 (8 micro-batches per optimizer
    step = the anchor's 8 rows) and bitsandbytes 8-bit AdamW, to trade recompute for memory."""
    import bitsandbytes as bnb
    import torch
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel

    torch.manual_seed(0)
    model, _ = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=SEQ, dtype=torch.bfloat16,
                                                 load_in_4bit=True, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=R, lora_alpha=R, lora_dropout=0, target_modules=TARGETS,
                                             bias="none", use_gradient_checkpointing=False)
    model.train()
    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batches = [torch.randint(0, 128000, (1, SEQ), device="cuda") for _ in range(MICRO)]

    def step():
        for x in batches:
            with _amp():
                loss = model(input_ids=x, labels=x).loss
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    dt = _per_call(step, steps)
    tok_s = MICRO * SEQ / dt
    return {"mode": mode, "desc": "Unsloth NF4, no recompute, micro-batch 1 x 8, AdamW8bit", "tok_s": tok_s,
            "step_s": dt, "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "mfu_4n": 0.0, "hfu": 0.0}


# ------------------------------------------------------------------------------ FP8 numerics on the GPU
def fp8_check() -> None:
    """FP8_CHECK lines: the quantizer's first call at four row counts (a recompile per shape would show as
    seconds), then the one-pass Triton quantizer vs torch.compile's (ms per call). The numerics of every FP8 path
    are asserted by tests/gpu/test_kernels.py."""
    import torch

    from pipeline.train.kernels.quantize import RowQuantizer

    quantize = RowQuantizer()
    for m in (8192, 8150, 8101, 7999):
        t = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        torch.cuda.synchronize()
        t0 = time.time()
        quantize(t)
        torch.cuda.synchronize()
        print(f"FP8_CHECK quantizer first call at {m} rows: {1e3 * (time.time() - t0):.1f} ms", flush=True)
    _quantizers(torch)


# ------------------------------------------------------------------------------ GEMM profile
def gemm() -> list[dict]:
    """bf16 vs FP8 e4m3 with row-wise scales (torch._scaled_mm) for the 8B projections at 8192 tokens."""
    import torch

    out = []
    m = MICRO * SEQ
    for name, k, n in [("q/o 4096x4096", 4096, 4096), ("k/v 4096x1024", 4096, 1024), ("gate/up 4096x14336", 4096, 14336),
                       ("down 14336x4096", 14336, 4096), ("lm_head 4096x128256", 4096, 128256)]:
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
        a8, w8 = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
        sa = torch.ones(m, 1, device="cuda", dtype=torch.float32)
        sw = torch.ones(1, n, device="cuda", dtype=torch.float32)

        tb = _per_call(lambda: a @ w.t())
        try:
            tf = _per_call(lambda: torch._scaled_mm(a8, w8.t(), scale_a=sa, scale_b=sw, out_dtype=torch.bfloat16))
        except Exception as e:  # noqa: BLE001
            tf = float("nan")
            print("fp8 failed:", e)
        fl = 2 * m * k * n
        out.append({"gemm": name, "bf16_tflops": fl / tb / 1e12, "fp8_tflops": fl / tf / 1e12, "speedup": tb / tf})
    return out


def _quantizers(torch) -> None:
    """FP8_CHECK lines: the one-pass Triton quantizer (quantize_triton) vs the eager reference (bytes and scales
    equal?) and vs torch.compile's kernel (ms per call, GB/s of the 3 bytes per element it must move), 8192 rows."""
    from pipeline.train.kernels import quantize_triton
    from pipeline.train.kernels.quantize import RowQuantizer, quantize_rows

    compiled = RowQuantizer(triton=False)

    for cols in (1024, 4096, 14336):
        x = torch.randn(8192, cols, device="cuda", dtype=torch.bfloat16) * 3
        q_ref, s_ref = quantize_rows(x)
        try:
            q, sc = quantize_triton.quantize_rows(x)
        except Exception as e:  # noqa: BLE001 - say why, keep the rest of the check
            print(f"FP8_CHECK quantizer: the Triton kernel failed: {type(e).__name__}: {str(e)[:400]}", flush=True)
            return
        same = (q.view(torch.uint8) == q_ref.view(torch.uint8)).float().mean().item()
        ms_t = _per_call(lambda: quantize_triton.quantize_rows(x)) * 1e3
        ms_c = _per_call(lambda: compiled(x)) * 1e3
        gbs = lambda ms: 3 * x.numel() / ms / 1e6  # noqa: E731
        print(f"FP8_CHECK quantizer 8192x{cols}: triton vs eager bytes equal {same:.6f}, scales max rel diff "
              f"{((sc - s_ref).abs() / s_ref).max().item():.2e}; triton {ms_t:.3f} ms ({gbs(ms_t):.0f} GB/s) vs "
              f"torch.compile {ms_c:.3f} ms ({gbs(ms_c):.0f} GB/s) = {ms_c / ms_t:.2f}x", flush=True)


def nf4_check() -> None:
    """NF4_CHECK lines: one 8B-shaped projection in bitsandbytes NF4 (double quant): the one-pass NF4 -> FP8
    kernel vs bitsandbytes' dequantization (relative error of the weight it stands for, and of a product),
    vs the two-step path (dequantize, then quantize rows), and the time of each per call."""
    import bitsandbytes.functional as bnbf
    import torch

    from pipeline.train.kernels import nf4_decode_triton
    from pipeline.train.kernels.quantize import RowQuantizer, quantize_rows

    quantize = RowQuantizer()

    rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm()).item()  # noqa: E731
    torch.manual_seed(0)
    for out_f, in_f in ((14336, 4096), (4096, 14336), (1024, 4096)):
        w = (torch.randn(out_f, in_f, device="cuda") * 0.02).to(torch.bfloat16)
        packed, state = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
        w16 = bnbf.dequantize_4bit(packed, state)
        scales = {}          # decoded once per frozen weight and kept, as Nf4Products keeps them in training
        try:
            wq, sw = nf4_decode_triton.nf4_to_fp8(packed, state, scales)
        except Exception as e:  # noqa: BLE001
            print(f"NF4_CHECK {out_f}x{in_f}: the kernel failed: {type(e).__name__}: {str(e)[:400]}", flush=True)
            return
        two_q, two_s = quantize_rows(w16)
        x = torch.randn(8192, in_f, device="cuda", dtype=torch.bfloat16)
        xq, sx = quantize_rows(x)
        y = torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw, out_dtype=torch.bfloat16)
        ms_k = _per_call(lambda: nf4_decode_triton.nf4_to_fp8(packed, state, scales)) * 1e3
        ms_2 = _per_call(lambda: quantize(bnbf.dequantize_4bit(packed, state))) * 1e3
        print(f"NF4_CHECK {out_f}x{in_f}: weight rel err vs bnb dequant {rel(wq.float() * sw.t(), w16):.4f} (two-step "
              f"{rel(two_q.float() * two_s, w16):.4f}); product rel err {rel(y, x @ w16.t()):.4f}; kernel "
              f"{ms_k:.3f} ms vs dequantize + quantize {ms_2:.3f} ms = {ms_2 / ms_k:.2f}x", flush=True)
        try:   # the transposing kernel (input gradients): W^T per input column
            wt, st = nf4_decode_triton.nf4_to_fp8_t(packed, state, scales)
            gy = torch.randn(8192, out_f, device="cuda", dtype=torch.bfloat16)
            gq, sg = quantize_rows(gy)
            dx = torch._scaled_mm(gq, wt.t(), scale_a=sg, scale_b=st, out_dtype=torch.bfloat16)
            ms_t = _per_call(lambda: nf4_decode_triton.nf4_to_fp8_t(packed, state, scales)) * 1e3
            ms_3 = _per_call(lambda: quantize(bnbf.dequantize_4bit(packed, state).t().contiguous())) * 1e3
            print(f"NF4_CHECK {out_f}x{in_f} transposed: W^T rel err {rel((wt.float() * st.t()).t(), w16):.4f}; input "
                  f"gradient rel err {rel(dx, gy @ w16):.4f}; kernel {ms_t:.3f} ms vs dequantize + transpose + quantize "
                  f"{ms_3:.3f} ms = {ms_3 / ms_t:.2f}x", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"NF4_CHECK {out_f}x{in_f}: the transposing kernel failed: {type(e).__name__}: {str(e)[:400]}",
                  flush=True)


def layers() -> list[dict]:
    """ms per forward + backward of one frozen-base LoRA layer, per 8B projection shape and base (see the module)."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    from pipeline.train import kernels

    out = []
    m = MICRO * SEQ
    for name, k, n in [("q/o 4096x4096", 4096, 4096), ("k/v 4096x1024", 4096, 1024),
                       ("gate/up 4096x14336", 4096, 14336), ("down 14336x4096", 14336, 4096)]:
        row = {"layer": name}
        for stack in ("bf16", "ours_fp8", "torchao_rowwise"):
            try:
                torch.manual_seed(0)
                holder = torch.nn.Module()
                holder.proj = torch.nn.Linear(k, n, bias=False, device="cuda", dtype=torch.bfloat16)
                holder.proj.weight.requires_grad_(False)
                if stack == "torchao_rowwise":
                    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

                    convert_to_float8_training(holder, config=Float8LinearConfig.from_recipe_name("rowwise"))
                holder = inject_adapter_in_model(LoraConfig(r=R, lora_alpha=R, target_modules=["proj"]), holder)
                applied = kernels.apply(holder, kernels.KernelOptions(fp8_base=stack == "ours_fp8", fused_lora=True))
                x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                g = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)

                def step():
                    with _amp():
                        y = holder.proj(x)
                    y.backward(g)
                    applied.forget_last_input()   # every call a new input, as in the network

                row[stack] = _per_call(step) * 1e3
            except Exception as e:  # noqa: BLE001 - a stack that cannot run is a row, not the end of the bench
                row[stack] = float("nan")
                print(f"LAYERS {name} {stack} failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
        out.append(row)
    return out


def one(mode: str, model_dir: str, steps: int) -> dict:
    if mode.startswith("unsloth"):
        import unsloth  # noqa: F401
    import torch

    torch.manual_seed(0)
    t_load = time.time()
    model, mult, desc = build(mode, model_dir)
    load_s = time.time() - t_load
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    from pipeline.train.plan import count_params

    n_params = count_params(json.loads((Path(model_dir) / "config.json").read_text()))[0]
    batches = [torch.randint(0, 128000, (MICRO, SEQ), device="cuda") for _ in range(3)]
    torch.cuda.reset_peak_memory_stats()

    def step(i):
        x = batches[i % len(batches)]
        with _amp():
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for i in range(2):
        step(i)
    torch.cuda.synchronize()
    t0 = time.time()
    for i in range(steps):
        loss = step(i)
    torch.cuda.synchronize()
    dt = (time.time() - t0) / steps
    tok_s = MICRO * SEQ / dt
    if PROFILE:
        _profile(lambda: step(0), mode)
    return {"mode": mode, "desc": desc, "tok_s": tok_s, "step_s": dt, "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
            "mfu_4n": tok_s * 4 * n_params / PEAK_BF16, "hfu": tok_s * mult * n_params / PEAK_BF16,
            "loss": float(loss), "load_s": load_s}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if len(sys.argv) > 1 else 2)
    cmd = sys.argv[1]
    if cmd == "make-model":
        make_model(sys.argv[2])
        return
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 4
    if cmd == "fp8-check":
        fp8_check()
        return
    if cmd == "nf4-check":
        nf4_check()
        return
    if cmd == "gemm":
        rows = gemm()
        print("\n| GEMM (8192 tokens) | bf16 TFLOP/s | FP8 row-wise TFLOP/s | speed-up |\n|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['gemm']} | {r['bf16_tflops']:.0f} | {r['fp8_tflops']:.0f} | {r['speedup']:.2f}x |")
        return
    if cmd == "layers":
        rows = layers()
        print("\n| LoRA layer r=128 (8192 tokens, fwd+bwd) | bf16 ms | ours FP8 ms | torchao row-wise ms | "
              "ours vs bf16 | ours vs torchao |\n|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['layer']} | {r['bf16']:.2f} | {r['ours_fp8']:.2f} | {r['torchao_rowwise']:.2f} | "
                  f"{r['bf16'] / r['ours_fp8']:.2f}x | {r['torchao_rowwise'] / r['ours_fp8']:.2f}x |")
        return
    if cmd == "one":
        mode = sys.argv[2]
        if mode.startswith("pack_"):
            n_rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 640
            res = pack_one(mode, sys.argv[3], n_rows)
        elif mode.startswith("qlora_"):
            res = qlora_one(mode, sys.argv[3], steps)
        else:
            res = one(mode, sys.argv[3], steps)
        print("RESULT " + json.dumps(res), flush=True)
        return
    model_dir = sys.argv[2]
    modes = sys.argv[sys.argv.index("--modes") + 1].split(",") if "--modes" in sys.argv else MODES
    if cmd == "pack":
        modes = sys.argv[sys.argv.index("--modes") + 1].split(",") if "--modes" in sys.argv else \
            ["pack_anchor", "pack_unsloth", "pack_ours", "pack_ours_fp8", "pack_ours_padded"]
        rows_arg = ["--rows", sys.argv[sys.argv.index("--rows") + 1]] if "--rows" in sys.argv else []
    elif cmd == "qlora":
        modes, rows_arg = ["unsloth_qlora", "qlora_mb1_8bit"], []
    else:
        rows_arg = []
    out = Path(os.environ.get("OUT", "/tmp")) / "train_gpu.jsonl"
    results = []
    for mode in modes:
        t0 = time.time()
        p = subprocess.run([sys.executable, "-m", "bench.train_gpu", "one", mode, model_dir, "--steps", str(steps), *rows_arg,
                            *(["--profile"] if PROFILE else [])],
                           capture_output=True, text=True, timeout=400, cwd=ROOT)
        for ln in p.stdout.splitlines():
            if ln.startswith(("VARLEN_CHECK", "PROFILE", "PLAN")):
                print(ln, flush=True)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line:
            r = json.loads(line[7:])
        else:
            r = {"mode": mode, "error": (p.stderr or p.stdout)[-1500:]}
        r["wall_s"] = time.time() - t0
        results.append(r)
        with out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "error"}),
              (r.get("error", "")[-600:] if "error" in r else ""), flush=True)
    if cmd == "pack":
        base = next((r for r in results if r["mode"] == "pack_anchor" and "error" not in r), None)
        print("\n| stack | what | real tok/s | vs anchor | timed s | micro-steps | peak GiB |\n|---|---|---:|---:|---:|---:|---:|")
        for r in results:
            if "error" in r:
                print(f"| {r['mode']} | FAILED | | | | | |")
                continue
            ratio = f"{r['real_tok_s'] / base['real_tok_s']:.2f}x" if base else "-"
            print(f"| {r['mode']} | {r['desc']} | {r['real_tok_s']:.0f} | {ratio} | {r['timed_s']:.1f} | {r['steps']} | "
                  f"{r['peak_gib']:.1f} |")
        return
    print("\n| stack | what | tok/s | step s | peak GiB | MFU 4N | HFU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['mode']} | FAILED | | | | | |")
        else:
            print(f"| {r['mode']} | {r['desc']} | {r['tok_s']:.0f} | {r['step_s']:.3f} | {r['peak_gib']:.1f} | "
                  f"{r['mfu_4n']:.1%} | {r['hfu']:.1%} |")


if __name__ == "__main__":
    main()
