"""QLoRA's forward GEMMs in FP8 (pipeline/train/kernels: nf4_products, unsloth_patch, nf4_blocks), on CPU with bitsandbytes' NF4 and torch's emulated
FP8: the replacement for Unsloth's matmul_lora gives X W^T + s (X A^T) B^T within FP8 rounding for a forward NF4
weight, and hands every other call (transposed weight in backward, an out buffer, FP4) to the original."""
import bitsandbytes.functional as bnbf
import torch

from pipeline.train.kernels import Counters, nf4_decode
from pipeline.train.kernels.nf4_products import Nf4Products
from pipeline.train.kernels.unsloth_patch import make_matmul_lora


def _dequantize(W, state, use_global_buffer=True, dtype=None):
    return bnbf.dequantize_4bit(W, state).to(dtype)


def _products() -> Nf4Products:
    return Nf4Products(_dequantize, counters=Counters())


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _setup(quant_type="nf4"):
    torch.manual_seed(0)
    w = torch.randn(64, 128, dtype=torch.bfloat16) * 0.05
    packed, state = bnbf.quantize_4bit(w, quant_type=quant_type, compress_statistics=True)
    originals = []

    def original(X, W, W_quant, A, B, s, out=None, use_global_buffer=True):
        originals.append(W.shape)
        return "original"

    products = _products()
    matmul_lora = make_matmul_lora(original, products)
    matmul_lora.counters = products.counters
    return packed, state, bnbf.dequantize_4bit(packed, state), matmul_lora, originals


def test_forward_nf4_product_runs_in_fp8_and_matches_the_16_bit_one():
    packed, state, w16, matmul_lora, originals = _setup()
    x = torch.randn(2, 5, 128, dtype=torch.bfloat16)
    a = torch.randn(8, 128) * 0.1          # LoRA weights in fp32, as PEFT keeps them
    b = torch.randn(64, 8) * 0.1
    y = matmul_lora(x, packed, state, a, b, 2.0)
    ref = x.float() @ w16.float().t() + 2.0 * (x.float() @ a.t()) @ b.t()
    assert matmul_lora.counters.fp8_products == 1 and not originals
    assert y.shape == (2, 5, 64) and y.dtype == torch.bfloat16
    assert _rel(y, ref) < 0.06, _rel(y, ref)                    # e4m3 rounding of weight and input
    assert _rel(y, x.float() @ w16.float().flip(0).t()) > 0.5   # not a layout slip
    no_lora = matmul_lora(x, packed, state, None, None, None)
    assert _rel(no_lora, x.float() @ w16.float().t()) < 0.06
    assert _rel(y, no_lora) > 0.05                              # the LoRA term is in y


def test_the_transposed_weight_of_down_proj_s_backward_gives_dy_times_w():
    packed, state, w16, matmul_lora, originals = _setup()
    dy = torch.randn(7, 64, dtype=torch.bfloat16)
    b, a = torch.randn(64, 8) * 0.1, torch.randn(8, 128) * 0.1    # Unsloth passes (B^T, A^T) here: dY B A
    dx = matmul_lora(dy, packed.t(), state, b.t(), a.t(), 0.5)
    ref = dy.float() @ w16.float() + 0.5 * (dy.float() @ b) @ a
    assert matmul_lora.counters.fp8_products == 1 and not originals
    assert dx.shape == (7, 128) and _rel(dx, ref) < 0.06, _rel(dx, ref)
    assert _rel(dx, dy.float() @ w16.float().flip(1)) > 0.5


