"""What a model folder says about the model, read from config.json alone (no weights loaded).

    from core.modelinfo import read_model_config, count_params
    mc = read_model_config(Path("model"))          # ConfigError if there is no config.json
    params, shapes = count_params(mc)              # total parameters, (in, out) of each LoRA-able projection
    card = read_card(adapter_dir)                  # sqlgenie.json beside an adapter / export ({} if none)
    draft = draft_head(model_dir)                  # the model's EAGLE draft head: {path, report} or None
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import ConfigError
from core.files import write_atomic


def read_model_config(path: Path) -> dict:
    cfg_file = Path(path) / "config.json"
    if not cfg_file.is_file():
        raise ConfigError([f"model.name_or_path: {path} has no config.json (give a local folder with config.json and "
                           "the weights; nothing is downloaded at run time)"])
    return json.loads(cfg_file.read_text())


def text_config(mc: dict) -> dict:
    """The language model's part of a config (multimodal configs nest it under text_config)."""
    return mc.get("text_config", mc)


def count_params(mc: dict) -> tuple[int, dict[str, tuple[int, int]]]:
    """Parameter count of a Llama-style decoder, and (in, out) of each projection that LoRA can target."""
    mc = text_config(mc)
    h, inter, layers = mc["hidden_size"], mc["intermediate_size"], mc["num_hidden_layers"]
    heads = mc["num_attention_heads"]
    kv = mc.get("num_key_value_heads", heads)
    hd = mc.get("head_dim") or h // heads
    vocab = mc["vocab_size"]
    shapes = {"q_proj": (h, heads * hd), "k_proj": (h, kv * hd), "v_proj": (h, kv * hd), "o_proj": (heads * hd, h),
              "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}
    per_layer = sum(i * o for i, o in shapes.values()) + 2 * h
    emb = vocab * h * (1 if mc.get("tie_word_embeddings") else 2)
    return layers * per_layer + emb + h, shapes


# ------------------------------------------------------------------------------------ model card
CARD_FILE = "sqlgenie.json"


def read_card(folder: Path | None) -> dict:
    """The model card sqlgenie wrote beside an adapter or export ({} when there is none): base model, the
    prompt contract, data fingerprint, run, evaluation results."""
    if folder is None:
        return {}
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_card(folder: Path, card: dict) -> Path:
    path = Path(folder) / CARD_FILE
    write_atomic(path, json.dumps(card, indent=2, ensure_ascii=False))
    return path


# ------------------------------------------------------------------------------------ draft head
DRAFT_DIR = "draft"            # <model>/draft: an EAGLE draft head for this model (pipeline/export/draft_head.py)
DRAFT_REPORT = "draft.json"


def draft_head(model_dir: Path) -> dict | None:
    """{path, report} of the draft head trained for this model folder, or None when it has none (or a broken
    one: weights or config missing)."""
    d = Path(model_dir) / DRAFT_DIR
    if not ((d / "config.json").is_file() and (d / "model.safetensors").is_file()):
        return None
    try:
        report = json.loads((d / DRAFT_REPORT).read_text())
    except (OSError, json.JSONDecodeError):
        report = {}
    return {"path": d, "report": report}
