"""Export: GGUF round trip, merge verification, wrong-base adapters, atomic publish, format choice, hub errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


def _adapter(model_dir: Path, out: Path, seed: int = 1) -> Path:
    """A LoRA adapter with non-zero B (a freshly initialised one would be a no-op to merge)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                                   "gate_proj", "up_proj", "down_proj"],
                                            init_lora_weights=False))
    peft.save_pretrained(out)
    return out


def test_rotary_layout_is_what_transformers_undoes():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from pipeline.export.gguf_file import to_rotary_interleaved

    w = np.arange(4 * 2 * 8 * 3, dtype=np.float32).reshape(4 * 2 * 8, 3)  # 4 heads of dim 16
    there = to_rotary_interleaved(w, 4)
    assert not np.array_equal(there, w)
    back = LlamaTensorProcessor()._reverse_permute_weights(there, 4, 4)
    assert np.array_equal(back, w)


@pytest.mark.parametrize("kind", ["f16", "q8_0"])
def test_gguf_round_trip_keeps_logits_and_tokenizer(tiny_llama_dir, tmp_path, kind):
    import gguf

    from pipeline.export.gguf_file import verify_gguf, write_gguf

    path = write_gguf(tiny_llama_dir, tmp_path / f"m-{kind}.gguf", kind, progress=False)
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.architecture"].contents() == "llama"
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.attn_q.weight"] == ("F16" if kind == "f16" else "Q8_0")
    v = verify_gguf(tiny_llama_dir, path)
    assert v["tokenizer_ids_equal"]
    assert v["top1_agreement"] >= (1.0 if kind == "f16" else 0.9)
    assert v["max_abs_logit_diff"] < (0.01 if kind == "f16" else 0.1)


def test_gguf_refuses_other_architectures(tiny_llama_dir, tmp_path):
    from pipeline.export.gguf_file import GGUFExportError, write_gguf

    other = tmp_path / "qwen"
    shutil.copytree(tiny_llama_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_type"] = "qwen2"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GGUFExportError, match="Llama-architecture.*qwen2.*convert_hf_to_gguf"):
        write_gguf(other, tmp_path / "x.gguf")


def test_merge_matches_base_plus_adapter(tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer

    from pipeline.export.merge import merge_adapter, verify_merge

    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter")
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    out = merge_adapter(tiny_llama_dir, adapter, tmp_path / "merged", tok, {"contract": {"dialect": "sqlite"}})
    from core.modelinfo import read_card

    card = read_card(out)
    assert card["kind"] == "merged" and card["contract"] == {"dialect": "sqlite"}   # the contract travels
    assert "Prompt contract" in (out / "README.md").read_text()
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == tok.eos_token_id
    assert "chat_template" in (out / "tokenizer_config.json").read_text() or (out / "chat_template.jinja").exists()
    v = verify_merge(tiny_llama_dir, adapter, out, tok)
    assert v["top1_agreement"] >= 0.9
    # and the merge really changed the model: base logits differ from merged logits
    import torch
    from transformers import AutoModelForCausalLM

    ids = tok("SELECT name FROM t", return_tensors="pt").input_ids
    with torch.no_grad():
        a = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16)(ids).logits
        b = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)(ids).logits
    assert (a - b).abs().max().item() > 0.01


