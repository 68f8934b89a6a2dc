"""What each decoding mode costs a user through the router: plain, constrained (the schema grammar), vote 8 and
constrained + vote 8, each at C concurrent clients, through the product's client (`TextToSql.ask`).

    sqlgenie bench decoding_latency --adapter RUN/adapter --limit 40 --concurrent 8          # CPU
    sqlgenie bench decoding_latency --adapter A --limit 216 \
        --concurrent 8 --rounds 2 --out $OUT/decoding.json                                              # GPU

The model is the embedded SmolLM2 with --adapter merged (bench/latency_b1.py's merge), served by the launcher's
per-device defaults (one replica behind vllm-router, as `sqlgenie serve up` starts it). The questions are the OOD
yardstick's (data/ood, grouped by schema; a schema file holds its sample rows, on which votes are decided by
execution). Every mode asks every question; rounds alternate the modes
(plain, constrained, vote8, constrained+vote8, then again) so that a drifting machine hits them alike. Per
mode: answers, failures, p50 / p90 seconds an answer, wall seconds for all, answers/s; p50 ratios against plain.
Prints one table last; --out writes the per-answer times as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench.latency_b1 import merged_model, served_variant
from pipeline.data import ood

MODES = {"plain": {}, "constrained": {"constrained": True}, "vote8": {"candidates": 8},
         "constrained+vote8": {"constrained": True, "candidates": 8}}


def questions(limit: int) -> list[dict]:
    """{schema, question}: the OOD questions in file order (grouped by schema); a schema file holds its CREATE
    TABLE statements and sample rows, as the evaluation stage gives them."""
    sch = ood.schemas()
    return [{"schema": sch[q["db_id"]], "question": q["question"]} for q in ood.questions()][:limit]


def one_mode(t2s, qs: list[dict], mode: str, concurrent: int) -> dict:
    kw = MODES[mode]

    def ask(q: dict) -> tuple[float, str]:
        t = time.perf_counter()
        try:
            t2s.ask(q["schema"], q["question"], **kw)
            return time.perf_counter() - t, ""
        except Exception as e:  # noqa: BLE001 - a failed answer is a figure here, not a crash
            return time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:160]}"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrent) as pool:
        got = list(pool.map(ask, qs))
    wall = time.perf_counter() - t0
    lat = sorted(s for s, err in got if not err)
    errors = [err for _, err in got if err]
    return {"answers": len(lat), "failed": len(errors), "errors": errors[:5], "wall_s": wall, "lat": lat,
            "p50": statistics.median(lat) if lat else None,
            "p90": lat[int(0.9 * (len(lat) - 1))] if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--adapter", help="LoRA adapter merged into --base (the fine-tuned model)")
    ap.add_argument("--limit", type=int, default=216)
    ap.add_argument("--concurrent", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="ServeConfig fields over the launcher's defaults, e.g. ngram_speculation=0")
    ap.add_argument("--out")
    a = ap.parse_args()
    qs = questions(a.limit)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = merged_model(a.base, a.adapter, Path(tmp) / "merged")
        with served_variant("launcher", model_dir, overrides=a.set) as (state, t2s):
            device = state["replicas"][0].get("device")
            for q in qs[:4]:   # warm: the first grammars compiled, the first prefixes cached
                t2s.ask(q["schema"], q["question"], constrained=True)
            res: dict[str, list[dict]] = {m: [] for m in a.modes}
            for r in range(a.rounds):
                for m in a.modes:
                    got = one_mode(t2s, qs, m, a.concurrent)
                    res[m].append(got)
                    print(f"round {r + 1} {m}: {got['answers']} answered, {got['failed']} failed, p50 "
                          f"{got['p50'] or 0:.3f} s, wall {got['wall_s']:.1f} s", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"device": device, "questions": len(qs), "concurrent": a.concurrent,
                                           "results": res}, indent=1))
    print(f"\n{len(qs)} OOD questions at {a.concurrent} concurrent, {a.rounds} round(s), {device}")
    print("| mode | answered | failed | p50 s | p90 s | wall s | answers/s | p50 vs plain |\n|---|---|---|---|---|---|---|---|")
    base = None
    for m in a.modes:
        lat = sorted(x for g in res[m] for x in g["lat"])
        p50 = statistics.median(lat) if lat else None
        p90 = lat[int(0.9 * (len(lat) - 1))] if lat else None
        wall = sum(g["wall_s"] for g in res[m])
        done = sum(g["answers"] for g in res[m])
        failed = sum(g["failed"] for g in res[m])
        if m == "plain":
            base = p50
        ratio = f"{p50 / base:.2f}x" if base and p50 else "-"
        print(f"| {m} | {done} | {failed} | {p50 or 0:.3f} | {p90 or 0:.3f} | {wall:.1f} | {done / wall:.1f} | {ratio} |")
        for e in {e for g in res[m] for e in g["errors"]}:
            print(f"  {m} error: {e}")


if __name__ == "__main__":
    main()
