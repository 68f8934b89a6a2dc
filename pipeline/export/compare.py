"""Compare two models' next-token logits on the same inputs: the check behind every export's verify.

    compare_logits(reference_model, exported_model, [ids1, ids2])
    # -> {"max_abs_logit_diff", "logit_scale", "top1_agreement", "positions"}
"""
from __future__ import annotations

DEFAULT_PROMPTS = ["SELECT name FROM employees WHERE", "How many orders were placed in 2023?"]


def compare_logits(ref, other, id_batches) -> dict:
    import torch

    max_diff, scale, agree, total = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for ids in id_batches:
            a, b = ref(input_ids=ids).logits[0].float(), other(input_ids=ids).logits[0].float()
            max_diff = max(max_diff, (a - b).abs().max().item())
            scale = max(scale, a.abs().max().item())
            agree += (a.argmax(-1) == b.argmax(-1)).sum().item()
            total += a.shape[0]
    return {"max_abs_logit_diff": round(max_diff, 4), "logit_scale": round(scale, 2),
            "top1_agreement": agree / total, "positions": total}
