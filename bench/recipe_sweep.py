"""Recipe variants trained at once on one machine, then each scored on the OOD yardstick (greedy + repair).

The CPU recipe's choices (configs/smollm2-cpu.yaml) are made on the yardstick, not on eval loss; training each
variant on the 2-core CPU takes ~45 min, so on a GPU every variant trains at the same time, exactly as the CPU
trains it (fp32, unpacked rows, the same rows and seed), and the chosen one is then trained on the CPU itself
(bench/train_cpu.py). Each variant is `NAME=OVERRIDES` (space-separated dotted overrides; empty: the config).

    sqlgenie bench recipe_sweep --variant base= --variant lr3=train.learning_rate=3e-4 [--config ...]
    bash bench/device.sh run sqlgenie bench recipe_sweep --variant ...      # on the GPU machine
    sqlgenie bench recipe_sweep --variant a= --extra train.max_steps=2 --eval-extra "--limit 3"   # a dry run

Writes OUT/recipe-sweep.json (each variant's overrides, steps, train seconds, eval loss, EX, valid, runs) and
prints the table last; each variant's train and eval log go to OUT/NAME-train.log, OUT/NAME-eval.log.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from core.settings import REPO_ROOT, home
from pipeline import runs

FIXED = ["train.precision=fp32", "train.packing=false"]     # as a CPU trains it


def _sqlgenie(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=REPO_ROOT, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def trained(folder: Path) -> runs.Run | None:
    """The newest run under a variant's train.output_dir that has an adapter or a full fine-tune's model."""
    found = [runs.open_run(p.parent) for p in folder.glob("*/run.json")]
    found = [r for r in found if r.has_output()]
    return max(found, key=lambda r: r.dir.name, default=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--config", default="configs/smollm2-cpu.yaml")
    ap.add_argument("--variant", action="append", required=True, help="NAME=OVERRIDES (repeat)")
    ap.add_argument("--extra", default="", help="overrides added to every variant (a dry run: train.max_steps=2)")
    ap.add_argument("--eval-extra", default="", help="evaluate arguments added to every scoring")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/out"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = dict(v.split("=", 1) if "=" in v else (v, "") for v in a.variant)
    where = {name: home() / "sweep" / name for name in variants}
    t0 = time.time()
    procs = {name: _sqlgenie(["train", "-c", a.config, *FIXED, f"train.output_dir={where[name]}",
                              *shlex.split(over), *shlex.split(a.extra)], out / f"{name}-train.log")
             for name, over in variants.items()}
    for name, p in procs.items():
        p.wait()
        print(f"{name}: trained (exit {p.returncode}) at {time.time() - t0:.0f} s", flush=True)
    runs_of = {name: trained(where[name]) for name in variants}
    evals = {name: _sqlgenie(["evaluate", "-c", a.config, "--adapter", str(r.dir), "--label", f"sweep-{name}",
                              "--split", "ood", "--repair", "--backend", "transformers", *shlex.split(a.eval_extra)],
                             out / f"{name}-eval.log")
             for name, r in runs_of.items() if r is not None}
    for p in evals.values():
        p.wait()
    rows = []
    for name, over in variants.items():
        r = runs_of[name]
        res = json.loads(r.result_path.read_text()) if r and r.result_path.is_file() else {}
        ev = runs.reread(r).evals() if r else []
        m = json.loads((ev[-1] / "metrics.json").read_text()) if ev else {}
        rows.append({"variant": name, "overrides": over or "(the config)", "steps": res.get("steps"),
                     "train_s": res.get("seconds"), "eval_loss": res.get("eval_loss"),
                     "ex": m.get("execution_accuracy"), "valid": m.get("valid_sql_rate"), "runs": m.get("runs_rate"),
                     "run": str(r.dir) if r else None})
    (out / "recipe-sweep.json").write_text(json.dumps(rows, indent=1))
    f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"   # noqa: E731
    print("| variant | overrides | steps | train s | eval loss | EX | valid | runs |\n|---|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['variant']} | {x['overrides']} | {x['steps'] or '-'} | {f(x['train_s'])} | {f(x['eval_loss'])} | "
              f"{f(x['ex'])} | {f(x['valid'])} | {f(x['runs'])} |")


if __name__ == "__main__":
    main()
