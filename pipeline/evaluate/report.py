"""Compare two evaluation runs: a markdown table, a PNG bar chart by complexity, the error kinds of each
(pipeline/evaluate/error_kinds.py), the worst failure classes.

    python -m pipeline compare <home>/runs/smollm2-cpu/eval/base <home>/runs/smollm2-cpu/eval/adapter
    -> compare.md + compare.png in the second run's folder
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.evaluate import error_kinds


def _load(d: Path) -> tuple[dict, list[dict]]:
    m = json.loads((d / "metrics.json").read_text())
    rows = [json.loads(line) for line in (d / "rows.jsonl").read_text().splitlines()]
    return m, rows


def failure_classes(rows: list[dict], top: int = 5) -> list[tuple[str, int, dict]]:
    """(status x sql_complexity, count, one example) for the most frequent failures."""
    bad = [r for r in rows if r["status"] not in ("match", "unscorable")]
    counts = Counter((r["status"], r["sql_complexity"]) for r in bad)
    out = []
    for (status, cx), n in counts.most_common(top):
        ex = next(r for r in bad if r["status"] == status and r["sql_complexity"] == cx)
        out.append((f"{status} / {cx}", n, ex))
    return out


def compare(a_dir: Path, b_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (ma, rows_a), (mb, rows_b) = _load(Path(a_dir)), _load(Path(b_dir))
    keys = sorted({k for k in ma["breakdown"] | mb["breakdown"] if k.startswith("sql_complexity:")})
    lines = [f"# {ma['label']} vs {mb['label']}", "",
             f"| metric | {ma['label']} | {mb['label']} | change |", "|---|---:|---:|---:|"]
    for name, key in (("execution accuracy", "execution_accuracy"), ("valid SQL", "valid_sql_rate"),
                      ("exact match", "exact_match")):
        lines.append(f"| {name} | {ma[key]:.1%} | {mb[key]:.1%} | {100 * (mb[key] - ma[key]):+.1f} pts |")
    lines.append(f"| rows scored | {ma['scored']} | {mb['scored']} | |")
    for k in keys:
        a, b = ma["breakdown"].get(k, {}), mb["breakdown"].get(k, {})
        lines.append(f"| {k.split(':', 1)[1]} (n={b.get('n', a.get('n', 0))}) | {a.get('accuracy', 0):.1%} | "
                     f"{b.get('accuracy', 0):.1%} | {100 * (b.get('accuracy', 0) - a.get('accuracy', 0)):+.1f} pts |")
    lines += ["", "## Why the wrong answers are wrong", "",
              error_kinds.table({ma["label"]: error_kinds.taxonomy(rows_a), mb["label"]: error_kinds.taxonomy(rows_b)})]
    lines += ["", f"## Worst failure classes of {mb['label']}", ""]
    for cls, n, ex in failure_classes(rows_b):
        lines += [f"**{cls}** ({n} rows), e.g. _{ex['question']}_", "", f"    gold: {ex['gold']}",
                  f"    pred: {ex['pred'] or '(nothing)'}" + (f"\n    error: {ex['error']}" if ex.get("error") else ""), ""]
    lines.append("![accuracy by complexity](compare.png)")
    out = Path(b_dir) / "compare.md"
    out.write_text("\n".join(lines) + "\n")

    names = [k.split(":", 1)[1] for k in keys]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    ax.bar([x - 0.2 for x in xs], [ma["breakdown"].get(k, {}).get("accuracy", 0) for k in keys], 0.4, label=ma["label"],
           color="#9aa5b1")
    ax.bar([x + 0.2 for x in xs], [mb["breakdown"].get(k, {}).get("accuracy", 0) for k in keys], 0.4, label=mb["label"],
           color="#3b7dd8")
    ax.set_xticks(list(xs), names, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("execution accuracy")
    ax.set_title(f"Execution accuracy by SQL complexity: {ma['label']} vs {mb['label']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(b_dir) / "compare.png")
    plt.close(fig)
    return out