def test_block_absmax_decodes_double_quantized_scales():
    packed, state, w16, _, _ = _setup()
    am = nf4_decode.block_absmax(state)
    assert am.shape == (64 * 128 // 64,)
    assert torch.allclose(am, w16.float().view(-1, 64).abs().amax(dim=1), rtol=0.01)


def test_every_other_call_goes_to_unsloth_s_own():
    packed, state, _, matmul_lora, originals = _setup()
    x = torch.randn(5, 128, dtype=torch.bfloat16)
    assert matmul_lora(x, packed, state, None, None, None, out=torch.empty(5, 64)) == "original"
    assert matmul_lora(x, torch.randn(64, 128, dtype=torch.bfloat16), None, None, None, None) == "original"
    fp4, fp4_state, _, fp4_matmul, fp4_originals = _setup("fp4")
    assert fp4_matmul(x, fp4, fp4_state, None, None, None) == "original"
    assert len(originals) == 2 and len(fp4_originals) == 1 and matmul_lora.counters.fp8_products == 0


def _swiglu(e, g):
    """Stands in for Unsloth's SwiGLU forward kernel (CUDA-only): h = silu(e) g, same contract (3-D in)."""
    assert e.dim() == 3
    return (torch.nn.functional.silu(e.float()) * g.float()).to(e.dtype)


def _swiglu_backward(dh, e, g):
    """Stands in for Unsloth's SwiGLU backward kernel: in place, dh -> h, e -> dh silu(e), g -> dh g silu'(e)."""
    ef, gf, dhf = e.float(), g.float(), dh.float()
    sig = torch.sigmoid(ef)
    silu = ef * sig
    h, dup, dgate = silu * gf, dhf * silu, dhf * gf * sig * (1 + ef * (1 - sig))
    dh.copy_(h)
    e.copy_(dup)
    g.copy_(dgate)
    return dh, e, g


def test_the_mlp_block_in_fp8_gives_autograd_s_output_and_gradients():
    """Nf4Fp8Mlp (every base product FP8, forward and backward) vs plain autograd over the dequantized
    weights: the same output, input gradient and LoRA gradients within FP8 rounding."""
    from pipeline.train.kernels import nf4_blocks

    torch.manual_seed(0)
    hid, inter, r = 64, 128, 8
    ws = {k: (torch.randn(o, i, dtype=torch.bfloat16) * 0.05) for k, (o, i) in
          {"g": (inter, hid), "u": (inter, hid), "d": (hid, inter)}.items()}
    packed = {k: bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True) for k, w in ws.items()}
    w16 = {k: bnbf.dequantize_4bit(*packed[k]).float() for k in ws}
    lora = {k: (torch.randn(r, w.shape[1]) * 0.1, torch.randn(w.shape[0], r) * 0.1) for k, w in ws.items()}
    s = {"g": 2.0, "u": 0.5, "d": 1.5}

    products = _products()

    x = torch.randn(2, 6, hid, dtype=torch.bfloat16)
    gy = torch.randn(2, 6, hid, dtype=torch.bfloat16)
    params = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    xr = x.clone().float().requires_grad_(True)

    def proj(inp, k):
        a, b = params[k]
        return inp @ w16[k].t() + s[k] * (inp @ a.t()) @ b.t()

    ref = proj(torch.nn.functional.silu(proj(xr, "g")) * proj(xr, "u"), "d")
    ref.backward(gy.float())
    ref_grads = {k: (a.grad.clone(), b.grad.clone()) for k, (a, b) in params.items()}

    xf = x.clone().requires_grad_(True)
    ours = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    args = [xf]
    for k in "gud":
        args += [packed[k][0], packed[k][1], ours[k][0], ours[k][1], s[k]]
    out = nf4_blocks.Nf4Fp8Mlp.apply(*args, _swiglu, _swiglu_backward, products)
    out.backward(gy)
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    assert _rel(out, ref) < 0.08, _rel(out, ref)
    assert _rel(xf.grad, xr.grad) < 0.08, _rel(xf.grad, xr.grad)
    for k in "gud":
        for mine, theirs in zip(ours[k], ref_grads[k]):
            assert mine.grad.dtype == torch.float32
            assert _rel(mine.grad, theirs) < 0.08, (k, _rel(mine.grad, theirs))
    unsloth_args = tuple(args) + (_swiglu, _swiglu_backward, True, None, None, None, None)
    assert nf4_blocks.plain_nf4_mlp(unsloth_args)
    assert not nf4_blocks.plain_nf4_mlp(unsloth_args[:19] + ((0.1, 0.0, 0.0), None, None, None))   # dropout
    assert not nf4_blocks.plain_nf4_mlp(unsloth_args[:20] + (torch.zeros(inter), None, None))      # a LoRA bias


