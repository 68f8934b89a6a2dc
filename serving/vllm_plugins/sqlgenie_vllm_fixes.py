"""A fix sqlgenie loads into its vLLM CPU replicas: a vLLM general plugin (entry point group
`vllm.general_plugins`, declared by the dist-info folder beside this file), found because serving/plan.py puts
this folder on a CPU replica's PYTHONPATH; vLLM calls `register()` in every process it starts, the engine core
included (its log then says "sqlgenie_vllm_fixes: ... replaced").

The bug (vLLM CPU 0.32, no Triton): the rejection sampler of speculative decoding expands per-request
temperature / top-p / top-k to one value per scheduled token with `expand_batch_to_tokens`, whose CPU override
(vllm/utils/cpu_triton_utils.py `_expand_kernel_impl`) hands the C++ kernel `output.to(torch.int64)`: for the
float32 (and int32) tensors that is a temporary copy, so the result is uninitialised memory. With n-gram
speculation on (the launcher's CPU default) and any sampled request in the batch, draft positions are scaled by
garbage temperatures: a grammar's -inf mask can turn +inf and token 0 comes out (xgrammar rejects it, HTTP 500,
and the router's circuit for that replica opens), and greedy answers batched with sampled ones can be silently
corrupted. `register()` swaps in a plain torch expansion (what the Triton kernel computes). With Triton present
it does nothing.

Checked by tests/integration/test_vllm_cpu_fix.py (the broken expansion, the fix through vLLM's own plugin
loader, and a constrained vote batched with a greedy answer through a real replica).
"""
import logging

import torch


def expand_batch_to_tokens(x: torch.Tensor, cu_num_tokens: torch.Tensor, num_tokens: int, replace_from: int = 0,
                           replace_to: int = 0) -> torch.Tensor:
    """[batch] -> [num_tokens]: request i's value repeated for each of its tokens (cu_num_tokens is cumulative),
    values equal to replace_from replaced by replace_to."""
    counts = torch.diff(cu_num_tokens.to(torch.long), prepend=cu_num_tokens.new_zeros(1, dtype=torch.long))
    x = torch.where(x == replace_from, torch.as_tensor(replace_to, dtype=x.dtype, device=x.device), x)
    return torch.repeat_interleave(x, counts, output_size=num_tokens)


def register() -> None:
    from vllm.triton_utils import HAS_TRITON
    if HAS_TRITON:       # the Triton kernel is right; only the CPU C++ override is broken
        return
    import vllm.v1.sample.rejection_sampler as rs
    if rs.expand_batch_to_tokens is not expand_batch_to_tokens:
        rs.expand_batch_to_tokens = expand_batch_to_tokens
        logging.getLogger("vllm").info("sqlgenie_vllm_fixes: CPU expand_batch_to_tokens replaced (rejection sampler)")
