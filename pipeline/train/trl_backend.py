"""TRL backend: SFTTrainer + PEFT LoRA (or every weight, train.method full); QLoRA through bitsandbytes NF4 (double quant, bf16 compute);
Liger kernels on CUDA; padding-free packing (position ids restart per example; attention runs per example
through flash_attn or, without it, torch's varlen FlashAttention); our kernels as the plan's KernelOptions say
(pipeline/train/kernels: FP8 bases, fused LoRA); CPU and CUDA; DDP under accelerate/torchrun comes from the
Trainer.
"""
from __future__ import annotations

from pathlib import Path

from core import envs
from pipeline.config import RunConfig
from pipeline.model import load_tokenizer
from pipeline.train import kernels
from pipeline.train.kernels import varlen_attention
from pipeline.train.plan import Plan


def _dtype(plan: Plan):
    """Weights' dtype. On CPU, fp32 weights under bf16 autocast beat bf16 weights (290 vs 257 tok/s,
    SmolLM2-135M LoRA on 2 cores); on CUDA, bf16 weights. Full fine-tuning keeps fp32 weights everywhere (an
    update far smaller than a bf16 weight's last bit would be lost)."""
    import torch

    if plan.precision == "fp32" or plan.method == "full" or (plan.device.kind == "cpu" and plan.precision == "bf16"):
        return torch.float32
    return torch.bfloat16   # bf16, 4bit compute, and fp8 (whose non-projection weights stay bf16)


def _attention(plan: Plan) -> str:
    """The plan's attention; torch's varlen one is registered with transformers before use."""
    if plan.attention == varlen_attention.NAME:
        return varlen_attention.register()
    return plan.attention


def load_model(cfg: RunConfig, plan: Plan, model_path: Path):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kw = {"dtype": _dtype(plan), "attn_implementation": _attention(plan)}
    if plan.precision == "4bit":
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    if plan.device.kind == "cuda":

        kw["device_map"] = {"": envs.integer("LOCAL_RANK")}
    model = AutoModelForCausalLM.from_pretrained(str(model_path), **kw)
    # No KV cache in training: with one, transformers does not derive the per-example (block-diagonal)
    # mask from the restarting position ids, and packed examples would attend to each other.
    model.config.use_cache = False
    if plan.precision == "4bit":
        # bitsandbytes on CPU rewrites 4-bit weights in place after a no-grad forward when this is on
        for m in model.modules():
            if hasattr(m, "support_avx512bf16_for_cpu"):
                m.support_avx512bf16_for_cpu = False
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=plan.gradient_checkpointing)
    if plan.method == "full":
        model.train()
        if plan.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model
    lora = cfg.train.lora
    model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                              target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    applied = kernels.apply(model, plan.kernels)   # FP8 bases; scale + sum in the B GEMM (bf16 autocast)
    print(f"[train] kernels: {applied.describe()}", flush=True)
    if plan.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def sft_config(cfg: RunConfig, plan: Plan, out_dir: Path, has_eval: bool):
    from trl import SFTConfig

    t = cfg.train
    return SFTConfig(
        output_dir=str(out_dir), per_device_train_batch_size=plan.micro_batch, per_device_eval_batch_size=plan.micro_batch,
        gradient_accumulation_steps=plan.grad_accum, learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio, num_train_epochs=t.epochs, max_steps=t.max_steps, logging_steps=t.logging_steps,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=None,
        eval_strategy="steps" if has_eval else "no", eval_steps=t.eval_steps,
        bf16=plan.precision in ("bf16", "4bit", "fp8"), gradient_checkpointing=False,  # enabled on the model already
        packing=plan.packing, packing_strategy="bfd", padding_free=plan.packing, max_length=cfg.data.max_seq_len,
        use_liger_kernel=plan.liger, use_cpu=plan.device.kind != "cuda", seed=t.seed, data_seed=t.seed,
        include_num_input_tokens_seen="non_padding", report_to=[], dataloader_num_workers=0,
        # without Liger, the loss is ours (pipeline/train/completion_loss.py): TRL must not patch the forward
        loss_type="nll" if not plan.liger else None,
        dataset_num_proc=None, remove_unused_columns=True, disable_tqdm=False,
    )


def build_trainer(cfg: RunConfig, plan: Plan, model_path: Path, out_dir: Path, train_ds, eval_ds, callbacks):
    from trl import SFTTrainer

    if not plan.liger:
        from pipeline.train.completion_loss import CompletionLossTrainer as SFTTrainer  # heavy: torch, trl

    tok = load_tokenizer(cfg)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = load_model(cfg, plan, model_path)
    return SFTTrainer(model=model, args=sft_config(cfg, plan, out_dir, eval_ds is not None), train_dataset=train_ds,
                      eval_dataset=eval_ds, processing_class=tok, callbacks=callbacks)
