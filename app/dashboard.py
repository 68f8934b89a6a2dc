"""sqlgenie ops dashboard (Streamlit). UI only: everything it shows comes from pipeline/ and serving/.

Pages (app/pages/): Jobs (by id, progress, clean logs, cancel / rerun with confirmation, Try it), New job (a
form generated from the configs, presets, the plan before Submit), GPUs (NVML per GPU and per process ->
job), Training (a run's curves), Serving (deployments, models, health, stop / start), Models (runs, Try it,
evaluate, export, compare), Data (prepared data, the yardstick). Live parts refresh every 2 s with
st.fragment; nothing heavy runs in this process.

    sqlgenie console                                 # dashboard + playground + a deployment
    .venv/bin/streamlit run app/dashboard.py          # the dashboard alone (binds 127.0.0.1 unless SQLGENIE_HOST)
"""
from __future__ import annotations

import streamlit as st

from app import auth, state
from core.settings import home

st.set_page_config(page_title="sqlgenie", layout="wide")
_why = next((w for w in (auth.refusal(a) for a in (st.get_option("server.address"), auth.bind_address()) if a) if w), "")
if _why:  # reachable beyond this machine without a token: show nothing but why
    st.error(_why)
    st.stop()

if auth.token() and not st.session_state.get("authed"):
    st.title("sqlgenie")
    given = st.text_input("Console token (SQLGENIE_TOKEN)", type="password")
    if given and auth.token_ok(given):
        st.session_state["authed"] = True
        st.rerun()
    if given:
        st.error("Wrong token: use the value of SQLGENIE_TOKEN the console was started with.")
    st.stop()

PAGES = {"Jobs": "jobs", "New job": "new_job", "GPUs": "gpus", "Training": "training", "Serving": "serving",
         "Models": "models", "Data": "data"}
state.PAGES.update({name: st.Page(f"pages/{mod}.py", title=name, url_path=mod.replace("_", "-"), default=name == "Jobs")
                    for name, mod in PAGES.items()})
nav = st.navigation(list(state.PAGES.values()))
st.sidebar.title("sqlgenie")
st.sidebar.caption(f"home `{home()}`")
nav.run()
