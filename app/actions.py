"""Dashboard actions that start jobs on behalf of a click: "Try it" (serve a run's adapter beside its base),
evaluate or export a run, check an upload. Each returns the new job id; nothing heavy runs in the dashboard's
process. The pages call them through app/facade.py, which passes this process's job store.

    job, deployment, model = try_run(store, run)     # base + LoRA in one vLLM, free ports, one replica
    b = compare_with(run, deployment, model)         # the playground's second model (a full fine-tune: the base elsewhere)
    job = check_upload(store, up, tree)              # a prepare job on an upload: the report before any training
"""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import yaml

from core import envs
from core.errors import SqlgenieError
from pipeline import config as C
from pipeline import runs
from pipeline.data import prepare, uploads
from pipeline.jobs import ACTIVE, JobStore
from serving import deployments as D


def playground_url(deployment: str | None = None, a: str | None = None, b: str | None = None) -> str:
    host = envs.text("SQLGENIE_HOST")
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    q = urlencode([(k, v) for k, v in (("deployment", deployment), ("a", a), ("b", b)) if v])
    return f"http://{host}:{envs.port('PLAYGROUND_PORT')}/" + (f"?{q}" if q else "")


def run_config(run: runs.Run) -> C.RunConfig:
    return C.loads((run.dir / "config.yaml").read_text(), f"run {run.id}")


def adapter_name(run: runs.Run) -> str:
    return "ft-" + run.id.split("/", 1)[1].rsplit("-", 1)[0][-6:]


TRY_IDLE_STOP_S = 3600   # a Try-it deployment nobody asked anything for an hour stops by itself


def try_run(store: JobStore, run: runs.Run, replicas: int = 1) -> tuple[int, str, str]:
    """Serve the run's base model with its adapter by name (vLLM --enable-lora) as a serve job on free ports; a full
    fine-tune (train.method full) is served alone, as the deployment's model (the name returned is then its own)."""
    if not run.has_output():
        raise SqlgenieError(f"run {run.id} has no adapter yet ({run.status}): try it once training finished")
    cfg = run_config(run)
    name = f"try-{time.strftime('%H%M%S')}"
    whole = not run.has_adapter()
    model = name if whole else adapter_name(run)
    serve = {"model": str(run.model_dir) if whole else cfg.model.name_or_path, "name": name, "replicas": replicas,
             "router_port": 0, "base_port": 0, "metrics_port": 0, "max_model_len": 2048,
             "lora_adapters": [] if whole else [f"{model}={run.adapter_dir}"], "warmup_requests": 1,
             "idle_stop_s": TRY_IDLE_STOP_S}
    job = store.submit("serve", yaml.safe_dump(serve, sort_keys=False), name=name)
    return job, name, model


def compare_with(run: runs.Run, deployment: str, model: str) -> str | None:
    """The second model the playground opens beside a Try-it deployment: the adapter (LoRA runs: base and adapter
    are served together), or for a full fine-tune, served alone, the same base model on another ready deployment
    ('name @ deployment', e.g. the console's default); None when no deployment serves it."""
    if model != deployment:
        return model
    base = run_config(run).model.name_or_path
    for name in D.names():
        if name == deployment:
            continue
        try:
            dep, st = D.read(name), D.load(name)
        except SqlgenieError:
            continue
        if dep.ready and (st.get("config") or {}).get("model") == base and name in dep.models:
            return f"{name} @ {name}"
    return None


def serve_again(store: JobStore, name: str) -> int:
    """Start a stopped deployment again with its recorded config (as a serve job)."""
    st = D.load(name)
    return store.submit("serve", yaml.safe_dump(st["config"], sort_keys=False), name=name)


def evaluate_run(store: JobStore, run: runs.Run, split: str = "ood", limit: int = 200, extra: list[str] | None = None,
                 base: bool = False) -> int:
    """An evaluate job of the run's fine-tune, or (base) of the base model it started from, on the same terms."""
    cfg_text = (run.dir / "config.yaml").read_text()
    which = ([] if base else ["--adapter", run.id])
    name = f"evaluate {run_config(run).model.name_or_path} (base of {run.id})" if base else f"evaluate {run.id}"
    return store.submit("evaluate", cfg_text, name=name,
                        args=[*which, "--split", split, "--limit", str(limit), *(extra or [])])


def evaluation_estimate(questions: int) -> tuple[float, str] | None:
    """(seconds, basis) for an evaluation of `questions` questions, from the newest evaluation on this machine
    (its load time + its seconds per question); None before any has run."""
    for d in reversed(runs.all_evals()):
        try:
            m = json.loads((d / "metrics.json").read_text())
            total, gen, n = m["seconds"], m["generation"]["generation_s"], m.get("rows") or m.get("scored")
            start = m["generation"].get("startup_s", 0.0)        # vLLM's start-up is inside generation_s
            per_q = (gen - start) / n if n else m["latency_per_question_s"]
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
            continue
        load = max(0.0, total - gen + start)
        return load + questions * per_q, (f"{per_q:.1f} s a question + {load:.0f} s to load, measured by the "
                                          f"newest evaluation here ({m.get('label', d.name)}, {m.get('backend', '')})")
    return None


def export_run(store: JobStore, run: runs.Run, formats: list[str]) -> int:
    cfg = yaml.safe_load((run.dir / "config.yaml").read_text())
    cfg.setdefault("export", {}).update({"adapter": run.id, "formats": formats})
    return store.submit("export", yaml.safe_dump(cfg, sort_keys=False), name=f"export {run.id}")


def check_upload(store: JobStore, up: uploads.Upload, tree: dict) -> int:
    """Run the prepare stage on an upload as a prepare job, with the config tree a training on it would use (so
    that training finds the data prepared): its report is the upload's validation report."""
    text = yaml.safe_dump(tree, sort_keys=False)
    cfg = C.loads(text, f"the check of upload {up.name}")
    job = store.submit("prepare", text, name=f"check upload {up.name}")
    uploads.note_check(up, job, runs.prepared_dir(cfg, prepare.fingerprint(cfg)))
    return job


def remove_upload(store: JobStore, up: uploads.Upload) -> str:
    """Delete an upload; its check's prepared data stays when a run or another job reads the upload (a run
    trained on it keeps what it trained on), and a check still running is cancelled first."""
    check = up.check.get("job")
    try:
        if check is not None and store.get(check).status in ACTIVE:
            store.cancel(check)
    except SqlgenieError:                   # its job is gone from the store: nothing runs for it
        pass
    where = str(up.dir) + "/"
    jobs = [j for j in store.list(10_000) if j.id != check and where in j.config]
    return uploads.remove(up, keep_prepared=bool(jobs or uploads.used_by(up)))
