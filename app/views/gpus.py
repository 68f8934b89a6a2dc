"""GPUs & machine: NVML per GPU (memory, utilisation) over time and every GPU process mapped to its job;
CPU and RAM where there is no GPU. SQLGENIE_NVML_REPLAY=file.jsonl replays recorded samples (e.g. taken on
a GPU machine with `python -m pipeline.monitor --seconds N > file.jsonl`)."""
from __future__ import annotations

import streamlit as st

from app import facade as F
from app import state, ui
from app.facade import Status


def _what(proc: dict, jobs: dict, replayed: bool) -> str:
    """A GPU process in words: its job's kind and name, else the process's own name (live samples only)."""
    j = jobs.get(proc.get("job")) if not replayed else None
    if j is not None:
        return f"{j.kind} {j.name}"
    if proc.get("what") or replayed:
        return proc.get("what", "")
    try:
        return open(f"/proc/{proc['pid']}/comm").read().strip()
    except OSError:
        return ""


def page() -> None:
    st.header("GPUs & machine")

    @st.fragment(run_every=2)
    def live():
        listed = {j.id: j for j in F.jobs(200)}
        s = F.machine_sample({i: j.pid for i, j in listed.items() if j.status == Status.RUNNING and j.pid})
        hist = st.session_state.setdefault("samples", [])
        if not hist or hist[-1]["t"] != s["t"]:
            hist.append(s)
        del hist[:-300]
        if s.get("replay"):
            st.caption(f"replaying recorded NVML samples: {s['replay']}")
        if s["gpus"]:
            cols = st.columns(len(s["gpus"]))
            for c, g in zip(cols, s["gpus"]):
                c.metric(f"GPU {g['index']} {g['name']}", f"{g['mem_used_gib']:.1f} / {g['mem_total_gib']:.0f} GiB",
                         f"{g['util_pct']}% busy, {g['power_w'] or 0:.0f} W, {g['temp_c']} °C", delta_color="off")
            ts = [h["t"] for h in hist]
            n = len(s["gpus"])
            c1, c2 = st.columns(2)
            c1.plotly_chart(ui.time_chart("GPU memory used (GiB)", {f"GPU {i}": (ts, [h["gpus"][i]["mem_used_gib"]
                            if i < len(h["gpus"]) else None for h in hist]) for i in range(n)}, "GiB"), key="gpu_mem")
            c2.plotly_chart(ui.time_chart("GPU utilisation (%)", {f"GPU {i}": (ts, [h["gpus"][i]["util_pct"]
                            if i < len(h["gpus"]) else None for h in hist]) for i in range(n)}, "%"), key="gpu_util")
            st.markdown("**GPU processes**")
            st.dataframe([{"GPU": p["gpu"], "pid": p["pid"], "memory GiB": round(p["mem_gib"], 2),
                           "job": f"#{p['job']}" if p["job"] else "-", "what": _what(p, listed, bool(s.get("replay")))} for p in s["processes"]], hide_index=True, width="stretch")
        else:
            st.caption("No NVIDIA GPU here (NVML unavailable): CPU and memory.")
        c = s["cpu"]
        c1, c2 = st.columns(2)
        c1.metric("CPU", f"{c['cpu_pct']:.0f}% of {c['cores']} cores")
        c2.metric("RAM", f"{c['ram_used_gib']:.1f} / {c['ram_total_gib']:.0f} GiB")
        ts = [h["t"] for h in hist]
        st.plotly_chart(ui.time_chart("CPU utilisation (%)", {"CPU": (ts, [h["cpu"]["cpu_pct"] for h in hist])}, "%"),
                        key="cpu_chart")

    live()
    running = [j for j in F.jobs(200) if j.status == Status.RUNNING]
    if running:
        st.markdown("Running jobs: " + ", ".join(f"#{j.id} {j.kind} {j.name}" for j in running))
        st.page_link(state.PAGES["Jobs"], label="Jobs")


page()
