"""New job: a form generated from the config dataclasses, presets that fill it (the default one fits this
machine), the plan (backend, precision, memory, time) before Submit, and the YAML as the advanced view."""
from __future__ import annotations

import time

import streamlit as st
import yaml

from app import facade as F
from app import forms, state
from app.facade import RunConfig, ServeConfig, SqlgenieError, parse_yaml

KINDS = ["train", *(k for k in F.JOB_KINDS if k != "train")]   # the store's kinds, training first
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _run_picker(form: str) -> F.Run | None:
    trained = F.trained_runs()
    if not trained:
        st.warning("No trained run yet: train one first (kind train).")
        return None
    return st.selectbox("Run (its adapter, or a full fine-tune's model)", trained, format_func=lambda r: r.label(), key=f"w:{form}:run")


def _from_upload(gpus: list[int]) -> F.Upload | None:
    """?upload=NAME (the Data page's "Train on this"): a train form on the upload, filled once a session; the
    upload while the URL names it."""
    name = st.query_params.get("upload", "")
    if not name:
        return None
    try:
        up = F.upload(name)
    except SqlgenieError as e:
        st.error(str(e))
        return None
    if st.session_state.get("upload:applied") != name:
        dflt = F.default_preset(gpus)
        forms.replace("train", RunConfig, F.upload_train_tree(up, dflt))
        st.session_state.update({"kind": "train", "preset:train": dflt, "upload:applied": name})
    return up


def _preset_tree(kind: str, preset: str, up: F.Upload | None) -> dict:
    """A preset's tree; for a train job opened from an upload, the preset on the upload's data."""
    return F.upload_train_tree(up, preset) if up is not None and kind == "train" else F.preset_tree(preset)


def _run_form(kind: str, gpus: list[int], up: F.Upload | None = None) -> tuple[str, list[str], list[int]] | None:
    names = list(F.presets())
    dflt = F.default_preset(gpus)
    key = f"preset:{kind}"
    if key not in st.session_state:
        st.session_state[key] = dflt
        forms.replace(kind, RunConfig, F.preset_tree(dflt))
    if up is not None and kind == "train":
        st.info(f"Training on the upload **{up.name}** ({up.rows} rows, checked on the Data page): data.sources is "
                "the upload, its held-out share measures the eval loss, the run is named after it.")
    st.selectbox("Preset (fills the form)", names, key=key, help=f"{dflt} fits this machine",
                 on_change=lambda: forms.replace(kind, RunConfig, _preset_tree(kind, st.session_state[key], up)))
    t = forms.tree(kind, RunConfig)
    args: list[str] = []
    c1, c2 = st.columns(2)
    forms.field(t, kind, RunConfig, "name", container=c1)
    forms.field(t, kind, RunConfig, "model.name_or_path", "base model", container=c2)
    if kind == "evaluate":
        run = _run_picker(kind)
        c1, c2, c3, c4 = st.columns(4)
        split = c1.selectbox("split", ["ood", "bundled:test"], help="ood: the hand-written multi-table yardstick")
        limit = c2.number_input("rows", min_value=1, value=200, step=50)
        vote = c3.number_input("voting candidates", min_value=0, max_value=16, value=0)
        constrained = c4.checkbox("constrained decoding", value=False)
        if run is None:
            return None
        args = ["--adapter", run.id, "--split", split, "--limit", str(int(limit))]
        args += (["--vote", str(int(vote))] if vote else []) + (["--constrained"] if constrained else [])
    elif kind == "export":
        run = _run_picker(kind)
        fmts = st.multiselect("formats", list(F.EXPORT_FORMATS), default=["merged", "gguf-q8_0"])
        forms.put(t, "export.formats", fmts)
        forms.field(t, kind, RunConfig, "export.draft_head", "also train a draft head (faster answers on GPUs)")
        if run is None:
            return None
        forms.put(t, "export.adapter", run.id)
    else:
        st.markdown("**Data**")
        forms.sources(t, kind, "data.sources")
        c1, c2, c3 = st.columns(3)
        forms.field(t, kind, RunConfig, "data.max_seq_len", "max sequence length", container=c1)
        forms.field(t, kind, RunConfig, "data.eval_fraction", "eval fraction", container=c2)
        forms.field(t, kind, RunConfig, "data.include_sample_rows", "sample rows in the prompt", container=c3)
    if kind == "train":
        st.markdown("**Fine-tuning**")
        forms.field(t, kind, RunConfig, "train.method", "method (full: every weight trains, no adapter; lora: "
                                                         "adapters on a frozen base)")
        c1, c2, c3 = st.columns(3)
        forms.field(t, kind, RunConfig, "train.lora.r", "LoRA rank", container=c1)
        forms.field(t, kind, RunConfig, "train.lora.alpha", "LoRA alpha", container=c2)
        forms.field(t, kind, RunConfig, "train.learning_rate", "learning rate", container=c3)
        forms.field(t, kind, RunConfig, "train.lora.target_modules", "LoRA target modules", options=TARGETS)
        c1, c2, c3, c4 = st.columns(4)
        forms.field(t, kind, RunConfig, "train.epochs", "epochs", container=c1)
        forms.field(t, kind, RunConfig, "train.max_steps", "max steps (-1: epochs decide)", container=c2)
        forms.field(t, kind, RunConfig, "train.batch_size", "batch size", container=c3)
        forms.field(t, kind, RunConfig, "train.max_memory_gib", "GPU memory budget (GiB)", container=c4)
        c1, c2 = st.columns(2)
        forms.field(t, kind, RunConfig, "train.precision", "precision", container=c1)
        forms.field(t, kind, RunConfig, "train.backend", "backend", container=c2)
    with st.expander("Every field (defaults shown; hover for what each does)"):
        shown = {"name", "model.name_or_path", "data.sources", "data.max_seq_len", "data.eval_fraction", "train.method",
                 "data.include_sample_rows", "train.lora.r", "train.lora.alpha", "train.learning_rate",
                 "train.lora.target_modules", "train.epochs", "train.max_steps", "train.batch_size",
                 "train.max_memory_gib", "train.precision", "train.backend", "export.formats", "export.adapter",
                 "export.draft_head"}
        cols = st.columns(3)
        others = [f for f in forms._infos(RunConfig) if f not in shown and not f.startswith("data.eval_sources")]
        for i, name in enumerate(others):
            forms.field(t, kind, RunConfig, name, name, container=cols[i % 3])
    chosen = gpus and st.multiselect("GPUs (empty: all of them; a train job on several runs DDP)", gpus, key=f"gpus:{kind}")
    _yaml_view(kind, t)
    text = forms.to_yaml(t, RunConfig)
    try:
        cfg = F.load_run_config(text, f"{kind} job", need_model=kind != "prepare")
    except SqlgenieError as e:
        st.error(str(e))
        return None
    if kind == "train":
        _plan_preview(cfg)
    return text, args, list(chosen or [])


