"""The kernels' numerics on the GPU (pipeline/train/kernels): both Triton kernels and every FP8 path against
their eager / bf16 references. CPU tests cover the same Functions with emulated FP8 (tests/unit/test_train_*);
only here do the Triton kernels and FP8 tensor cores run.

    python -m pytest -m gpu tests/gpu/test_kernels.py -q
"""
from __future__ import annotations

import pytest
import torch

from pipeline.train import kernels
from pipeline.train.kernels import fp8_linear, nf4_decode
from pipeline.train.kernels.quantize import RowQuantizer, quantize_rows
from tests.gpu.conftest import fp8_gpu, needs

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(torch.cuda.is_available() and not fp8_gpu(),
                                 reason="needs FP8 tensor cores (compute capability 8.9+)")]


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _assert_e4m3_close(q, q_ref, *, share: float = 0.998):
    """Two e4m3 tensors from the same values: nearly all bytes equal, the rest one code apart (division and
    rounding order may differ in the last bit before the cast)."""
    a, b = q.view(torch.uint8).int(), q_ref.view(torch.uint8).int()
    equal = (a == b).float().mean().item()
    assert equal >= share, equal
    assert (a - b).abs().max().item() <= 1


@pytest.mark.parametrize("rows,cols,dtype", [(8192, 1024, torch.bfloat16), (8150, 4096, torch.bfloat16),
                                             (333, 14336, torch.bfloat16), (7, 64, torch.float32), (1, 16, torch.float16)])
def test_the_triton_row_quantizer_gives_the_eager_reference(rows, cols, dtype):
    from pipeline.train.kernels import quantize_triton

    torch.manual_seed(0)
    x = torch.randn(rows, cols, device="cuda", dtype=dtype) * 3
    x[0, :] = 0                                              # an all-zero row: the 1e-12 floor, no NaN
    q, s = quantize_triton.quantize_rows(x)
    q_ref, s_ref = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (rows, 1)
    torch.testing.assert_close(s, s_ref, rtol=1e-6, atol=0)
    _assert_e4m3_close(q, q_ref)
    assert not q.float().isnan().any()


def test_the_triton_quantizer_reads_a_strided_view_and_refuses_other_ranks():
    from pipeline.train.kernels import quantize_triton

    x = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16)
    view = x[:, :128]                                        # row stride 256, not 128
    q, s = quantize_triton.quantize_rows(view)
    q_ref, s_ref = quantize_rows(view)
    torch.testing.assert_close(s, s_ref, rtol=1e-6, atol=0)
    _assert_e4m3_close(q, q_ref)
    with pytest.raises(ValueError, match="2-D"):
        quantize_triton.quantize_rows(x.view(4, 16, 256))


def test_every_quantizer_path_agrees_and_the_compiled_one_takes_any_row_count():
    fast, compiled = RowQuantizer(), RowQuantizer(triton=False)
    for rows in (8192, 8101, 77):
        x = torch.randn(rows, 1024, device="cuda", dtype=torch.bfloat16)
        q_ref, s_ref = quantize_rows(x)
        for path in (fast, compiled):
            q, s = path(x)
            torch.testing.assert_close(s, s_ref, rtol=1e-6, atol=0)
            _assert_e4m3_close(q, q_ref)
    assert fast._kernel not in (None, False)                 # the Triton kernel ran, no silent fallback


def test_the_fp8_base_matches_bf16_forward_and_input_gradient_on_tensor_cores():
    torch.manual_seed(0)
    lin = torch.nn.Linear(1024, 2816, bias=False, device="cuda", dtype=torch.bfloat16)
    torch.nn.init.normal_(lin.weight, std=0.02)
    lin.weight.requires_grad_(False)
    f8 = fp8_linear.Fp8FrozenLinear(lin)
    x = torch.randn(4096, 1024, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    x8 = x.detach().clone().requires_grad_(True)
    ref, out = lin(x), f8(x8)
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g)
    assert _rel(out, ref) < 0.05 and _rel(x8.grad, x.grad) < 0.05     # H200: 0.0375 / 0.0375
    assert not (out.isnan().any() or x8.grad.isnan().any())
    assert _rel(out, torch.nn.functional.linear(x.detach(), lin.weight.flip(0))) > 0.5


