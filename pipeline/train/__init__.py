"""Fine-tuning stage: the plan (plan.py), the backends (trl_backend.py, unsloth_backend.py), the run itself
(stage.py: `run(cfg)`), checkpoints, callbacks and the GPU kernels (varlen, fp8_base, fused_lora)."""