def test_adapter_for_another_base_is_refused_before_loading(tiny_llama_dir, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipeline.export.merge import MergeError, check_adapter_matches

    wider = tmp_path / "wider"
    cfg = LlamaConfig(vocab_size=400, hidden_size=96, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=3, num_key_value_heads=1, head_dim=32)
    LlamaForCausalLM(cfg).save_pretrained(wider)
    adapter = _adapter(wider, tmp_path / "adapter")
    with pytest.raises(MergeError, match="trained for another base.*96"):
        check_adapter_matches(tiny_llama_dir, adapter)
    check_adapter_matches(wider, adapter)  # its own base is fine


def test_auto_format_follows_compute_capability():
    from pipeline.export.quantize import pick_format

    assert pick_format("auto", "10.0")[0] == "nvfp4"
    assert pick_format("auto", "9.0")[0] == "fp8"
    assert pick_format("auto", "8.9")[0] == "fp8"
    assert pick_format("auto", "8.0")[0] == "w4a16"
    fmt, why = pick_format("auto", None)
    assert fmt == "w4a16" and "every GPU" in why
    assert pick_format("fp8", "8.0") == ("fp8", "fp8 requested")


def test_calibration_draws_every_complexity_class():
    from pipeline.export.quantize import calibration_texts

    rows = [{"sql_complexity": c, "sql": f"{c}-{i}"} for c in ("basic SQL", "CTEs", "window functions")
            for i in range(100 if c == "basic SQL" else 3)]
    texts = calibration_texts(rows, lambda r: r["sql"], 9)
    assert len(texts) == 9
    assert {t.split("-")[0] for t in texts} == {"basic SQL", "CTEs", "window functions"}
    assert sum(t.startswith("CTEs") for t in texts) == 3


def test_failed_export_leaves_no_finished_looking_folder(tiny_llama_dir, tmp_path, home, monkeypatch):
    """Disk-full mid-write cannot be caused here: a fake write_gguf writes half a file, then fails."""
    from pipeline import config
    from pipeline.export import gguf_file
    from pipeline.export import stage as export

    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter")
    out = tmp_path / "exports"
    cfg = config.load(None, [f"model.name_or_path={tiny_llama_dir}", f"export.adapter={adapter}",
                             f"export.output_dir={out}", "export.formats=[gguf-f16]", "export.verify=false"])
    first = export.run(cfg, progress=lambda *_: None)
    good = out / "gguf-f16" / "model-f16.gguf"
    assert good.is_file() and first.items[0]["size_mb"] > 0
    before = good.read_bytes()

    def broken(src, dest, kind, name=None, progress=True):
        dest.write_bytes(b"GGUF half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf_file, "write_gguf", broken)
    with pytest.raises(OSError):
        export.run(cfg, progress=lambda *_: None)
    assert good.read_bytes() == before  # the previous export is intact
    assert not (out / "merged").exists()  # the scratch merge was removed, not published


def test_disk_space_is_checked_first(tmp_path, monkeypatch):
    import shutil as sh

    from pipeline.export.stage import ExportError, check_disk

    monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(100, 99, 1))
    with pytest.raises(ExportError, match="not enough disk space.*export.output_dir"):
        check_disk(tmp_path, 10 * 2**30)


def test_hub_push_errors_are_one_line(tmp_path, monkeypatch):
    from pipeline.export.hub import HubError, push

    (tmp_path / "f.txt").write_text("x")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(HubError, match="set HF_TOKEN"):
        push(tmp_path, "me/model")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9: no network
    import importlib

    import huggingface_hub.constants as c

    importlib.reload(c)
    try:
        with pytest.raises(HubError, match="cannot be reached.*push it again") as e:
            push(tmp_path, "me/model", token="hf_x")
        assert "\n" not in str(e.value)
    finally:
        monkeypatch.delenv("HF_ENDPOINT")
        importlib.reload(c)


def test_config_rejects_unknown_format():
    from core.errors import ConfigError
    from pipeline import config

    with pytest.raises(ConfigError, match="export.formats: 'gguf-q4' is not one of"):
        config.load(None, ["export.formats=[merged,gguf-q4]"])


def test_export_trains_a_draft_head_into_the_merged_model(tiny_llama_dir, tmp_path, home):
    from core.modelinfo import draft_head
    from pipeline import config
    from pipeline.export import stage as export
    from tests.conftest import gretel_row, write_gretel

    data = write_gretel(tmp_path / "rows.parquet", [gretel_row(i) for i in range(130)])
    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter")
    out = tmp_path / "exports"
    cfg = config.load(None, [f"model.name_or_path={tiny_llama_dir}", f"export.adapter={adapter}",
                             f"export.output_dir={out}", "export.formats=[merged]", "export.verify=false",
                             f"data.sources=[{{path: '{data}'}}]", "export.draft_head=true", "export.draft_rows=20"])
    res = export.run(cfg, progress=lambda *_: None)
    head = draft_head(out / "merged")
    assert head is not None and head["report"]["train_rows"] == 20 and head["report"]["held_out_rows"] == 100
    item = [i for i in res.items if i["format"] == "draft"][0]
    assert "accepted per step on 100 held-out rows" in item["check"]
    assert not list((out / "merged").glob(".draft.partial-*"))        # published, no staging left


def test_a_draft_head_needs_the_merged_model():
    from core.errors import ConfigError
    from pipeline import config

    with pytest.raises(ConfigError, match="export.draft_head.*add `merged`"):
        config.load(None, ["export.formats=[gguf-q8_0]", "export.draft_head=true"])
