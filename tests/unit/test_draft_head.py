"""The EAGLE draft head: training sees what vLLM runs, the saved folder is what vLLM loads, the plan uses it."""
import json

import pytest

torch = pytest.importorskip("torch")

from pipeline.export import draft_head as dh  # noqa: E402

CFG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4,
       "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 50, "num_hidden_layers": 2, "rms_norm_eps": 1e-5,
       "max_position_embeddings": 256, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}


def _layer(head, x, pos, past_k, past_v):
    """One token through the head's layer at position `pos` with a KV cache, as vLLM's decode does."""
    layer = head.layers[0]
    heads, kv_heads, hd = head.dims
    cos, sin = head.rope(x[None, None], torch.tensor([[pos]]))
    cos, sin = cos[0, :, None], sin[0, :, None]
    q = dh._rotate(layer.self_attn.q_proj(x).view(1, heads, hd), cos, sin)
    k = dh._rotate(layer.self_attn.k_proj(x).view(1, kv_heads, hd), cos, sin).repeat_interleave(heads // kv_heads, 1)
    v = layer.self_attn.v_proj(x).view(1, kv_heads, hd).repeat_interleave(heads // kv_heads, 1)
    keys, values = torch.cat(past_k + [k]), torch.cat(past_v + [v])
    att = torch.einsum("hj,jhd->hd", (torch.einsum("hd,jhd->hj", q[0], keys) * hd ** -0.5).softmax(-1), values)
    h = x + layer.self_attn.o_proj(att.reshape(-1))
    m = layer.post_attention_layernorm(h)
    return h + layer.mlp.down_proj(torch.nn.functional.silu(layer.mlp.gate_proj(m)) * layer.mlp.up_proj(m)), k, v


def test_unroll_matches_step_by_step_drafting():
    """Step s of the batched unroll at row i equals drafting from position i one token at a time: the
    served model's states up to i in the cache, then the head's own outputs (vLLM's propose loop)."""
    torch.manual_seed(0)
    head = dh.build_head(CFG)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    T, steps = 7, 3
    embeds, hidden = torch.randn(1, T, 32), torch.randn(1, T, 32)
    outs = dh.unroll(head, embeds, hidden, steps)
    with torch.no_grad():
        for i in range(T - steps + 1):
            ks, vs = [], []
            for j in range(i + 1):               # prefill: the served model's states at positions 0..i
                d, k, v = _layer(head, head.fc(torch.cat((embeds[0, j], hidden[0, j]))), j, ks, vs)
                ks, vs = ks + [k], vs + [v]
            assert torch.allclose(outs[0][0, i], d, atol=1e-5)
            for s in range(2, steps + 1):        # then the head's own outputs, one position further each step
                d, k, v = _layer(head, head.fc(torch.cat((embeds[0, i + s - 1], d))), i + s - 1, ks, vs)
                ks, vs = ks + [k], vs + [v]
                assert torch.allclose(outs[s - 1][0, i], d, atol=1e-5), (i, s)


def test_unroll_of_a_padded_batch_equals_each_sequence_alone():
    torch.manual_seed(1)
    head = dh.build_head(CFG)
    a_e, a_h = torch.randn(1, 5, 32), torch.randn(1, 5, 32)
    b_e, b_h = torch.randn(1, 8, 32), torch.randn(1, 8, 32)
    batch = dh.unroll(head, torch.cat((torch.nn.functional.pad(a_e, (0, 0, 0, 3)), b_e)),
                      torch.cat((torch.nn.functional.pad(a_h, (0, 0, 0, 3)), b_h)), 3)
    alone = dh.unroll(head, a_e, a_h, 3)
    for s in range(3):
        assert torch.allclose(batch[s][0, : alone[s].shape[1]], alone[s][0], atol=1e-5)


def test_chain_counts_stop_at_the_first_miss():
    hits = torch.tensor([[[1, 1, 0, 1]], [[1, 0, 1, 1]], [[0, 1, 1, 1]]], dtype=torch.bool)   # [steps, B=1, T=4]
    first = torch.tensor([[True, True, True, False]])
    accepted, chains, per_step = dh.chain_counts(hits, first)
    assert (accepted, chains) == (2 + 1 + 0, 3)     # position 0: 2 accepted, then a miss; 1: 1; 2: none
    assert per_step == [2, 2, 2]                    # each step's own hits over the three chains


def test_a_trained_head_is_saved_the_way_vllm_loads_it(tiny_llama_dir, tmp_path):
    """fc + one layer without its input norm, no embedding / lm_head (shared with the served model at load),
    config of the served model with one layer, and the held-out report."""
    from safetensors import safe_open

    rows = [{"schema": f"CREATE TABLE t{i} (id INT, name TEXT);", "question": f"names in t{i}?",
             "sql": f"SELECT name FROM t{i} WHERE id > {i};"} for i in range(12)]
    rep = dh.train_draft_head(tiny_llama_dir, rows[:10], rows[10:], tmp_path / "draft", epochs=2, progress=lambda m: None)
    keys = set(safe_open(str(tmp_path / "draft" / "model.safetensors"), "pt").keys())
    assert keys == {"fc.weight", "layers.0.post_attention_layernorm.weight",
                    *(f"layers.0.self_attn.{p}_proj.weight" for p in "qkvo"),
                    *(f"layers.0.mlp.{p}_proj.weight" for p in ("gate", "up", "down"))}
    cfg = json.loads((tmp_path / "draft" / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 1 and cfg["architectures"] == ["LlamaForCausalLM"]
    assert rep["held_out_rows"] == 2 and rep["train_rows"] == 10 and 0 <= rep["accepted_per_step"] <= 3
    assert json.loads((tmp_path / "draft" / "draft.json").read_text())["steps_ahead"] == 3


def test_only_llama_models_get_a_draft_head():
    with pytest.raises(dh.DraftHeadError, match="Qwen2ForCausalLM"):
        dh.check_architecture({"architectures": ["Qwen2ForCausalLM"]})


def test_the_plan_serves_the_draft_head_on_gpus_and_says_why(tmp_path):
    from core.errors import ConfigError
    from core.modelinfo import draft_head
    from serving.config import ServeConfig, load_serve_config
    from serving.plan import device_defaults

    (tmp_path / "draft").mkdir()
    assert draft_head(tmp_path) is None                          # an empty or half-written folder is no head
    (tmp_path / "draft" / "config.json").write_text("{}")
    (tmp_path / "draft" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "draft" / "draft.json").write_text(json.dumps({"steps_ahead": 3, "accepted_per_step": 1.4}))
    facts = {"quantized": False, "quant_method": None, "weights_gib": 0.25, "max_len": 8192,
             "kv_bytes_per_token": 2 * 30 * 3 * 64, "draft": draft_head(tmp_path)}
    h200 = {"name": "NVIDIA H200", "capability": "9.0", "total_gib": 139.8}
    args, why = device_defaults(h200, facts, ServeConfig())
    spec = json.loads(args[args.index("--speculative-config") + 1])
    assert spec == {"method": "eagle", "model": str(tmp_path / "draft"), "num_speculative_tokens": 1}  # won on an H200
    assert any("1.40 draft tokens accepted" in w for w in why)
    args, _ = device_defaults(h200, facts, ServeConfig(draft_speculation=4))
    assert json.loads(args[args.index("--speculative-config") + 1])["num_speculative_tokens"] == 4
    args, _ = device_defaults(h200, facts, ServeConfig(draft_speculation=0))
    assert "--speculative-config" not in args
    args, why = device_defaults(None, facts, ServeConfig())         # CPU: n-gram stays the default
    assert json.loads(args[args.index("--speculative-config") + 1])["method"] == "ngram"
    assert any("draft_speculation=3 turns it on" in w for w in why)
    args, _ = device_defaults(None, facts, ServeConfig(draft_speculation=2))
    assert json.loads(args[args.index("--speculative-config") + 1])["num_speculative_tokens"] == 2
    assert args.count("--speculative-config") == 1
    args, why = device_defaults(h200, facts, ServeConfig(ngram_speculation=4))   # n-gram asked for by name
    assert json.loads(args[args.index("--speculative-config") + 1])["method"] == "ngram"
    assert args.count("--speculative-config") == 1 and any("draft head is not used" in w for w in why)
    with pytest.raises(ConfigError, match="both on: vLLM runs one speculation method"):
        load_serve_config(overrides=["draft_speculation=2", "ngram_speculation=4"])
    args, _ = device_defaults(h200, dict(facts, draft=None), ServeConfig())
    assert "--speculative-config" not in args
