"""Does a serving variant compute what vLLM computes eagerly? First-token log-probabilities and short greedy answers
of new questions on a cached schema, per variant, against the first variant (the reference).

    PYTHONPATH=/tmp/vsite:/tmp/site:$PWD python3 bench/graph_numerics.py /root/merged \
        --variants eager piecewise full-graph --out /tmp/out/graph-numerics.json               # the H200
    bench/device_session.sh PHASE=numerics [.gpuft]      # the carried fine-tune, merged into the embedded model

Why: full CUDA graphs (cudagraph_mode FULL) run a new question's prefill over the cached schema inside one
captured graph. With a weakly trained model, 80 of 100 greedy answers differed from vLLM's default graph mode,
and fp8 changed 86: near-ties flip under any change of kernels. This says whether the graphed prefill is only
rounded differently (log-probabilities within bf16 noise of the eager reference, like the default mode's) or
computes something else (errors of order 1). Use a trained model: random weights (--dummy, the same seed in every
variant) give a flat distribution whatever the prompt (log-probability -10.8 for every token on an H200), which
every variant reproduces exactly; the table then says so instead of passing.

Per variant, --questions new questions (bench/b1_first_token.Questions: never in the prefix cache) one at a
time, greedy, --tokens tokens, top-5 log-probabilities of each token. Reported against the reference: answers
identical, first tokens identical, and the absolute difference of the reference's first token's log-probability
(median / max). Prints a table last.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import b1_first_token as first  # noqa: E402
import b1_step_profile as steps  # noqa: E402
import latency_b1  # noqa: E402

UNIFORM_LOGPROB = -5.0   # a top token below ~0.7% probability: the model ignores its input (random weights)


def answers(name: str, model_dir: Path, dummy: bool, n: int, tokens: int) -> list[dict]:
    with latency_b1.served_variant(name, model_dir, steps.server_extra(dummy, None), deployment="numerics") as (state, t2s):
        questions = first.Questions(t2s, latency_b1.prompts(40))
        url = state["replicas"][0]["url"]
        out = []
        for _ in range(n):
            body = {"model": "numerics", "prompt": questions.next_ids(), "max_tokens": tokens, "temperature": 0,
                    "logprobs": 5, "ignore_eos": True}
            _, ans = first.timed_post(url, body)
            lp = ans["choices"][0]["logprobs"]
            out.append({"text": ans["choices"][0]["text"], "tokens": lp["tokens"],
                        "first_top": lp["top_logprobs"][0]})
        return out


def compare(ref: list[dict], got: list[dict]) -> dict:
    same_answer = sum(a["tokens"] == b["tokens"] for a, b in zip(ref, got))
    same_first = sum(a["tokens"][0] == b["tokens"][0] for a, b in zip(ref, got))
    diffs = []
    for a, b in zip(ref, got):
        tok = a["tokens"][0]
        want = a["first_top"][tok]
        have = b["first_top"].get(tok)
        diffs.append(abs(want - have) if have is not None else float("inf"))   # not even in the top 5
    return {"n": len(ref), "same_answers": same_answer, "same_first_token": same_first,
            "first_logprob_abs_diff_median": statistics.median(diffs), "first_logprob_abs_diff_max": max(diffs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="model folder (with --dummy: config and tokenizer are enough)")
    ap.add_argument("--dummy", action="store_true", help="random weights (--load-format dummy)")
    ap.add_argument("--variants", nargs="+", default=["eager", "piecewise", "full-graph"])
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--out")
    a = ap.parse_args()
    steps.check_variants(a.variants)
    runs = latency_b1.each_variant(
        a.variants, a.out, lambda v, _: {"answers": answers(v, Path(a.model), a.dummy, a.questions, a.tokens)},
        lambda r: f"{r['wall_s']:.0f} s" if "error" not in r else r["error"], trace_first=False)
    got = {v: r.get("answers", r) for v, r in runs.items()}       # a variant's answers, or its error
    ref_name = a.variants[0]
    ref = got[ref_name]
    if isinstance(ref, list) and ref and statistics.median(max(x["first_top"].values()) for x in ref) < UNIFORM_LOGPROB:
        print(f"the reference's first-token distribution is nearly flat (median top log-probability below "
              f"{UNIFORM_LOGPROB}): random weights answer the same whatever the prompt, so this comparison says "
              f"nothing; run it on a trained model")
    lines = [f"| variant vs {ref_name} | answers identical | first token identical | |first-token logprob diff| "
             "median / max |", "|---|---|---|---|"]
    for v in a.variants[1:]:
        if isinstance(got[v], dict) or isinstance(got[ref_name], dict):
            lines.append(f"| {v} | error: {(got[v] if isinstance(got[v], dict) else got[ref_name])['error'][:200]} | | |")
            continue
        c = compare(got[ref_name], got[v])
        lines.append(f"| {v} | {c['same_answers']}/{c['n']} | {c['same_first_token']}/{c['n']} | "
                     f"{c['first_logprob_abs_diff_median']:.4f} / {c['first_logprob_abs_diff_max']:.4f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
