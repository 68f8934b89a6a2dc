"""GPU training benchmark: a random-init Llama-3.1-8B shape, seq 1024, LoRA r=128 on 7 modules, micro-batch 8.

Every stack runs in a process of its own (Unsloth patches transformers at import), on the same model
folder, the same random token batches, AdamW, bf16 compute. Anchors: plain transformers + PEFT (bf16 +
gradient checkpointing; bitsandbytes QLoRA; QLoRA + Liger) and Unsloth (QLoRA; bf16; bf16 without
checkpointing). Ours: the model exactly as pipeline/train builds it from the plan that `auto` makes on
this GPU, and our QLoRA path. Prints one table last.

    python3 bench/train_gpu.py make-model /tmp/llama8b        # random init, saved once (bf16 safetensors)
    python3 bench/train_gpu.py all /tmp/llama8b [--steps 4]    # every stack, one subprocess each
    python3 bench/train_gpu.py one MODE /tmp/llama8b           # a single stack (used by `all`)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODES = ["hf_bf16_gc", "hf_qlora", "hf_qlora_liger", "unsloth_qlora", "unsloth_bf16", "unsloth_bf16_nogc",
         "ours_auto", "ours_qlora"]
MICRO, SEQ, R = 8, 1024, 128
PEAK_BF16 = 790e12  # measured dense bf16 matmul rate of the H200 here (device notes)


def make_model(out: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128009,
                      torch_dtype="bfloat16")
    t0 = time.time()
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model = model.to_empty(device="cuda").to(torch.bfloat16)
    gen = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    model.save_pretrained(out)
    tok = ROOT / ".sqlgenie" / "models" / "llama-3.1-tokenizer"
    if tok.is_dir():
        import shutil

        for f in tok.iterdir():
            shutil.copy(f, Path(out) / f.name)
    print(f"made {out} in {time.time() - t0:.0f} s")


def _plan_cfg(model_dir: str, precision: str):
    from pipeline import config

    return config.load(ROOT / "configs" / "llama31-8b-qlora.yaml",
                       [f"model.name_or_path={model_dir}", f"model.tokenizer={model_dir}", f"train.precision={precision}",
                        "train.gradient_checkpointing=auto", f"train.batch_size={MICRO}", "train.grad_accum=1",
                        f"train.micro_batch_size={MICRO}", "train.backend=auto"])


def build(mode: str, model_dir: str):
    """(model, flops multiplier 4 or 6, description)."""
    import torch

    if mode.startswith("unsloth"):
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=SEQ, dtype=torch.bfloat16,
                                                     load_in_4bit=mode == "unsloth_qlora", local_files_only=True)
        gc = mode != "unsloth_bf16_nogc"
        model = FastLanguageModel.get_peft_model(model, r=R, lora_alpha=R, lora_dropout=0, target_modules=TARGETS,
                                                 bias="none", use_gradient_checkpointing="unsloth" if gc else False)
        return model, 6 if gc else 4, mode
    if mode.startswith("ours"):
        from pipeline.train import plan as planning

        cfg = _plan_cfg(model_dir, "auto" if mode == "ours_auto" else "4bit")
        plan = planning.make_plan(cfg, Path(model_dir))
        if plan.backend == "unsloth":
            import unsloth  # noqa: F401

            from pipeline.train.unsloth_backend import load_model
        else:
            from pipeline.train.trl_backend import load_model
        if plan.liger:
            from liger_kernel.transformers import apply_liger_kernel_to_llama

            apply_liger_kernel_to_llama()
        model = load_model(cfg, plan, Path(model_dir))
        desc = (f"{plan.backend} {plan.precision} gc={'on' if plan.gradient_checkpointing else 'off'} "
                f"liger={'on' if plan.liger else 'off'}")
        return model, 6 if plan.gradient_checkpointing else 4, desc
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if mode == "hf_qlora_liger":
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama()
    kw = {"dtype": torch.bfloat16, "device_map": {"": 0}, "attn_implementation": "sdpa"}
    if "qlora" in mode:
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    model.config.use_cache = False
    if "qlora" in mode:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=R, lora_alpha=R, lora_dropout=0.0, target_modules=TARGETS,
                                              task_type="CAUSAL_LM"))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model, 6, mode


def one(mode: str, model_dir: str, steps: int) -> dict:
    if mode.startswith("unsloth"):
        import unsloth  # noqa: F401
    import torch

    torch.manual_seed(0)
    t_load = time.time()
    model, mult, desc = build(mode, model_dir)
    load_s = time.time() - t_load
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    from pipeline.train.plan import count_params

    n_params = count_params(json.loads((Path(model_dir) / "config.json").read_text()))[0]
    batches = [torch.randint(0, 128000, (MICRO, SEQ), device="cuda") for _ in range(3)]
    torch.cuda.reset_peak_memory_stats()

    def step(i):
        x = batches[i % len(batches)]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for i in range(2):
        step(i)
    torch.cuda.synchronize()
    t0 = time.time()
    for i in range(steps):
        loss = step(i)
    torch.cuda.synchronize()
    dt = (time.time() - t0) / steps
    tok_s = MICRO * SEQ / dt
    return {"mode": mode, "desc": desc, "tok_s": tok_s, "step_s": dt, "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
            "mfu_4n": tok_s * 4 * n_params / PEAK_BF16, "hfu": tok_s * mult * n_params / PEAK_BF16,
            "loss": float(loss), "load_s": load_s}


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "make-model":
        make_model(sys.argv[2])
        return
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 4
    if cmd == "one":
        print("RESULT " + json.dumps(one(sys.argv[2], sys.argv[3], steps)), flush=True)
        return
    model_dir = sys.argv[2]
    modes = sys.argv[sys.argv.index("--modes") + 1].split(",") if "--modes" in sys.argv else MODES
    out = Path(os.environ.get("OUT", "/tmp")) / "train_gpu.jsonl"
    results = []
    for mode in modes:
        t0 = time.time()
        p = subprocess.run([sys.executable, __file__, "one", mode, model_dir, "--steps", str(steps)],
                           capture_output=True, text=True, timeout=400)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line:
            r = json.loads(line[7:])
        else:
            r = {"mode": mode, "error": (p.stderr or p.stdout)[-1500:]}
        r["wall_s"] = time.time() - t0
        results.append(r)
        with out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "error"}),
              (r.get("error", "")[-600:] if "error" in r else ""), flush=True)
    print("\n| stack | what | tok/s | step s | peak GiB | MFU 4N | HFU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['mode']} | FAILED | | | | | |")
        else:
            print(f"| {r['mode']} | {r['desc']} | {r['tok_s']:.0f} | {r['step_s']:.3f} | {r['peak_gib']:.1f} | "
                  f"{r['mfu_4n']:.1%} | {r['hfu']:.1%} |")


if __name__ == "__main__":
    main()
