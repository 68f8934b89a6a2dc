"""The SentencePiece-BPE rebuild (core.assets.spm_bpe_tokenizer) that makes the Gemma 3 GGUF's tokenizer right:
merges ranked by the merged piece's score, spaces as U+2581 without a dummy prefix, byte fallback, special
pieces kept whole. A tiny vocabulary where a different ranking gives a different split.

    .venv/bin/python -m pytest tests/unit/test_spm_tokenizer.py
"""
from core.assets import spm_bpe_tokenizer

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>"]
BYTES = [f"<0x{b:02X}>" for b in range(256)]
# normal pieces and their scores (higher merges first)
NORMAL = {"a": -1, "b": -2, "c": -3, "\u2581": -4, "ab": -10, "bc": -5, "\u2581a": -30, "ca": -50}


def _tok():
    pieces = SPECIALS + BYTES + list(NORMAL)
    kinds = [3] * len(SPECIALS) + [6] * 256 + [1] * len(NORMAL)
    scores = [-1000.0] * (len(SPECIALS) + 256) + [float(v) for v in NORMAL.values()]
    return spm_bpe_tokenizer(pieces, scores, kinds)


def test_the_higher_scoring_pair_merges_first():
    tok = _tok()
    assert tok.encode("abc").tokens == ["a", "bc"]      # bc (-5) before ab (-10); ranked the other way: ab, c
    assert tok.encode("bca").tokens == ["bc", "a"]      # bc (-5) before ca (-50)
    assert tok.encode("abab").tokens == ["ab", "ab"]


def test_spaces_become_the_sentencepiece_marker_without_a_dummy_prefix():
    tok = _tok()
    assert tok.encode("ab ab").tokens == ["ab", "\u2581", "ab"]   # ab (-10) before \u2581a (-30)
    assert tok.encode(" a").tokens == ["\u2581a"]
    assert tok.decode(tok.encode("ab ab").ids) == "ab ab"


def test_unknown_characters_fall_back_to_bytes_and_decode_back():
    tok = _tok()
    enc = tok.encode("aé")
    assert enc.tokens == ["a", "<0xC3>", "<0xA9>"]
    assert tok.decode(enc.ids) == "aé"


def test_special_pieces_stay_whole():
    tok = _tok()
    assert tok.encode("<start_of_turn>ab").tokens == ["<start_of_turn>", "ab"]
