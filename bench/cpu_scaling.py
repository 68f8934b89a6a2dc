"""The ceiling for "2 replicas vs 1" on this machine: how much two cores together beat one, with no vLLM.

Runs a single-thread bf16 matmul pinned to core 0 alone, then one on each of cores 0 and 1 at once, in
two regimes: weights resident in L2 (compute-bound) and 128 MB of weights streamed from memory per call
(like a small model's decode step at batch 32, memory-bound). Prints the 2-core/1-core ratio of each.

    sqlgenie bench cpu_scaling
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

SHAPES = {"cache-resident (576x1536)": (576, 1536, 200), "memory-streaming (4096x16384, 128 MB)": (4096, 16384, 2)}


def worker(core: int, k: int, n: int, reps: int) -> None:
    import torch

    os.sched_setaffinity(0, [core])
    torch.set_num_threads(1)
    w = torch.randn(k, n, dtype=torch.bfloat16)
    x = torch.randn(32, k, dtype=torch.bfloat16)
    for _ in range(3):
        x @ w
    t0, calls = time.time(), 0
    while time.time() - t0 < 6:
        for _ in range(reps):
            x @ w
        calls += reps
    print(calls / (time.time() - t0), flush=True)


def run(cores: list[int], shape: tuple[int, int, int]) -> float:
    procs = [subprocess.Popen([sys.executable, __file__, "worker", str(c), *map(str, shape)], stdout=subprocess.PIPE,
                              text=True) for c in cores]
    return sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        worker(*map(int, sys.argv[2:6]))
        return
    print("| regime | 1 core calls/s | 2 cores calls/s | ratio |\n|---|---:|---:|---:|")
    for name, shape in SHAPES.items():
        one, two = run([0], shape), run([0, 1], shape)
        print(f"| {name} | {one:.0f} | {two:.0f} | {two / one:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
