"""Fine-tuning stage: LoRA / QLoRA on the prepared data, with a plan made before anything is loaded.

    sqlgenie train -c configs/smollm2-cpu.yaml [train.max_steps=50]         # a new run every time
    sqlgenie train -c configs/smollm2-cpu.yaml train.resume=latest          # continue this config's newest run
    torchrun --nproc_per_node 2 -m pipeline train -c ...                    # DDP by hand (gloo on CPU)

With several GPUs visible and no torchrun around it, the command launches torchrun itself (one process per
GPU, DDP) and says so in the plan. Each run gets its own folder from the run registry (pipeline/runs.py):
plan.json, metrics.jsonl (one line per logged step), checkpoint-N/ (complete or ignored), adapter/
(adapter + tokenizer + model card with the prompt contract + config.yaml, published atomically; with
train.method full the whole model, the same way, in model/) and
result.json (figures over the whole run, resumes included). One process writes a run at a time.

A run that stops on an error is recorded `failed` with one line why (run.json, even on a full disk); its
complete checkpoints stay. A full disk is one line: "no space left on device while writing <path>: free space
and resume with train.resume=<run id>".
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core import assets, envs
from core.errors import SqlgenieError
from core.files import NoSpaceError, failed_path, no_space, publish, staging_dir, write_atomic
from core.modelinfo import write_card
from core.settings import REPO_ROOT, dump
from pipeline import runs
from pipeline.config import RunConfig
from pipeline.data import prepare
from pipeline.train import checkpoints
from pipeline.train import plan as planning


class TrainError(SqlgenieError):
    """Training could not run to the end (named, with the log to read)."""


@dataclass
class TrainResult:
    run_id: str
    out_dir: Path
    adapter_dir: Path
    steps: int
    train_loss: float | None
    eval_loss: float | None
    seconds: float
    plan: str

    def summary(self) -> str:
        tl = f"{self.train_loss:.4f}" if self.train_loss is not None else "n/a"
        ev = f", eval loss {self.eval_loss:.4f}" if self.eval_loss is not None else ""
        return (f"run {self.run_id}: trained {self.steps} steps in {self.seconds:.0f} s, train loss {tl}{ev}\n"
                f"  {self.adapter_dir.name if self.adapter_dir.name == 'model' else 'adapter'}: {self.adapter_dir}\n"
                f"  metrics: {self.out_dir / 'metrics.jsonl'}")


def _distributed() -> bool:
    return envs.integer("WORLD_SIZE") > 1


def _open_run(cfg: RunConfig) -> tuple[runs.Run, Path | None]:
    """The run this process writes: the one the launcher made (SQLGENIE_RUN_DIR), the one train.resume names,
    or a new one."""
    if envs.text("SQLGENIE_RUN_DIR"):
        run = runs.open_run(Path(envs.text("SQLGENIE_RUN_DIR")))
        return run, checkpoints.latest(run.dir) if cfg.train.resume else None
    if cfg.train.resume:
        run, ckpt = runs.resume_target(cfg)
        if cfg.train.resume == "latest":
            print(f"[train] train.resume=latest: run {run.id} is the newest run of '{cfg.name}' ({run.status_line()}): "
                  f"continuing it from {ckpt.name if ckpt else 'the start'}", flush=True)
        return run, ckpt
    return runs.new_run(cfg), None


def _launch_ddp(cfg: RunConfig, plan: planning.Plan, t0: float) -> TrainResult:
    """Run this same command under torchrun, one process per visible GPU, in our process group (a cancel
    stops them all); the run folder is made here and handed down."""
    run, _ = _open_run(cfg)
    n = plan.device.count
    write_atomic(run.dir / "plan.json", plan.to_json())   # the workers take this plan (made once, here)
    print(f"[train] {n} GPUs visible: launching torchrun with {n} processes (DDP) for run {run.id}", flush=True)
    env = dict(os.environ, SQLGENIE_RUN_DIR=str(run.dir), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
           "-m", "pipeline", "train", "--config", str(run.dir / "config.yaml")]
    code = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT)).returncode
    if code != 0:
        why = runs.reread(run).info.get("failure")
        raise TrainError(f"the {n}-process DDP run {run.id} failed (exit code {code}"
                         + (f": {why}" if why else "") + f"); its log is above and its folder is {run.dir}")
    res = json.loads(run.result_path.read_text())
    return TrainResult(run.id, run.dir, run.model_dir if plan.method == "full" else run.adapter_dir, res["steps"], res["train_loss"], res["eval_loss"],
                       time.time() - t0, plan.describe())


def model_card(cfg: RunConfig, run: runs.Run, plan: planning.Plan, tok, steps: int, data_report: dict) -> dict:
    """What travels with the adapter: base model, the prompt contract, data and training facts."""
    return {"format": 1, "kind": "full-model" if plan.method == "full" else "lora-adapter",
            "base_model": cfg.model.name_or_path, "run": run.id,
            "job_id": run.job_id, "steps": steps, "contract": cfg.contract().to_dict(),
            "chat_template": tok.chat_template, "tokenizer": "in this folder",
            "data": {"fingerprint": data_report.get("fingerprint_digest"), "train_rows": data_report.get("train_rows"),
                     "sources": [s.path for s in cfg.data.sources]},
            "training": {"backend": plan.backend, "precision": plan.precision, "method": plan.method,
                         "lora_r": cfg.train.lora.r,
                         "lora_alpha": cfg.train.lora.alpha, "target_modules": list(cfg.train.lora.target_modules),
                         "learning_rate": cfg.train.learning_rate, "batch_size": cfg.train.batch_size * cfg.train.grad_accum},
            "evaluation": None}


def evaluated_at(log_history: list[dict], step: int) -> bool:
    """Whether the trainer logged an eval loss at `step`: the last step of a run whose eval_steps divide its
    length already has one, and another pass over the same rows with the same weights would only repeat it
    (~2 min of the CPU recipe)."""
    return any("eval_loss" in h and h.get("step") == step for h in log_history)


def _plan(cfg: RunConfig, model_path: Path) -> planning.Plan:
    """The run's plan: the launcher's (a DDP worker reads the plan.json its parent wrote, when it was made for this
    many processes), else made here, once."""
    handed = Path(envs.text("SQLGENIE_RUN_DIR") or ".") / "plan.json"
    if envs.text("SQLGENIE_RUN_DIR") and handed.is_file():
        plan = planning.Plan.from_json(handed.read_text())
        if plan.world_size == envs.integer("WORLD_SIZE"):
            return plan
    return planning.make_plan(cfg, model_path)           # every config error before any heavy load


def run(cfg: RunConfig) -> TrainResult:
    cfg.validate(need_model=True)                        # at once when the command's load checked it already
    t0 = time.time()
    model_path = assets.resolve(cfg.model.name_or_path)
    plan = _plan(cfg, model_path)
    if plan.device.kind == "cuda" and plan.device.count > 1 and not _distributed():
        return _launch_ddp(cfg, plan, t0)
    if plan.backend == "unsloth":
        import unsloth  # noqa: F401  - must patch transformers/trl/peft before they are used
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    dist = PartialState(cpu=plan.device.kind != "cuda")  # one process, or one per GPU under torchrun (DDP)
    main = dist.is_main_process
    box = [None, None]
    if main or envs.text("SQLGENIE_RUN_DIR"):
        run_, ckpt = _open_run(cfg)
        box = [str(run_.dir), str(ckpt) if ckpt else None]
    if dist.num_processes > 1 and not envs.text("SQLGENIE_RUN_DIR"):
        box = broadcast_object_list(box)                 # torchrun by hand: the main process made the run
    run_, ckpt = runs.open_run(Path(box[0])), (Path(box[1]) if box[1] else None)
    with (runs.lock(run_) if main else contextlib.nullcontext()):
        try:
            return _train(cfg, plan, model_path, run_, ckpt, dist, t0)
        except BaseException as e:
            if main:
                _record_failure(cfg, run_, e)
            raise


def _being_written(cfg: RunConfig, run_: runs.Run) -> Path:
    """What a write that failed was most likely writing, when the error names no file (torch.save and
    safetensors name none): the newest unfinished checkpoint, adapter or prepared-data folder, else the run."""
    data = runs.prepared_dir(cfg, prepare.fingerprint(cfg))
    found = checkpoints.incomplete(run_.dir) + list(run_.dir.glob(".adapter.partial-*")) + list(
        run_.dir.glob(".model.partial-*"))
    found += list(data.parent.glob(f".{data.name}.partial-{os.getpid()}"))
    return max(found, key=lambda p: p.stat().st_mtime, default=run_.dir)


def _record_failure(cfg: RunConfig, run_: runs.Run, exc: BaseException) -> None:
    """Mark the run failed with one line why; a full disk becomes that one line for the user (NoSpaceError)."""
    try:
        where = failed_path(exc) or _being_written(cfg, run_)
    except OSError:                                      # a folder went away while we looked
        where = run_.dir
    full = no_space(exc, where) or no_space(exc, run_.dir)
    why = (f"no space left on device while writing {where}" if full
           else f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}")
    try:
        runs.update(run_, status="failed", failure=why)
    except OSError as e:
        why += f" (and run.json could not be updated: {e.strerror})"
    if full:
        raise NoSpaceError(f"{why}: free space and resume with train.resume={run_.id} (its complete checkpoints "
                           "are kept)") from None


def _train(cfg: RunConfig, plan: planning.Plan, model_path: Path, run_: runs.Run, ckpt: Path | None, dist,
           t0: float) -> TrainResult:
    from pipeline.train.data import load_train_eval  # heavy: datasets

    main = dist.is_main_process
    out_dir = run_.dir
    if main:
        moved = checkpoints.set_aside_incomplete(out_dir)
        for m in moved:
            print(f"[train] set aside an unfinished checkpoint: {m}", flush=True)
        if ckpt is not None:
            step = checkpoints.step_of(ckpt)
            dropped = runs.truncate_metrics(run_, step)
            print(f"[train] run {run_.id}: continuing from {ckpt.name} (metrics after step {step} dropped: "
                  f"{dropped} line(s))", flush=True)
        elif run_.metrics_path.exists():
            runs.truncate_metrics(run_, 0)               # a resumed run without a checkpoint starts over
        runs.update(run_, status="training", pid=os.getpid(), resumed_from=str(ckpt) if ckpt else None, failure=None)
        print(f"[train] run {run_.id} in {out_dir}\n[train] plan:\n" + plan.describe(), flush=True)
        write_atomic(out_dir / "plan.json", plan.to_json())
    dist.wait_for_everyone()
    if not main:
        print(f"[train] process {dist.process_index} of {dist.num_processes} ({dist.device})", flush=True)

    import torch

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    from transformers import set_seed

    set_seed(cfg.train.seed)  # before the LoRA weights are initialised, so a run is reproducible
    with dist.main_process_first():                      # data is prepared once, by the main process
        train_ds, eval_ds, data_report = load_train_eval(cfg)
    from pipeline.train.callbacks import CompleteCheckpoints, MetricsCallback  # heavy: transformers

    callbacks = [MetricsCallback(run_.metrics_path, plan.micro_batch * plan.grad_accum * plan.world_size),
                 CompleteCheckpoints(keep=3)]
    if plan.backend == "unsloth":
        from pipeline.train import unsloth_backend as backend  # heavy: unsloth
    else:
        from pipeline.train import trl_backend as backend  # heavy: trl, peft
    trainer = backend.build_trainer(cfg, plan, model_path, out_dir, train_ds, eval_ds, callbacks)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    if eval_ds is not None and not evaluated_at(trainer.state.log_history, trainer.state.global_step):
        trainer.evaluate()                               # logged to metrics.jsonl by the callback
    steps = trainer.state.global_step
    if not main:                                         # the main process writes the adapter and result
        dist.wait_for_everyone()
        return TrainResult(run_.id, out_dir, run_.adapter_dir, steps, None, None, time.time() - t0, plan.describe())
    target = run_.model_dir if plan.method == "full" else run_.adapter_dir   # a whole model, or the adapter
    tmp = staging_dir(out_dir, target.name)
    trainer.model.save_pretrained(str(tmp))
    tok = trainer.processing_class
    tok.save_pretrained(str(tmp))
    write_card(tmp, model_card(cfg, run_, plan, tok, steps, data_report))
    (tmp / "config.yaml").write_text(dump(cfg))
    publish(tmp, target)
    summary = runs.summarize(run_)
    res = TrainResult(run_.id, out_dir, target, steps, summary["train_loss"], summary["eval_loss"],
                      time.time() - t0, plan.describe())
    write_atomic(run_.result_path, json.dumps({"run": run_.id, "steps": steps, "train_loss": res.train_loss,
                                               "first_loss": summary["first_loss"], "last_loss": summary["last_loss"],
                                               "eval_loss": res.eval_loss, "seconds": res.seconds,
                                               "processes": dist.num_processes}, indent=2))
    runs.update(run_, status="succeeded", steps=steps, finished=time.time())
    dist.wait_for_everyone()
    return res
