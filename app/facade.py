"""The dashboard's one door into the stages: the pages in app/views/ import project code only from here and
the app helpers (app.ui, app.forms, app.state); tests/unit/test_layers.py checks it. What the UI can read
and do to jobs, runs and deployments is listed in this file, and nowhere else.

    from app import facade as F
    F.submit("train", yaml_text, gpus=[0])     # a job id; F.jobs(), F.job(id), F.cancel(id), F.rerun(id)
    run = F.run_of_job(7)                      # pipeline.runs.Run (or None); F.list_runs(), F.trained_runs()
    F.try_run(run)                             # (job, deployment, model): serve the fine-tune, then the playground
    dep = F.deployment("sqlgenie")             # serving.deployments.Deployment, the typed record
    F.ask_restart("sqlgenie", 0)               # the deployment's supervisor restarts it: no vLLM process here
    plan = F.plan_preview(cfg)                 # NVML probe: torch never loads in the dashboard's process

Thin on purpose: each function delegates to the module that owns the concept (docs/design.md, "One module
owns each concept"); the records it hands out are the lower layers' own types, re-exported here (Run, Job,
Status, Deployment, ...). What a click starts (the Try-it serve config, an evaluate or export job) is
app/actions.py's; the job store of this process is app/state.py's.
"""
from __future__ import annotations

import time
from pathlib import Path

from app import actions
from app.state import store
from core import assets
from core.errors import SqlgenieError
from core.modelinfo import read_card
from core.settings import REPO_ROOT, home, parse_yaml
from pipeline import config as C
from pipeline import monitor, runs
from pipeline.config import RunConfig
from pipeline.data import feedback, ood, prepare, uploads
from pipeline.data.uploads import Upload, UploadError
from pipeline.evaluate import error_kinds, records
from pipeline.evaluate.report import compare
from pipeline.jobs import ACTIVE, LIVE, Job, Status
from pipeline.jobs.store import KINDS as JOB_KINDS
from pipeline.jobs.store import machine_gpus
from pipeline.runs import Run
from pipeline.train.estimate import Estimate, estimate
from pipeline.train.plan import GiB, Plan, detect_device, make_plan
from serving import deployments as D
from serving import launch
from serving.config import ServeConfig, load_serve_config
from serving.deployments import Deployment, ServedModel
from sql.validate import check

__all__ = ["ACTIVE", "EXPORT_FORMATS", "ERROR_KINDS", "JOB_KINDS", "LIVE", "GiB", "Deployment", "Estimate", "Job",
           "Plan", "Run", "RunConfig", "ServeConfig", "ServedModel", "SqlgenieError", "Status",
           "adapter_name", "ask_restart", "cancel", "compare_evaluations", "compare_with", "data_reports",
           "dataset_card", "default_preset", "deployment", "deployment_dir", "deployment_names",
           "deployment_state", "deployment_status", "error_taxonomy", "evaluate_run", "evaluation_estimate",
           "export_run", "exported_models", "job", "jobs", "list_runs", "load_run_config", "load_serve_config",
           "machine_gpus", "machine_sample", "model_card", "ood_questions", "ood_schemas", "parse_yaml",
           "plan_preview", "playground_url", "preset_tree", "presets", "reread", "rerun", "run_metrics",
           "run_of_job", "schedule", "serve_again", "stop_deployment", "submit", "trained_runs",
           "training_estimate", "try_run", "ERROR_MEANING", "Evaluation", "evaluations", "evaluation_schema",
           "pretty_sql", "run_on_yardstick",
           "DROP_REASONS", "UPLOAD_TYPES", "Upload", "UploadError", "check_upload", "feedback_marks", "marks_as_upload", "receive_upload", "remove_upload",
           "upload", "upload_check_job", "upload_train_tree", "upload_users", "uploads_list"]

EXPORT_FORMATS = C.EXPORT_FORMATS
ERROR_KINDS = error_kinds.KINDS
ERROR_MEANING = error_kinds.MEANING
adapter_name = actions.adapter_name
compare_with = actions.compare_with
playground_url = actions.playground_url
evaluation_estimate = actions.evaluation_estimate


# ------------------------------------------------------------------------------------ jobs (this home's store)
def jobs(limit: int = 200) -> list[Job]:
    """The newest `limit` jobs."""
    return store().list(limit)


def job(job_id: int) -> Job:
    return store().get(job_id)


