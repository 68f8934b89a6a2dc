"""The Evaluations page (Streamlit AppTest) on real stored evaluations: the OOD yardstick rows of the CPU full
fine-tune and of the base model (docs/ood/rows, as `sqlgenie evaluate` wrote them), one under a run and one under
the base models' folder (where evaluations of a model no run trained go): both on the comparison chart, the rows filtered by verdict, error kind and text, a
wrong answer shown whole with its kind in words, its schema and both queries; a damaged metrics.json is named."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ood"
APP = str(Path(__file__).resolve().parents[2] / "app" / "shell.py")


def _stored(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(DOCS / f"{name}.json", folder / "metrics.json")
    with gzip.open(DOCS / "rows" / f"{name}.jsonl.gz", "rt") as src:
        (folder / "rows.jsonl").write_text(src.read())
    return folder


def _home(home: Path) -> dict:
    from pipeline import config, runs

    run = runs.new_run(config.load(None, ["name=cpu-full"]))
    run.metrics_path.write_text("".join(json.dumps({"step": s, "loss": 2.0 / s}) + "\n" for s in range(1, 6)))
    ft = _stored(run.dir / "eval" / "adapter-1", "cpu-full-finetune-repair")
    base = _stored(home / "evals" / "smollm2-135m-instruct" / "base-1", "cpu-full-finetune-constrained-repair")
    broken = home / "evals" / "smollm2-135m-instruct" / "broken-1"
    broken.mkdir(parents=True)
    (broken / "metrics.json").write_text("{not json")
    return {"run": run, "ft": ft, "base": base, "broken": broken}


def _page(query: dict | None = None):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    config.set_option("server.address", "127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.switch_page("views/evaluations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_evaluations_compare_and_rows(home):
    made = _home(home)
    at = _page()
    assert any("broken-1" in w.value and "run the evaluation again" in w.value for w in at.warning)
    compare = at.multiselect(key="ev_compare")
    assert len(compare.value) == 2                                      # both readable evaluations, on one chart
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in chart["data"]] == ["right (EX)", "valid SQL", "runs"]
    for made_dir in (made["ft"], made["base"]):
        ex = json.loads((made_dir / "metrics.json").read_text())["execution_accuracy"]
        assert any(abs(y - ex) < 1e-9 for y in chart["data"][0]["y"]), (ex, chart["data"][0]["y"])
    runs_chart = json.loads(at.get("plotly_chart")[1].proto.spec)          # the run's training curve
    assert runs_chart["data"][0]["y"] == [2.0 / s for s in range(1, 6)]


def test_rows_filter_by_verdict_kind_and_text_and_show_one_whole(home):
    made = _home(home)
    at = _page({"evaluation": str(made["ft"])})
    rows = [json.loads(line) for line in (made["ft"] / "rows.jsonl").read_text().splitlines()]
    wrong = [r for r in rows if r["status"] != "match"]
    table = at.dataframe[0].value
    assert len(table) == len(wrong) and set(table["verdict"]) != {"right"}
    at.radio(key="ev_verdict").set_value("right").run()
    assert len(at.dataframe[0].value) == len(rows) - len(wrong)
    at.radio(key="ev_verdict").set_value("wrong").run()
    at.selectbox(key="ev_kind").set_value("wrong_table").run()
    n_table = sum(r.get("error_kind") == "wrong_table" for r in wrong)
    assert n_table and len(at.dataframe[0].value) == n_table
    first = next(r for r in wrong if r.get("error_kind") == "wrong_table")
    text = " ".join(first["question"].split()[:3]).lower()
    at.text_input(key="ev_text").set_value(text).run()
    shown = at.dataframe[0].value
    assert 1 <= len(shown) <= n_table and all(text in q.lower() for q in shown["question"])
    detail = [e.value for e in at.error]
    assert any("wrong table" in d and "reads other tables than the gold" in d for d in detail), detail
    codes = [c.value for c in at.code]
    assert any(c.startswith("SELECT") and "\n" in c for c in codes)               # laid out one clause a line
    assert any("CREATE TABLE" in c for c in codes)                                # the OOD question's schema
    at.button(key="ev_run_both").click().run()                # both queries on the question's own database
    assert not at.exception and len(at.dataframe) == 3, [w.value for w in at.warning]
    pred, gold = at.dataframe[1].value, at.dataframe[2].value
    assert len(gold) >= 1 and (len(pred) != len(gold) or not pred.equals(gold))   # a wrong answer: they differ
    at.text_input(key="ev_text").set_value("no question says this").run()
    assert len(at.dataframe[0].value) == 0 and not at.error