def _plan_preview(cfg: RunConfig) -> None:
    try:
        plan = F.plan_preview(cfg)          # NVML, no torch in the dashboard's process
    except SqlgenieError as e:
        st.error(f"This training cannot run here: {e}")
        return
    if plan is None:
        st.info(f"{cfg.model.name_or_path} is not built on this machine yet (`sqlgenie assets` builds it; a train "
                "job does too): the plan is shown once it is there.")
        return
    st.markdown("**Plan on this machine**")
    c = st.columns(4)
    c[0].metric("backend / precision", f"{plan.backend} / {plan.precision}")
    c[1].metric("memory estimate", f"{plan.estimate_bytes / F.GiB:.1f} GiB")
    c[2].metric("micro-batch x accum", f"{plan.micro_batch} x {plan.grad_accum}")
    c[3].metric("params", f"{plan.params / 1e6:,.0f}M, all trained" if plan.method == "full"
                else f"{plan.params / 1e6:,.0f}M + LoRA {plan.lora_params / 1e6:.1f}M")
    st.caption("Time: " + F.training_estimate(cfg, plan).describe())
    with st.expander("Why this plan"):
        st.markdown("\n".join(f"- {r}" for r in plan.reasons))


def _yaml_view(kind: str, t: dict) -> None:
    cls = ServeConfig if kind == "serve" else RunConfig
    with st.expander("YAML (the advanced view: edit and apply to the form)"):
        key = f"yaml:{kind}"
        current = forms.to_yaml(t, cls)
        edited = st.text_area("config YAML (only what differs from the defaults)", current, height=240, key=key + str(hash(current)))
        if st.button("Apply YAML to the form", key=f"apply:{kind}"):
            try:
                forms.replace(kind, cls, parse_yaml(edited, "the YAML view"), "the YAML view")
                st.rerun()
            except SqlgenieError as e:
                st.error(str(e))


def _serve_form(gpus: list[int]) -> tuple[str, list[str], list[int]] | None:
    t = forms.tree("serve", ServeConfig, {"name": f"serve-{time.strftime('%H%M%S')}", "router_port": 0,
                                          "base_port": 0, "metrics_port": 0, "max_model_len": 2048})
    merged = F.exported_models()          # merged exports, and full fine-tunes' models as they are
    c1, c2, c3 = st.columns(3)
    forms.field(t, "serve", ServeConfig, "model", options=["embedded:smollm2-135m-instruct", *merged], container=c1)
    forms.field(t, "serve", ServeConfig, "name", "deployment name", container=c2)
    forms.field(t, "serve", ServeConfig, "replicas", container=c3)
    trained = [r for r in F.list_runs() if r.has_adapter()]
    picked = st.multiselect("LoRA adapters to serve beside the base (by name)", trained, format_func=lambda r: r.label())
    forms.put(t, "lora_adapters", [f"{F.adapter_name(r)}={r.adapter_dir}" for r in picked])
    with st.expander("Every field"):
        cols = st.columns(3)
        rest = [f for f in forms._infos(ServeConfig) if f not in ("model", "name", "replicas", "lora_adapters")]
        for i, name in enumerate(rest):
            forms.field(t, "serve", ServeConfig, name, name, container=cols[i % 3])
    _yaml_view("serve", t)
    text = yaml.safe_dump(forms.minimal(t, ServeConfig) | {"name": forms.get(t, "name")}, sort_keys=False)
    try:
        F.load_serve_config(tree=parse_yaml(text, "serve job"), source="serve job")
    except SqlgenieError as e:
        st.error(str(e))
        return None
    return text, [], []


def page() -> None:
    st.header("New job")
    gpus = F.machine_gpus()
    up = _from_upload(gpus)
    kind = st.radio("Kind", KINDS, horizontal=True, key="kind")
    got = _serve_form(gpus) if kind == "serve" else _run_form(kind, gpus, up)
    if st.button("Submit", type="primary", disabled=got is None):
        text, args, chosen = got
        try:
            job = F.submit(kind, text, gpus=chosen, args=args)
        except SqlgenieError as e:
            st.error(str(e))
            return
        st.success(f"job #{job} submitted")
        st.page_link(state.PAGES["Jobs"], label=f"Open job #{job}", query_params={"job": str(job)})



page()
