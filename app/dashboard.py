"""sqlgenie ops dashboard (Streamlit). UI only: everything it shows comes from pipeline/ and serving/.

Pages: Jobs (live table, log tail, cancel, rerun), New job (forms from the config dataclasses, presets
from configs/, validation before submit), GPUs (NVML per GPU and per process -> job, CPU/RAM without a
GPU), Training (loss / eval loss / lr / tokens/s from metrics.jsonl, ETA), Serving (replicas, health,
throughput and latency from the stats sampler, start/stop replicas), Models (adapters, merged, GGUF,
quantized exports with sizes and eval figures), Data (prepared datasets, the bundled dataset card).
Live parts refresh every 2 s with st.fragment; nothing heavy runs in this process.

    .venv/bin/python -m streamlit run app/dashboard.py      # or `make console` (Procfile)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from app import auth  # noqa: E402
from core.settings import REPO_ROOT, home  # noqa: E402

auth.check_bind()
st.set_page_config(page_title="sqlgenie", page_icon="🧞", layout="wide")

if auth.token():
    if not st.session_state.get("authed"):
        given = st.text_input("Console token (SQLGENIE_TOKEN)", type="password")
        if not auth.token_ok(given):
            st.stop()
        st.session_state["authed"] = True


@st.cache_resource
def store():
    from pipeline.jobs import JobStore

    return JobStore()


def read_jsonl(path: Path, last: int = 5000) -> list[dict]:
    if not path or not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines()[-last:]:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written
    return out


def fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


STATUS_ICON = {"queued": "⏳", "running": "🏃", "succeeded": "✅", "failed": "❌", "cancelled": "🚫", "cancelling": "🛑"}


# ------------------------------------------------------------------------------------------ pages
def page_jobs() -> None:
    st.header("Jobs")

    @st.fragment(run_every=2)
    def table():
        s = store()
        s.schedule()  # reconcile + start what waits
        jobs = s.list(200)
        if not jobs:
            st.info("No jobs yet: start one on the New job page.")
            return
        st.dataframe([{"id": j.id, "status": f"{STATUS_ICON.get(j.status, '')} {j.status}", "kind": j.kind, "name": j.name,
                       "GPUs": ",".join(map(str, j.gpus)) or "cpu", "duration": fmt_s(j.duration()),
                       "created": time.strftime("%m-%d %H:%M:%S", time.localtime(j.created))} for j in jobs],
                     hide_index=True, width="stretch", key="jobs_table")

    table()
    jobs = store().list(200)
    if not jobs:
        return
    pick = st.selectbox("Job", [j.id for j in jobs], format_func=lambda i: f"#{i} {next(j for j in jobs if j.id == i).name}")
    c1, c2, _ = st.columns([1, 1, 6])
    if c1.button("Cancel", key="cancel"):
        try:
            store().cancel(pick)
            st.toast(f"job {pick} cancelled")
        except Exception as e:  # noqa: BLE001 - shown to the user
            st.error(str(e))
    if c2.button("Rerun", key="rerun"):
        st.toast(f"job {store().rerun(pick)} queued")

    @st.fragment(run_every=2)
    def detail():
        from pipeline.jobs import log_tail

        j = store().get(pick)
        st.markdown(f"**#{j.id} {j.kind} `{j.name}`** — {STATUS_ICON.get(j.status, '')} {j.status}"
                    + (f", exit code {j.exit_code}" if j.exit_code is not None else ""))
        if j.error and j.status == "failed":
            st.error(j.error[-1500:])
        st.code(log_tail(j.log_path, 30) or "(no output yet)", language="text")

    detail()


def page_new_job() -> None:
    import yaml

    from core.errors import SqlgenieError
    from pipeline import config as C
    from serving.launch import ServeConfig

    st.header("New job")
    kind = st.radio("Kind", ["train", "prepare", "evaluate", "export", "serve"], horizontal=True)
    presets = sorted((REPO_ROOT / "configs").glob("*.yaml"))
    if kind == "serve":
        default = yaml.safe_dump(C.to_dict(ServeConfig(model=_default_serve_model())), sort_keys=False)
    else:
        preset = st.selectbox("Preset", presets, format_func=lambda p: p.name)
        default = preset.read_text()
    text = st.text_area("Config (YAML; fields you leave out keep their defaults)", default, height=320, key=f"cfg-{kind}")
    gpus = st.text_input("GPUs (comma-separated indices; empty = CPU / any)", "")
    extra = st.text_input("Extra arguments (e.g. --adapter latest --limit 200 for evaluate)", "")
    with st.expander("Every field, with its default and meaning"):
        rows = C.explain(ServeConfig) if kind == "serve" else C.explain()
        st.dataframe([{"field": n, "default": d, "meaning": h} for n, d, h in rows], hide_index=True)
    if st.button("Submit", type="primary"):
        try:
            gpu_list = [int(g) for g in gpus.split(",") if g.strip()]
        except ValueError:
            st.error(f"GPUs: {gpus!r} is not a list of numbers like 0,1")
            return
        try:
            job = store().submit(kind, text, gpus=gpu_list, args=extra.split())
            st.success(f"job {job} submitted: see the Jobs page")
        except SqlgenieError as e:
            st.error(str(e))


def _default_serve_model() -> str:
    merged = sorted(home().glob("runs/*/export/merged/config.json"), key=lambda p: p.stat().st_mtime)
    return str(merged[-1].parent) if merged else "embedded:smollm2-135m-instruct"


def page_gpus() -> None:
    import plotly.graph_objects as go

    from pipeline import monitor

    st.header("GPUs & machine")

    @st.fragment(run_every=2)
    def live():
        jobs = {j.id: j.pid for j in store().list(200) if j.status == "running" and j.pid}
        s = monitor.sample(jobs)
        hist = st.session_state.setdefault("samples", [])
        hist.append(s)
        del hist[:-150]
        if s["gpus"]:
            cols = st.columns(len(s["gpus"]))
            for c, g in zip(cols, s["gpus"]):
                c.metric(f"GPU {g['index']} {g['name']}", f"{g['mem_used_gib']:.1f} / {g['mem_total_gib']:.0f} GiB",
                         f"{g['util_pct']}% util, {g['power_w'] or 0:.0f} W, {g['temp_c']} °C", delta_color="off")
            fig = go.Figure()
            for g in s["gpus"]:
                fig.add_scatter(x=[time.strftime("%H:%M:%S", time.localtime(h["t"])) for h in hist],
                                y=[h["gpus"][g["index"]]["mem_used_gib"] for h in hist], name=f"GPU {g['index']} GiB")
            fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title="GPU memory")
            st.plotly_chart(fig, key="gpu_mem")
            st.dataframe([{"GPU": p["gpu"], "pid": p["pid"], "memory GiB": round(p["mem_gib"], 2),
                           "job": f"#{p['job']}" if p["job"] else "-"} for p in s["processes"]], hide_index=True)
        else:
            st.caption("No NVIDIA GPU here (NVML unavailable): CPU and memory.")
        c = s["cpu"]
        c1, c2 = st.columns(2)
        c1.metric("CPU", f"{c['cpu_pct']:.0f}% of {c['cores']} cores")
        c2.metric("RAM", f"{c['ram_used_gib']:.1f} / {c['ram_total_gib']:.0f} GiB")
        fig = go.Figure()
        fig.add_scatter(x=[time.strftime("%H:%M:%S", time.localtime(h["t"])) for h in hist],
                        y=[h["cpu"]["cpu_pct"] for h in hist], name="CPU %")
        fig.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title="CPU utilisation")
        st.plotly_chart(fig, key="cpu_chart")

    live()


def page_training() -> None:
    import plotly.graph_objects as go

    st.header("Training")
    runs = sorted(home().glob("runs/*/train/metrics.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not runs:
        st.info("No training run yet: start a train job on the New job page.")

        @st.fragment(run_every=2)
        def wait_for_first_run():
            if any(home().glob("runs/*/train/metrics.jsonl")):
                st.rerun()

        wait_for_first_run()
        return
    pick = st.selectbox("Run", runs, format_func=lambda p: p.parent.parent.name)

    @st.fragment(run_every=2)
    def charts():
        rows = read_jsonl(pick)
        steps = [r for r in rows if "loss" in r]
        evals = [r for r in rows if r.get("eval_loss") is not None]
        if not steps:
            st.info("waiting for the first logged step ...")
            return
        last = steps[-1]
        c = st.columns(4)
        c[0].metric("step", f"{last.get('step')}" + (f" / {last['max_steps']}" if last.get("max_steps") else ""))
        c[1].metric("loss", f"{last['loss']:.4f}")
        c[2].metric("tokens/s", f"{last.get('tokens_per_s', 0):,.0f}")
        c[3].metric("ETA", fmt_s(last.get("eta_s")))
        fig = go.Figure()
        fig.add_scatter(x=[r["step"] for r in steps], y=[r["loss"] for r in steps], name="train loss")
        if evals:
            fig.add_scatter(x=[r["step"] for r in evals], y=[r["eval_loss"] for r in evals], name="eval loss",
                            mode="lines+markers")
        fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Loss", xaxis_title="step")
        st.plotly_chart(fig, key="loss_chart")
        c1, c2 = st.columns(2)
        lr = go.Figure().add_scatter(x=[r["step"] for r in steps], y=[r.get("lr") for r in steps], name="lr")
        lr.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title="Learning rate")
        c1.plotly_chart(lr, key="lr_chart")
        tp = go.Figure().add_scatter(x=[r["step"] for r in steps], y=[r.get("tokens_per_s") for r in steps])
        tp.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title="Tokens/s")
        c2.plotly_chart(tp, key="tps_chart")

    charts()


def page_serving() -> None:
    import plotly.graph_objects as go

    from serving import launch

    st.header("Serving")
    deployments = sorted(p.parent.name for p in (home() / "serve").glob("*/state.json"))
    if not deployments:
        st.info("No deployment running: start a serve job on the New job page (or `python -m serving up`).")
        return
    name = st.selectbox("Deployment", deployments)

    @st.fragment(run_every=2)
    def live():
        try:
            state = launch.status(name)
        except launch.ServeError as e:
            st.warning(str(e))
            return
        r = state["router"]
        st.markdown(f"Router **{r['url']}/v1** ({state['config']['policy']}): {'🟢 healthy' if r['healthy'] else '🔴 down'}")
        st.dataframe([{"replica": x["index"], "device": x["device"], "port": x["port"], "pid": x["pid"],
                       "health": "🟢" if x["healthy"] else ("🟠 starting" if x["alive"] else "🔴 dead")}
                      for x in state["replicas"]], hide_index=True)
        pts = read_jsonl(launch.state_dir(name) / "stats.jsonl", 300)
        if pts:
            xs = [time.strftime("%H:%M:%S", time.localtime(p["t"])) for p in pts]
            fig = go.Figure()
            for k in sorted({k for p in pts for k in p["replicas"]}):
                fig.add_scatter(x=xs, y=[p["replicas"].get(k, {}).get("tokens_per_s") for p in pts], name=f"replica {k}")
            fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title="Generated tokens/s")
            st.plotly_chart(fig, key="serve_tps")
            lat = go.Figure().add_scatter(x=xs, y=[(p.get("router") or {}).get("latency_s") for p in pts], name="router")
            lat.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title="Request latency (s)")
            st.plotly_chart(lat, key="serve_lat")

    live()
    state = launch.load_state(name)
    idx = st.selectbox("Replica", [r["index"] for r in state["replicas"]])
    c1, c2, _ = st.columns([1, 1, 6])
    if c1.button("Stop replica"):
        launch.stop_replica(name, idx)
    if c2.button("Restart replica"):
        with st.spinner("starting ..."):
            launch.restart_replica(name, idx)


def page_models() -> None:
    st.header("Models")
    rows = []
    for run in sorted(home().glob("runs/*")):
        ad = run / "train" / "adapter"
        if ad.is_dir():
            rows.append({"run": run.name, "artifact": "adapter", "path": str(ad),
                         "MB": round(sum(f.stat().st_size for f in ad.rglob("*") if f.is_file()) / 1e6, 1)})
        exp = run / "export" / "export.json"
        if exp.is_file():
            for it in json.loads(exp.read_text())["items"]:
                rows.append({"run": run.name, "artifact": it["format"], "path": it.get("path"), "MB": round(it["size_mb"], 1),
                             "check": it.get("check", "")})
        for m in sorted((run / "eval").glob("*/metrics.json")):
            e = json.loads(m.read_text())
            rows.append({"run": run.name, "artifact": f"eval: {m.parent.name}", "path": str(m.parent),
                         "check": f"EX {e['execution_accuracy']:.1%} on {e['scored']} rows ({e.get('backend', '')})"})
    if not rows:
        st.info("No models yet: train, then export.")
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    evals = [r["path"] for r in rows if r["artifact"].startswith("eval")]
    if len(evals) >= 2:
        c1, c2 = st.columns(2)
        a = c1.selectbox("Compare", evals, key="cmp_a")
        b = c2.selectbox("with", evals, index=1, key="cmp_b")
        if st.button("Compare") and a != b:
            from pipeline.evaluate.report import compare

            out = compare(Path(a), Path(b))
            st.markdown(Path(out).read_text() if Path(out).suffix == ".md" else "")
            png = Path(b) / "compare.png"
            if png.is_file():
                st.image(str(png))


def page_data() -> None:
    st.header("Data")
    reports = sorted((home() / "data").glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not reports:
        st.info("No prepared data yet: a train job prepares it, or run a prepare job.")
    for rep_path in reports:
        rep = json.loads(rep_path.read_text())
        with st.expander(f"{rep['run']} — {rep['train_rows']} train / {rep['eval_rows']} eval rows"):
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("train rows", rep["train_rows"])
            c2.metric("mean tokens", f"{rep['tokens']['mean']:.0f}")
            c3.metric("p95 tokens", rep["tokens"]["p95"])
            c4.metric("dropped", sum(rep["dropped"].values()))
            png = rep_path.parent / "lengths.png"
            if png.is_file():
                st.image(str(png))
    card = REPO_ROOT / "data" / "sqlgenie-sql" / "README.md"
    with st.expander("Bundled dataset card"):
        st.markdown(card.read_text(encoding="utf-8") if card.is_file() else "missing")


PAGES = {"Jobs": page_jobs, "New job": page_new_job, "GPUs": page_gpus, "Training": page_training,
         "Serving": page_serving, "Models": page_models, "Data": page_data}
st.sidebar.title("🧞 sqlgenie")
page = st.sidebar.radio("Page", list(PAGES), key="page")
st.sidebar.caption(f"home `{home()}`")
PAGES[page]()
