"""Merge a LoRA adapter into its base model (bf16, never the 4-bit model) and save a servable folder; a full
fine-tune's model/ (train.method full) is written the same way, in bf16, with nothing to merge.

    from pipeline.export.merge import merge_adapter, verify_merge
    merge_adapter(base_dir, adapter_dir, out_dir, tokenizer, card_text)
    verify_merge(base_dir, adapter_dir, out_dir)      # merged logits vs base+adapter logits

The folder gets safetensors, the tokenizer with its chat template, generation_config.json (eos = the end
of turn, so servers stop there) and a README model card. An adapter trained for another base (different
layer shapes or module names) is refused with one line that says so, before anything is written.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import SqlgenieError
from core.modelinfo import write_card
from pipeline.export.compare import DEFAULT_PROMPTS, compare_logits


class MergeError(SqlgenieError):
    """The adapter does not belong to this base model, or the merged model does not match."""


def check_adapter_matches(base_dir: Path, adapter_dir: Path) -> None:
    """Compare the adapter's LoRA matrix shapes with the base's layer shapes (reads headers only)."""
    from safetensors import safe_open

    cfg = json.loads((base_dir / "config.json").read_text())
    files = list(adapter_dir.glob("adapter_model.safetensors"))
    if not files:
        raise MergeError(f"{adapter_dir}: no adapter_model.safetensors (not a PEFT LoRA adapter folder)")
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    n_head = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or hidden // n_head
    kv = cfg.get("num_key_value_heads", n_head) * head_dim
    expect_in = {"q_proj": hidden, "k_proj": hidden, "v_proj": hidden, "o_proj": n_head * head_dim,
                 "gate_proj": hidden, "up_proj": hidden, "down_proj": inter}
    expect_out = {"q_proj": n_head * head_dim, "k_proj": kv, "v_proj": kv, "o_proj": hidden,
                  "gate_proj": inter, "up_proj": inter, "down_proj": hidden}
    layers = cfg["num_hidden_layers"]
    with safe_open(files[0], framework="pt") as st:
        for key in st.keys():
            mod = next((m for m in expect_in if f".{m}." in key), None)
            layer = next((int(p) for p in key.split(".") if p.isdigit()), None)
            if layer is not None and layer >= layers:
                raise MergeError(f"adapter {adapter_dir} was trained for another base: it has layer {layer}, "
                                 f"{base_dir} has {layers} layers")
            if mod is None:
                continue
            shape = st.get_slice(key).get_shape()
            if "lora_A" in key and shape[1] != expect_in[mod]:
                raise MergeError(f"adapter {adapter_dir} was trained for another base: {key} expects inputs of "
                                 f"{shape[1]}, the base's {mod} takes {expect_in[mod]} ({base_dir})")
            if "lora_B" in key and shape[0] != expect_out[mod]:
                raise MergeError(f"adapter {adapter_dir} was trained for another base: {key} has {shape[0]} "
                                 f"outputs, the base's {mod} has {expect_out[mod]} ({base_dir})")


def readme(card: dict) -> str:
    """The human model card (README.md) from the machine one (sqlgenie.json)."""
    base = card.get("base_model", "?")
    c = card.get("contract") or {}
    lines = [f"---\nbase_model: {base}\nlibrary_name: transformers\ntags: [text-to-sql, sqlgenie]\n---\n",
             f"# {card.get('run') or 'sqlgenie model'}\n",
             f"A text-to-SQL model: `{base}` with a LoRA adapter merged in (bf16).\n",
             "## Prompt contract (sqlgenie.json)\n",
             f"System prompt (the schema replaces {{schema}}{' together with INSERT sample rows' if c.get('include_sample_rows') else ''}):\n",
             "```\n" + str(c.get("system_prompt", "")) + "\n```\n",
             f"User message: the question. SQL dialect: {c.get('dialect', 'sqlite')}. Trained at max {c.get('max_seq_len')} "
             "tokens. Render with the chat template in tokenizer_config.json, tokenize without adding special tokens, "
             "decode greedily and stop at the end of turn.\n"]
    for key in ("data", "training", "evaluation"):
        if card.get(key):
            lines.append(f"## {key.title()}\n\n```json\n{json.dumps(card[key], indent=2)}\n```\n")
    lines.append("Made with sqlgenie (`sqlgenie export`).\n")
    return "\n".join(lines)


def is_whole_model(folder: Path) -> bool:
    """A full fine-tune's model/ folder (train.method full): weights of its own, no adapter to merge."""
    return (Path(folder) / "config.json").is_file() and not (Path(folder) / "adapter_config.json").is_file()


def _trained(base_dir: Path, adapter_dir: Path):
    """base + adapter (unmerged), or a full fine-tune's whole model, in bf16."""
    import torch
    from transformers import AutoModelForCausalLM

    if is_whole_model(adapter_dir):
        return AutoModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.bfloat16)
    from peft import PeftModel

    check_adapter_matches(base_dir, adapter_dir)
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.bfloat16),
                                     str(adapter_dir))


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, tokenizer, card: dict) -> Path:
    """base + adapter merged into one bf16 model (a full fine-tune's model: written in bf16 as it is)."""
    from transformers import GenerationConfig

    model = _trained(base_dir, adapter_dir)
    if not is_whole_model(adapter_dir):
        model = model.merge_and_unload()
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=False)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    merged_card = {**card, "kind": "merged", "merged_from": str(adapter_dir)}
    write_card(out_dir, merged_card)
    (out_dir / "README.md").write_text(readme(merged_card), encoding="utf-8")
    return out_dir


def verify_merge(base_dir: Path, adapter_dir: Path, merged_dir: Path, tokenizer,
                 prompts: list[str] | None = None) -> dict:
    """Logits of the saved merged model vs base + adapter (unmerged), both in bf16 on the same inputs."""
    import torch
    from transformers import AutoModelForCausalLM

    ref = _trained(base_dir, adapter_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.bfloat16).eval()
    ids = [tokenizer(p, return_tensors="pt").input_ids for p in prompts or DEFAULT_PROMPTS]
    v = compare_logits(ref, merged, ids)
    # bf16 has 8 bits of mantissa: a relative difference of a few 2^-8 is rounding, not a wrong merge
    if v["max_abs_logit_diff"] > 0.05 * max(v["logit_scale"], 1.0):
        raise MergeError(f"merged model differs from base + adapter: max |logit diff| {v['max_abs_logit_diff']:.3f} "
                         f"(logit scale {v['logit_scale']:.1f}); the merge is wrong")
    return v
