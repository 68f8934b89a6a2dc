"""Write a Llama-architecture model (Llama-3.x, SmolLM2, ...) as a GGUF file with the `gguf` package.

    from pipeline.export.gguf_file import write_gguf, verify_gguf
    write_gguf(Path("merged"), Path("model-q8_0.gguf"), "q8_0")     # f16 | bf16 | q8_0
    verify_gguf(Path("merged"), Path("model-q8_0.gguf"))            # logits / top-1 vs the source

llama.cpp's converter is not pip-installable, so the file is assembled here: llama.* hyperparameters,
the byte-level BPE tokenizer (tokens, token types, merges, pre-tokenizer name, special ids), the chat
template, and the tensors under GGUF names. Q and K projections are stored in GGUF's rotary layout
(each head's two rotary halves interleaved), which readers (llama.cpp, transformers) undo. In q8_0 the
norms stay f32, as llama.cpp does; everything else with rows divisible by 32 becomes Q8_0.
Llama-3 rope scaling is written as the `rope_freqs` tensor llama.cpp expects.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from core.errors import SqlgenieError
from core.modelinfo import read_card
from pipeline.export.compare import DEFAULT_PROMPTS, compare_logits


class GGUFExportError(SqlgenieError):
    """The model cannot be written as GGUF (architecture, tokenizer) or the file does not match it."""


KINDS = {"f16": ("F16", 1), "bf16": ("BF16", 32), "q8_0": ("Q8_0", 7)}  # ggml type, general.file_type

_LAYER_NAMES = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf_name: str) -> str:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf_name in fixed:
        return fixed[hf_name]
    parts = hf_name.split(".")
    if parts[:2] == ["model", "layers"] and hf_name.endswith(".weight"):
        inner = ".".join(parts[3:-1])
        if inner in _LAYER_NAMES:
            return f"blk.{parts[2]}.{_LAYER_NAMES[inner]}.weight"
    raise GGUFExportError(f"GGUF export: no GGUF name for tensor {hf_name!r} (not a plain Llama layout)")


def to_rotary_interleaved(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF stores each head's rotary dims as [first half | second half]; GGUF pairs them up (x0,x1 adjacent)."""
    rows = w.shape[0]
    half = rows // n_head // 2
    return w.reshape(n_head, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_rope_freqs(cfg: dict) -> np.ndarray | None:
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if rs.get("rope_type", rs.get("type")) != "llama3":
        return None
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = rs.get("rope_theta", cfg.get("rope_theta", 10000.0))
    factor, lo, hi = rs["factor"], rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old_ctx = rs.get("original_max_position_embeddings", 8192)
    out = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi / (1.0 / base ** (i / dim))
        if wavelen < old_ctx / hi:
            out.append(1.0)
        elif wavelen > old_ctx / lo:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _tokenizer_fields(model_dir: Path) -> dict:
    from transformers import AutoTokenizer

    tok_file = model_dir / "tokenizer.json"
    if not tok_file.is_file():
        raise GGUFExportError(f"GGUF export: {model_dir} has no tokenizer.json (a fast byte-level BPE tokenizer "
                              "is needed; save the tokenizer beside the model)")
    spec = json.loads(tok_file.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise GGUFExportError(f"GGUF export: tokenizer model is {model.get('type')!r}; only byte-level BPE "
                              "(GPT-2 / Llama-3 / SmolLM2 style) is supported")
    tok = AutoTokenizer.from_pretrained(model_dir)
    vocab = dict(model["vocab"])
    added = {a["content"]: (a["id"], a.get("special", False)) for a in spec.get("added_tokens", [])}
    for text, (i, _) in added.items():
        vocab[text] = i
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [5] * size  # 5 = unused
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = 1  # normal
    for text, (i, special) in added.items():
        types[i] = 3 if special else 4  # control / user-defined
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    pre = "llama-bpe" if size >= 128000 else "smollm" if size == 49152 else "gpt2"
    template = tok.chat_template if isinstance(tok.chat_template, str) else None
    return {"tokens": tokens, "types": types, "merges": merges, "pre": pre, "template": template,
            "bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id, "unk": tok.unk_token_id,
            "add_bos": bool(getattr(tok, "add_bos_token", False))}


def write_gguf(model_dir: Path, dest: Path, kind: str = "q8_0", name: str | None = None, progress: bool = True) -> Path:
    """Write `model_dir` (HF safetensors folder, Llama architecture) to the GGUF file `dest`."""
    import gguf
    from safetensors import safe_open

    if kind not in KINDS:
        raise GGUFExportError(f"GGUF type {kind!r} is not one of {', '.join(KINDS)}")
    cfg = json.loads((model_dir / "config.json").read_text())
    if cfg.get("model_type") != "llama":
        raise GGUFExportError(
            f"GGUF export supports Llama-architecture models (Llama-3.x, SmolLM2, ...); {model_dir} is "
            f"{cfg.get('model_type')!r}. Export `merged` and convert it with llama.cpp's convert_hf_to_gguf.py")
    tk = _tokenizer_fields(model_dir)
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    ggml_type_name, file_type = KINDS[kind]
    qtype = getattr(gguf.GGMLQuantizationType, ggml_type_name)

    w = gguf.GGUFWriter(str(dest), arch="llama")
    w.add_name(name or model_dir.name)
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    rope = cfg.get("rope_parameters") or {}
    w.add_rope_freq_base(float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-5)))
    w.add_rope_dimension_count(head_dim)
    if head_dim * n_head != cfg["hidden_size"]:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_vocab_size(len(tk["tokens"]))
    w.add_file_type(file_type)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(tk["pre"])
    w.add_token_list(tk["tokens"])
    w.add_token_types(tk["types"])
    w.add_token_merges(tk["merges"])
    if tk["bos"] is None:  # readers (transformers' GGUF loader) need a bos id; add_bos stays false
        tk["bos"] = tk["eos"]
    for key, adder in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("pad", w.add_pad_token_id),
                       ("unk", w.add_unk_token_id)):
        if tk[key] is not None:
            adder(tk[key])
    w.add_add_bos_token(tk["add_bos"])
    if tk["template"]:
        w.add_chat_template(tk["template"])
    card = read_card(model_dir)
    if card:  # the prompt contract travels inside the file (llama.cpp keeps unknown keys)
        w.add_string("sqlgenie.card", json.dumps(card, ensure_ascii=False))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    freqs = _llama3_rope_freqs(cfg)
    if freqs is not None:
        w.add_tensor("rope_freqs.weight", freqs)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise GGUFExportError(f"GGUF export: no *.safetensors in {model_dir}")
    for f in files:
        with safe_open(f, framework="pt") as st:
            for key in st.keys():
                if key == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                    continue
                arr = st.get_tensor(key).float().numpy()
                if key.endswith("q_proj.weight"):
                    arr = to_rotary_interleaved(arr, n_head)
                elif key.endswith("k_proj.weight"):
                    arr = to_rotary_interleaved(arr, n_kv)
                out_name = gguf_name(key)
                if arr.ndim == 1:  # norms: f32 in every kind
                    w.add_tensor(out_name, arr.astype(np.float32))
                elif qtype == gguf.GGMLQuantizationType.F16:
                    w.add_tensor(out_name, arr.astype(np.float16))
                elif qtype == gguf.GGMLQuantizationType.Q8_0 and arr.shape[-1] % 32:
                    w.add_tensor(out_name, arr.astype(np.float16))  # rows not divisible into Q8_0 blocks
                else:
                    w.add_tensor(out_name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=progress)
    w.close()
    return dest


def verify_gguf(source_dir: Path, gguf_path: Path, prompts: list[str] | None = None) -> dict:
    """Load the GGUF back with transformers and compare next-token logits and token ids with the source."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = prompts or DEFAULT_PROMPTS
    src_tok = AutoTokenizer.from_pretrained(source_dir)
    g_tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    src = AutoModelForCausalLM.from_pretrained(source_dir, dtype=torch.float32).eval()
    back = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32).eval()
    ids = [src_tok(p, return_tensors="pt").input_ids for p in prompts]
    same_ids = all(g_tok(p, return_tensors="pt").input_ids.tolist() == i.tolist() for p, i in zip(prompts, ids))
    v = compare_logits(src, back, ids)
    return {"tokenizer_ids_equal": same_ids, "max_abs_logit_diff": v["max_abs_logit_diff"],
            "top1_agreement": v["top1_agreement"], "positions": v["positions"]}
