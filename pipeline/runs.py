"""The run registry: the one module that knows where every run lives and what is in it.

A *run* is one training run: its own folder, never shared, never reused. A rerun is a new run.

    <root>/<stamp>/              root = train.output_dir or <home>/runs/<name>; stamp = 20261129-160142-a3f1
        run.json                 id ("<name>/<stamp>"), job id, fingerprint, status, created
        config.yaml              the resolved config
        plan.json metrics.jsonl checkpoint-N/ adapter/ (model/: train.method full) result.json
        eval/<label>-<stamp>/    evaluations of this run's adapter
        export/<format>/         merged, GGUF, quantized exports

    from pipeline import runs
    run = runs.new_run(cfg)                       # a fresh folder, registered
    with runs.lock(run): ...                      # one writer per run; a second gets RunBusy at once
    run, ckpt = runs.resume_target(cfg)           # train.resume=latest|<run id>|<checkpoint>, same config only,
                                                  # never a finished (succeeded) or damaged run
    runs.truncate_metrics(run, step)              # a resumed run's metrics keep steps <= the checkpoint
    runs.list_runs(), runs.latest(cfg), runs.resolve_adapter("latest", cfg), runs.for_job(7)

Runs whose root is outside <home>/runs (train.output_dir) are found through <home>/runs/index.jsonl.
`latest` is resolved here and nowhere else. Prepared data folders are named here too.

Damage is named, never a traceback: a run whose run.json is unreadable is listed with status `damaged` by
`sqlgenie runs` (list_runs(damaged=True); Run.problems says which file), and neither `latest` nor resume takes
it; a line of index.jsonl or of a run's metrics.jsonl that cannot be read is skipped with a warning naming file
and line (once per process, on stderr; the run's `problems` keep it for the pages that show runs).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import envs
from core.errors import SqlgenieError
from core.files import FileLock, LockBusy, write_atomic, write_record
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
    problems: list[str] = field(default_factory=list)   # what could not be read (run.json, metrics lines)

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
    def model_dir(self) -> Path:
        """A full fine-tune's whole model (train.method full); a LoRA run has adapter/ instead."""
        return self.dir / "model"

    def has_model(self) -> bool:
        return (self.model_dir / "config.json").is_file()

    def has_output(self) -> bool:
        """Training finished with something to evaluate, export or serve: an adapter, or a full fine-tune's model."""
        return self.has_adapter() or self.has_model()

    @property
    def output_dir(self) -> Path:
        """What training wrote: model/ for a full fine-tune, else adapter/ (model card and tokenizer in both)."""
        return self.model_dir if self.has_model() and not self.has_adapter() else self.adapter_dir

    @property
    def damaged(self) -> str | None:
        """Why this run's own record (run.json) cannot be read; None when it can."""
        return self.info.get("damaged")

    @property
    def status(self) -> str:
        """created | training | succeeded | failed | interrupted (was training, nobody holds its lock now) |
        damaged (run.json unreadable)."""
        if self.damaged:
            return "damaged"
        st = self.info.get("status", "created")
        if st == "training" and not FileLock(self.dir / ".lock").locked():
            return "interrupted"
        return st

    def status_line(self) -> str:
        """The status with its reason where there is one ("failed: no space left on device while writing ...")."""
        why = self.damaged or (self.info.get("failure") if self.status == "failed" else None)
        return f"{self.status}: {why}" if why else self.status

    def label(self) -> str:
        job = f" (job #{self.job_id})" if self.job_id else ""
        return f"{self.id}{job}"


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(2)}"


_warned: set[str] = set()


