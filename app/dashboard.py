"""sqlgenie ops dashboard (Streamlit). UI only: everything it shows comes from pipeline/ and serving/.

Step 1 of the console: the bundled dataset and every prepared dataset with its report and token-length
histogram. Later steps add the Jobs, New job, GPUs, Training, Serving and Models pages.

    .venv/bin/python -m streamlit run app/dashboard.py      # or `make console` (Procfile)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from pipeline.config import REPO_ROOT, home  # noqa: E402

st.set_page_config(page_title="sqlgenie", page_icon="🧞", layout="wide")
st.title("sqlgenie")
st.caption(f"Text-to-SQL models of your own. Home: `{home()}`")

data_tab, bundled_tab = st.tabs(["Prepared data", "Bundled dataset"])

with data_tab:
    reports = sorted((home() / "data").glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not reports:
        st.info("No prepared data yet. Run `.venv/bin/python -m pipeline prepare --config configs/smollm2-cpu.yaml`.")
    for rep_path in reports:
        rep = json.loads(rep_path.read_text())
        with st.expander(f"{rep['run']} — {rep['train_rows']} train / {rep['eval_rows']} eval rows", expanded=True):
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("train rows", rep["train_rows"])
            c2.metric("mean tokens", f"{rep['tokens']['mean']:.0f}")
            c3.metric("p95 tokens", rep["tokens"]["p95"])
            c4.metric("dropped", sum(rep["dropped"].values()))
            st.dataframe(
                [{"source": n, "loaded": s["loaded"], **s["dropped"], "usable": s["usable"], "in mixture": s["in_mixture"]}
                 for n, s in rep["sources"].items()],
                hide_index=True,
            )
            png = rep_path.parent / "lengths.png"
            if png.is_file():
                st.image(str(png))

with bundled_tab:
    card = REPO_ROOT / "data" / "sqlgenie-sql" / "README.md"
    st.markdown(card.read_text(encoding="utf-8") if card.is_file() else "The bundled dataset is missing.")
