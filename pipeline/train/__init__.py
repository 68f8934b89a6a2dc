"""Fine-tuning stage: the plan (plan.py), the backends (trl_backend.py, unsloth_backend.py), the run itself
(stage.py: `run(cfg)`), checkpoints, callbacks; our kernels live in kernels/ (one entry point, `kernels.apply`)."""
