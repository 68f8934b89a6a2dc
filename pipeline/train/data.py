"""Training data: the prepared Parquet (pipeline/data/prepare.py) as datasets with input_ids + labels.

Labels are the input ids with the prompt masked to -100 (loss on the SQL completion only), built from
`prompt_length`. If the run's data was never prepared, it is prepared first.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import DataError


def _labels(batch: dict) -> dict:
    return {"labels": [[-100] * p + ids[p:] for ids, p in zip(batch["input_ids"], batch["prompt_length"])]}


def load_split(path: Path):
    import datasets

    ds = datasets.Dataset.from_parquet(str(path))
    ds = ds.select_columns(["input_ids", "prompt_length"]).map(_labels, batched=True, desc=f"labels for {path.name}")
    return ds.remove_columns("prompt_length")


def ensure_prepared(cfg: RunConfig) -> Path:
    from pipeline.data import prepare

    import json

    out = cfg.data_dir()
    report = out / "report.json"
    current = json.loads(json.dumps(prepare.fingerprint(cfg)))
    if not (out / "train.parquet").is_file() or not report.is_file():
        print(f"[train] no prepared data at {out}: preparing it first", flush=True)
    elif json.loads(report.read_text()).get("fingerprint") != current:
        print(f"[train] the data config changed since {out} was prepared: preparing it again", flush=True)
    else:
        return out
    print(prepare.run(cfg).summary(), flush=True)
    return out


def load_train_eval(cfg: RunConfig):
    out = ensure_prepared(cfg)
    train = load_split(out / "train.parquet")
    if len(train) == 0:
        raise DataError(f"{out / 'train.parquet'} has no rows: nothing to train on")
    ev = load_split(out / "eval.parquet") if (out / "eval.parquet").is_file() else None
    return train, ev
