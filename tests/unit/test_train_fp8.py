"""FP8 frozen base (train.precision fp8), on CPU where torch._scaled_mm emulates FP8: the stand-in matches
the bf16 projection within FP8 rounding forward and backward, holds no trainable weight, and a tiny Llama
trains with it through the pipeline (loss falls, adapter saved). The GPU speed is a device measurement."""
import json

import torch

from pipeline import config
from pipeline.train import kernels
from pipeline.train import stage as train
from pipeline.train.kernels import fp8_linear, fused_lora
from tests.conftest import gretel_row, tiny_train_overrides, write_gretel


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_fp8_linear_matches_bf16_forward_and_input_gradient():
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 128, bias=True).to(torch.bfloat16)
    lin.weight.requires_grad_(False)
    lin.bias.requires_grad_(False)
    fp8 = fp8_linear.Fp8FrozenLinear(lin)
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
        fp8_linear.Fp8FrozenLinear(torch.nn.Linear(100, 64))


def test_tiny_llama_trains_with_fp8_base(home, tiny_llama_dir, tmp_path, monkeypatch):
    data = write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(64)])
    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data, "train.precision=fp8", "train.max_steps=25",
                                                 "name=fp8"))
    done = []
    real_apply = kernels.apply
    monkeypatch.setattr(kernels, "apply", lambda model, options: done.append(real_apply(model, options)) or done[-1])
    res = train.run(cfg)
    assert len(done) == 1 and done[0].fp8_bases == 14          # 2 layers x 7 projections
    assert done[0].counters.shared_inputs >= 25 * 3          # per step and layer: k, v take q's input, up gate's
    losses = [r["loss"] for r in map(json.loads, (res.out_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 25
    assert sum(losses[-5:]) / 5 < 0.88 * losses[1], losses
    plan = json.loads((res.out_dir / "plan.json").read_text())
    assert plan["precision"] == "fp8" and plan["backend"] == "trl" and plan["kernels"]["fp8_base"]
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()


def _counting_context(share: bool = True):
    """An Fp8Context whose quantizer records the shape of every tensor it quantizes."""
    context = fp8_linear.Fp8Context(kernels.KernelOptions(share_quantized_input=share), kernels.Counters())
    calls, real = [], context.quantize

    def counting(x):
        calls.append(x.shape)
        return real(x)
    context.quantize = context.quantize_input.quantizer = counting
    return context, calls


def test_projections_reading_one_input_quantize_it_once_and_a_changed_input_again():
    torch.manual_seed(0)
    context, calls = _counting_context()
    q, k = (fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16), context)
            for _ in range(2))
    x = torch.randn(2, 8, 64, dtype=torch.bfloat16)
    yq, yk = q(x), k(x)
    assert len(calls) == 1                                   # k took q's FP8 copy of x
    assert context.quantize_input.counters.shared_inputs == 1
    context.forget_last_input()
    assert torch.equal(k(x), yk) and len(calls) == 2         # the same values as its own quantization
    x.mul_(2)                                                # written in place: the copy is stale
    assert torch.allclose(q(x).float(), 2 * yq.float(), rtol=0.02) and len(calls) == 3
    assert _rel(k(torch.randn(2, 8, 64, dtype=torch.bfloat16)), yk) > 0.5 and len(calls) == 4


def test_sharing_off_quantizes_every_call_and_two_models_share_nothing():
    """KernelOptions(share_quantized_input=False) quantizes each projection's input itself (a bench's
    'before'); two contexts (two models in one process) never hand each other a copy."""
    torch.manual_seed(0)
    context, calls = _counting_context(share=False)
    q, k = (fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16), context)
            for _ in range(2))
    x = torch.randn(2, 8, 64, dtype=torch.bfloat16)
    q(x), k(x)
    assert len(calls) == 2 and context.quantize_input.counters.shared_inputs == 0
    first, calls1 = _counting_context()
    second, calls2 = _counting_context()
    a = fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16), first)
    b = fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16), second)
    a(x), b(x)
    assert len(calls1) == len(calls2) == 1


