"""Can this interpreter's vLLM honour a grammar? A version check of xgrammar against transformers.

    from serving.grammar_check import problem
    why = problem()          # None, or a sentence naming the versions and the fix

xgrammar before 0.2.5 reads the vocabulary of a transformers-5 byte-level BPE tokenizer (Llama-3, SmolLM2)
as byte-fallback, so no space-prefixed token ever matches a grammar: every constrained answer stops after its
first keyword ("SELECT"). Seen with vLLM 0.24's pinned xgrammar 0.2.3 on the H200 (OOD yardstick: valid 99.5%,
runs 0%); fixed upstream by xgrammar's vocabulary-type detection for transformers 5 (mlc-ai/xgrammar#705).
Run in the vLLM interpreter (serving/vllm_offline.py calls it before generating under grammars).
"""
from __future__ import annotations

import importlib.metadata as md


def _version(pkg: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in md.version(pkg).split(".")[:3] if p.isdigit())
    except md.PackageNotFoundError:
        return None


def problem() -> str | None:
    xg, tf = _version("xgrammar"), _version("transformers")
    if xg is None or tf is None:
        return None
    if xg < (0, 2, 5) and tf >= (5,):
        return (f"xgrammar {'.'.join(map(str, xg))} misreads transformers-{'.'.join(map(str, tf))} byte-level "
                "tokenizers, so constrained answers stop after their first word: install xgrammar>=0.2.5 into the "
                "vLLM environment (e.g. `pip install xgrammar==0.2.8`), or evaluate without --constrained")
    return None
