"""Evaluations: every stored evaluation compared on one chart (right / valid / runs), several runs' training
curves on one chart, and one evaluation's answers row by row: question, gold, prediction, verdict and why it is
wrong (its error kind, in words), filtered by verdict, kind or text."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app import facade as F
from app import ui

FIGURES = (("right (EX)", "ex", "#2a9d8f"), ("valid SQL", "valid", "#a8c5e8"), ("runs", "runs", "#6c8ebf"))


def _compare_chart(evals: list) -> None:
    fig = go.Figure()
    names = [f"{e.label} · {e.split} · {e.decoding()}<br>{e.model}" for e in evals]
    for label, attr, colour in FIGURES:
        values = [getattr(e, attr) or 0.0 for e in evals]
        fig.add_bar(name=label, x=names, y=values, text=[f"{v:.1%}" for v in values], textposition="outside",
                    marker_color=colour)
    fig.update_layout(barmode="group", yaxis={"tickformat": ".0%", "range": [0, 1.08], "title": "share of questions"},
                      height=420, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": 1.12})
    st.plotly_chart(fig, width="stretch")


def _curves(picked: list) -> None:
    fig = go.Figure()
    for run in picked:
        rows = F.run_metrics(run)
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
        held = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r and "step" in r]
        if train:
            fig.add_scatter(x=[s for s, _ in train], y=[v for _, v in train], mode="lines", name=f"{run.id} train")
        if held:
            fig.add_scatter(x=[s for s, _ in held], y=[v for _, v in held], mode="lines+markers",
                            name=f"{run.id} held-out", line={"dash": "dot"})
    fig.update_layout(xaxis={"title": "optimizer step", "tickformat": "d"}, yaxis_title="loss", height=380,
                      margin={"t": 30, "b": 10})
    st.plotly_chart(fig, width="stretch")


def _rows_view(ev) -> None:
    rows = ev.rows()
    if not rows:
        st.info(f"{ev.dir} has no rows.jsonl: its answers were not stored (re-run the evaluation).")
        return
    c = st.columns([1, 2, 3])
    verdict = c[0].radio("Answers", ["wrong", "right", "all"], horizontal=True, key="ev_verdict")
    kinds = sorted({r.get("error_kind") for r in rows if r.get("error_kind")})
    kind = c[1].selectbox("Error kind", ["any"] + kinds, key="ev_kind",
                          format_func=lambda k: k if k == "any" else f"{k.replace('_', ' ')}")
    text = c[2].text_input("Question or SQL contains", key="ev_text").strip().lower()
    shown = [r for r in rows if (verdict == "all" or r["right"] == (verdict == "right"))
             and (kind == "any" or r.get("error_kind") == kind)
             and (not text or any(text in str(r.get(k, "")).lower() for k in ("question", "gold", "pred")))]
    st.caption(f"{len(shown)} of {len(rows)} answers ({sum(r['right'] for r in rows)} right).")
    table = [{"#": i + 1, "question": r.get("question", ""), "verdict": "right" if r["right"] else
              (r.get("error_kind") or r.get("status", "")).replace("_", " "),
              "predicted": (r.get("pred") or "").replace("\n", " "), "gold": (r.get("gold") or "").replace("\n", " ")}
             for i, r in enumerate(shown)]
    st.dataframe(table, hide_index=True, width="stretch", height=320)
    if shown:
        i = st.selectbox("Look at answer", range(len(shown)), key="ev_row",
                         format_func=lambda i: f"#{i + 1}: {shown[i].get('question', '')}")
        _row_detail(shown[i], ev.split)


def _row_detail(r: dict, split: str) -> None:
    st.markdown(f"#### {r.get('question', '')}")
    if r["right"]:
        st.success("right: its result equals the gold query's on the question's database(s)")
    else:
        kind = r.get("error_kind") or ""
        st.error(f"wrong ({r.get('status', '')}): **{kind.replace('_', ' ')}** - {F.ERROR_MEANING.get(kind, '')}"
                 + (f"\n\n{r['error']}" if r.get("error") else ""))
    c = st.columns(2)
    c[0].markdown("**Predicted**")
    c[0].code(F.pretty_sql(r.get("pred") or ""), language="sql")
    c[1].markdown("**Gold**")
    c[1].code(F.pretty_sql(r.get("gold") or ""), language="sql")
    schema = F.evaluation_schema(r, split)        # read once: the button and the expander below use it
    if schema and st.button("Run both on its database", key="ev_run_both"):
        c = st.columns(2)
        for col, sql in ((c[0], r.get("pred") or ""), (c[1], r.get("gold") or "")):
            got = F.run_on_yardstick(sql, r, split) if sql.strip() else "no SQL to run"
            if isinstance(got, str):
                col.warning(got)
            else:
                col.dataframe([dict(zip(got.columns, row)) for row in got.rows], hide_index=True, width="stretch")
                col.caption(f"{len(got.rows)} row(s){' (first ones)' if got.truncated else ''}")
    if r.get("raw") and r.get("raw") != r.get("pred"):
        with st.expander("The model's raw answer (before extraction and repair)"):
            st.code(r["raw"])
    if r.get("repairs"):
        st.caption("repaired: " + "; ".join(map(str, r["repairs"])))
    if schema:
        with st.expander(f"The schema it was asked over ({r.get('domain')})"):
            st.code(schema, language="sql")
    st.caption(" · ".join(f"{k}: {r[k]}" for k in ("id", "domain", "sql_complexity", "valid", "runs", "agreement")
                          if r.get(k) not in (None, "")))


def page() -> None:
    st.header("Evaluations")
    ui.show_flash()
    evals = F.evaluations()
    if not evals:
        st.info("No evaluation yet: evaluate a trained run, or its base model, from the Models page.")
        return
    readable = [e for e in evals if not e.problem]
    for e in evals:
        if e.problem:
            st.warning(f"{e.dir}: {e.problem}")
    st.subheader("Compared on one chart")
    picked = st.multiselect("Evaluations", readable, default=readable[:4], format_func=lambda e: e.title(),
                            key="ev_compare")
    if picked:
        _compare_chart(picked)
    trained = [r for r in F.list_runs() if r.metrics_path.is_file()]
    if trained:
        st.subheader("Training curves")
        runs_picked = st.multiselect("Runs", trained, default=trained[:2], format_func=lambda r: r.label(),
                                     key="ev_runs")
        if runs_picked:
            _curves(runs_picked)
    st.subheader("Answers, row by row")
    wanted = st.query_params.get("evaluation", "")
    index = next((i for i, e in enumerate(readable) if str(e.dir) == wanted), 0)
    if readable:
        ev = st.selectbox("Evaluation", readable, index=index, format_func=lambda e: e.title(), key="ev_one")
        _rows_view(ev)


page()