def test_a_tiny_llama_learns_the_same_with_the_fp8_base_as_with_bf16():
    """Three batches memorised for 30 steps under autocast, the bench's model (H200: 7.049 FP8 vs 7.037 bf16 at
    step 30): the loss falls and the FP8 base ends within 2% of bf16."""
    import copy

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=1024, intermediate_size=2048, num_hidden_layers=4, num_attention_heads=8,
                      num_key_value_heads=4, vocab_size=8000)
    base = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16)
    batches = [torch.randint(0, 8000, (8, 256), device="cuda") for _ in range(3)]
    last = {}
    for kind in ("bf16", "fp8"):
        torch.manual_seed(1)
        m = get_peft_model(copy.deepcopy(base), LoraConfig(r=32, lora_alpha=32, target_modules=targets))
        applied = kernels.apply(m, kernels.KernelOptions(fp8_base=kind == "fp8", fused_lora=True))
        assert applied.fused == 28 and applied.fp8_bases == (28 if kind == "fp8" else 0)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
        losses = []
        for i in range(30):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = m(input_ids=batches[i % 3], labels=batches[i % 3]).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        assert losses[-1] < 0.97 * losses[0], (kind, losses)
        last[kind] = losses[-1]
        if kind == "fp8":
            assert applied.counters.shared_inputs >= 30 * 4 * 3   # k, v take q's input, up gate's: per layer
    assert abs(last["fp8"] - last["bf16"]) < 0.02 * last["bf16"], last


def _nf4(out_f, in_f, seed=0):
    import bitsandbytes.functional as bnbf

    torch.manual_seed(seed)
    w = (torch.randn(out_f, in_f, device="cuda") * 0.02).to(torch.bfloat16)
    packed, state = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    return packed, state, bnbf.dequantize_4bit(packed, state)


@needs("bitsandbytes", "the NF4 kernels decode bitsandbytes' weights")
@pytest.mark.parametrize("out_f,in_f", [(14336, 4096), (4096, 14336), (1024, 4096), (96, 128)])
def test_the_nf4_decoder_gives_bitsandbytes_weights_in_fp8(out_f, in_f):
    """nf4_to_fp8 (one pass) against bitsandbytes' dequantization + the eager row quantizer: the same row
    scales, the same e4m3 codes within one, so the same weight error (H200: 0.0265) and product error."""
    from pipeline.train.kernels import nf4_decode_triton

    packed, state, w16 = _nf4(out_f, in_f)
    scales = {}
    wq, sw = nf4_decode_triton.nf4_to_fp8(packed, state, scales)
    two_q, two_s = quantize_rows(w16)
    assert wq.shape == (out_f, in_f) and sw.shape == (1, out_f) and len(scales) == 1
    torch.testing.assert_close(sw.t(), two_s, rtol=1e-2, atol=0)
    assert _rel(wq.float() * sw.t(), w16) < 0.035
    assert abs(_rel(wq.float() * sw.t(), w16) - _rel(two_q.float() * two_s, w16)) < 0.002
    x = torch.randn(512, in_f, device="cuda", dtype=torch.bfloat16)
    xq, sx = quantize_rows(x)
    y = torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw, out_dtype=torch.bfloat16)
    assert _rel(y, x @ w16.t()) < 0.05
    again, _ = nf4_decode_triton.nf4_to_fp8(packed, state, scales)     # the kept scales, the same bytes
    assert torch.equal(again.view(torch.uint8), wq.view(torch.uint8)) and len(scales) == 1


@needs("bitsandbytes", "the NF4 kernels decode bitsandbytes' weights")
@pytest.mark.parametrize("out_f,in_f", [(14336, 4096), (1024, 4096), (96, 128)])
def test_the_transposing_nf4_decoder_gives_w_transposed_per_input_column(out_f, in_f):
    from pipeline.train.kernels import nf4_decode_triton

    packed, state, w16 = _nf4(out_f, in_f, seed=1)
    wt, st = nf4_decode_triton.nf4_to_fp8_t(packed, state, {})
    assert wt.shape == (in_f, out_f) and st.shape == (1, in_f)
    col_amax = w16.float().abs().amax(dim=0)
    torch.testing.assert_close(st.view(-1), col_amax / 448.0, rtol=1e-2, atol=1e-9)
    torch.testing.assert_close(nf4_decode.column_absmax(packed, state), col_amax, rtol=1e-2, atol=1e-9)
    assert _rel((wt.float() * st.t()).t(), w16) < 0.035
    gy = torch.randn(512, out_f, device="cuda", dtype=torch.bfloat16)
    gq, sg = quantize_rows(gy)
    dx = torch._scaled_mm(gq, wt.t(), scale_a=sg, scale_b=st, out_dtype=torch.bfloat16)
    assert _rel(dx, gy @ w16) < 0.05


