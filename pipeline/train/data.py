"""Training data: the prepared Parquet (pipeline/data/prepare.py) as datasets with input_ids + labels.

Labels are the input ids with the prompt masked to -100 (loss on the SQL completion only), built from
`prompt_length`. If the run's data was never prepared (or its config changed), it is prepared first.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import DataError
from pipeline.config import RunConfig
from pipeline.data import prepare


def _labels(batch: dict) -> dict:
    return {"labels": [[-100] * p + ids[p:] for ids, p in zip(batch["input_ids"], batch["prompt_length"])]}


def load_split(path: Path):
    import datasets

    ds = datasets.Dataset.from_parquet(str(path))
    ds = ds.select_columns(["input_ids", "prompt_length"]).map(_labels, batched=True, desc=f"labels for {path.name}")
    return ds.remove_columns("prompt_length")


def load_train_eval(cfg: RunConfig):
    """(train dataset, eval dataset or None, the prepare report)."""
    out = prepare.ensure_prepared(cfg)
    train = load_split(out / "train.parquet")
    if len(train) == 0:
        raise DataError(f"{out / 'train.parquet'} has no rows: nothing to train on")
    ev = load_split(out / "eval.parquet") if (out / "eval.parquet").is_file() else None
    return train, ev, json.loads((out / "report.json").read_text())