def test_fp8_base_and_lora_in_one_node_give_the_two_node_result(monkeypatch):
    """The fused node (base GEMM + LoRA term, sum in place, LoRA input gradient accumulated by its GEMM) gives
    the same output and gradients as the FP8 base followed by the separate LoRA product, under bf16 autocast;
    KernelOptions(fp8_lora_one_node=False) is the two-node path."""
    import copy

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=300)
    model = get_peft_model(LlamaForCausalLM(cfg).to(torch.bfloat16),
                           LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                           "gate_proj", "up_proj", "down_proj"]))
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)
    two = copy.deepcopy(model)
    one_node = kernels.apply(model, kernels.KernelOptions(fp8_base=True, fused_lora=True))
    two_nodes = kernels.apply(two, kernels.KernelOptions(fp8_base=True, fused_lora=True, fp8_lora_one_node=False))
    assert one_node.fp8_bases == two_nodes.fp8_bases == 14 and one_node.fused == two_nodes.fused == 14
    nodes = []
    real = fp8_linear._Fp8LoraMatmul.apply
    monkeypatch.setattr(fp8_linear._Fp8LoraMatmul, "apply", lambda *a: nodes.append(1) or real(*a))
    x = torch.randint(0, 300, (2, 24))

    def run(m, applied):
        m.zero_grad()
        applied.forget_last_input()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(input_ids=x, labels=x).loss
        loss.backward()
        return loss.detach().float(), {n: p.grad.float() for n, p in m.named_parameters() if p.requires_grad}

    l2, g2 = run(two, two_nodes)
    assert not nodes
    l1, g1 = run(model, one_node)
    assert len(nodes) == 14                                     # every projection took the one-node path
    assert abs(l1 - l2) < 1e-2 * abs(l2)
    assert g1.keys() == g2.keys() and len(g1) == 28
    for k in g1:
        assert g1[k].dtype == torch.float32 and g1[k].norm() > 0, k
        assert _rel(g1[k], g2[k]) < 0.05, (k, _rel(g1[k], g2[k]))
    # the A and B gradients really come from the fused backward: a wrong scale would be far off
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    xs = torch.randn(5, 64, dtype=torch.bfloat16, requires_grad=True)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    y = layer.base_layer.forward_lora(xs, a, b, 4.0)
    y.float().square().sum().backward()
    ga = a.grad.clone()
    a.grad = None
    xs2 = xs.detach().clone().requires_grad_(True)
    ref = layer.base_layer(xs2) + 4.0 * (xs2 @ a.to(torch.bfloat16).t()) @ b.to(torch.bfloat16).t()
    ref.float().square().sum().backward()
    assert _rel(y, ref) < 0.02 and _rel(xs.grad, xs2.grad) < 0.05 and _rel(ga, a.grad) < 0.05
    assert _rel(ga, 2 * a.grad) > 0.3


def test_fused_node_is_not_used_when_lora_would_run_in_another_dtype():
    base = fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 32, bias=False).to(torch.bfloat16))
    x = torch.randn(3, 64)
    assert not fused_lora._in_compute_dtype(base, x)                       # fp32 without autocast: PEFT's path
    assert fused_lora._in_compute_dtype(base, x.to(torch.bfloat16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused_lora._in_compute_dtype(base, x)
    with torch.autocast("cpu", dtype=torch.float16):
        assert not fused_lora._in_compute_dtype(base, x)


def test_fused_node_under_recompute_gives_the_same_gradients():
    """Gradient checkpointing re-runs the fused node's forward in backward (and the shared-input cache sees the
    recomputed activation): the gradients equal those of the plain pass."""
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    layer = fp8_linear.Fp8FrozenLinear(torch.nn.Linear(64, 48, bias=False).to(torch.bfloat16))
    a = (torch.randn(8, 64) * 0.1).requires_grad_(True)
    b = (torch.randn(48, 8) * 0.1).requires_grad_(True)
    x = torch.randn(3, 7, 64, dtype=torch.bfloat16)

    def block(inp):
        return torch.nn.functional.gelu(layer.forward_lora(torch.tanh(inp), a, b, 2.0))

    grads = []
    for recompute in (False, True):
        a.grad = b.grad = None
        xi = x.clone().requires_grad_(True)
        layer.context.forget_last_input()
        y = checkpoint(block, xi, use_reentrant=False) if recompute else block(xi)
        y.float().square().sum().backward()
        grads.append((xi.grad.clone(), a.grad.clone(), b.grad.clone()))
    for plain, again in zip(*grads):
        assert torch.equal(plain, again)