def schedule() -> list[int]:
    """Reconcile the jobs with their processes and start what waits (the Jobs page does it every refresh)."""
    return store().schedule()


def submit(kind: str, config: str, gpus: list[int] | None = None, args: list[str] | None = None) -> int:
    """Queue a job of `kind` with the YAML text of its stage's config (checked before it is queued)."""
    return store().submit(kind, config, gpus=gpus, args=args)


def cancel(job_id: int) -> None:
    store().cancel(job_id)


def rerun(job_id: int) -> int:
    return store().rerun(job_id)


def try_run(run: Run) -> tuple[int, str, str]:
    """Serve the run's fine-tune as a serve job: (job id, deployment, model name); app/actions.py try_run."""
    return actions.try_run(store(), run)


def evaluate_run(run: Run, split: str = "ood", limit: int = 200, base: bool = False) -> int:
    return actions.evaluate_run(store(), run, split, limit, base=base)


def export_run(run: Run, formats: list[str]) -> int:
    return actions.export_run(store(), run, formats)


def serve_again(name: str) -> int:
    return actions.serve_again(store(), name)


# ------------------------------------------------------------------------------------ runs
def list_runs(damaged: bool = False) -> list[Run]:
    return runs.list_runs(damaged=damaged)


def trained_runs() -> list[Run]:
    """Runs with something to serve, evaluate or export (an adapter, or a full fine-tune's model)."""
    return [r for r in runs.list_runs() if r.has_output()]


def run_of_job(job_id: int) -> Run | None:
    return runs.for_job(job_id)


def reread(run: Run) -> Run:
    return runs.reread(run)


def run_metrics(run: Run) -> list[dict]:
    return runs.read_metrics(run)


def model_card(run: Run) -> dict:
    return read_card(run.output_dir)


def exported_models() -> list[str]:
    """Folders a serve job can serve as they are: merged exports, then full fine-tunes' models."""
    merged = [str(p.parent) for p in runs.runs_home().glob("*/*/export/merged/config.json")]
    return merged + [str(r.model_dir) for r in runs.list_runs() if r.has_model()]


# ------------------------------------------------------------------------------------ evaluations and data
def error_taxonomy(rows: list[dict]) -> dict:
    """Wrong answers by error kind (pipeline/evaluate/error_kinds.py), for evaluations that did not store them."""
    return error_kinds.taxonomy(rows)


def compare_evaluations(a: Path, b: Path) -> Path:
    """compare.md (and compare.png) of two evaluation folders, written into the second."""
    return compare(a, b)


Evaluation = records.Evaluation


def evaluations() -> list[records.Evaluation]:
    """Every stored evaluation on this machine (runs' and base models'), newest first."""
    return records.all_evaluations()


def evaluation_schema(row: dict, split: str) -> str | None:
    return records.schema_of(row, split)


def run_on_yardstick(sql: str, row: dict, split: str):
    """A query's result (or one line why not) on the database the evaluation row's question was asked over."""
    return records.run_on_database(sql, row, split)


def pretty_sql(sql: str) -> str:
    """The SQL laid out one clause a line where it parses; as it is otherwise."""
    checked = check(sql) if sql.strip() else None
    return checked.formatted if checked is not None and checked.parses else sql


def data_reports() -> list[Path]:
    """Every prepared dataset's report.json, newest first."""
    return sorted((home() / "data").glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)


# ------------------------------------------------------------------------------------ uploaded training data
UPLOAD_TYPES = [t.lstrip(".") for t in uploads.TYPES]
DROP_REASONS = prepare.MEANING          # why the prepare stage drops a row, in words


def feedback_marks() -> list:
    """The answers marked right / wrong in the playground (pipeline/data/feedback.py), oldest first."""
    return feedback.marks()


def marks_as_upload() -> Upload:
    """The marks that can train, as an upload of Gretel rows (then checked and trained on like any upload)."""
    text, _, _ = feedback.gretel_jsonl()
    return receive_upload(f"playground-marks-{time.strftime('%Y%m%d-%H%M')}.jsonl", text.encode())


def receive_upload(filename: str, data: bytes) -> Upload:
    """Store an uploaded file after checking its shape (UploadError, nothing stored): pipeline/data/uploads.py."""
    return uploads.receive(filename, data)


def uploads_list() -> list[Upload]:
    return uploads.list_uploads()


