"""Models: every trained run with its adapter, evaluations and exports; "Try it" serves a run beside its base
model and opens the playground side by side; evaluate / export a run with one click; compare evaluations."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from app import facade as F
from app import state, ui
from app.facade import SqlgenieError


def _eval_line(d: Path) -> str:
    ev = F.Evaluation.read(d)
    if ev.problem:
        return f"{d.name}: {ev.problem}"
    return (f"{ev.label} on {ev.split}: EX {ev.ex or 0:.1%}, valid {ev.valid or 0:.1%}, runs {ev.runs or 0:.1%} "
            f"({ev.scored} rows)")


def _kinds_chart(d: Path) -> None:
    """The latest evaluation's wrong answers by error kind (stored by `evaluate`; recomputed from rows.jsonl for
    evaluations made before it was)."""
    ev = F.Evaluation.read(d)
    try:
        if ev.problem:
            raise ValueError(ev.problem)
        counts = ev.metrics.get("error_kinds")
        if counts is None:
            rows = ev.rows()
            counts = F.error_taxonomy(rows) if rows else None
    except (OSError, ValueError) as e:
        st.warning(f"the evaluation in {d} cannot be read ({e}): run the evaluation again")
        return
    if not counts or not counts.get("wrong"):
        return
    st.markdown(f"**Why the wrong answers are wrong**: {counts['wrong']} of {counts['rows']} rows of "
                f"{ev.label} on {ev.split} (the first kind that fits each; pipeline/evaluate/error_kinds.py)")
    kinds = [k for k in F.ERROR_KINDS if counts["kind"].get(k)]
    st.bar_chart({"kind": [k.replace("_", " ") for k in kinds], "wrong answers": [counts["kind"][k] for k in kinds]},
                 x="kind", y="wrong answers", x_label="", y_label="wrong answers", horizontal=True,
                 sort="-wrong answers", height=60 + 28 * len(kinds))


SPLITS = {"ood": "the OOD yardstick (216 hand-written questions over 21 schemas)",
          "bundled:test": "held-out generated rows (domains and template families the training never saw)"}


def _evaluate_form(run, card: dict) -> None:
    """Which model, which questions, how many: with the time it will take on this machine before Submit."""
    with st.form("evaluate"):
        c = st.columns(3)
        base = card.get("base_model", "the base model")
        which = c[0].radio("Model", ["this fine-tune", f"its base model ({base})"])
        split = c[1].selectbox("Questions", list(SPLITS), format_func=lambda s: SPLITS[s])
        n = c[2].number_input("how many (at most)", value=60, step=10,
                              help="A smaller number is quicker; 216 takes the whole OOD yardstick.")
        est = F.evaluation_estimate(int(n)) if n >= 1 else None
        st.caption(f"Estimated {est[0] / 60:.1f} min ({est[1]})" if est else
                   "No evaluation has run on this machine yet: the first one measures the time it takes here.")
        if st.form_submit_button("Evaluate", type="primary"):
            if n < 1:
                st.error(f"how many: {n} is not a number of questions (1 or more)")
                return
            job = F.evaluate_run(run, split, int(n), base=which != "this fine-tune")
            st.session_state.pop("eval_form", None)
            ui.flash(f"evaluate job #{job} started: the Jobs page follows it")
            st.rerun()


def page() -> None:
    st.header("Models")
    ui.show_flash()
    trained = F.trained_runs()
    if not trained:
        st.info("No trained model yet: train one (New job, kind train).")
        return
    rows = []
    for r in trained:
        ev = r.evals()
        exp = r.export_dir / "export.json"
        rows.append({"run": r.id, "job": f"#{r.job_id}" if r.job_id else "", "steps": r.info.get("steps"),
                     "latest evaluation": _eval_line(ev[-1]) if ev else "",
                     "exports": ", ".join(i["format"] for i in json.loads(exp.read_text())["items"]) if exp.is_file() else ""})
    st.dataframe(rows, hide_index=True, width="stretch")
    ids = [r.id for r in trained]
    wanted = st.query_params.get("run", "")
    pick = st.selectbox("Run", ids, index=ids.index(wanted) if wanted in ids else 0)
    run = next(r for r in trained if r.id == pick)
    card = F.model_card(run)
    c = st.columns(4)
    if c[0].button("Try it", type="primary", help="serve the base model and this adapter in one vLLM, then compare "
                                                  "them side by side in the playground"):
        try:
            job, dep, model = F.try_run(run)
            st.session_state["try"] = (dep, run.name, F.compare_with(run, dep, model))
            ui.flash((f"serving {model} beside its base (job #{job}, deployment {dep})" if model != dep
                                         else f"serving the full fine-tune alone as {dep} (job #{job}); the playground "
                                              "compares it with the base where another deployment serves that"))
            st.rerun()
        except SqlgenieError as e:
            st.error(str(e))
    if c[1].button("Evaluate ...", help="on held-out questions over schemas no training saw: this fine-tune or "
                                          "the base model it started from"):
        st.session_state["eval_form"] = run.id
    if c[2].button("Export merged + GGUF"):
        job = F.export_run(run, ["merged", "gguf-q8_0"])
        st.page_link(state.PAGES["Jobs"], label=f"job #{job}", query_params={"job": str(job)})
    tried = st.session_state.get("try")
    if tried:
        dep, _, b = tried
        c[3].link_button("Open the playground", F.playground_url(dep, dep, b))
    if st.session_state.get("eval_form") == run.id:
        _evaluate_form(run, card)
    run_evals = run.evals()
    if run_evals:
        _kinds_chart(run_evals[-1])
        st.page_link(state.PAGES["Evaluations"], label="Its answers row by row, and every evaluation on one chart",
                     query_params={"evaluation": str(run_evals[-1])})
    with st.expander("Model card: the prompt contract it was trained with", expanded=False):
        st.json(card.get("contract", {}))
        st.json({k: card.get(k) for k in ("base_model", "steps", "training", "data")}, expanded=False)
    evals = [d for r in trained for d in r.evals()]
    if len(evals) >= 2:
        st.markdown("**Compare two evaluations**")
        c1, c2 = st.columns(2)
        a = c1.selectbox("baseline", evals, format_func=_eval_line, key="cmp_a")
        b = c2.selectbox("compared", evals, index=1, format_func=_eval_line, key="cmp_b")
        if st.button("Compare") and a != b:
            out = F.compare_evaluations(a, b)
            st.markdown(out.read_text())
            png = b / "compare.png"
            if png.is_file():
                st.image(str(png))


page()
