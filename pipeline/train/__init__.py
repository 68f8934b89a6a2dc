"""Fine-tuning stage: LoRA / QLoRA on the prepared data, with a plan made before anything is loaded.

    python -m pipeline train --config configs/smollm2-cpu.yaml [train.max_steps=50] [train.resume=latest]
    torchrun --nproc_per_node 2 -m pipeline train --config ...     # DDP: one process per GPU (gloo on CPU)

Writes <home>/runs/<name>/train/: plan.json, metrics.jsonl (one line per logged step), checkpoint-N/
(adapter + optimizer + scheduler + RNG + trainer state, each with a COMPLETE marker), adapter/ (the
final adapter + tokenizer, written to a temp folder and renamed), result.json.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import ConfigError


@dataclass
class TrainResult:
    out_dir: Path
    adapter_dir: Path
    steps: int
    train_loss: float | None
    eval_loss: float | None
    seconds: float
    plan: str

    def summary(self) -> str:
        ev = f", eval loss {self.eval_loss:.4f}" if self.eval_loss is not None else ""
        return (f"trained {self.steps} steps in {self.seconds:.0f} s, train loss {self.train_loss:.4f}{ev}\n"
                f"  adapter: {self.adapter_dir}\n  metrics: {self.out_dir / 'metrics.jsonl'}")


def out_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.train.output_dir) if cfg.train.output_dir else cfg.run_dir() / "train"


def resolve_resume(cfg: RunConfig, out_dir: Path) -> str | None:
    from pipeline.train import checkpoints

    if not cfg.train.resume:
        return None
    moved = checkpoints.set_aside_incomplete(out_dir)
    for m in moved:
        print(f"[train] set aside an unfinished checkpoint: {m}", flush=True)
    if cfg.train.resume == "latest":
        last = checkpoints.latest(out_dir)
        if last is None:
            print(f"[train] resume=latest: no complete checkpoint in {out_dir}; starting from scratch", flush=True)
        return str(last) if last else None
    path = Path(cfg.train.resume)
    if not (path / checkpoints.MARKER).is_file():
        raise ConfigError([f"train.resume: {path} is not a complete checkpoint (no {checkpoints.MARKER} marker)"])
    return str(path)


def run(cfg: RunConfig) -> TrainResult:
    from pipeline import assets
    from pipeline.train import plan as planning
    from pipeline.train.data import load_train_eval

    cfg.validate()
    t0 = time.time()
    model_path = assets.resolve(cfg.model.name_or_path)
    plan = planning.make_plan(cfg, model_path)           # every config error before any heavy load
    if plan.backend == "unsloth":
        import unsloth  # noqa: F401  - must patch transformers/trl/peft before they are used
    from accelerate import PartialState

    dist = PartialState(cpu=plan.device.kind != "cuda")      # one process, or one per GPU under torchrun / accelerate launch (DDP)
    main = dist.is_main_process
    out_dir = out_dir_of(cfg)
    with dist.main_process_first():                      # the main process sets aside and moves files first
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)
        resume = resolve_resume(cfg, out_dir)
        if main and not resume and (out_dir / "metrics.jsonl").exists():
            (out_dir / "metrics.jsonl").rename(out_dir / f"metrics.{int(time.time())}.jsonl")  # keep the old run's
    if main:
        print("[train] plan:\n" + plan.describe(), flush=True)
        (out_dir / "plan.json").write_text(plan.to_json())
    else:
        print(f"[train] process {dist.process_index} of {dist.num_processes} ({dist.device})", flush=True)

    import torch

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    from transformers import set_seed

    set_seed(cfg.train.seed)  # before the LoRA weights are initialised, so a run is reproducible
    with dist.main_process_first():                      # data is prepared once, by the main process
        train_ds, eval_ds = load_train_eval(cfg)
    from pipeline.train.callbacks import CompleteCheckpoints, MetricsCallback

    callbacks = [MetricsCallback(out_dir / "metrics.jsonl", plan.micro_batch * plan.grad_accum * plan.world_size),
                 CompleteCheckpoints(keep=3)]
    if plan.backend == "unsloth":
        from pipeline.train import unsloth_backend as backend
    else:
        from pipeline.train import trl_backend as backend
    trainer = backend.build_trainer(cfg, plan, model_path, out_dir, train_ds, eval_ds, callbacks)
    result = trainer.train(resume_from_checkpoint=resume)
    eval_loss = None
    if eval_ds is not None:
        eval_loss = float(trainer.evaluate()["eval_loss"])   # logged to metrics.jsonl by the callback

    final = out_dir / "adapter"
    if not main:                                         # the main process writes the adapter and result
        dist.wait_for_everyone()
        return TrainResult(out_dir, final, trainer.state.global_step, float(result.training_loss), eval_loss,
                           time.time() - t0, plan.describe())
    # final adapter: temp folder, then rename (a crash never leaves a half adapter that looks complete)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".adapter-"))
    trainer.model.save_pretrained(str(tmp))
    trainer.processing_class.save_pretrained(str(tmp))
    (tmp / "sqlgenie.json").write_text(json.dumps({"base_model": cfg.model.name_or_path, "run": cfg.name,
                                                   "steps": trainer.state.global_step}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    res = TrainResult(out_dir, final, trainer.state.global_step, float(result.training_loss), eval_loss,
                      time.time() - t0, plan.describe())
    (out_dir / "result.json").write_text(json.dumps({"steps": res.steps, "train_loss": res.train_loss,
                                                     "eval_loss": res.eval_loss, "seconds": res.seconds,
                                                     "processes": dist.num_processes}, indent=2))
    dist.wait_for_everyone()
    return res
