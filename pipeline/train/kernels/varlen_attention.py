"""Packed-sequence attention without FlashAttention: each example attends only to itself.

Padding-free packing puts a micro-batch's rows end to end in one sequence (batch 1) whose position ids
restart at 0 for every row. This registers a transformers attention implementation, "sqlgenie_varlen",
that reads those restarts and attends per row:
- CUDA: torch's own variable-length FlashAttention kernel (`torch.nn.attention.varlen.varlen_attn`,
  torch >= 2.10), so no flash_attn wheel is needed and the cost is linear in the number of rows;
- CPU (and any fallback): one causal SDPA call per row, exact and still linear.
No (T x T) mask is built: transformers skips mask creation for implementations it has no mask function for.

    from pipeline.train.kernels import varlen_attention
    name = varlen_attention.register()   # -> "sqlgenie_varlen"; pass as attn_implementation=name
"""
from __future__ import annotations

import functools
import inspect
import sys
import weakref

NAME = "sqlgenie_varlen"
_cache: dict = {}


def torch_varlen():
    """torch's varlen FlashAttention function, or None where this torch has none."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def available_on_cuda() -> bool:
    """Whether torch has the kernel. Before torch is imported (the dashboard's plan preview keeps it out) the
    installed version says so: torch.nn.attention.varlen came with torch 2.10."""
    if "torch" not in sys.modules:
        from importlib import metadata

        major, minor = (int(x) for x in metadata.version("torch").split(".")[:2])
        return (major, minor) >= (2, 10)
    return torch_varlen() is not None


def segments(position_ids):
    """(cu_seqlens int32 [n+1], longest row) from position ids that restart at 0 for each row."""
    import torch

    # every layer of one forward gets the same tensor: derive once (a weak reference, so a later batch that
    # reuses the freed memory can never be mistaken for this one)
    ref = _cache.get("ref")
    if ref is not None and ref() is position_ids:
        return _cache["value"]
    pos = position_ids.reshape(-1)
    starts = torch.nonzero(pos == 0).flatten()
    if starts.numel() == 0 or int(starts[0]) != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    cu = torch.cat([starts, starts.new_tensor([pos.numel()])]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    _cache.update(ref=weakref.ref(position_ids), value=(cu, longest))
    return cu, longest


@functools.lru_cache(maxsize=None)
def _kernel_options(fn) -> tuple[dict, bool]:
    """(causal keyword for this torch's varlen_attn, whether it takes enable_gqa): read once, not per layer."""
    params = inspect.signature(fn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}   # torch >= 2.11 / 2.10
    return causal, "enable_gqa" in params


def _kernel_call(fn, q, k, v, cu, longest, scale, window: int | None = None):
    causal, takes_gqa = _kernel_options(fn)
    kw = {"scale": scale, **causal}
    if window is not None and longest > window:
        kw["window_size"] = (window - 1, 0)     # key j visible from query i when i - window < j <= i
    if k.shape[1] != q.shape[1]:
        if takes_gqa:
            kw["enable_gqa"] = True
        else:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return fn(q, k, v, cu, cu, longest, longest, **kw)


def _per_row(q, k, v, cu, scale, window: int | None = None):
    """Reference path: causal SDPA on each row (within `window` keys back, when set: Gemma 3's local layers).
    q: (T, Hq, D), k/v: (T, Hkv, D) -> (T, Hq, D)."""
    import torch
    import torch.nn.functional as F

    out = []
    rep = q.shape[1] // k.shape[1]
    bounds = cu.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        qi, ki, vi = (t[a:b].transpose(0, 1) for t in (q, k, v))
        if rep > 1:
            ki, vi = ki.repeat_interleave(rep, dim=0), vi.repeat_interleave(rep, dim=0)
        if window is not None and b - a > window:
            i = torch.arange(b - a, device=q.device)
            band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
            o = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=band, scale=scale)
        else:
            o = F.scaled_dot_product_attention(qi, ki, vi, is_causal=True, scale=scale)
        out.append(o.transpose(0, 1))
    return torch.cat(out, dim=0)


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention interface. query (B, Hq, S, D); returns ((B, S, Hq, D), None)."""
    import torch

    position_ids = kwargs.get("position_ids")
    b = query.shape[0]
    if position_ids is None or b != 1 or query.shape[2] != key.shape[2]:
        # not packed (padded batches, or decoding with a KV cache): ordinary SDPA with the mask transformers built
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout, **kwargs)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))   # (T, H, D)
    cu, longest = segments(position_ids)
    cu = cu.to(q.device)
    window = kwargs.get("sliding_window")      # set by models with local layers (Gemma 3: 512), else None
    # FlashAttention takes fp16 / bf16 only: an fp32 run (train.precision fp32 on a GPU) attends row by row
    fn = torch_varlen() if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) else None
    if fn is not None and (window is None or longest <= window or "window_size" in _kernel_options(fn)[0]):
        out = _kernel_call(fn, q.contiguous(), k.contiguous(), v.contiguous(), cu, longest, scaling, window)
    else:
        out = _per_row(q, k, v, cu, scaling, window)
    return out.unsqueeze(0), None


def register() -> str:
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, attention)
    return NAME
