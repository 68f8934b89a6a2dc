"""Trainer callbacks: a metrics JSONL the dashboard charts, and complete-or-ignored checkpoints.

A write that fails (a full disk) is re-raised naming the file it was writing (a failed write() names none).

Each log line: step, max_steps, epoch, loss, eval_loss, lr, grad_norm, tokens_per_s (real, non-padding tokens),
samples_per_s, gpu_mem_alloc_gib / gpu_mem_reserved_gib (peak since the last line), elapsed_s, eta_s.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from pipeline.train import checkpoints


class MetricsCallback(TrainerCallback):
    def __init__(self, path: Path, samples_per_step: int):
        self.path = Path(path)
        self.samples_per_step = samples_per_step
        self.t0 = self.t_last = None
        self.tokens_last = 0
        self.step_last = 0

    def on_train_begin(self, args, state, control, **kw):
        self.t0 = self.t_last = time.time()
        self.tokens_last = state.num_input_tokens_seen
        self.step_last = self.step0 = state.global_step

    def on_log(self, args, state, control, logs=None, **kw):
        import torch

        logs = logs or {}
        if not state.is_world_process_zero:
            return  # under DDP one line per step, from the main process
        if "loss" not in logs and "eval_loss" not in logs:
            return  # the end-of-training summary: result.json has it
        now = time.time()
        dt = max(now - self.t_last, 1e-9)
        dsteps = state.global_step - self.step_last
        rec = {"step": state.global_step, "max_steps": state.max_steps, "epoch": round(state.epoch or 0.0, 4),
               "time": now}
        for src, dst in (("loss", "loss"), ("eval_loss", "eval_loss"), ("learning_rate", "lr"), ("grad_norm", "grad_norm")):
            if src in logs:
                rec[dst] = float(logs[src])
        if "loss" in logs and dsteps > 0:
            # num_input_tokens_seen counts this process's tokens (transformers 5.17; on 2 H200s under DDP each
            # rank logged the single-GPU figure while its steps ran twice as fast): scale by the world size.
            rec["tokens_per_s"] = (state.num_input_tokens_seen - self.tokens_last) * max(1, args.world_size) / dt
            rec["samples_per_s"] = dsteps * self.samples_per_step / dt
            self.t_last, self.tokens_last, self.step_last = now, state.num_input_tokens_seen, state.global_step
        if torch.cuda.is_available():
            rec["gpu_mem_alloc_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
            rec["gpu_mem_reserved_gib"] = torch.cuda.max_memory_reserved() / 2 ** 30
        elapsed = now - self.t0
        rec["elapsed_s"] = elapsed
        done = state.global_step - self.step0
        if done > 0 and state.max_steps:
            rec["eta_s"] = elapsed / done * (state.max_steps - state.global_step)
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(self.path)) from e


class CompleteCheckpoints(TrainerCallback):
    """Marks each saved checkpoint complete, then rotates (the Trainer's own rotation is off)."""

    def __init__(self, keep: int):
        self.keep = keep

    def on_save(self, args, state, control, **kw):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                try:
                    checkpoints.mark_complete(folder)
                except OSError as e:
                    raise OSError(e.errno, e.strerror, str(folder / checkpoints.MARKER)) from e
                checkpoints.rotate(Path(args.output_dir), self.keep)
