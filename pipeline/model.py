"""The tokenizer of a run: the model's own (or model.tokenizer), with model.chat_template applied.

    from pipeline.model import load_tokenizer
    tok = load_tokenizer(cfg)      # DataError naming the folder when it does not exist
"""
from __future__ import annotations

from core import assets
from core.errors import DataError
from pipeline.config import RunConfig


def load_tokenizer(cfg: RunConfig):
    from transformers import AutoTokenizer

    ref = cfg.model.tokenizer or cfg.model.name_or_path
    path = assets.resolve(ref)
    if not path.exists():
        raise DataError(f"tokenizer '{ref}': {path} does not exist (set model.tokenizer or model.name_or_path)")
    tok = AutoTokenizer.from_pretrained(str(path))
    if cfg.model.chat_template:
        tok.chat_template = assets.chat_template_text(cfg.model.chat_template)
    return tok
