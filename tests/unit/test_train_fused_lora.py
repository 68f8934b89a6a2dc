"""Fused LoRA forward (pipeline/train/kernels/fused_lora.py): the same outputs and gradients as PEFT's own forward,
in fp32 and under bf16 autocast, and PEFT's path wherever the fusion does not apply."""
import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from pipeline.train.kernels import fused_lora

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _pair(dropout=0.0):
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=300)
    peft = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=8, lora_alpha=32, lora_dropout=dropout,
                                                            target_modules=TARGETS))
    for n, p in peft.named_parameters():      # B starts at zero: give it values so the LoRA term counts
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)
    fused = copy.deepcopy(peft)
    return peft, fused, fused_lora.apply(fused)


def _grads(model, x, autocast):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=x, labels=x).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("autocast", [False, True])
def test_fused_lora_gives_peft_s_loss_and_gradients(autocast):
    peft, fused, n = _pair()
    assert n == 2 * len(TARGETS)
    x = torch.randint(0, 300, (2, 24))
    (l1, g1), (l2, g2) = _grads(peft, x, autocast), _grads(fused, x, autocast)
    tol = 1e-5 if not autocast else 2e-2
    assert abs(l1 - l2) < tol * max(1.0, abs(l1))
    assert g1.keys() == g2.keys() and len(g1) == 4 * len(TARGETS)
    for k in g1:
        rel = ((g1[k] - g2[k]).norm() / g1[k].norm()).item()
        assert rel < (1e-4 if not autocast else 5e-2), (k, rel)
    # the LoRA term is really in there: with B zeroed the loss changes
    for name, p in fused.named_parameters():
        if "lora_B" in name:
            p.data.zero_()
    assert abs(_grads(fused, x, autocast)[0] - l2) > 1e-4


def test_cases_the_fusion_does_not_cover_take_peft_s_path():
    peft, fused, _ = _pair(dropout=0.1)       # dropout: PEFT's forward (fusing would skip the dropout)
    layer = fused.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(3, 64)
    assert fused_lora._plain(layer, x, {}) is None
    peft2, fused2, _ = _pair()
    layer2 = fused2.base_model.model.model.layers[0].self_attn.q_proj
    assert fused_lora._plain(layer2, x, {}) == "default"
    with fused2.disable_adapter():             # adapters off: the base alone, as PEFT gives it
        assert fused_lora._plain(layer2, x, {}) is None
        assert torch.allclose(layer2(x), layer2.base_layer(x))
    assert fused_lora._plain(layer2, x.to(torch.bfloat16), {}) is None   # no autocast + other dtype: PEFT casts