def test_q_k_v_projections_in_fp8_give_autograd_s_outputs_and_gradients():
    """Nf4Fp8Projections for three projections reading one input (q/k/v) vs autograd over the dequantized
    weights; a projection whose output gets no gradient is skipped; o_proj alone goes through `_apply` too."""
    from pipeline.train.kernels import nf4_blocks

    torch.manual_seed(1)
    hid, r = 64, 8
    shapes = {"q": 64, "k": 32, "v": 32}
    packed = {k: bnbf.quantize_4bit(torch.randn(o, hid, dtype=torch.bfloat16) * 0.05, quant_type="nf4",
                                    compress_statistics=True) for k, o in shapes.items()}
    w16 = {k: bnbf.dequantize_4bit(*packed[k]).float() for k in shapes}
    lora = {k: (torch.randn(r, hid) * 0.1, torch.randn(o, r) * 0.1) for k, o in shapes.items()}
    s = {"q": 2.0, "k": 1.0, "v": 0.5}

    products = _products()

    x = torch.randn(2, 5, hid, dtype=torch.bfloat16)
    grads_out = {k: torch.randn(2, 5, o, dtype=torch.bfloat16) for k, o in shapes.items()}
    ref_p = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    xr = x.float().requires_grad_(True)
    refs = {k: xr @ w16[k].t() + s[k] * (xr @ ref_p[k][0].t()) @ ref_p[k][1].t() for k in shapes}
    torch.autograd.backward([refs[k] for k in "qk"], [grads_out[k].float() for k in "qk"])   # v unused

    ours_p = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    xf = x.clone().requires_grad_(True)
    args = [xf]
    for k in "qkv":
        args += [packed[k][0], packed[k][1], ours_p[k][0], ours_p[k][1], s[k]]
    calls = []
    apply = nf4_blocks.make_apply(lambda f, *a: calls.append(f) or "theirs", {"qkv": "QKV", "w": "W"}, products)
    q, k, v = apply("QKV", *args, True, None, None, None, None)
    torch.autograd.backward([q, k], [grads_out["q"], grads_out["k"]])
    for name, y in zip("qkv", (q, k, v)):
        assert y.shape == (2, 5, shapes[name]) and _rel(y, refs[name]) < 0.06, (name, _rel(y, refs[name]))
    assert _rel(xf.grad, xr.grad) < 0.06, _rel(xf.grad, xr.grad)
    for name in "qk":
        for mine, theirs in zip(ours_p[name], ref_p[name]):
            assert _rel(mine.grad, theirs.grad) < 0.06, (name, _rel(mine.grad, theirs.grad))
    assert ours_p["v"][0].grad is None or ours_p["v"][0].grad.abs().sum() == 0
    o = apply("W", xf.detach(), packed["q"][0], packed["q"][1], lora["q"][0], lora["q"][1], 2.0)
    assert o.shape == (2, 5, 64) and _rel(o, refs["q"].detach()) < 0.06
    # anything else is Unsloth's: another Function, dropout, a bias, a 16-bit weight
    assert apply("MLP", *args) == "theirs"
    assert apply("QKV", *args, True, (0.1, 0.1, 0.1), None, None, None) == "theirs"
    assert apply("W", xf, torch.randn(64, 64), None, lora["q"][0], lora["q"][1], 2.0) == "theirs"
    assert calls == ["MLP", "QKV", "W"]


def test_column_absmax_reads_the_largest_value_of_each_input_column_chunk_by_chunk():
    packed, state, w16, _, _ = _setup()
    want = w16.float().abs().amax(dim=0)
    for chunk in (1, 7, 64, 1024):
        got = nf4_decode.column_absmax(packed, state, rows_per_chunk=chunk)
        assert got.shape == (128,) and torch.allclose(got, want, rtol=0.01), chunk
    assert not torch.allclose(got, w16.float().abs().amax(dim=1)[:1].expand(128), rtol=0.01)
