"""Why the wrong answers are wrong, for stored evaluations: each one's rows (rows.jsonl, written by `sqlgenie evaluate`)
sorted into the error kinds of pipeline/evaluate/error_kinds.py (older rows have no `error_kind` stored: it is recomputed).

  sqlgenie bench error_taxonomy NAME=path/to/rows.jsonl[.gz] [NAME=...] [--json out.json]
prints a markdown table (one column per evaluation: counts and shares of the wrong rows) for docs/quality-errors.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from pipeline.evaluate.error_kinds import table, taxonomy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("evals", nargs="+", help="NAME=rows.jsonl")
    ap.add_argument("--json", type=Path, help="also write the counts here")
    a = ap.parse_args()
    results = {}
    for spec in a.evals:
        name, _, path = spec.partition("=")
        text = gzip.decompress(Path(path).read_bytes()).decode() if path.endswith(".gz") else Path(path).read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        results[name] = taxonomy(rows)
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
