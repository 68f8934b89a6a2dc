"""Two-GPU measurements through the product's job store (device tool, kind nvidia-h200-x2), one call each.

    python3 bench/device_multi.py train OUT_DIR [--steps 24] [--smol]   # 1-GPU job, then a 2-GPU DDP job
    python3 bench/device_multi.py serve MODEL_DIR OUT_DIR               # 2 replicas, sweep, kill one under load

train: submits, through pipeline.jobs.JobStore (what the New-job page does), the reference recipe on the
8B shape (/tmp/llama8b, made by bench/train_gpu.py make-model) with the `auto` plan: job A on GPU 0 with
batch 16 x grad-accum 2, then job B on GPUs 0,1 with batch 16 x grad-accum 1 (the same effective batch of 32
rows; the train command launches torchrun itself). With --smol, a full-data SmolLM2 fine-tune
(configs/smollm2-gpu.yaml) is queued first on GPU 1, so job B waits in the queue for it and job A: the
scheduler, not the script, orders them. Reads each run's metrics.jsonl: tokens/s over the second half of
the steps, peak memory, loss per step side by side. Prints a table last.

serve: a serve job with 2 replicas (one per GPU) of MODEL_DIR (dummy weights), swept by
bench/serving_sweep.py --existing (replica 0 direct, router over replica 0, router over both), then a steady
load through the router while replica 1's process group is SIGKILLed: failed requests counted, the
supervisor's restart event shown. Prints a table last.
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from device_gpu import wait_serving  # noqa: E402

LLAMA_OVERRIDES = ["model.name_or_path=/tmp/llama8b", "name=ddp", "train.precision=auto", "train.batch_size=16",
                   "train.save_steps=1000", "train.eval_steps=1000", "data.eval_fraction=0"]


def _job_config(path: str, overrides: list[str]) -> str:
    from pipeline import config

    return config.dump(config.load(ROOT / path, overrides))


def _wait(store, job_ids: list[int], limit_s: float) -> None:
    t0 = time.time()
    while time.time() - t0 < limit_s:
        store.schedule()
        jobs = [store.get(j) for j in job_ids]
        if all(j.status not in ("queued", "running", "cancelling") for j in jobs):
            return
        time.sleep(3)
    print(f"jobs {job_ids} still running after {limit_s:.0f} s", flush=True)


def _run_dir(job_id: int) -> Path | None:
    from pipeline import runs

    r = runs.for_job(job_id)
    return r.dir if r else None


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]


def train(out: Path, steps: int, smol: bool) -> None:
    from pipeline.jobs import JobStore

    store = JobStore()
    rows = []
    if smol:
        sid = store.submit("train", _job_config("configs/smollm2-gpu.yaml", []), gpus=[1])
        print(f"job {sid}: SmolLM2 full-data fine-tune on GPU 1", flush=True)
    if not (Path("/tmp/llama8b") / ".complete").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "train_gpu.py"), "make-model", "/tmp/llama8b"], check=True)
        (Path("/tmp/llama8b") / ".complete").touch()
    common = LLAMA_OVERRIDES + [f"train.max_steps={steps}"]
    a = store.submit("train", _job_config("configs/llama31-8b-qlora.yaml", common + ["train.grad_accum=2"]), gpus=[0])
    b = store.submit("train", _job_config("configs/llama31-8b-qlora.yaml", common + ["train.grad_accum=1"]), gpus=[0, 1])
    print(f"job {a}: 8B on GPU 0; job {b}: 8B on GPUs 0,1 (queued behind {a}" + (f" and {sid})" if smol else ")"),
          flush=True)
    _wait(store, [a, b] + ([sid] if smol else []), 540)
    results = {}
    for label, jid in (("1 GPU", a), ("2 GPUs (DDP)", b)) + ((("SmolLM2 full data", sid),) if smol else ()):
        j = store.get(jid)
        rd = _run_dir(jid)
        print(f"job {jid} ({label}): {j.status} {j.error or ''} run {rd}", flush=True)
        if rd is None or not (rd / "metrics.jsonl").is_file():
            print(open(j.log_path).read()[-3000:], flush=True)
            continue
        m = [r for r in _metrics(rd) if "loss" in r and "tokens_per_s" in r]
        half = m[len(m) // 2:]
        tok = sum(r["tokens_per_s"] for r in half) / max(1, len(half))
        peak = max((r.get("gpu_mem_alloc_gib", 0) for r in m), default=0)
        results[label] = {"job": jid, "run": str(rd), "status": j.status, "steps": len(m), "tok_s": tok,
                          "peak_gib": peak, "loss": [r["loss"] for r in m],
                          "wall_s": (j.finished or time.time()) - (j.started or time.time()),
                          "result": json.loads((rd / "result.json").read_text()) if (rd / "result.json").is_file() else None}
        rows.append(f"| {label} | job {jid} | {j.status} | {len(m)} | {tok:,.0f} | {peak:.1f} | "
                    f"{results[label]['wall_s']:.0f} |")
    (out / "train-pair.json").write_text(json.dumps(results, indent=2))
    one, two = results.get("1 GPU"), results.get("2 GPUs (DDP)")
    print("\n| run | job | status | steps | tok/s (2nd half) | peak GiB/GPU | job wall s |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if one and two:
        n = min(len(one["loss"]), len(two["loss"]))
        diffs = [abs(x - y) for x, y in zip(one["loss"][:n], two["loss"][:n])]
        print(f"\nDDP speedup {two['tok_s'] / one['tok_s']:.2f}x; loss per step 1 GPU vs 2 GPUs, max |diff| "
              f"{max(diffs):.4f}, mean {sum(diffs) / n:.4f}")
        print("step | " + " | ".join(str(i + 1) for i in range(n)))
        print("1 GPU | " + " | ".join(f"{x:.3f}" for x in one["loss"][:n]))
        print("2 GPU | " + " | ".join(f"{x:.3f}" for x in two["loss"][:n]))


def serve(model: str, out: Path) -> None:
    from pipeline.jobs import JobStore
    from serving import deployments as D
    from serving.bench import SteadyLoad
    store = JobStore()
    name = "pair"
    cfg = (f"model: {model}\nname: {name}\nreplicas: 2\nmax_model_len: 4096\nwarmup_requests: 3\n"
           "extra_args: [--load-format, dummy]\n")
    t0 = time.time()
    job = store.submit("serve", cfg, gpus=[0, 1])
    state = wait_serving(store, job, name, 300)   # "healthy": the router and both replicas answer
    up_s = time.time() - t0
    print(f"serve job {job}: 2 replicas ready in {up_s:.0f} s; plan: {state['replicas'][0]['reasons']}", flush=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "serving_sweep.py"), "--model", model, "--existing", name,
                    "--concurrency", "256", "512", "--requests", os.environ.get("SWEEP_REQUESTS", "2"), "--max-tokens", "128", "--prompt-tokens", "200",
                    "--procs", "4", "--out", str(out / "sweep-pair.json")], check=True)
    if os.environ.get("NO_KILL"):
        store.cancel(job)
        return
    victim = D.load(name)["replicas"][1]
    pgid = victim["proc"]["pgid"]
    with SteadyLoad(state["router"]["url"], name, concurrency=64, max_tokens=64) as load:
        time.sleep(10)
        before = load.ok
        os.killpg(pgid, signal.SIGKILL)
        t_kill = time.time()
        print(f"SIGKILL replica 1 (pgid {pgid}) under 64-stream load ({before} answers so far)", flush=True)
        back = None
        while time.time() - t_kill < 150:
            st = D.status(name)
            r1 = st["replicas"][1]
            if r1.get("health") == "healthy" and r1["proc"]["pgid"] != pgid:
                back = time.time() - t_kill
                break
            time.sleep(2)
        time.sleep(5)
    events = [e for e in D.load(name).get("events", []) if e.get("t", 0) >= t_kill - 1]
    (out / "kill-events.json").write_text(json.dumps(events, indent=2))
    print(f"after the kill: {load.ok} answered, {len(load.failed)} failed; replica 1 back in "
          f"{back if back is None else round(back)} s", flush=True)
    for f in load.failed[:5]:
        print("  failed:", f, flush=True)
    for e in events[:8]:
        print("  event:", e, flush=True)
    store.cancel(job)
    print(f"\n| kill test | answered | failed | replica back (s) |\n|---|---|---|---|\n"
          f"| SIGKILL replica 1 at 64 streams | {load.ok} | {len(load.failed)} | "
          f"{'-' if back is None else f'{back:.0f}'} |")


def main() -> None:
    cmd, *rest = sys.argv[1:]
    if cmd == "train":
        out = Path(rest[0])
        steps = int(rest[rest.index("--steps") + 1]) if "--steps" in rest else 24
        out.mkdir(parents=True, exist_ok=True)
        train(out, steps, "--smol" in rest)
    elif cmd == "serve":
        out = Path(rest[1])
        out.mkdir(parents=True, exist_ok=True)
        serve(rest[0], out)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
