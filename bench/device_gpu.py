"""Device (H200) measurements for serving, the job runner + NVML sampler, and export, one call each.

    sqlgenie bench device_gpu model-config /tmp/llama8b-cfg TOKENIZER_DIR    # 8B-shaped config, no weights
    sqlgenie bench device_gpu serve-job /tmp/llama8b-cfg OUT_DIR [--bf16]    # serve job + NVML + sweep
    sqlgenie bench device_gpu quantize MODEL_DIR OUT_DIR FMT [--calib N]      # our quantize() on the GPU
    sqlgenie bench device_gpu vllm-load MODEL_DIR                             # does vLLM load it? tok/s

serve-job: submits a `serve` job through pipeline.jobs (supervisor -> `python -m serving run` -> launcher
-> vLLM replica with the launcher's computed defaults + vllm-router), samples NVML while it runs and
maps the GPU process to the job, sweeps direct vs routed (bench/serving_sweep.py --existing), cancels
the job and checks the GPU is released. Prints a table last.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LLAMA8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
               rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128009,
               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192})


def model_config(out: str, tok: str) -> None:
    import shutil

    from transformers import LlamaConfig

    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    LlamaConfig(**LLAMA8B, torch_dtype="bfloat16").save_pretrained(o)
    for f in Path(tok).iterdir():
        shutil.copy(f, o / f.name)
    print(f"config-only 8B model in {o}")


def wait_serving(store, job: int, name: str, limit_s: float) -> dict:
    """Wait until serve job `job`'s deployment `name` answers with every worker healthy; its status."""
    from serving import deployments as D
    from serving.config import DeploymentError

    t0 = time.time()
    while time.time() - t0 < limit_s:
        j = store.get(job)
        if j.status not in ("running", "queued"):
            raise SystemExit(f"serve job {job} {j.status}: {j.error}\n" + open(j.log_path).read()[-3000:])
        try:
            st = D.status(name)
            if st["router"]["health"] == "healthy":
                return st
        except DeploymentError:
            pass
        time.sleep(2)
    raise SystemExit(f"serve job not ready in {limit_s:.0f} s:\n" + open(store.get(job).log_path).read()[-3000:])


def serve_job(model: str, out: str, bf16: bool) -> None:
    from pipeline import monitor
    from pipeline.jobs import JobStore

    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    store = JobStore()
    name = "h200-bf16" if bf16 else "h200"
    cfg = (f"model: {model}\nname: {name}\nreplicas: 1\nmax_model_len: 4096\nwarmup_requests: 3\n"
           f"extra_args: [--load-format, dummy]\n" + ("quantization: none\n" if bf16 else ""))
    t0 = time.time()
    job = store.submit("serve", cfg, gpus=[0])
    state = wait_serving(store, job, name, 400)
    up_s = time.time() - t0
    print(f"serve job {job} ready in {up_s:.0f} s; plan: {state['replicas'][0]['reasons']}", flush=True)
    j = store.get(job)
    s = monitor.sample({job: j.pid})
    (outp / f"nvml-{name}.json").write_text(json.dumps(s, indent=2))
    print("NVML:", json.dumps(s["gpus"]), flush=True)
    print("GPU processes -> job:", [(p["pid"], round(p["mem_gib"], 1), p["job"]) for p in s["processes"]], flush=True)
    # sampling cost: 50 samples
    t = time.time()
    for _ in range(50):
        monitor.sample({job: j.pid})
    per = (time.time() - t) / 50
    print(f"one NVML+CPU sample: {per * 1000:.2f} ms (= {per / 2 * 100:.3f}% of a core at one sample per 2 s)", flush=True)
    conc = ["1", "64", "256"] if bf16 else ["1", "4", "16", "64", "256"]
    subprocess.run([sys.executable, "-m", "bench.serving_sweep", "--model", model, "--existing", name,
                    "--concurrency", *conc, "--requests", "16", "--max-tokens", "128", "--prompt-tokens", "200",
                    "--out", str(outp / f"sweep-{name}.json")], check=True, cwd=ROOT)
    store.cancel(job)
    time.sleep(3)
    after = monitor.sample({})
    print(f"job {job} -> {store.get(job).status}; GPU memory after cancel: "
          f"{after['gpus'][0]['mem_used_gib']:.1f} GiB, processes {len(after['processes'])}", flush=True)


def quantize_cmd(model: str, out: str, fmt: str, calib: int) -> None:
    from transformers import AutoTokenizer

    from pipeline.data.loaders import load
    from pipeline.export.quantize import calibration_texts, quantize
    from pipeline.export.stage import folder_size
    from sql.prompt import PROMPT_DEFAULT, ChatFormatter

    texts = None
    if fmt != "fp8":
        tok = AutoTokenizer.from_pretrained(model)
        f = ChatFormatter(tok, PROMPT_DEFAULT, True)
        rows = [r for r in load("bundled:train") if not r["bad"] and r["kind"] == "sql"][:5000]
        texts = calibration_texts(rows, lambda r: f.prompt(r) + r["sql"] + tok.eos_token, calib)
    t = time.time()
    quantize(Path(model), Path(out), fmt, texts, max_seq_len=1024)
    print(f"RESULT quantize {fmt}: {time.time() - t:.0f} s, {folder_size(Path(out)) / 2**30:.2f} GiB "
          f"(source {folder_size(Path(model)) / 2**30:.2f} GiB), calibration {len(texts) if texts else 0}", flush=True)


def vllm_load(model: str) -> None:
    """Start vLLM on the folder, time it, and measure 64-concurrent decode; print what happens."""
    from bench.load import sweep
    from serving import launch
    from serving.config import DeploymentError, ServeConfig

    cfg = ServeConfig(model=model, name="load-" + Path(model).name, replicas=1, base_port=8500, router_port=8590,
                             metrics_port=8591, max_model_len=4096, warmup_requests=1)
    t = time.time()
    try:
        state = launch.up(cfg)
    except DeploymentError as e:
        print(f"RESULT vllm-load {model}: FAILED to start: {str(e)[:1500]}", flush=True)
        return
    start_s = time.time() - t
    try:
        lv = sweep(f"http://127.0.0.1:{state['replicas'][0]['port']}", cfg.name, [1, 64], 16, 200, 128)
        print(f"RESULT vllm-load {model}: started in {start_s:.0f} s; plan {state['replicas'][0]['reasons']}; "
              f"batch-1 {lv[0].tokens_per_s:.0f} tok/s, 64 concurrent {lv[1].tokens_per_s:,.0f} tok/s", flush=True)
    finally:
        launch.down(cfg.name)


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "model-config":
        model_config(rest[0], rest[1])
    elif cmd == "serve-job":
        serve_job(rest[0], rest[1], "--bf16" in rest)
    elif cmd == "quantize":
        quantize_cmd(rest[0], rest[1], rest[2], int(rest[rest.index("--calib") + 1]) if "--calib" in rest else 128)
    elif cmd == "vllm-load":
        vllm_load(rest[0])
