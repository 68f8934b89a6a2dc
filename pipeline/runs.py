"""The run registry: the one module that knows where every run lives and what is in it.

A *run* is one training run: its own folder, never shared, never reused. A rerun is a new run.

    <root>/<stamp>/              root = train.output_dir or <home>/runs/<name>; stamp = 20261129-160142-a3f1
        run.json                 id ("<name>/<stamp>"), job id, fingerprint, status, created
        config.yaml              the resolved config
        plan.json metrics.jsonl checkpoint-N/ adapter/ result.json
        eval/<label>-<stamp>/    evaluations of this run's adapter
        export/<format>/         merged, GGUF, quantized exports

    from pipeline import runs
    run = runs.new_run(cfg)                       # a fresh folder, registered
    with runs.lock(run): ...                      # one writer per run; a second gets RunBusy at once
    run, ckpt = runs.resume_target(cfg)           # train.resume=latest|<run id>|<checkpoint>, same config only
    runs.truncate_metrics(run, step)              # a resumed run's metrics keep steps <= the checkpoint
    runs.list_runs(), runs.latest(cfg), runs.resolve_adapter("latest", cfg), runs.for_job(7)

Runs whose root is outside <home>/runs (train.output_dir) are found through <home>/runs/index.jsonl.
`latest` is resolved here and nowhere else. Prepared data folders are named here too.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import SqlgenieError
from core.files import FileLock, LockBusy, write_atomic
from core.settings import dump, home, to_dict
from pipeline.config import RunConfig
from pipeline.train import checkpoints

RUN_FILE = "run.json"
# Config fields that may differ when a run is continued: they change how it is watched, not what it learns.
RESUME_MAY_DIFFER = ("train.resume", "train.output_dir", "train.threads", "train.save_steps", "train.eval_steps",
                     "train.logging_steps", "export")


class RunError(SqlgenieError):
    """A run cannot be found, continued or written (named, with what to do)."""


class RunBusy(RunError):
    """Another process is writing this run."""


@dataclass
class Run:
    dir: Path
    info: dict

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def job_id(self) -> int | None:
        return self.info.get("job_id")

    @property
    def created(self) -> float:
        return self.info.get("created", 0.0)

    @property
    def adapter_dir(self) -> Path:
        return self.dir / "adapter"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def result_path(self) -> Path:
        return self.dir / "result.json"

    @property
    def export_dir(self) -> Path:
        return self.dir / "export"

    def eval_dir(self, label: str) -> Path:
        return self.dir / "eval" / f"{label}-{_stamp()}"

    def evals(self) -> list[Path]:
        """This run's evaluation folders, oldest first."""
        return sorted((p.parent for p in (self.dir / "eval").glob("*/metrics.json")), key=lambda p: p.stat().st_mtime)

    def has_adapter(self) -> bool:
        return (self.adapter_dir / "adapter_config.json").is_file()

    @property
    def status(self) -> str:
        """created | training | succeeded | failed | interrupted (was training, nobody holds its lock now)."""
        st = self.info.get("status", "created")
        if st == "training" and not FileLock(self.dir / ".lock").locked():
            return "interrupted"
        return st

    def label(self) -> str:
        job = f" (job #{self.job_id})" if self.job_id else ""
        return f"{self.id}{job}"


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(2)}"


# ------------------------------------------------------------------------------------ where
def runs_home() -> Path:
    return home() / "runs"


def runs_root(cfg: RunConfig) -> Path:
    return Path(cfg.train.output_dir).expanduser().resolve() if cfg.train.output_dir else runs_home() / cfg.name


def prepared_dir(cfg: RunConfig, fingerprint: dict) -> Path:
    """Prepared data is addressed by what decides it: same fingerprint, same folder; another, another."""
    if cfg.data.output_dir:
        return Path(cfg.data.output_dir).expanduser()
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:10]
    return home() / "data" / f"{cfg.name}-{digest}"


