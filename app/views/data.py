"""Data: every prepared dataset (rows in = usable + dropped, by reason; token lengths), the bundled
dataset's card and the OOD yardstick."""
from __future__ import annotations

import json

import streamlit as st

from app import facade as F
from app.facade import SqlgenieError


def page() -> None:
    st.header("Data")
    reports = F.data_reports()
    if not reports:
        st.info("No prepared data yet: a train job prepares it, or run a prepare job.")
    for rep_path in reports:
        rep = json.loads(rep_path.read_text())
        dropped = sum(rep["dropped"].values())
        with st.expander(f"{rep_path.parent.name}: {rep['train_rows']} train / {rep['eval_rows']} eval rows, "
                         f"{dropped} dropped"):
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("rows in", rep.get("rows_in"))
            c2.metric("train rows", rep["train_rows"])
            c3.metric("mean tokens", f"{rep['tokens']['mean']:.0f}")
            c4.metric("dropped", dropped)
            st.dataframe([{"source": n, "rows in": s.get("rows_in"), "usable": s["usable"], "in mixture": s["in_mixture"],
                           **{k: v for k, v in s["dropped"].items() if v}} for n, s in rep["sources"].items()],
                         hide_index=True, width="stretch")
            png = rep_path.parent / "lengths.png"
            if png.is_file():
                st.image(str(png))
    with st.expander("OOD yardstick (hand-written, never trained on)"):
        try:
            qs = F.ood_questions()
            st.markdown(f"{len(qs)} questions over {len(F.ood_schemas())} schemas; `sqlgenie evaluate --split ood`")
        except SqlgenieError as e:
            st.warning(str(e))
    card = F.dataset_card()
    with st.expander("Bundled dataset card"):
        st.markdown(card.read_text(encoding="utf-8") if card.is_file() else "missing")


page()