@needs("bitsandbytes", "QLoRA's products take bitsandbytes' NF4 weights")
def test_qlora_projections_in_fp8_on_the_gpu_give_autograd_s_outputs_and_gradients():
    """Nf4Fp8Projections with the Triton decoders (forward and transposed) vs autograd over the dequantized
    weights; the decoders ran (no fallback) and the products were counted."""
    import bitsandbytes.functional as bnbf

    from pipeline.train.kernels import nf4_blocks
    from pipeline.train.kernels.nf4_products import Nf4Products

    def dequantize(W, state, use_global_buffer=True, dtype=None):
        return bnbf.dequantize_4bit(W, state).to(dtype)

    counters = kernels.Counters()
    products = Nf4Products(dequantize, kernels.KernelOptions(qlora_fp8=True), counters)
    hid, r = 1024, 16
    shapes = {"q": 1024, "k": 256, "v": 256}
    packed = {k: _nf4(o, hid, seed=i)[:2] for i, (k, o) in enumerate(shapes.items())}
    w16 = {k: bnbf.dequantize_4bit(*packed[k]).float() for k in shapes}
    lora = {k: (torch.randn(r, hid, device="cuda") * 0.05, torch.randn(o, r, device="cuda") * 0.05)
            for k, o in shapes.items()}
    s = {"q": 2.0, "k": 1.0, "v": 0.5}
    x = torch.randn(2, 256, hid, device="cuda", dtype=torch.bfloat16)
    grads = {k: torch.randn(2, 256, o, device="cuda", dtype=torch.bfloat16) for k, o in shapes.items()}
    ref_p = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    xr = x.float().requires_grad_(True)
    refs = {k: xr @ w16[k].t() + s[k] * (xr @ ref_p[k][0].t()) @ ref_p[k][1].t() for k in shapes}
    torch.autograd.backward([refs[k] for k in shapes], [grads[k].float() for k in shapes])
    ours = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in lora.items()}
    xf = x.clone().requires_grad_(True)
    flat = []
    for k in shapes:
        flat += [packed[k][0], packed[k][1], ours[k][0], ours[k][1], s[k]]
    outs = nf4_blocks.Nf4Fp8Projections.apply(xf, products, *flat)
    torch.autograd.backward(list(outs), [grads[k] for k in shapes])
    for k, y in zip(shapes, outs):
        assert _rel(y, refs[k]) < 0.05, (k, _rel(y, refs[k]))
        for mine, theirs in zip(ours[k], ref_p[k]):
            assert _rel(mine.grad, theirs.grad) < 0.06, k
    assert _rel(xf.grad, xr.grad) < 0.05
    assert callable(products._kernels.get("nf4_to_fp8")) and callable(products._kernels.get("nf4_to_fp8_t"))
    assert counters.fp8_products == 3


UNSLOTH_PATCH = """
import unsloth  # first, as the backend imports it
from unsloth.kernels import fast_lora
from pipeline.train import kernels
from pipeline.train.kernels import unsloth_patch
original_matmul = getattr(fast_lora.matmul_lora, "original", fast_lora.matmul_lora)
original_apply = getattr(fast_lora._apply, "original", fast_lora._apply)
assert unsloth_patch.patch(kernels.KernelOptions(qlora_fp8=True)) is not None
assert fast_lora.matmul_lora.original is original_matmul and fast_lora._apply.original is original_apply
assert unsloth_patch.patch(kernels.KernelOptions(qlora_fp8=True, qlora_fp8_blocks=False)) is not None
assert fast_lora.matmul_lora.original is original_matmul      # a second patch replaces, never wraps ours
assert fast_lora._apply is original_apply                     # blocks off: Unsloth's own _apply again
assert not fast_lora.matmul_lora.options.qlora_fp8_blocks
print("patched as asked")
"""


@needs("unsloth", "the patch reaches into Unsloth's fast_lora")
def test_the_unsloth_patch_replaces_never_wraps_and_follows_its_options():
    """In a process of its own: Unsloth patches transformers and peft when imported, and must come first."""
    import subprocess
    import sys

    from core.settings import REPO_ROOT

    out = subprocess.run([sys.executable, "-c", UNSLOTH_PATCH], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and "patched as asked" in out.stdout, out.stderr[-3000:]
