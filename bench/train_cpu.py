"""The default CPU fine-tune against the same fine-tune done the plain way, in one run on this machine.

    sqlgenie bench train_cpu --steps 4 --plain-budget 600     # ~15 min on a 2-core CPU; table last

ours:  `python -m pipeline train -c configs/smollm2-cpu.yaml` for --steps steps (the product's path: its plan
       picks float32 on a CPU without bf16 units, no recompute, LoRA r 16 on the embedded SmolLM2, 8 rows a step).
plain: what a user writes from TRL's documentation: SFTTrainer + a PEFT LoraConfig with the same rank, alpha,
       target modules, learning rate and 8 rows a step, on prompt/completion rows of the same bundled data
       (the same system prompt and schema text), TRL's defaults for the rest (on this CPU: `use_cpu=True`, which
       TRL's own error asks for, then bf16 autocast and gradient checkpointing, as SFTConfig defaults them).
Both run in fresh processes, one after the other. Step time is measured from the end of step 1 to the end of
the last step (load, data preparation and the first step's warm-up are reported apart, as wall); the plain run
stops after the step that passes --plain-budget seconds (on a CPU without bf16 units a plain step takes minutes),
and with fewer than 3 steps its steps are timed from the start of training. tokens/s counts non-padding tokens
(ours: the trainer's count; plain: the rows' mean length x rows per step).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLAIN = r'''
import json, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer
from core import assets
from pipeline.data.loaders import load
from sql.prompt import PROMPT_DEFAULT, sql_messages

steps, out, budget = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
model = str(assets.resolve("embedded:smollm2-135m-instruct"))
rows = [r for r in load("bundled:train") if not r["bad"] and r["kind"] == "sql"]
import random
random.Random(0).shuffle(rows)
rows = rows[: steps * 8]
data = Dataset.from_list([{"prompt": sql_messages(r, PROMPT_DEFAULT, False),
                           "completion": [{"role": "assistant", "content": r["sql"]}]} for r in rows])
tok = AutoTokenizer.from_pretrained(model)
lengths = [len(tok(tok.apply_chat_template(p + c, tokenize=False), add_special_tokens=False)["input_ids"])
           for p, c in zip(data["prompt"], data["completion"])]
times = []

class Clock(TrainerCallback):
    def on_train_begin(self, args, state, control, **kw):
        times.append(time.time())

    def on_step_end(self, args, state, control, **kw):
        times.append(time.time())
        if times[-1] - times[0] > budget:      # the plain way can take many minutes a step: stop, keep the figures
            control.should_training_stop = True

cfg = SFTConfig(output_dir=out, use_cpu=True, per_device_train_batch_size=8, max_steps=steps, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", report_to=[], max_length=1024)
lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
t0 = time.time()
trainer = SFTTrainer(model=model, args=cfg, train_dataset=data, peft_config=lora, callbacks=[Clock()])
t_ready = time.time()
trainer.train()
json.dump({"times": times, "setup_s": t_ready - t0, "wall_s": time.time() - t0,
           "tokens_per_row": sum(lengths) / len(lengths), "dtype": str(trainer.model.dtype), "bf16": cfg.bf16,
           "gradient_checkpointing": cfg.gradient_checkpointing,
           "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h]}, open(out + "/plain.json", "w"))
'''


def ours(steps: int, home: Path) -> dict:
    env = {**os.environ, "SQLGENIE_HOME": str(home)}
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "pipeline", "train", "-c", "configs/smollm2-cpu.yaml",
                    f"train.max_steps={steps}", f"train.save_steps={steps}", "train.eval_steps=100000"],
                   cwd=ROOT, env=env, check=True)
    wall = time.time() - t0
    log = next((home / "runs" / "smollm2-cpu").glob("*/metrics.jsonl"))
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    steps_ = [r for r in recs if "loss" in r and "tokens_per_s" in r]
    t = {r["step"]: r["time"] for r in steps_}
    tokens = sum(r["tokens_per_s"] * (t[r["step"]] - t[r["step"] - 1]) for r in steps_ if r["step"] - 1 in t)
    span = t[steps] - t[1]
    return {"step_s": span / (steps - 1), "tokens_per_s": tokens / span, "wall_s": wall, "steps_timed": steps - 1,
            "losses": [r["loss"] for r in steps_], "how": _plan_line(log.parent)}


def _plan_line(run: Path) -> str:
    plan = json.loads((run / "plan.json").read_text()) if (run / "plan.json").is_file() else {}
    return ", ".join(f"{k} {plan[k]}" for k in ("backend", "precision", "gradient_checkpointing", "micro_batch")
                     if k in plan) or "the plan of configs/smollm2-cpu.yaml"


def plain(steps: int, out: Path, budget_s: float) -> dict:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", PLAIN, str(ROOT), str(steps), str(out), str(budget_s)], cwd=ROOT,
                   check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    r = json.loads((out / "plain.json").read_text())
    done = len(r["times"]) - 1                   # times[0]: training begins
    if done >= 3:                                # from the end of step 1, as for ours
        span, n = r["times"][-1] - r["times"][1], done - 1
    else:                                        # stopped by the budget: steps from the start (warm-up included)
        span, n = r["times"][-1] - r["times"][0], done
    return {"step_s": span / n, "tokens_per_s": r["tokens_per_row"] * 8 * n / span, "steps_timed": n,
            "wall_s": time.time() - t0, "losses": r["losses"],
            "how": f"dtype {r['dtype']}, bf16 autocast {r['bf16']}, gradient checkpointing {r['gradient_checkpointing']}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--plain-budget", type=float, default=900,
                    help="stop the plain run after the step that passes this many seconds of training")
    ap.add_argument("--out")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        res = {"ours": ours(a.steps, Path(d) / "home"), "plain": plain(a.steps, Path(d), a.plain_budget)}
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    print("| way | s/step (8 rows) | steps timed | real tok/s | wall s (incl. load, data) | first / last loss | how |")
    print("|---|---|---|---|---|---|---|")
    for k, r in res.items():
        print(f"| {k} | {r['step_s']:.1f} | {r['steps_timed']} | {r['tokens_per_s']:.1f} | {r['wall_s']:.0f} | "
              f"{r['losses'][0]:.3f} / {r['losses'][-1]:.3f} | {r['how']} |")
    print(f"ours vs plain: {res['plain']['step_s'] / res['ours']['step_s']:.2f}x per step, "
          f"{res['ours']['tokens_per_s'] / res['plain']['tokens_per_s']:.2f}x tokens/s")


if __name__ == "__main__":
    main()
