"""docs/quality.json is made from evaluations' own output, never typed: every row's figures equal what
bench/quality_table.py reads from the file the row names, and the README's quality table quotes only those."""
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _table_module():
    spec = importlib.util.spec_from_file_location("quality_table", ROOT / "bench" / "quality_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_row_is_its_sources_figures():
    qt = _table_module()
    rows = json.loads((ROOT / "docs" / "quality.json").read_text())["rows"]
    sources = json.loads((ROOT / "docs" / "ood" / "quality-sources.json").read_text())["rows"]
    assert len(rows) == len(sources) and rows
    for row, src in zip(rows, sources):
        assert row["from"] == src["from"]
        fig = qt.figures(ROOT / src["from"])
        for k in ("ex", "valid", "runs", "n"):
            assert row[k] == fig[k], (src["from"], k)
        assert row["split"] in ("ood", "ood2") and row["machine"] in ("GPU", "CPU")
        assert row["decoding"] in ("plain", "constrained", "vote8", "constrained+vote8")


def test_the_readme_quotes_quality_json():
    rows = json.loads((ROOT / "docs" / "quality.json").read_text())["rows"]
    known = {f"{100 * r[k]:.1f}%" for r in rows for k in ("ex", "valid", "runs")}
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| recipe | decoding | right | valid | runs |"):]
    table = table[:table.index("\n\n")]
    quoted = re.findall(r"\d+\.\d%", table)
    assert quoted and set(quoted) <= known, set(quoted) - known
