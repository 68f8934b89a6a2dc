"""sqlgenie ops dashboard (Streamlit): the pages of app/views/ behind one door, served by Streamlit's st.App.

    sqlgenie console                                  # dashboard + playground + a deployment
    .venv/bin/streamlit run app/dashboard.py          # the dashboard alone, from any folder

It listens on 127.0.0.1 (app/.streamlit/config.toml, read wherever it is started from) unless told
otherwise (--server.address, SQLGENIE_HOST through the console); anything beyond localhost needs
SQLGENIE_TOKEN, or the dashboard refuses to start. With a token, every URL (pages, websocket, files) goes
through app/door.py: the token's login cookie or bearer header, or the login form.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route
from streamlit import config

from app.door import Door
from app.views import DEFAULT_PAGE, PAGES
from core import access

_why = access.refusal(config.get_option("server.address"))
if _why:                     # runs before the server binds: nothing listens
    print(f"sqlgenie dashboard: {_why}", file=sys.stderr, flush=True)
    raise SystemExit(2)



def _moved(to: str):
    def redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(to + (f"?{query}" if query else ""), status_code=307)
    return redirect


# Old and obvious addresses of pages: /jobs (the default page: Streamlit serves it only at /) and the file
# names with '_' (/new_job) open their page instead of "page not found".
MOVED = {f"/{DEFAULT_PAGE}": "/", **{f"/{mod}": f"/{mod.replace('_', '-')}" for mod in PAGES.values() if "_" in mod}}
app = st.App(Path(__file__).with_name("shell.py"), middleware=[Middleware(Door)],
             routes=[Route(old + tail, _moved(new)) for old, new in MOVED.items() for tail in ("", "/")])
