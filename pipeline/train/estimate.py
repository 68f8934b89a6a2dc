"""How long a training will take on this machine, from measurements rather than constants.

    from pipeline.train.estimate import estimate
    e = estimate(cfg, plan)       # Estimate: seconds, and where every figure comes from
    e.describe()                  # "160 steps x 4 rows x ~459 tokens at ~108 tok/s ... about 49 min"

The parts, each named with its source in `basis`:
- tokens per row: the prepared data's report (measured on every row); before the data is prepared, a guess;
- training speed: the median tokens/s of the newest finished run here with the same model, device kind,
  precision and LoRA rank or full fine-tuning (else the same model and device kind); before any, a rough figure for the model's
  size and this machine's cores, said to be one;
- evaluation passes: one every eval_steps and one at the end unless the last step had one (the trainer's own
  rule, pipeline/train/stage.py), each a forward pass over the eval rows at 2.5x the training speed (forward
  only; 103 s measured for 60 rows of the CPU recipe, 2.5x its 108 tokens/s predicts 102 s);
- the rest (loading the model and the data, writing the adapter): what the same run spent before its first
  and after its last step, else 30 s.
The New-job page shows it before Submit; tests/unit/test_train_estimate.py checks it against real runs.
"""
from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field

from core.errors import SqlgenieError
from pipeline import config, runs
from pipeline.config import RunConfig
from pipeline.data import prepare

FORWARD_SPEEDUP = 2.5       # a forward pass over a row vs a LoRA training step over it (see the docstring)
GUESS_TOKENS_PER_ROW = 460  # the bundled data's mean prompt+completion without sample rows (report.json)
OTHER_S = 30.0              # loading and saving, before a run here measured it


@dataclass
class Estimate:
    seconds: float
    steps: int
    rows_per_step: int
    tokens_per_row: float
    tokens_per_s: float
    eval_passes: int
    eval_seconds: float
    other_seconds: float
    basis: list[str] = field(default_factory=list)

    def describe(self) -> str:
        mins = self.seconds / 60
        when = f"about {mins:.0f} min" if mins >= 2 else f"about {self.seconds:.0f} s"
        evals = (f" + {self.eval_passes} eval-loss pass{'es' if self.eval_passes != 1 else ''} "
                 f"(~{self.eval_seconds / 60:.1f} min)" if self.eval_passes else "")
        return (f"{when}: {self.steps} steps x {self.rows_per_step} rows x ~{self.tokens_per_row:.0f} tokens at "
                f"~{self.tokens_per_s:,.0f} tok/s{evals} + ~{self.other_seconds:.0f} s loading and saving ("
                + "; ".join(self.basis) + ")")


def eval_passes(steps: int, eval_steps: int) -> int:
    """Evaluations a run of `steps` makes: one every eval_steps, and one at the end unless the last step had one."""
    return steps // eval_steps + (1 if steps % eval_steps else 0)


def _eval_rows(cfg: RunConfig, train_rows: int | None) -> int:
    if cfg.data.eval_sources:
        return sum(s.max_rows or 200 for s in cfg.data.eval_sources)
    return int((train_rows or 0) * cfg.data.eval_fraction)


def _data(cfg: RunConfig) -> tuple[int | None, float, str]:
    """(train rows, tokens per row, basis) from the prepared data's report, else a guess."""
    report = runs.prepared_dir(cfg, prepare.fingerprint(cfg)) / "report.json"
    try:
        rep = json.loads(report.read_text())
        return rep["train_rows"], float(rep["tokens"]["mean"]), "tokens per row measured on the prepared data"
    except (OSError, ValueError, KeyError, TypeError):
        return None, float(GUESS_TOKENS_PER_ROW), "tokens per row guessed until the data is prepared"


def _measured(cfg: RunConfig, plan) -> tuple[float, float, str] | None:
    """(tokens/s, other seconds, basis) from the newest finished run here that trained like this one."""
    best = None
    for r in runs.list_runs():
        if r.status != "succeeded":
            continue
        try:
            other = config.loads((r.dir / "config.yaml").read_text(), f"run {r.id}", validate=False)
            p = json.loads((r.dir / "plan.json").read_text())
            res = json.loads(r.result_path.read_text())
        except (OSError, ValueError, SqlgenieError):      # a damaged run measures nothing
            continue
        if other.model.name_or_path != cfg.model.name_or_path or p["device"]["kind"] != plan.device.kind:
            continue
        shape = lambda c: "full fine-tuning" if c.train.method == "full" else f"LoRA r{c.train.lora.r}"  # noqa: E731
        same = p["precision"] == plan.precision and shape(other) == shape(cfg)
        if best is not None and (best[0] or not same):
            continue
        recs = runs.read_metrics(r)
        tps = [m["tokens_per_s"] for m in recs if m.get("tokens_per_s")]
        if not tps:
            continue
        speed = statistics.median(tps)
        ends = [m["elapsed_s"] for m in recs if m.get("elapsed_s") is not None]
        rest = max(0.0, float(res.get("seconds", 0)) - (ends[-1] if ends else 0.0))   # before and after the steps
        best = (same, speed, rest, f"{speed:,.0f} tok/s: median of run {r.id}"
                + ("" if same else f" ({p['precision']}, {shape(other)})"))
    return None if best is None else best[1:]


def estimate(cfg: RunConfig, plan) -> Estimate:
    rows, per_row, data_basis = _data(cfg)
    batch = cfg.train.batch_size * cfg.train.grad_accum * max(1, plan.world_size)
    steps = (cfg.train.max_steps if cfg.train.max_steps > 0
             else math.ceil((rows or 20000) * cfg.train.epochs / batch))
    basis = [data_basis + ("" if rows or cfg.train.max_steps > 0 else "; 20,000 rows assumed")]
    got = _measured(cfg, plan)
    if got:
        speed, other_s, why = got
        basis.append(why)
    else:
        cores = os.cpu_count() or 2
        speed = (110 * cores / 2 * 135e6 / plan.params) if plan.device.kind == "cpu" else (19000 * 8e9 / plan.params)
        other_s = OTHER_S
        basis.append("a rough speed for this model's size and this machine until a run here measures it")
    passes = (eval_passes(steps, cfg.train.eval_steps)
              if (cfg.data.eval_sources or cfg.data.eval_fraction) else 0)
    eval_s = passes * _eval_rows(cfg, rows) * per_row / (speed * FORWARD_SPEEDUP)
    train_s = steps * batch * per_row / speed
    return Estimate(train_s + eval_s + other_s, steps, batch, per_row, speed, passes, eval_s, other_s, basis)
