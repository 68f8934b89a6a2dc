"""QLoRA's fused blocks with every base product in FP8, backward included (Unsloth backend, NF4 weights).

unsloth_patch's matmul_lora moves the forward products (and down_proj's input gradient) of Unsloth's QLoRA to
FP8; without this module the other input gradients (gate/up, the two largest GEMMs of backward at
8192 x 14336 x 4096 each, and q/k/v/o) stay inside Unsloth's fused LoRA Functions in bf16. This module has
those blocks as autograd Functions of our own, for the plain case (NF4 weights, no LoRA dropout, no LoRA bias):

    MLP:          e = X Wg^T + sg (X Ag^T) Bg^T   g = X Wu^T + su (X Au^T) Bu^T   h = silu(e) * g
                  out = h Wd^T + sd (h Ad^T) Bd^T
    projections:  Y_i = X Wi^T + si (X Ai^T) Bi^T for projections reading one input (q/k/v; o alone)

The MLP saves X, e and g (as Unsloth's does); its backward recomputes h, and takes dh -> h, de and dg from
Unsloth's own SwiGLU kernels (passed in as Unsloth passes them, in place over the saved buffers). Every base
product runs in FP8 through an `Nf4Products` (nf4_products.py); the LoRA products stay bf16.

    from pipeline.train import kernels
    kernels.apply(model, KernelOptions(qlora_fp8=True))   # qlora_fp8_blocks (default on) routes these blocks;
                              # measured on the H200: 13.2k vs 12.6k tok/s without, 11.1k for Unsloth QLoRA

Checked against autograd through the dequantized weights on CPU (tests/unit/test_train_nf4_fp8.py).
"""
from __future__ import annotations

import torch

from pipeline.train.kernels.nf4_decode import forward_nf4


def _lora(x2: torch.Tensor, a: torch.Tensor, b: torch.Tensor, s: float, y: torch.Tensor) -> torch.Tensor:
    """y += s (x2 A^T) B^T in place (y is ours); returns x2 A^T (kept for B's gradient)."""
    h = x2 @ a.t()
    y.addmm_(h, b.t(), alpha=s)
    return h


class Nf4Fp8Mlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, gW, gQ, gA, gB, gS, uW, uQ, uA, uB, uS, dW, dQ, dA, dB, dS, swiglu, swiglu_backward,
                products):
        dt = X.dtype
        x2 = X.reshape(-1, X.shape[-1])
        lora = [t.to(dt) for t in (gA, gB, uA, uB, dA, dB)]
        e = products.forward(x2, gW, gQ)
        _lora(x2, lora[0], lora[1], gS, e)
        g = products.forward(x2, uW, uQ)
        _lora(x2, lora[2], lora[3], uS, g)
        h = swiglu(e.unsqueeze(0), g.unsqueeze(0)).view(e.shape)   # Unsloth's kernel takes (batch, seq, width)
        out = products.forward(h, dW, dQ)
        _lora(h, lora[4], lora[5], dS, out)
        ctx.save_for_backward(x2, e, g, *lora)
        ctx.weights = (gW, gQ, uW, uQ, dW, dQ)
        ctx.scales = (gS, uS, dS)
        ctx.fns = (swiglu_backward, products)
        ctx.param_dtypes = [t.dtype for t in (gA, gB, uA, uB, dA, dB)]
        ctx.shape = X.shape
        products.count(3)
        return out.view(*X.shape[:-1], -1)

    @staticmethod
    def backward(ctx, grad_out):
        x2, e, g, gA, gB, uA, uB, dA, dB = ctx.saved_tensors
        gW, gQ, uW, uQ, dW, dQ = ctx.weights
        gS, uS, dS = ctx.scales
        swiglu_backward, products = ctx.fns
        dy = grad_out.reshape(-1, grad_out.shape[-1])
        # down: dh = dY Wd + sd (dY Bd) Ad
        dy_b = (dy @ dB).mul_(dS)
        dh = products.input_grad(dy, dW, dQ)
        dh.addmm_(dy_b, dA)
        h, dg, de = swiglu_backward(dh, e, g)      # in place: dh -> h, e -> dg (= dh silu(e)), g -> de
        d_dA = dy_b.t() @ h
        d_dB = (dy.t() @ (h @ dA.t())).mul_(dS)
        # gate / up: dX = de Wg + dg Wu + sg (de Bg) Ag + su (dg Bu) Au
        de_b = (de @ gB).mul_(gS)
        dg_b = (dg @ uB).mul_(uS)
        dx = products.input_grad(de, gW, gQ)
        dx += products.input_grad(dg, uW, uQ)
        dx.addmm_(de_b, gA)
        dx.addmm_(dg_b, uA)
        xa_g, xa_u = x2 @ gA.t(), x2 @ uA.t()
        d_gA, d_gB = de_b.t() @ x2, (de.t() @ xa_g).mul_(gS)
        d_uA, d_uB = dg_b.t() @ x2, (dg.t() @ xa_u).mul_(uS)
        grads = [t.to(dt) for t, dt in zip((d_gA, d_gB, d_uA, d_uB, d_dA, d_dB), ctx.param_dtypes)]
        return (dx.view(ctx.shape), None, None, grads[0], grads[1], None, None, None, grads[2], grads[3], None,
                None, None, grads[4], grads[5], None, None, None, None)


