"""On the GPU: the embedded SmolLM2 config trains on CUDA (loss falls), a run killed with SIGKILL after a
checkpoint resumes with `train.resume=latest`, and the Unsloth backend trains through the same pipeline.

    SMOLLM_GGUF=/root/smol.gguf python3 bench/train_resume_gpu.py      # prints a table last
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.setdefault("SQLGENIE_HOME", "/root/sqlgenie"))
COMMON = ["-c", "configs/smollm2-cpu.yaml", "train.max_steps=40", "train.save_steps=20", "train.eval_steps=20",
          "train.batch_size=16", "train.logging_steps=1", "data.max_seq_len=512"]


def cli(args, kill_when: Path | None = None) -> float:
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", *COMMON, *args], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if kill_when is None:
        out, _ = proc.communicate()
        if proc.returncode:
            print(out[-3000:])
            raise SystemExit(f"train {args} failed")
        return time.time() - t0
    while not kill_when.exists() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.time() - t0


def losses(name: str) -> dict[int, float]:
    path = HOME / "runs" / name / "train" / "metrics.jsonl"
    return {r["step"]: r["loss"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from core import assets

    print("model:", assets.build_smollm())
    rows = []
    s = cli(["name=cuda-straight"])
    ref = losses("cuda-straight")
    rows.append(("trl bf16, 40 steps", f"{s:.0f} s", f"loss {ref[1]:.3f} -> {sum(list(ref.values())[-5:]) / 5:.3f}"))
    cli(["name=cuda-killed"], kill_when=HOME / "runs" / "cuda-killed" / "train" / "checkpoint-20" / "COMPLETE")
    cli(["name=cuda-killed", "train.resume=latest"])
    res = losses("cuda-killed")
    diffs = [abs(res[k] - ref[k]) for k in range(21, 41) if k in res]
    rows.append(("killed at 20, resumed", f"{len(diffs)} steps after resume",
                 f"max |loss - uninterrupted| = {max(diffs):.2e}"))
    try:
        s = cli(["name=cuda-unsloth", "train.backend=unsloth", "train.max_steps=20", "train.save_steps=100"])
        u = losses("cuda-unsloth")
        rows.append(("unsloth bf16, 20 steps", f"{s:.0f} s", f"loss {u[1]:.3f} -> {sum(list(u.values())[-5:]) / 5:.3f}"))
    except SystemExit as e:
        rows.append(("unsloth bf16, 20 steps", "FAILED", str(e)))
    plan = json.loads((HOME / "runs" / "cuda-straight" / "train" / "plan.json").read_text())
    print("plan:", plan["backend"], plan["precision"], "packing", plan["packing"], plan["reasons"])
    print("\n| run | time | result |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
