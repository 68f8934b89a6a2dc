"""Score the answers a latency run stored (bench/latency_b1.py --out JSON) on the OOD yardstick, per variant.

    sqlgenie bench score_answers docs/device/latency-h200-run11.json

When two serving variants give different greedy answers (other kernels round differently and a weakly trained
model's near-ties flip), this says whether either set is worse: EX on the OOD databases, valid SQL, runs. The
answers are the model's raw replies to the OOD questions in file order (bench/latency_b1.prompts); each is
extracted and scored as `sqlgenie evaluate --split ood` scores (pipeline/evaluate/stage.score_predictions).
Prints a table last.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pipeline.data import ood
from pipeline.data.loaders import load
from pipeline.evaluate.stage import score_predictions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("latency_json")
    a = ap.parse_args()
    runs = json.loads(Path(a.latency_json).read_text())
    by_question = {r["question"]: r for r in load(str(ood.folder())) if not r["bad"] and r["kind"] == "sql"}
    order = [q["question"] for q in ood.questions()]
    lines = ["| variant | answers | EX | valid SQL | runs |", "|---|---|---|---|---|"]
    for variant, res in runs.items():
        answers = res.get("answers") or []
        rows = [by_question[q] for q in order[: len(answers)]]
        _, m = score_predictions(rows, [[t] for t in answers])
        lines.append(f"| {variant} | {len(answers)} | {m['execution_accuracy']:.1%} | {m['valid_sql_rate']:.1%} | "
                     f"{m['runs_rate']:.1%} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
