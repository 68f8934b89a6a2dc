"""The playground client's own work per answer (prompt ids, SQL extraction, repair, check, format), this code vs
another checkout of the project, in the same run.

    sqlgenie bench client_work --baseline /tmp/base --rounds 5      # git worktree add /tmp/base <rev>

Every hand-written OOD question (data/ood: 216, grouped by schema as a user asks them) goes through
`serving.text_to_sql.TextToSql.ask` with the model's HTTP call replaced by the question's reference SQL, so what is
timed is only what the client does around the model: on the H200 that was 6-7 ms of an ~85 ms answer
(bench/latency_b1.py's split). Each round runs both checkouts in fresh processes, alternating, so a noisy machine
hits both alike; prints ms per answer (mean and p50, the median over rounds) and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Reply:
    """What the completions client returns, for one answer (the question's reference SQL)."""

    def __init__(self, text: str, prompt_tokens: int):
        self.text, self.texts = text, [text]
        self.prompt_tokens, self.completion_tokens, self.prompt_token_ids, self.latency_s = prompt_tokens, 0, None, 0.0


def measure(repo: Path) -> dict:
    """One measurement of the checkout this process imports (the parent puts `repo` first on PYTHONPATH)."""
    from core import assets
    from pipeline.data import ood
    from serving.text_to_sql import TextToSql

    schemas, questions = ood.schemas(), ood.questions()
    t2s = TextToSql("http://127.0.0.1:9", assets.resolve("embedded:smollm2-135m-instruct"), model="bench")
    current: dict = {}
    t2s.client.complete = lambda ids, **kw: _Reply(current["query"], len(ids))
    times, answers = [], []
    for current in questions:
        t0 = time.perf_counter()
        ans = t2s.ask(schemas[current["db_id"]], current["question"])
        times.append(time.perf_counter() - t0)
        answers.append([ans.sql, ans.check.ok, ans.check.formatted, ans.check.errors, hash(tuple(ans.prompt_ids))])
    return {"mean_ms": 1e3 * statistics.fmean(times), "p50_ms": 1e3 * statistics.median(times), "answers": answers}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, help="another checkout of the project (e.g. a git worktree)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)   # one measurement of that checkout (child)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(a.measure)))
        return
    repos = {"this": ROOT, **({"baseline": a.baseline.resolve()} if a.baseline else {})}
    runs: dict[str, list[dict]] = {k: [] for k in repos}
    for r in range(a.rounds):
        for name, repo in repos.items():
            out = subprocess.run([sys.executable, __file__, "--measure", str(repo)], capture_output=True, text=True,
                                 cwd=repo, check=True, env=dict(os.environ, PYTHONPATH=str(repo)))
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]['mean_ms']:.2f} ms" for k, v in runs.items()), flush=True)
    res = {k: {"mean_ms": statistics.median(x["mean_ms"] for x in v), "p50_ms": statistics.median(x["p50_ms"] for x in v)}
           for k, v in runs.items()}
    if "baseline" in runs:
        same = [x == y for x, y in zip(runs["this"][0]["answers"], runs["baseline"][0]["answers"])]
        res["same_answers"] = f"{sum(same)}/{len(same)}"
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    lines = ["| checkout | client ms per answer, mean | p50 |", "|---|---|---|"]
    lines += [f"| {k} | {v['mean_ms']:.2f} | {v['p50_ms']:.2f} |" for k, v in res.items() if isinstance(v, dict)]
    if "baseline" in res:
        lines.append(f"| ratio (baseline / this) | {res['baseline']['mean_ms'] / res['this']['mean_ms']:.2f}x | "
                     f"{res['baseline']['p50_ms'] / res['this']['p50_ms']:.2f}x |")
        lines.append(f"\nsame SQL, check, formatting, errors and prompt ids: {res['same_answers']}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
