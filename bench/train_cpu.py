"""The default CPU fine-tune against the same fine-tune done the plain way, in one run on this machine.

    .venv/bin/python bench/train_cpu.py --steps 8          # ~15 min on a 2-core CPU; table printed last

ours:  `python -m pipeline train -c configs/smollm2-cpu.yaml` for --steps steps (the product's path: its plan
       picks float32 on a CPU without bf16 units, no recompute, LoRA r 16 on the embedded SmolLM2, 8 rows a step).
plain: what a user writes from TRL's documentation: SFTTrainer + a PEFT LoraConfig with the same rank, alpha,
       target modules, learning rate and 8 rows a step, on prompt/completion rows of the same bundled data
       (the same system prompt and schema text), TRL's defaults for the rest (on this CPU: `use_cpu=True`, which
       TRL's own error asks for, then bf16 autocast and gradient checkpointing, as SFTConfig defaults them).
Both run in fresh processes, one after the other. Step time is measured from the end of step 1 to the end of
the last step (load, data preparation and the first step's warm-up are reported apart, as wall); tokens/s counts
non-padding tokens (ours: the trainer's count; plain: the rows' mean length x rows per step).
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
sys.path.insert(0, sys.argv[1])
from core import assets
from pipeline.data.loaders import load
from sql.prompt import PROMPT_DEFAULT, sql_messages

steps, out = int(sys.argv[2]), sys.argv[3]
model = str(assets.resolve("embedded:smollm2-135m-instruct"))
rows = [r for r in load("bundled:train") if not r["bad"] and r["kind"] == "sql"]
import random
random.Random(0).shuffle(rows)
rows = rows[: steps * 8]
data = Dataset.from_list([{"prompt": sql_messages(r, PROMPT_DEFAULT, False),
                           "completion": [{"role": "assistant", "content": r["sql"]}]} for r in rows])
tok = AutoTokenizer.from_pretrained(model)
lengths = [len(tok.apply_chat_template(p + c, tokenize=True)) for p, c in zip(data["prompt"], data["completion"])]
times = []

class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        times.append(time.time())

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
    return {"step_s": span / (steps - 1), "tokens_per_s": tokens / span, "wall_s": wall,
            "losses": [r["loss"] for r in steps_], "how": "plan: " + (home / "runs").as_posix()}


def plain(steps: int, out: Path) -> dict:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", PLAIN, str(ROOT), str(steps), str(out)], cwd=ROOT, check=True,
                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    r = json.loads((out / "plain.json").read_text())
    span = r["times"][-1] - r["times"][0]
    return {"step_s": span / (steps - 1), "tokens_per_s": r["tokens_per_row"] * 8 * (steps - 1) / span,
            "wall_s": time.time() - t0, "losses": r["losses"],
            "how": f"dtype {r['dtype']}, bf16 autocast {r['bf16']}, gradient checkpointing {r['gradient_checkpointing']}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        res = {"ours": ours(a.steps, Path(d) / "home"), "plain": plain(a.steps, Path(d))}
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    print("| way | s/step (8 rows) | real tok/s | wall s (incl. load, data, step 1) | first / last loss | how |")
    print("|---|---|---|---|---|---|")
    for k, r in res.items():
        print(f"| {k} | {r['step_s']:.1f} | {r['tokens_per_s']:.1f} | {r['wall_s']:.0f} | "
              f"{r['losses'][0]:.3f} / {r['losses'][-1]:.3f} | {r['how']} |")
    print(f"ours vs plain: {res['plain']['step_s'] / res['ours']['step_s']:.2f}x per step, "
          f"{res['ours']['tokens_per_s'] / res['plain']['tokens_per_s']:.2f}x tokens/s")


if __name__ == "__main__":
    main()