class Nf4Fp8Projections(torch.autograd.Function):
    """Projections reading one input X, each X Wi^T + si (X Ai^T) Bi^T (q/k/v; or o_proj alone):
    apply(X, products, W1, Q1, A1, B1, s1, W2, ...) -> (Y1, Y2, ...)."""

    @staticmethod
    def forward(ctx, X, products, *flat):
        dt = X.dtype
        x2 = X.reshape(-1, X.shape[-1])
        projs = [flat[i:i + 5] for i in range(0, len(flat), 5)]
        outs, lora = [], []
        for W, Q, A, B, s in projs:
            a, b = A.to(dt), B.to(dt)
            y = products.forward(x2, W, Q)
            _lora(x2, a, b, s, y)
            outs.append(y.view(*X.shape[:-1], -1))
            lora += [a, b]
        ctx.save_for_backward(x2, *lora)
        ctx.weights = [(W, Q, s) for W, Q, _, _, s in projs]
        ctx.param_dtypes = [(A.dtype, B.dtype) for _, _, A, B, _ in projs]
        ctx.products, ctx.shape = products, X.shape
        products.count(len(projs))
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        x2, *lora = ctx.saved_tensors
        dx, out = None, []
        for i, ((W, Q, s), gy) in enumerate(zip(ctx.weights, grads)):
            a, b = lora[2 * i], lora[2 * i + 1]
            if gy is None:
                out += [None, None, None, None, None]
                continue
            dy = gy.reshape(-1, gy.shape[-1])
            dy_b = (dy @ b).mul_(s)
            part = ctx.products.input_grad(dy, W, Q)
            dx = part if dx is None else dx.add_(part)
            dx.addmm_(dy_b, a)
            d_a, d_b = dy_b.t() @ x2, (dy.t() @ (x2 @ a.t())).mul_(s)
            out += [None, None, d_a.to(ctx.param_dtypes[i][0]), d_b.to(ctx.param_dtypes[i][1]), None]
        return (None if dx is None else dx.view(ctx.shape), None, *out)


def _three_plain_nf4(args: tuple, dropout_at: int) -> bool:
    """Three forward NF4 weights at args 1, 6 and 11 (W, quant, A, B, s each), no LoRA dropout (None at
    `dropout_at`) and no LoRA biases after it."""
    if len(args) <= dropout_at or any(a is not None for a in args[dropout_at:]):
        return False
    return all(forward_nf4(args[i], args[i + 1]) for i in (1, 6, 11))


def plain_nf4_mlp(args: tuple) -> bool:
    """Whether Unsloth's LoRA_MLP arguments are the case this module covers (X, gate: W, quant, A, B, s, up...,
    down..., the two SwiGLU kernels, inplace, dropout, biases)."""
    return _three_plain_nf4(args, 19)


def plain_nf4_qkv(args: tuple) -> bool:
    """The same for LoRA_QKV's arguments (X, q: W, quant, A, B, s, k..., v..., inplace, dropout, biases)."""
    return _three_plain_nf4(args, 17)


def plain_nf4_w(args: tuple) -> bool:
    """The same for LoRA_W's (o_proj) arguments (X, W, quant, A, B, s[, dropout, bias])."""
    return len(args) in (6, 8) and all(a is None for a in args[6:]) and forward_nf4(args[1], args[2])


def make_apply(original_apply, functions: dict, products):
    """Unsloth's `_apply(function, *args)` with its plain NF4 LoRA_MLP / LoRA_QKV / LoRA_W calls taken by ours
    (products: an nf4_products.Nf4Products); `functions` maps "mlp", "qkv", "w" to Unsloth's Function classes
    (a missing key: that block stays theirs)."""

    def _apply(function, *args):
        if function is functions.get("mlp") and plain_nf4_mlp(args):
            return Nf4Fp8Mlp.apply(*args[:18], products)
        if function is functions.get("qkv") and plain_nf4_qkv(args):
            return Nf4Fp8Projections.apply(args[0], products, *args[1:16])
        if function is functions.get("w") and plain_nf4_w(args):
            return Nf4Fp8Projections.apply(args[0], products, *args[1:6])[0]
        return original_apply(function, *args)

    _apply = torch._dynamo.disable(_apply)   # the fused Functions run outside any compile (as Unsloth's own did
                                             # before torch 2.11; a graph break only if something compiles it)
    _apply.original = original_apply
    return _apply
