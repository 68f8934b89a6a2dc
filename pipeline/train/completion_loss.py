"""The training loss computed from logits at the scored positions only (the completion's tokens).

TRL's default loss (`chunked_nll`) skips the prompt's logits but rounds the scored tokens up to chunks of 256
and recomputes each chunk in the backward pass: a CPU micro-batch of one row scores ~25 completion tokens, so
it projects 256 rows onto the vocabulary three times. For SmolLM2 (49k vocabulary) that is ~18% of a CPU
step; for Gemma 3 (262k) ~60%. Here the model projects only the positions whose next token is scored
(transformers' public `logits_to_keep` with the positions, the union over a padded batch's rows), and the loss
is the same sum over scored tokens divided by the trainer's token count (gradient accumulation and DDP
handled by the Trainer as for its own loss). Used by the TRL backend whenever Liger's fused loss is off.

    from pipeline.train.completion_loss import CompletionLossTrainer   # an SFTTrainer; SFTConfig(loss_type="nll")
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from transformers import Trainer
from trl import SFTTrainer


def scored_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose next token has a label (any row of the batch); at least one, so a batch with nothing
    scored still gives a zero loss connected to the graph."""
    keep = (labels[..., 1:] != -100).any(dim=0).nonzero().squeeze(-1)
    return keep if keep.numel() else torch.zeros(1, dtype=torch.long, device=labels.device)


def completion_loss(outputs, labels, num_items_in_batch=None, keep=None):
    """Cross-entropy of the kept logits (B, K, V) against the tokens that follow the kept positions."""
    targets = labels[:, keep + 1]
    total = F.cross_entropy(outputs.logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
                            reduction="sum")
    if num_items_in_batch is None:
        return total / (targets != -100).sum().clamp(min=1)
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


class CompletionLossTrainer(SFTTrainer):
    """An SFTTrainer (built with `loss_type="nll"`, so TRL leaves the model's forward alone) whose loss asks
    the model for the scored positions' logits only."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs.pop("_prediction_loss_only", None)
        if "labels" not in inputs or "shift_labels" in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        keep = scored_positions(inputs["labels"])
        self.compute_loss_func = functools.partial(completion_loss, keep=keep)
        return Trainer.compute_loss(self, model, {**inputs, "logits_to_keep": keep, "use_cache": False},
                                    return_outputs, num_items_in_batch)
