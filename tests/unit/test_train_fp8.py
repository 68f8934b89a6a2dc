"""FP8 frozen base (train.precision fp8), on CPU where torch._scaled_mm emulates FP8: the stand-in matches
the bf16 projection within FP8 rounding forward and backward, holds no trainable weight, and a tiny Llama
trains with it through the pipeline (loss falls, adapter saved). The GPU speed is a device measurement."""
import json

import torch

from pipeline import config
from pipeline.train import fp8_base
from pipeline.train import stage as train
from tests.conftest import gretel_row, tiny_train_overrides, write_gretel


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_fp8_linear_matches_bf16_forward_and_input_gradient():
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 128, bias=True).to(torch.bfloat16)
    lin.weight.requires_grad_(False)
    lin.bias.requires_grad_(False)
    fp8 = fp8_base.Fp8FrozenLinear(lin)
    x = torch.randn(3, 40, 256, dtype=torch.bfloat16, requires_grad=True)
    x8 = x.detach().clone().requires_grad_(True)
    ref, out = lin(x), fp8(x8)
    assert out.shape == ref.shape and out.dtype == torch.bfloat16
    assert _rel(out, ref) < 0.06, _rel(out, ref)            # e4m3 keeps ~3 mantissa bits: a few % per element
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g)
    assert _rel(x8.grad, x.grad) < 0.06, _rel(x8.grad, x.grad)
    assert not [p for p in fp8.parameters() if p.requires_grad]   # the base stays frozen
    assert fp8.w_fwd.dtype == fp8.w_bwd.dtype == torch.float8_e4m3fn
    # and the error is FP8's, not a layout slip: a transposed weight would be far off
    wrong = torch.nn.functional.linear(x.detach(), lin.weight.flip(0), lin.bias)
    assert _rel(out, wrong) > 0.5


def test_fp8_refuses_widths_the_kernels_cannot_take():
    import pytest

    with pytest.raises(ValueError, match="divisible by 16"):
        fp8_base.Fp8FrozenLinear(torch.nn.Linear(100, 64))


def test_tiny_llama_trains_with_fp8_base(home, tiny_llama_dir, tmp_path):
    data = write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(64)])
    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data, "train.precision=fp8", "train.max_steps=25",
                                                 "name=fp8"))
    hits = fp8_base._LastInput.hits
    res = train.run(cfg)
    assert fp8_base._LastInput.hits - hits >= 25 * 3       # per step and layer: k, v take q's input, up gate's
    losses = [r["loss"] for r in map(json.loads, (res.out_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 25
    assert sum(losses[-5:]) / 5 < 0.88 * losses[1], losses
    plan = json.loads((res.out_dir / "plan.json").read_text())
    assert plan["precision"] == "fp8" and plan["backend"] == "trl"
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()


def test_projections_reading_one_input_quantize_it_once_and_a_changed_input_again(monkeypatch):
    torch.manual_seed(0)
    q, k = (fp8_base.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16)) for _ in range(2))
    calls = []
    real = fp8_base._quantize
    monkeypatch.setattr(fp8_base, "_quantize", lambda x: calls.append(x.shape) or real(x))
    fp8_base.forget_last_input()
    x = torch.randn(2, 8, 64, dtype=torch.bfloat16)
    yq, yk = q(x), k(x)
    assert len(calls) == 1                                   # k took q's FP8 copy of x
    fp8_base.forget_last_input()
    assert torch.equal(k(x), yk) and len(calls) == 2         # the same values as its own quantization
    x.mul_(2)                                                # written in place: the copy is stale
    assert torch.allclose(q(x).float(), 2 * yq.float(), rtol=0.02) and len(calls) == 3
    assert _rel(k(torch.randn(2, 8, 64, dtype=torch.bfloat16)), yk) > 0.5 and len(calls) == 4
    fp8_base.forget_last_input()