def base_eval_dir(model_ref: str, label: str) -> Path:
    """Evaluations of a model that no run trained (a base model, an export given by path)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_ref.replace("embedded:", ""))[-60:]
    return home() / "evals" / slug / f"{label}-{_stamp()}"


# ------------------------------------------------------------------------------------ fingerprint
def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def fingerprint(cfg: RunConfig) -> dict:
    """What a run learns from: every config field except those in RESUME_MAY_DIFFER."""
    flat = _flatten(to_dict(cfg))
    return {k: v for k, v in flat.items() if not any(k == m or k.startswith(m + ".") for m in RESUME_MAY_DIFFER)}


def differences(a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: run has {a.get(k)!r}, this config {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


# ------------------------------------------------------------------------------------ create / read
def _index_path() -> Path:
    return runs_home() / "index.jsonl"


def new_run(cfg: RunConfig, job_id: int | None = None) -> Run:
    """A new run folder for `cfg` (never an existing one), registered in the index."""
    if job_id is None and os.environ.get("SQLGENIE_JOB_ID", "").isdigit():
        job_id = int(os.environ["SQLGENIE_JOB_ID"])
    root = runs_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        stamp = _stamp()
        d = root / stamp
        try:
            d.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise RunError(f"could not make a new run folder under {root}")
    info = {"id": f"{cfg.name}/{stamp}", "name": cfg.name, "dir": str(d), "created": time.time(), "job_id": job_id,
            "status": "created", "fingerprint": fingerprint(cfg)}
    write_atomic(d / RUN_FILE, json.dumps(info, indent=2))
    write_atomic(d / "config.yaml", dump(cfg))
    runs_home().mkdir(parents=True, exist_ok=True)
    with open(_index_path(), "a") as f:  # one short line per run, appended: safe with concurrent writers
        f.write(json.dumps({"id": info["id"], "dir": str(d)}) + "\n")
    return Run(d, info)


def open_run(path: Path) -> Run:
    path = Path(path)
    try:
        info = json.loads((path / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise RunError(f"{path} is not a run folder (no readable {RUN_FILE})") from None
    return Run(path, info)


def update(run: Run, **fields) -> None:
    run.info.update(fields)
    write_atomic(run.dir / RUN_FILE, json.dumps(run.info, indent=2))


def list_runs(name: str | None = None) -> list[Run]:
    """Every registered run (newest first), optionally of one config name."""
    dirs: dict[str, Path] = {}
    for p in runs_home().glob(f"*/*/{RUN_FILE}"):
        dirs[str(p.parent)] = p.parent
    if _index_path().is_file():
        for line in _index_path().read_text().splitlines():
            try:
                d = Path(json.loads(line)["dir"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            if (d / RUN_FILE).is_file():
                dirs[str(d)] = d
    out = []
    for d in dirs.values():
        try:
            run = open_run(d)
        except RunError:
            continue
        if name is None or run.name == name:
            out.append(run)
    return sorted(out, key=lambda r: r.created, reverse=True)


def get(ref: str) -> Run:
    """A run by id (`name/stamp`) or by folder."""
    if Path(ref).expanduser().is_dir() and (Path(ref).expanduser() / RUN_FILE).is_file():
        return open_run(Path(ref).expanduser())
    for run in list_runs(ref.split("/", 1)[0] if "/" in ref else None):
        if run.id == ref:
            return run
    raise RunError(f"no run {ref!r} (runs are named <config name>/<stamp>; `sqlgenie runs` lists them)")


def for_job(job_id: int) -> Run | None:
    return next((r for r in list_runs() if r.job_id == job_id), None)


def latest(cfg: RunConfig, with_adapter: bool = False) -> Run | None:
    """The newest run of this config (under its own root, so train.output_dir is honoured)."""
    root = runs_root(cfg)
    for run in list_runs(cfg.name):
        if run.dir.parent != root:
            continue
        if with_adapter and not run.has_adapter():
            continue
        return run
    return None


def resolve_adapter(ref: str, cfg: RunConfig) -> tuple[Path, Run | None]:
    """`latest` | a run id | a run folder | an adapter folder -> (adapter folder, its run if any)."""
    if ref == "latest":
        run = latest(cfg, with_adapter=True)
        if run is None:
            raise RunError(f"no trained run of '{cfg.name}' under {runs_root(cfg)} has an adapter yet: train first "
                           "(sqlgenie train -c ...), or give a run id or an adapter folder")
        return run.adapter_dir, run
    path = Path(ref).expanduser()
    if (path / "adapter_config.json").is_file():
        parent = path.parent
        return path, open_run(parent) if (parent / RUN_FILE).is_file() else None
    run = get(ref)
    if not run.has_adapter():
        raise RunError(f"run {run.id} has no adapter (status {run.status}): it did not finish training")
    return run.adapter_dir, run


# ------------------------------------------------------------------------------------ writing a run
def lock(run: Run) -> FileLock:
    """Held by the one process that writes the run; a second writer gets RunBusy naming the holder."""
    return _RunLock(run.dir / ".lock", f"run {run.id}")


class _RunLock(FileLock):
    def acquire(self) -> "FileLock":
        try:
            return super().acquire()
        except LockBusy as e:
            raise RunBusy(str(e)) from None


def resume_target(cfg: RunConfig) -> tuple[Run, Path | None]:
    """The run that train.resume names and the checkpoint to continue from (None: no complete checkpoint yet,
    the run starts over in its own folder). Refuses a run whose config, seed or data differ."""
    ref = cfg.train.resume
    ckpt: Path | None = None
    if ref == "latest":
        candidates = [r for r in list_runs(cfg.name) if r.dir.parent == runs_root(cfg)]
        run = next((r for r in candidates if checkpoints.latest(r.dir) is not None), None)
        if run is None:
            raise RunError(f"train.resume=latest: no run of '{cfg.name}' under {runs_root(cfg)} has a complete "
                           "checkpoint; start a new run (leave train.resume unset)")
    elif (Path(ref).expanduser() / checkpoints.MARKER).is_file() or Path(ref).name.startswith("checkpoint-"):
        ckpt = Path(ref).expanduser()
        if not (ckpt / checkpoints.MARKER).is_file():
            raise RunError(f"train.resume: {ckpt} is not a complete checkpoint (no {checkpoints.MARKER} marker)")
        if not (ckpt.parent / RUN_FILE).is_file():
            raise RunError(f"train.resume: {ckpt} is not inside a run folder (no {RUN_FILE} beside it): it cannot be "
                           "checked against this config")
        run = open_run(ckpt.parent)
    else:
        run = get(ref)
    diff = differences(run.info.get("fingerprint", {}), fingerprint(cfg))
    if diff:
        raise RunError(f"train.resume: run {run.id} was trained with another config; continuing it would mix two "
                       "runs. Differences:\n  - " + "\n  - ".join(diff[:12])
                       + "\nStart a new run (leave train.resume unset), or resume with the run's own config "
                       f"({run.dir / 'config.yaml'})")
    return run, ckpt or checkpoints.latest(run.dir)


def read_metrics(run: Run) -> list[dict]:
    out = []
    if run.metrics_path.is_file():
        for line in run.metrics_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by a kill
    return out


def truncate_metrics(run: Run, step: int) -> int:
    """Keep only lines of steps <= `step` (a resumed run redoes the steps after its checkpoint).
    Returns how many lines were dropped."""
    rows = read_metrics(run)
    keep = [r for r in rows if r.get("step", 0) <= step]
    write_atomic(run.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))
    return len(rows) - len(keep)


def summarize(run: Run) -> dict:
    """Result figures over the whole run (every logged step, before and after any resume)."""
    rows = read_metrics(run)
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]
    steps = max((r.get("step", 0) for r in rows), default=0)
    return {"steps": steps, "train_loss": sum(losses) / len(losses) if losses else None,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "eval_loss": evals[-1] if evals else None, "logged_steps": len(losses)}
