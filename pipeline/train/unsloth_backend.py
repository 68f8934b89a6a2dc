"""Unsloth backend (CUDA only): FastLanguageModel loads the base (4-bit NF4 or bf16) and adds its LoRA,
then the same SFTTrainer config as the TRL backend trains it; on FP8 tensor cores its frozen NF4 GEMMs run
in FP8 (pipeline/train/kernels, when the plan's KernelOptions say qlora_fp8). `import unsloth` must come before
transformers / trl / peft in the process (it patches them): pipeline.train.run imports it first.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.config import RunConfig
from pipeline.model import load_tokenizer
from pipeline.train import kernels
from pipeline.train.plan import Plan
from pipeline.train.trl_backend import sft_config


def load_model(cfg: RunConfig, plan: Plan, model_path: Path):
    import torch
    from unsloth import FastLanguageModel

    model, _ = FastLanguageModel.from_pretrained(
        model_name=str(model_path), max_seq_length=cfg.data.max_seq_len, dtype=torch.bfloat16,
        load_in_4bit=plan.precision == "4bit", local_files_only=True)
    lora = cfg.train.lora
    model = FastLanguageModel.get_peft_model(
        model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
        bias="none", use_gradient_checkpointing="unsloth" if plan.gradient_checkpointing else False,
        random_state=cfg.train.seed)
    applied = kernels.apply(model, plan.kernels)
    if plan.kernels.qlora_fp8 and not applied.unsloth_patched:
        print("[train] 4bit: Unsloth's own bf16 GEMMs (this Unsloth has no FP8 hook)", flush=True)
    else:
        print(f"[train] kernels: {applied.describe()}", flush=True)
    return model


def build_trainer(cfg: RunConfig, plan: Plan, model_path: Path, out_dir: Path, train_ds, eval_ds, callbacks):
    from trl import SFTTrainer

    tok = load_tokenizer(cfg)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = load_model(cfg, plan, model_path)
    args = sft_config(cfg, plan, out_dir, eval_ds is not None)
    args.use_liger_kernel = False  # Unsloth brings its own fused kernels
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tok,
                      callbacks=callbacks)
