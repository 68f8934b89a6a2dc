"""docs/quality.json from evaluation results, never typed by hand: each row of a sources file names where its
figures come from (an evaluation's metrics.json, or the one-line summary an evaluation prints, kept beside it
when a device call could not bring the JSON back) and what was measured. Prints the README's quality table.

    sqlgenie bench quality_table docs/ood/quality-sources.json > /tmp/table.md   # writes docs/quality.json
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"execution accuracy ([\d.]+)% on (\d+) scorable rows \(valid SQL ([\d.]+)%, runs ([\d.]+)%"
                     r".*?; (\d+) ms/question\)")


def figures(path: Path) -> dict:
    """ex, valid, runs, s_per_question from a metrics.json or an evaluation's summary line."""
    text = path.read_text()
    if path.suffix == ".json":
        m = json.loads(text)
        spq = m.get("seconds_per_question") or (m.get("seconds") / m["rows"] if m.get("seconds") else None)
        return {"ex": m["execution_accuracy"], "valid": m["valid_sql_rate"], "runs": m["runs_rate"],
                "n": m["scored"], "s_per_question": spq}
    found = SUMMARY.search(text)
    if not found:
        raise SystemExit(f"{path}: no evaluation summary line in it")
    ex, n, valid, runs, ms = found.groups()
    return {"ex": float(ex) / 100, "valid": float(valid) / 100, "runs": float(runs) / 100, "n": int(n),
            "s_per_question": int(ms) / 1000}


def main(sources: str) -> None:
    spec = json.loads(Path(sources).read_text())
    rows = []
    for s in spec["rows"]:
        rows.append({k: s[k] for k in ("model", "recipe", "machine", "decoding", "repair", "default", "split")}
                    | figures(ROOT / s["from"]) | {"from": s["from"], "note": s.get("note", "")})
    (ROOT / "docs" / "quality.json").write_text(json.dumps({"about": spec["about"], "rows": rows}, indent=1) + "\n")
    print("| model | recipe | split | machine | decoding | right | valid | runs | s/question |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        dec = r["decoding"] + (" + repair" if r["repair"] else "")
        star = " (default)" if r["default"] else ""
        print(f"| {r['model']} | {r['recipe']}{star} | {r['split']} | {r['machine']} | {dec} | {r['ex']:.1%} | {r['valid']:.1%} | {r['runs']:.1%} | "
              f"{r['s_per_question']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "ood" / "quality-sources.json"))
