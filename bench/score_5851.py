"""Benchmark: score 5,851 rows (Gretel's test-split size) given predictions; target <= 30 s on 2 cores.

Rows: the bundled test split topped up with generated verified rows. Predictions: the gold SQL (must
score 100%: the harness is sound) and a corrupted set where every third prediction references a table
that does not exist (must score exactly 2/3). Prints a table last.

    .venv/bin/python bench/score_5851.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N = 5851


def rows() -> list[dict]:
    from pipeline.data.loaders import load
    from pipeline.datagen.generate import generate

    out = [r for r in load("bundled:test")]
    extra = generate(N - len(out), seed=99, id_offset=10_000_000)
    import pyarrow as pa

    from pipeline.data.loaders import _gretel_rows

    out += _gretel_rows(pa.Table.from_pylist(extra), "generated")
    return out[:N]


def main() -> None:
    from pipeline.evaluate.stage import score_predictions

    data = rows()
    t0 = time.time()
    _, gold = score_predictions(data, [[r["sql"]] for r in data])
    t_gold = time.time() - t0
    corrupted = [("SELECT * FROM no_such_table;" if i % 3 == 0 else r["sql"]) for i, r in enumerate(data)]
    _, bad = score_predictions(data, [[c] for c in corrupted])
    expect = 1 - len(range(0, N, 3)) / N
    print(f"gold vs gold: {gold['execution_accuracy']:.4%} ({gold['unscorable']} unscorable); corrupted: "
          f"{bad['execution_accuracy']:.4%} (expected {expect:.4%})")
    assert gold["execution_accuracy"] == 1.0 and abs(bad["execution_accuracy"] - expect) < 1e-9
    print("\n| area | metric | ours | baseline | ratio | machine | command |\n|---|---|---|---|---|---|---|")
    print(f"| evaluation | score {N} rows given predictions (gold vs gold), s | {t_gold:.1f} s | 30 s (target) | "
          f"{t_gold / 30:.2f} | 2-core CPU | `python bench/score_5851.py` |")


if __name__ == "__main__":
    main()
