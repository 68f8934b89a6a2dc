"""Training: one run at a time (the URL's ?run=ID), its progress, loss / eval loss / learning rate / tokens/s
from its metrics, its plan and result, and the job that ran it."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import streamlit as st

from app import facade as F
from app import state, ui


def _line(title: str, xs, ys_by_name: dict, height: int = 260):
    fig = go.Figure()
    for name, (x, y) in ys_by_name.items():
        fig.add_scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) < 30 else "lines")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=36, b=10), title=title, xaxis_title="step",
                      legend=dict(orientation="h", y=-0.3))
    return fig


def page() -> None:
    st.header("Training")
    all_runs = F.list_runs(damaged=True)        # a damaged run is shown as such, never hidden
    if not all_runs:
        st.info("No training run yet: start a train job on the New job page.")

        @st.fragment(run_every=2)
        def wait_for_first_run():
            if F.list_runs():
                st.rerun()

        wait_for_first_run()
        return
    ids = [r.id for r in all_runs]
    wanted = st.query_params.get("run", "")
    current = wanted if wanted in ids else ids[0]
    by_id = {r.id: r for r in all_runs}
    pick = st.selectbox("Run", ids, index=ids.index(current), format_func=lambda i: f"{by_id[i].label()} ({by_id[i].status})")
    if pick != wanted:
        st.query_params["run"] = pick
    run = by_id[pick]
    if run.job_id:
        st.page_link(state.PAGES["Jobs"], label=f"job #{run.job_id}", query_params={"job": str(run.job_id)})
    st.caption(f"folder `{run.dir}`")

    @st.fragment(run_every=2)
    def charts():
        r = F.reread(run)
        if r.damaged:
            st.error(r.status_line())
            return
        rows = F.run_metrics(r)
        for problem in r.problems:
            st.warning(problem)
        steps = [m for m in rows if "loss" in m]
        evals = [m for m in rows if m.get("eval_loss") is not None]
        if not steps:
            st.info(f"{r.status}: waiting for the first logged step ...")
            return
        last = steps[-1]
        total = last.get("max_steps") or 0
        if total and r.status in ("training", "created"):
            st.progress(min(1.0, last["step"] / total), text=f"step {last['step']} / {total}"
                        + (f", about {ui.fmt_s(last.get('eta_s'))} left" if last.get("eta_s") else ""))
        c = st.columns(5)
        c[0].metric("status", r.status)
        c[1].metric("step", f"{last['step']}" + (f" / {total}" if total else ""))
        c[2].metric("loss", f"{last['loss']:.4f}")
        c[3].metric("eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "-")
        c[4].metric("tokens/s", f"{last.get('tokens_per_s', 0):,.0f}")
        series = {"train loss": ([m["step"] for m in steps], [m["loss"] for m in steps])}
        if evals:
            series["eval loss"] = ([m["step"] for m in evals], [m["eval_loss"] for m in evals])
        st.plotly_chart(_line("Loss", None, series, 320), key="loss_chart")
        c1, c2 = st.columns(2)
        c1.plotly_chart(_line("Learning rate", None, {"lr": ([m["step"] for m in steps], [m.get("lr") for m in steps])}),
                        key="lr_chart")
        c2.plotly_chart(_line("Tokens/s", None, {"tokens/s": ([m["step"] for m in steps],
                                                               [m.get("tokens_per_s") for m in steps])}), key="tps_chart")

    charts()
    with st.expander("Plan and result"):
        for name in ("plan.json", "result.json"):
            p = run.dir / name
            if p.is_file():
                st.markdown(f"`{name}`")
                try:
                    st.json(json.loads(p.read_text()), expanded=False)
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                    st.warning(f"{p} cannot be read ({type(e).__name__}): it is shown as it is")
                    st.code(p.read_bytes()[:4000].decode("utf-8", "replace"))


page()
