"""Rows a draft head learns from: the bundled data, and rows whose tables and columns get random new names.

    from pipeline.export.draft_rows import bundled_rows, word_pool, with_renamed
    rows = with_renamed(bundled_rows("train", 20000), fraction=0.5, pool=word_pool(tokenizer))
    python -m pipeline.export.draft_head MERGED --rename 0.5       # the same, from the command line

A draft head guesses the served model's next tokens, and most SQL tokens are copied from the schema in the
prompt. Trained on the generator's 28 domains only, a head can learn their vocabulary ("cust" -> "omer")
rather than copying: on the OOD yardstick's hand-written schemas it hit identifier pieces 47% of the time
against 78-87% for keywords and punctuation. Renaming half the rows helped a little on an H200 (1.27 -> 1.31
draft tokens accepted per step on OOD answers, 1.60 -> 1.62 on held-out rows; docs/benchmarks.md).

`renamed` gives every simple table and column name of a row a new name made of random words from the
tokenizer's vocabulary, in the same style (snake_case, camelCase, PascalCase, UPPER, tbl_ prefixes),
consistently across the schema, the sample rows and the SQL, never inside string literals.
A renamed row is kept only when its SQL returns on SQLite exactly what the original returned (or changes the
same number of rows); otherwise the original row stays. The question is not renamed, so the served model
still has to find the right names in the schema, and the head learns to follow it there.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from sql.sandbox import Sandbox, SandboxError
from sql.statements import split_context
from sql.validate import schema_columns

SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")
WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def bundled_rows(split: str, n: int, data_dir: Path | None = None, seed: int = 1) -> list[dict]:
    """n shuffled rows of the bundled text-to-SQL data (data/sqlgenie-sql/<split>.parquet) as prompt rows."""
    import pyarrow.parquet as pq

    data_dir = data_dir or Path(__file__).resolve().parents[2] / "data" / "sqlgenie-sql"
    t = pq.read_table(Path(data_dir) / f"{split}.parquet", columns=["sql_context", "sql_prompt", "sql"]).to_pylist()
    random.Random(seed).shuffle(t)
    out = []
    for r in t[:n]:
        schema, sample = split_context(r["sql_context"])
        out.append({"schema": schema, "sample_data": sample, "question": r["sql_prompt"], "sql": r["sql"]})
    return out


def word_pool(tokenizer, limit: int = 20000) -> list[str]:
    """Lower-case words of 3-9 letters that are word-initial tokens of the model's vocabulary (SQL keywords left out)."""
    from sqlglot.tokens import Tokenizer

    keywords = {w.lower() for k in Tokenizer.KEYWORDS for w in k.split()}      # "ORDER BY" -> order, by
    words = set()
    for piece in tokenizer.get_vocab():
        text = tokenizer.convert_tokens_to_string([piece])
        w = text.strip()
        if text.startswith(" ") and 3 <= len(w) <= 9 and w.isascii() and w.isalpha() and w.islower() and w not in keywords:
            words.add(w)
    return sorted(words)[:limit]


def _prefix(name: str) -> tuple[str, str]:
    """(a tbl_ prefix as written, or "", the rest of the name)."""
    prefix = name[:4] if name.lower().startswith("tbl_") and len(name) > 4 else ""
    return prefix, name[len(prefix):]


def styled(original: str, words: list[str]) -> str:
    """`words` joined in `original`'s naming style: separator, letter case and a tbl_ prefix."""
    prefix, body = _prefix(original)
    if body.isupper():
        parts = [w.upper() for w in words]
    elif body[:1].isupper():
        parts = [w.capitalize() for w in words]
    elif any(c.isupper() for c in body):
        parts = [words[0]] + [w.capitalize() for w in words[1:]]
    else:
        parts = list(words)
    sep = "_" if "_" in body or body.isupper() else ""
    return prefix + sep.join(parts)


def _new_names(names: list[str], rng: random.Random, pool: list[str], taken: set[str]) -> dict[str, str]:
    """lower-case old name -> a new name in its style, unique, made of as many random words as it had."""
    mapping = {}
    for name in names:
        n = min(max(len(WORD.findall(_prefix(name)[1])), 1), 3)
        for _ in range(20):
            new = styled(name, [rng.choice(pool) for _ in range(n)])
            if new.lower() not in taken:
                taken.add(new.lower())
                mapping[name.lower()] = new
                break
    return mapping


def _replace(text: str, pattern: re.Pattern, mapping: dict[str, str]) -> str:
    """Names replaced outside string literals."""
    parts = STRING_LITERAL.split(text)
    return "".join(p if i % 2 else pattern.sub(lambda m: mapping[m.group(0).lower()], p) for i, p in enumerate(parts))


def _outcome(row: dict):
    """What the row's SQL does on its own schema and sample rows: (columns' count, rows, changes), or None."""
    try:
        box = Sandbox.from_context(row["schema"] + "\n" + (row.get("sample_data") or ""))
        got = box.query(row["sql"], read_only=False)
    except SandboxError:
        return None
    return len(got.columns), sorted(map(repr, got.rows)), got.changes


def renamed(row: dict, rng: random.Random, pool: list[str]) -> dict | None:
    """The row with its simple table and column names replaced by random words; None when that would change
    what its SQL returns (or the schema declares no simple names)."""
    tables, problems = schema_columns(row["schema"])
    names = sorted({n for t, cols in tables.items() for n in (t, *cols) if SIMPLE_NAME.fullmatch(n)}, key=len,
                   reverse=True)
    before = _outcome(row) if names and not problems else None
    if before is None:
        return None
    original = {m.group(0).lower(): m.group(0) for m in SIMPLE_NAME.finditer(row["schema"])}
    mapping = _new_names([original.get(n, n) for n in names], rng, pool, set(original))
    if not mapping:                     # every new name collided (a tiny pool): nothing to rename
        return None
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names if n in mapping) + r")\b", re.IGNORECASE)
    new = dict(row, **{k: _replace(row.get(k) or "", pattern, mapping) for k in ("schema", "sample_data", "sql")})
    return new if _outcome(new) == before else None


def with_renamed(rows: list[dict], fraction: float, pool: list[str], seed: int = 0) -> tuple[list[dict], int]:
    """The rows with about `fraction` of them renamed (a row whose renaming fails its check stays as it was);
    returns (rows, how many were renamed)."""
    rng = random.Random(seed)
    out, done = [], 0
    for row in rows:
        new = renamed(row, rng, pool) if fraction > 0 and rng.random() < fraction else None
        out.append(new or row)
        done += new is not None
    return out, done