def warn(message: str) -> None:
    """A problem that does not stop the command (a skipped unreadable line): on stderr, once per process."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _lines(path: Path):
    """(line number, raw line, its text or None when it is not UTF-8, whether a newline ends it) of a JSONL file."""
    for n, line in enumerate(path.read_bytes().splitlines(keepends=True), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        yield n, line, text, line.endswith(b"\n")


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


def all_evals() -> list[Path]:
    """Every evaluation folder on this machine (runs' and base models'), oldest first."""
    found = [p.parent for p in runs_home().glob("*/*/eval/*/metrics.json")]
    found += [p.parent for p in (home() / "evals").glob("*/*/metrics.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime)


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
    if job_id is None and envs.text("SQLGENIE_JOB_ID").isdigit():
        job_id = int(envs.text("SQLGENIE_JOB_ID"))
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


def _read_info(path: Path) -> dict:
    """run.json of the run folder `path`, or RunError naming what is wrong with it."""
    f = path / RUN_FILE
    try:
        info = json.loads(f.read_bytes())
    except FileNotFoundError:
        raise RunError(f"{path} is not a run folder (no {RUN_FILE})") from None
    except (OSError, ValueError) as e:     # truncated, not JSON, not UTF-8, unreadable
        raise RunError(f"{f} is truncated or unreadable ({type(e).__name__}): restore it, or move that run folder "
                       "away") from None
    if not isinstance(info, dict) or not isinstance(info.get("id"), str):
        raise RunError(f"{f} is not a run record (no run id in it)")
    return info


def open_run(path: Path) -> Run:
    path = Path(path)
    return Run(path, _read_info(path))


def reread(run: Run) -> Run:
    """A listed run read again (a page refreshing it); one whose run.json became unreadable comes back damaged."""
    try:
        return open_run(run.dir)
    except RunError as e:
        return _damaged(run.dir, run.id, str(e))


def _damaged(path: Path, run_id: str | None, why: str) -> Run:
    """A run whose run.json cannot be read, listed (not hidden) under what its folder and the index tell."""
    run_id = run_id or f"{path.parent.name}/{path.name}"
    try:   # the end of the second its stamp names: never sorted before a run made in that second
        created = time.mktime(time.strptime(path.name[:15], "%Y%m%d-%H%M%S")) + 0.999
    except ValueError:
        created = path.stat().st_mtime
    info = {"id": run_id, "name": run_id.split("/", 1)[0], "dir": str(path), "created": created, "damaged": why}
    return Run(path, info, [why])


def update(run: Run, **fields) -> None:
    """Change run.json. It reaches the disk even when the disk is full (a run failing for lack of space must
    not read `interrupted`): compact JSON, overwritten in place, then."""
    run.info.update(fields)
    try:
        write_atomic(run.dir / RUN_FILE, json.dumps(run.info, indent=2))
    except OSError:
        write_record(run.dir / RUN_FILE, json.dumps(run.info))


def _indexed() -> dict[str, str | None]:
    """Run folders registered in index.jsonl -> their run id; an unreadable line is skipped with a warning."""
    index, out = _index_path(), {}
    if not index.is_file():
        return out
    for n, _, text, ended in _lines(index):
        try:
            rec = json.loads(text) if text is not None else None
            out[str(Path(rec["dir"]))] = rec.get("id") if isinstance(rec.get("id"), str) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            if ended or text is None:   # (a last line without its newline is one being appended right now)
                what = "is not UTF-8 text" if text is None else "is not a run record"
                warn(f"{index} line {n} {what}: skipped (a run it registers outside {runs_home()} is not listed "
                     "until that line is fixed)")
    return out


def list_runs(name: str | None = None, damaged: bool = False) -> list[Run]:
    """Every registered run (newest first), optionally of one config name. `damaged`: runs whose run.json
    cannot be read too, with status `damaged` (`sqlgenie runs`, `latest` and resume always see them; a page
    that shows them re-reads a run with `reread`, not `open_run`)."""
    dirs: dict[str, str | None] = {str(p.parent): None for p in runs_home().glob(f"*/*/{RUN_FILE}")}
    for d, run_id in _indexed().items():
        if (Path(d) / RUN_FILE).is_file() or Path(d).is_dir():
            dirs[d] = run_id
    out = []
    for d, run_id in dirs.items():
        try:
            run = open_run(Path(d))
        except RunError as e:
            if not damaged:
                continue
            run = _damaged(Path(d), run_id, str(e))
        if name is None or run.name == name:
            out.append(run)
    return sorted(out, key=lambda r: r.created, reverse=True)


def get(ref: str) -> Run:
    """A run by id (`name/stamp`) or by folder."""
    if Path(ref).expanduser().is_dir() and (Path(ref).expanduser() / RUN_FILE).is_file():
        return open_run(Path(ref).expanduser())
    for run in list_runs(ref.split("/", 1)[0] if "/" in ref else None, damaged=True):
        if run.id == ref:
            return run
    raise RunError(f"no run {ref!r} (runs are named <config name>/<stamp>; `sqlgenie runs` lists them)")


def for_job(job_id: int) -> Run | None:
    return next((r for r in list_runs() if r.job_id == job_id), None)


def latest(cfg: RunConfig, with_adapter: bool = False, whole_ok: bool = False) -> Run | None:
    """The newest run of this config (under its own root, so train.output_dir is honoured); with_adapter: the
    newest with an adapter (whole_ok: or a full fine-tune's model). A damaged run where it would be taken or
    passed over is refused, by name."""
    root = runs_root(cfg)
    for run in list_runs(cfg.name, damaged=True):
        if run.dir.parent != root:
            continue
        if run.damaged:
            raise RunError(f"the newest run of '{cfg.name}', {run.id}, is damaged: {run.damaged}; `latest` does not "
                           "pass over it: restore or move that folder, or name a run id")
        if with_adapter and not (run.has_adapter() or (whole_ok and run.has_model())):
            continue
        return run
    return None


def check_adapter(folder: Path) -> None:
    """Refuse an adapter folder whose files are cut short or unreadable (a copy that stopped, a full disk):
    each JSON file must parse, each .safetensors file must be as long as its header says."""
    folder = Path(folder)
    fix = ("re-train it (sqlgenie train -c ...), or pick another run's adapter (`sqlgenie runs` lists them)")
    for f in sorted(folder.glob("*.json")):
        try:
            json.loads(f.read_bytes())
        except (OSError, ValueError):
            raise RunError(f"{f} is truncated or unreadable: {fix}") from None
    weights = sorted(folder.glob("*.safetensors"))
    if not weights and not list(folder.glob("adapter_model.bin")):
        raise RunError(f"{folder} has no adapter_model.safetensors: {fix}")
    for f in weights:
        size = f.stat().st_size
        try:
            with f.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n)) if 0 < n <= size - 8 else None
            need = 8 + n + max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (OSError, ValueError, struct.error, TypeError, KeyError, IndexError, AttributeError):
            raise RunError(f"{f} is truncated or unreadable (no valid safetensors header): {fix}") from None
        if size < need:
            raise RunError(f"{f} is truncated ({size} of {need} bytes): {fix}")


def resolve_adapter(ref: str, cfg: RunConfig, whole_ok: bool = False) -> tuple[Path, Run | None]:
    """`latest` | a run id | a run folder | an adapter folder -> (adapter folder, its run if any). whole_ok: a full
    fine-tune (train.method full) gives its model/ folder instead, which the caller reads as a whole model."""
    if ref == "latest":
        run = latest(cfg, with_adapter=True, whole_ok=whole_ok)
        if run is None:
            raise RunError(f"no trained run of '{cfg.name}' under {runs_root(cfg)} has an adapter yet: train first "
                           "(sqlgenie train -c ...), or give a run id or an adapter folder")
        if whole_ok and not run.has_adapter():
            check_adapter(run.model_dir)            # the same checks: JSON parses, safetensors as long as they say
            return run.model_dir, run
        check_adapter(run.adapter_dir)
        return run.adapter_dir, run
    path = Path(ref).expanduser()
    if (path / "adapter_config.json").is_file():
        check_adapter(path)
        parent = path.parent
        return path, open_run(parent) if (parent / RUN_FILE).is_file() else None
    run = get(ref)
    if not run.has_adapter() and run.has_model():
        if whole_ok:
            check_adapter(run.model_dir)
            return run.model_dir, run
        raise RunError(f"run {run.id} is a full fine-tune (train.method full): {run.model_dir} is already a whole "
                       "model, with no adapter to merge; use it as model.name_or_path")
    if not run.has_adapter():
        raise RunError(f"run {run.id} has no adapter (status {run.status_line()}): it did not finish training")
    check_adapter(run.adapter_dir)
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
    the run starts over in its own folder). `latest` is this config's newest run and no other: when that one
    cannot be continued, resume is refused naming it (never an older run instead). Refuses a finished
    (succeeded) run, a damaged one, and a run whose config, seed or data differ."""
    ref = cfg.train.resume
    ckpt: Path | None = None
    if ref == "latest":
        run = next((r for r in list_runs(cfg.name, damaged=True) if r.dir.parent == runs_root(cfg)), None)
        if run is None:
            raise RunError(f"train.resume=latest: '{cfg.name}' has no run under {runs_root(cfg)} to continue; start "
                           "a new run (leave train.resume unset)")
        if not run.damaged and run.status != "succeeded" and checkpoints.latest(run.dir) is None:
            raise RunError(f"train.resume=latest: the newest run of '{cfg.name}', {run.id} ({run.status_line()}), has "
                           "no complete checkpoint, and an older run is not continued in its place: start it over "
                           f"with train.resume={run.id}, start a new run (leave train.resume unset), or name "
                           "an older interrupted run's id")
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
    which = f"train.resume={ref}: " + (f"the newest run of '{cfg.name}', {run.id}," if ref == "latest"
                                        else f"run {run.id}")
    if run.damaged:
        raise RunError(f"{which} is damaged ({run.damaged}): it cannot be checked against this config; start a new "
                       "run (leave train.resume unset)")
    diff = differences(run.info.get("fingerprint", {}), fingerprint(cfg))
    if diff:
        raise RunError(f"train.resume: run {run.id} was trained with another config; continuing it would mix two "
                       "runs. Differences:\n  - " + "\n  - ".join(diff[:12])
                       + "\nStart a new run (leave train.resume unset), or resume with the run's own config "
                       f"({run.dir / 'config.yaml'})")
    if run.status == "succeeded":
        raise RunError(f"{which} has status succeeded: a finished run is never continued (its adapter, result and "
                       "metrics stay as they are); start a new run (leave train.resume unset), or name a run that "
                       "was interrupted or failed (`sqlgenie runs` lists them)")
    return run, ckpt or checkpoints.latest(run.dir)


def _metric_lines(run: Run):
    """(raw line, its record or None, cut) of metrics.jsonl. An unreadable line is skipped with a warning (and
    noted in run.problems), except a last one without its newline (`cut`): a line cut by a kill, or being
    written now."""
    if not run.metrics_path.is_file():
        return
    for n, line, text, ended in _lines(run.metrics_path):
        cut = False
        try:
            rec = json.loads(text) if text is not None else None
            if not isinstance(rec, dict):
                raise ValueError
        except ValueError:
            rec, cut = None, text is not None and not ended
            if not cut:
                note = f"metrics unreadable at line {n} of {run.metrics_path} (" + (
                    "not UTF-8 text" if text is None else "not a JSON record") + "): skipped"
                if note not in run.problems:
                    run.problems.append(note)
                warn(note)
        yield line, rec, cut


def read_metrics(run: Run) -> list[dict]:
    return [rec for _, rec, _ in _metric_lines(run) if rec is not None]


def truncate_metrics(run: Run, step: int) -> int:
    """Keep only lines of steps <= `step` (a resumed run redoes the steps after its checkpoint); a line that
    cannot be read stays as it is (nothing is lost), a last line cut by a kill goes. Returns how many lines
    were dropped."""
    keep, dropped = [], 0
    for line, rec, cut in _metric_lines(run):
        if cut or (rec is not None and rec.get("step", 0) > step):
            dropped += 1
        else:
            keep.append(line if line.endswith(b"\n") else line + b"\n")
    tmp = run.metrics_path.with_name(f".{run.metrics_path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(b"".join(keep))
    os.replace(tmp, run.metrics_path)
    return dropped


def summarize(run: Run) -> dict:
    """Result figures over the whole run (every logged step, before and after any resume)."""
    rows = read_metrics(run)
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]
    steps = max((r.get("step", 0) for r in rows), default=0)
    return {"steps": steps, "train_loss": sum(losses) / len(losses) if losses else None,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "eval_loss": evals[-1] if evals else None, "logged_steps": len(losses)}