def upload(name: str) -> Upload:
    return uploads.get(name)


def upload_train_tree(up: Upload, preset: str | None = None) -> dict:
    """The config tree that trains on the upload: the preset (default: the one that fits this machine) with
    data.sources set to the upload and the run named after it."""
    return uploads.train_tree(up, preset_tree(preset or default_preset(machine_gpus())))


def check_upload(up: Upload) -> int:
    """The upload's validation report: a prepare job on it with the config "Train on this" opens."""
    return actions.check_upload(store(), up, upload_train_tree(up))


def upload_check_job(up: Upload) -> Job | None:
    """The prepare job that checks the upload (None before one started, or when the store lost it)."""
    try:
        return store().get(up.check["job"]) if up.check else None
    except SqlgenieError:
        return None


def upload_users(up: Upload) -> list[Run]:
    """Runs trained on the upload (their prepared data stays when it is removed)."""
    return uploads.used_by(up)


def remove_upload(up: Upload) -> str:
    return actions.remove_upload(store(), up)


def dataset_card() -> Path:
    return REPO_ROOT / "data" / "sqlgenie-sql" / "README.md"


def ood_questions() -> list[dict]:
    return ood.questions()


def ood_schemas() -> dict[str, str]:
    return ood.schemas()


# ------------------------------------------------------------------------------------ New job: configs, plan
def presets() -> dict[str, Path]:
    """The recipes in configs/ by name."""
    return {p.stem: p for p in sorted((REPO_ROOT / "configs").glob("*.yaml"))}


def default_preset(gpus: list[int]) -> str:
    """The recipe that runs on this machine as it is: the embedded model on CPU; on a GPU, the 8B reference
    recipe only when its weights are here, else the embedded model's GPU recipe."""
    names = presets()
    if gpus:
        ref = C.load(names["llama31-8b-qlora"])
        if (Path(ref.model.name_or_path) / "config.json").is_file():
            return "llama31-8b-qlora"
        return "smollm2-gpu" if "smollm2-gpu" in names else "smollm2-cpu"
    return "smollm2-cpu"


def preset_tree(name: str) -> dict:
    """A preset's YAML as a tree for the form (its name filled in)."""
    path = presets()[name]
    tree = parse_yaml(path.read_text(), str(path))
    tree.setdefault("name", name)
    return tree


def load_run_config(text: str, source: str, need_model: bool = False) -> RunConfig:
    return C.loads(text, source, need_model=need_model)


def plan_preview(cfg: RunConfig) -> Plan | None:
    """The training plan on this machine (SqlgenieError when it cannot run here), None while the model is not
    built. The device comes from NVML and the installed torch's version: torch never loads in the dashboard."""
    model = assets.built(cfg.model.name_or_path)
    if model is None:
        return None
    return make_plan(cfg, model, detect_device(probe="nvml"))


def training_estimate(cfg: RunConfig, plan: Plan) -> Estimate:
    return estimate(cfg, plan)


# ------------------------------------------------------------------------------------ deployments
def deployment_names() -> list[str]:
    return D.names()


def deployment(name: str) -> Deployment:
    """The typed record (serving.deployments.read)."""
    return D.read(name)


def deployment_state(name: str) -> dict:
    """The deployment's recorded state (phase, replicas, config, events) as stored."""
    return D.load(name)


def deployment_status(name: str) -> dict:
    """The state with live health (each replica's process and /health, the router healthy / degraded / down)."""
    return D.status(name)


def deployment_dir(name: str) -> Path:
    return D.state_dir(name)


def stop_deployment(name: str) -> None:
    """Cancel the serve jobs that run it (queued or running), then stop what is left of it."""
    s = store()
    for j in s.list(200):
        if j.kind == "serve" and j.status in (Status.RUNNING, Status.QUEUED) and s.serve_name(j) == name:
            s.cancel(j.id)
    if D.exists(name) and D.load(name).get("phase") != "stopped":
        launch.down(name)


def ask_restart(name: str, index: int) -> dict:
    """Ask the deployment's supervisor (its serve job) to restart replica `index`; this process owns none."""
    return launch.ask_restart(name, index)


# ------------------------------------------------------------------------------------ the machine
def machine_sample(job_pids: dict[int, int]) -> dict:
    """GPUs (NVML, or a replay), their processes mapped to jobs, CPU and RAM: pipeline/monitor.py sample."""
    return monitor.sample(job_pids)
