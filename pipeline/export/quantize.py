"""Quantize a merged model with llm-compressor: FP8_DYNAMIC, NVFP4, W4A16 (GPTQ); `auto` picks by GPU.

    from pipeline.export.quantize import pick_format, quantize, calibration_texts
    fmt, why = pick_format("auto", "9.0")            # -> ("fp8", "compute capability 9.0 (Hopper) ...")
    quantize(merged_dir, out_dir, "w4a16", calibration_texts(rows, formatter, 128))

Calibration uses real training prompts + their SQL (the reference design's 128 SQL samples), drawn
round-robin across sql_complexity classes so joins, CTEs, window functions ... are all represented.
`lm_head` stays unquantized. Output is saved compressed (compressed-tensors), which vLLM loads.
"""
from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from core.errors import SqlgenieError
from core.modelinfo import CARD_FILE
from pipeline.export.compare import compare_logits


class QuantizeError(SqlgenieError):
    """Quantization could not run (format, hardware, calibration data)."""


SCHEMES = {"fp8": "FP8_DYNAMIC", "nvfp4": "NVFP4", "w4a16": "W4A16"}
NEEDS_CALIBRATION = {"nvfp4", "w4a16"}


def pick_format(fmt: str, capability: str | None) -> tuple[str, str]:
    """`auto` -> the format the target GPU runs natively; anything else is kept, with the reason."""
    if fmt != "auto":
        return fmt, f"{fmt} requested"
    if capability is None:
        return "w4a16", "no GPU here and no export.target_gpu: W4A16 (4-bit weights, 16-bit activations) runs on every GPU"
    major, minor = (int(x) for x in capability.split(".")[:2])
    if major >= 10:
        return "nvfp4", f"compute capability {capability} (Blackwell) has FP4 tensor cores: NVFP4"
    if (major, minor) >= (8, 9):
        return "fp8", f"compute capability {capability} (Ada/Hopper) has FP8 tensor cores: FP8_DYNAMIC, no calibration"
    return "w4a16", f"compute capability {capability} has no FP8/FP4 tensor cores: W4A16 (GPTQ)"


def local_capability() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - no CUDA runtime: same as no GPU
        pass
    return None


def calibration_texts(rows: list[dict], render, n: int, seed: int = 0) -> list[str]:
    """n full conversations (prompt + SQL), round-robin over sql_complexity classes."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_class[r.get("sql_complexity") or "other"].append(r)
    rng = random.Random(seed)
    for v in by_class.values():
        rng.shuffle(v)
    out: list[str] = []
    classes = sorted(by_class)
    while len(out) < n and any(by_class.values()):
        for c in classes:
            if by_class[c] and len(out) < n:
                out.append(render(by_class[c].pop()))
    if not out:
        raise QuantizeError("no calibration rows: the training data is empty")
    return out


def w4a16_group_size(config) -> int:
    """128 (the usual W4A16 group) when every Linear's input width divides by it, else 64 or 32
    (SmolLM2-135M's 576-wide layers take 64)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    widths = {config.hidden_size, config.intermediate_size, config.num_attention_heads * head_dim}
    for gs in (128, 64, 32):
        if all(w % gs == 0 for w in widths):
            return gs
    raise QuantizeError(f"W4A16: layer widths {sorted(widths)} do not divide into groups of 32; use fp8")


def quantize(merged_dir: Path, out_dir: Path, fmt: str, texts: list[str] | None = None, kv_cache_fp8: bool = False,
             max_seq_len: int = 1024) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if fmt not in SCHEMES:
        raise QuantizeError(f"quantization format {fmt!r} is not one of {', '.join(SCHEMES)}")
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    tok = AutoTokenizer.from_pretrained(merged_dir)
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.bfloat16)
    kv = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True} if kv_cache_fp8 else None
    if fmt == "w4a16":
        gs = w4a16_group_size(model.config)
        weights = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": gs}
        recipe = GPTQModifier(config_groups={"group_0": {"targets": ["Linear"], "weights": weights}},
                              ignore=["lm_head"], kv_cache_scheme=kv)
    else:
        recipe = QuantizationModifier(targets="Linear", scheme=SCHEMES[fmt], ignore=["lm_head"], kv_cache_scheme=kv)
    kw: dict = {}
    if fmt in NEEDS_CALIBRATION or kv_cache_fp8:
        if not texts:
            raise QuantizeError(f"{fmt} needs calibration prompts (export.calibration_samples)")
        from datasets import Dataset

        enc = tok(texts, truncation=True, max_length=max_seq_len, add_special_tokens=False)
        kw = {"dataset": Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}),
              "num_calibration_samples": len(texts), "max_seq_length": max_seq_len}
    oneshot(model=model, recipe=recipe, **kw)
    model.save_pretrained(str(out_dir), save_compressed=True)
    tok.save_pretrained(str(out_dir))
    for extra in ("generation_config.json", "README.md", CARD_FILE):  # the model card travels with every format
        if (merged_dir / extra).is_file() and not (out_dir / extra).exists():
            (out_dir / extra).write_bytes((merged_dir / extra).read_bytes())
    return out_dir


def verify_quantized(merged_dir: Path, quant_dir: Path, prompts: list[str]) -> dict:
    """Reload the compressed model (transformers decompresses it) and compare top-1 tokens with the source."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged_dir)
    src = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.bfloat16).eval()
    q = AutoModelForCausalLM.from_pretrained(quant_dir, dtype=torch.bfloat16).eval()
    ids = [tok(p, return_tensors="pt", add_special_tokens=False).input_ids[:, :512] for p in prompts]
    v = compare_logits(src, q, ids)
    return {"top1_agreement": round(v["top1_agreement"], 4), "positions": v["positions"]}
