"""Serving: every deployment with what it serves (model per replica), health in words (healthy / degraded /
down), restarts and events, throughput and latency over time, and stop / start / restart buttons."""
from __future__ import annotations

import time

import streamlit as st

from app import facade as F
from app import ui
from app.facade import SqlgenieError


@st.dialog("Stop a deployment")
def _confirm_stop(name: str) -> None:
    st.write(f"Stop deployment **{name}**? Its replicas and router are stopped; a serve job behind it ends too.")
    if st.button(f"Yes, stop {name}", type="primary"):
        F.stop_deployment(name)
        ui.flash(f"deployment {name} stopped")
        st.rerun()


def page() -> None:
    st.header("Serving")
    ui.show_flash()
    names = F.deployment_names()
    if not names:
        st.info("No deployment yet: start a serve job on the New job page, or `sqlgenie serve up`.")
        return
    wanted = st.query_params.get("deployment", "")
    name = st.selectbox("Deployment", names, index=names.index(wanted) if wanted in names else 0)
    if name != wanted:
        st.query_params["deployment"] = name

    @st.fragment(run_every=2)
    def live():
        try:
            s = F.deployment_status(name)
        except SqlgenieError as e:
            st.warning(str(e))
            return
        r = s["router"]
        colour = {"healthy": "green", "down": "red"}.get(r["health"].split(" ")[0], "orange")
        st.markdown(f"**{name}** ({s.get('phase')}): router `{r['url']}/v1` :{colour}[{r['health']}]"
                    + (f"  \n:red[{s['orphaned']}]" if s.get("orphaned") else ""))
        st.markdown("**Models served** (clients put the name in `model`)")
        st.dataframe([{"name": m, "kind": v["kind"], "from": v["path"], "sample rows in prompt":
                       v["contract"].get("include_sample_rows"), "card": "yes" if v.get("card") else "defaults"}
                      for m, v in s.get("models", {}).items()], hide_index=True, width="stretch")
        models = ", ".join(s.get("models", {}))
        st.dataframe([{"replica": x["index"], "device": x["device"], "port": x["port"],
                       "pid": (x.get("proc") or {}).get("pid"), "health": x["health"], "restarts": x.get("restarts", 0),
                       "serves": models} for x in s["replicas"]], hide_index=True, width="stretch")
        pts = ui.read_jsonl(F.deployment_dir(name) / "stats.jsonl", 300)
        if pts:
            ts = [p["t"] for p in pts]
            keys = sorted({k for p in pts for k in p["replicas"]})
            c1, c2 = st.columns(2)
            c1.plotly_chart(ui.time_chart("Generated tokens/s", {f"replica {k}": (ts, [p["replicas"].get(k, {}).get(
                "tokens_per_s") for p in pts]) for k in keys}, "tokens/s"), key="serve_tps")
            c2.plotly_chart(ui.time_chart("Request latency (s)", {"router": (ts, [(p.get("router") or {}).get("latency_s")
                                                                               for p in pts])}, "seconds"), key="serve_lat")
        ev = s.get("events", [])[-8:]
        if ev:
            st.markdown("**Events**")
            st.code("\n".join(f"{time.strftime('%H:%M:%S', time.localtime(e['t']))}  {e['what']}" for e in ev),
                    language="text", wrap_lines=True)

    live()
    s = F.deployment_state(name)
    c = st.columns(4)
    if s.get("phase") in ("starting", "ready"):
        if c[0].button(f"Stop {name}", type="secondary"):
            _confirm_stop(name)
        c[1].link_button("Open in the playground", F.playground_url(name))
        idx = c[2].selectbox("Replica", [r["index"] for r in s["replicas"]], label_visibility="collapsed")
        if c[3].button(f"Restart replica {idx}"):
            try:
                F.ask_restart(name, idx)   # the serve job's supervisor restarts it; this page owns no process
                st.info(f"Replica {idx}: restart asked for. The deployment's supervisor stops it and starts it again "
                        "within seconds; the events above say when it is back (a CPU replica takes ~30 s).")
            except SqlgenieError as e:
                st.error(str(e))
    elif c[0].button(f"Start {name} again", type="primary"):
        job = F.serve_again(name)
        st.success(f"serve job #{job} started")


page()
