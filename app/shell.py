"""The dashboard's shell (Streamlit): the sidebar and the navigation between the pages of app/views/, run for
every page a browser opens. app/dashboard.py serves it behind the door (app/door.py).

Pages: Jobs (by id, progress, clean logs, cancel / rerun with confirmation, Try it), New job (a form generated
from the configs, presets, the plan before Submit), GPUs (NVML per GPU and per process -> job), Training (a
run's curves), Serving (deployments, models, health, stop / start), Models (runs, Try it, evaluate, export,
compare), Evaluations (every evaluation on one chart, runs' curves together, answers row by row), Data (your own
training data uploaded: preview, the prepare report, Train on this; prepared data, the yardstick). Live parts
refresh every 2 s with st.fragment; nothing heavy runs in this process. The page files live in app/views/, not
in a folder named pages/, so that Streamlit serves none of them by itself: every URL runs this shell first.
"""
from __future__ import annotations

import streamlit as st

from app import door, state
from app.views import DEFAULT_PAGE, PAGES
from core import access
from core.settings import home

st.set_page_config(page_title="sqlgenie", layout="wide")
# Behind app/dashboard.py these never trip (it refuses to start, and its door turns strangers away); they keep
# this shell shut when someone serves it directly.
_why = access.refusal(st.get_option("server.address"))
if _why:
    st.error(_why)
    st.stop()
if not door.headers_let_in(dict(st.context.headers)):
    st.error("This dashboard needs the console token: start it with `sqlgenie console` or `streamlit run "
             "app/dashboard.py`, and log in at /_door/login.")
    st.stop()

state.PAGES.update({name: st.Page(f"views/{mod}.py", title=name, url_path=mod.replace("_", "-"),
                                  default=mod == DEFAULT_PAGE) for name, mod in PAGES.items()})
nav = st.navigation(list(state.PAGES.values()))
st.sidebar.title("sqlgenie")
st.sidebar.caption(f"home `{home()}`")
if access.token():
    st.sidebar.link_button("Log out", door.LOGOUT)
nav.run()
