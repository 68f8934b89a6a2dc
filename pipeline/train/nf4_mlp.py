"""QLoRA's MLP block with every base product in FP8, backward included (Unsloth backend, NF4 weights).

nf4_fp8 moves the forward products (and down_proj's input gradient) of Unsloth's QLoRA to FP8; the input
gradients of gate_proj and up_proj, the two largest GEMMs of backward (8192 x 14336 x 4096 each at the
reference shape), stay inside Unsloth's fused MLP Function in bf16. This module is that block as an
autograd Function of our own, for the plain case (NF4 weights, no LoRA dropout, no LoRA bias):

    e = X Wg^T + sg (X Ag^T) Bg^T      g = X Wu^T + su (X Au^T) Bu^T      h = silu(e) * g
    out = h Wd^T + sd (h Ad^T) Bd^T

Forward saves X, e and g (as Unsloth's does); backward recomputes h, and takes dh, de = dh g silu'(e) and
dg = dh silu(e) from Unsloth's own SwiGLU kernels (passed in as Unsloth passes them, in place over the saved
buffers). Every base product (X Wg^T, X Wu^T, h Wd^T; dY Wd, de Wg + dg Wu) runs in FP8 through
nf4_fp8.forward_product / input_grad_product; the LoRA products stay bf16.

    from pipeline.train import nf4_fp8
    nf4_fp8.patch_unsloth(mlp=True)   # the bench's `ours_qlora13_mlp` mode; off by default until measured

Checked against autograd through the dequantized weights on CPU (tests/unit/test_train_nf4_fp8.py).
"""
from __future__ import annotations

import torch

from pipeline.train import nf4_fp8


def _lora(x2: torch.Tensor, a: torch.Tensor, b: torch.Tensor, s: float, y: torch.Tensor) -> torch.Tensor:
    """y += s (x2 A^T) B^T in place (y is ours); returns x2 A^T (kept for B's gradient)."""
    h = x2 @ a.t()
    y.addmm_(h, b.t(), alpha=s)
    return h


class Nf4Fp8Mlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, gW, gQ, gA, gB, gS, uW, uQ, uA, uB, uS, dW, dQ, dA, dB, dS, swiglu, swiglu_backward,
                dequantize):
        dt = X.dtype
        x2 = X.reshape(-1, X.shape[-1])
        lora = [t.to(dt) for t in (gA, gB, uA, uB, dA, dB)]
        e = nf4_fp8.forward_product(x2, gW, gQ, dequantize)
        _lora(x2, lora[0], lora[1], gS, e)
        g = nf4_fp8.forward_product(x2, uW, uQ, dequantize)
        _lora(x2, lora[2], lora[3], uS, g)
        h = swiglu(e.unsqueeze(0), g.unsqueeze(0)).view(e.shape)   # Unsloth's kernel takes (batch, seq, width)
        out = nf4_fp8.forward_product(h, dW, dQ, dequantize)
        _lora(h, lora[4], lora[5], dS, out)
        ctx.save_for_backward(x2, e, g, *lora)
        ctx.weights = (gW, gQ, uW, uQ, dW, dQ)
        ctx.scales = (gS, uS, dS)
        ctx.fns = (swiglu_backward, dequantize)
        ctx.param_dtypes = [t.dtype for t in (gA, gB, uA, uB, dA, dB)]
        ctx.shape = X.shape
        nf4_fp8.calls += 3
        return out.view(*X.shape[:-1], -1)

    @staticmethod
    def backward(ctx, grad_out):
        x2, e, g, gA, gB, uA, uB, dA, dB = ctx.saved_tensors
        gW, gQ, uW, uQ, dW, dQ = ctx.weights
        gS, uS, dS = ctx.scales
        swiglu_backward, dequantize = ctx.fns
        dy = grad_out.reshape(-1, grad_out.shape[-1])
        # down: dh = dY Wd + sd (dY Bd) Ad
        dy_b = (dy @ dB).mul_(dS)
        dh = nf4_fp8.input_grad_product(dy, dW, dQ, dequantize)
        dh.addmm_(dy_b, dA)
        h, dg, de = swiglu_backward(dh, e, g)      # in place: dh -> h, e -> dg (= dh silu(e)), g -> de
        d_dA = dy_b.t() @ h
        d_dB = (dy.t() @ (h @ dA.t())).mul_(dS)
        # gate / up: dX = de Wg + dg Wu + sg (de Bg) Ag + su (dg Bu) Au
        de_b = (de @ gB).mul_(gS)
        dg_b = (dg @ uB).mul_(uS)
        dx = nf4_fp8.input_grad_product(de, gW, gQ, dequantize)
        dx += nf4_fp8.input_grad_product(dg, uW, uQ, dequantize)
        dx.addmm_(de_b, gA)
        dx.addmm_(dg_b, uA)
        xa_g, xa_u = x2 @ gA.t(), x2 @ uA.t()
        d_gA, d_gB = de_b.t() @ x2, (de.t() @ xa_g).mul_(gS)
        d_uA, d_uB = dg_b.t() @ x2, (dg.t() @ xa_u).mul_(uS)
        grads = [t.to(dt) for t, dt in zip((d_gA, d_gB, d_uA, d_uB, d_dA, d_dB), ctx.param_dtypes)]
        return (dx.view(ctx.shape), None, None, grads[0], grads[1], None, None, None, grads[2], grads[3], None,
                None, None, grads[4], grads[5], None, None, None, None)


def plain_nf4_mlp(args: tuple) -> bool:
    """Whether Unsloth's LoRA_MLP arguments are the case this module covers: three forward NF4 weights, no LoRA
    dropout (None), no LoRA biases."""
    if len(args) < 20 or args[19] is not None or any(b is not None for b in args[20:]):
        return False
    return all(nf4_fp8.forward_nf4(args[i], args[i + 1]) for i in (1, 6, 11))


def make_apply(original_apply, lora_mlp, dequantize):
    """Unsloth's `_apply(function, *args)` with its plain NF4 LoRA_MLP calls taken by Nf4Fp8Mlp."""

    def _apply(function, *args):
        if function is lora_mlp and plain_nf4_mlp(args):
            return Nf4Fp8Mlp.apply(*args[:18], dequantize)
        return original_apply(function, *args)

    _apply.original = original_apply
    return _apply
