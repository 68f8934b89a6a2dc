"""Loaders: every supported source becomes a `datasets.Dataset` with the canonical columns below.

Formats
- gretel: Gretel synthetic_text_to_sql columns (parquet / jsonl / json / csv). `bundled:train|test` is the
  dataset shipped in data/sqlgenie-sql/.
- spider: a folder with a questions file (train_spider.json, dev.json, ...; or pass the .json itself),
  tables.json and database/<db_id>/<db_id>.sqlite; the schema DDL comes from the database, three sample
  rows per table become INSERT statements.
- messages: chat rows, `messages` [{role, content}] or ShareGPT `conversations` [{from, value}]
  (FineTome, UltraChat); the last assistant turn is the completion.
- prompt_completion: `prompt` and `completion` columns (strings).

Canonical columns (CANON): id, source, kind ('sql' | 'chat'), question, schema, sample_data, sql, domain,
sql_complexity, sql_task_type, messages_json (chat rows: the whole conversation as JSON), db_path (Spider:
the row's database file), bad (why the
row cannot be used, '' if fine: missing_field / non_utf8 - filled here, the rest by prepare).

    python -c "from pipeline.data.loaders import load; print(load('bundled:train'))"
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import REPO_ROOT, SourceConfig
from pipeline.errors import DataError

BUNDLED = REPO_ROOT / "data" / "sqlgenie-sql"
CANON = ["id", "source", "kind", "question", "schema", "sample_data", "sql", "domain", "sql_complexity",
         "sql_task_type", "messages_json", "db_path", "bad"]
GRETEL_REQUIRED = ["sql_prompt", "sql_context", "sql"]
GRETEL_OPTIONAL = ["id", "domain", "domain_description", "sql_complexity", "sql_complexity_description",
                   "sql_task_type", "sql_task_type_description", "sql_explanation"]
_SURROGATE = re.compile("[\udc80-\udcff]")
NON_UTF8 = "__non_utf8"  # column added by the text readers: the row had bytes that are not UTF-8


@dataclass
class Example:
    """One typed text-to-SQL example (a canonical row of kind 'sql')."""
    id: str
    question: str
    schema: str
    sql: str
    sample_data: str = ""
    domain: str = ""
    sql_complexity: str = ""
    sql_task_type: str = ""
    source: str = ""

    @property
    def context(self) -> str:
        return f"{self.schema}\n{self.sample_data}".strip()

    @classmethod
    def from_row(cls, row: dict) -> "Example":
        return cls(**{k: row.get(k) or "" for k in cls.__dataclass_fields__})


# ------------------------------------------------------------------------------------ SQL context
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?(?:\*/|$)|;", re.S)


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons, respecting quotes; comments are dropped."""
    if "--" not in sql and "/*" not in sql and '"' not in sql and "`" not in sql:
        return _split_single_quoted(sql)
    out, buf, pos = [], [], 0
    for m in _TOKENS.finditer(sql):
        tok = m.group()
        if tok == ";":
            buf.append(sql[pos:m.start()])
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt + ";")
            buf = []
        elif tok.startswith("--") or tok.startswith("/*"):
            buf.append(sql[pos:m.start()])
        else:
            buf.append(sql[pos:m.end()])
        pos = m.end()
    tail = ("".join(buf) + sql[pos:]).strip()
    if tail:
        out.append(tail + ";")
    return out


def _split_single_quoted(sql: str) -> list[str]:
    """Fast path for scripts whose only quoting is '...': a ';' is inside a literal iff the quote count
    before it is odd (doubled quotes keep the parity), so str.split + parity merging is exact."""
    out, cur, odd = [], "", False
    for piece in sql.split(";"):
        cur = f"{cur};{piece}" if odd else piece
        odd = cur.count("'") % 2 == 1
        if not odd:
            stmt = cur.strip()
            if stmt:
                out.append(stmt + ";")
            cur = ""
    if cur.strip():
        out.append(cur.strip() + ";")
    return out


def split_context(context: str) -> tuple[str, str]:
    """(schema DDL, sample-data statements) of a Gretel sql_context."""
    schema, data = [], []
    for stmt in split_statements(context):
        head = stmt.lstrip("( \n\t").split(None, 1)[0].upper() if stmt.strip() else ""
        (data if head in ("INSERT", "UPDATE", "DELETE", "REPLACE") else schema).append(stmt)
    return "\n".join(schema), "\n".join(data)


# ------------------------------------------------------------------------------------ file reading
def _read_text(path: Path) -> str:
    # Invalid UTF-8 bytes become lone surrogates, so one bad row is counted instead of failing the file.
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def _mark_non_utf8(rows: list) -> list:
    """Replace undecodable bytes (lone surrogates) so Arrow accepts the row, and flag the row."""
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        flagged = False
        for k, v in r.items():
            if isinstance(v, str) and _SURROGATE.search(v):
                r[k] = _SURROGATE.sub("\ufffd", v)
                flagged = True
            elif isinstance(v, (list, dict)) and _SURROGATE.search(json.dumps(v, ensure_ascii=False)):
                r[k] = json.loads(_SURROGATE.sub("\ufffd", json.dumps(v, ensure_ascii=False)))
                flagged = True
        r[NON_UTF8] = flagged
        out.append(r)
    return out


def _read_table(path: Path):
    """A pyarrow Table from parquet / jsonl / json / csv, or one clear DataError."""
    import pyarrow as pa

    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix in (".jsonl", ".jsonl.gz"):
            rows, broken = [], 0
            for line in _read_text(path).splitlines():
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        broken += 1
            if broken and not rows:
                raise DataError(f"{path}: no line is valid JSON (is it really JSON Lines?)")
            return pa.Table.from_pylist(_mark_non_utf8(rows)) if rows else pa.table({})
        if suffix == ".json":
            data = json.loads(_read_text(path))
            if isinstance(data, dict):
                data = data.get("data") or data.get("rows") or [data]
            return pa.Table.from_pylist(_mark_non_utf8(data))
        if suffix == ".csv":
            import csv
            import io

            return pa.Table.from_pylist(_mark_non_utf8(list(csv.DictReader(io.StringIO(_read_text(path))))))
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure becomes one line naming the file
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {type(e).__name__}: {e}") from None
    raise DataError(f"{path}: unsupported file type '{suffix}' (use .parquet, .jsonl, .json or .csv)")


def _columns_error(path: Path, found: list[str], fmt: str, expected: list[str]) -> DataError:
    return DataError(
        f"{path}: wrong columns for the {fmt} format. Found: {', '.join(found) or '(none)'}. "
        f"Expected: {', '.join(expected)}."
    )


def _detect(path: Path, columns: list[str]) -> str:
    cols = set(columns)
    if set(GRETEL_REQUIRED) <= cols:
        return "gretel"
    if "messages" in cols or "conversations" in cols:
        return "messages"
    if {"prompt", "completion"} <= cols:
        return "prompt_completion"
    raise DataError(
        f"{path}: cannot tell the format from its columns. Found: {', '.join(columns) or '(none)'}. Expected one "
        f"of: gretel ({', '.join(GRETEL_REQUIRED)}), messages (messages or conversations), "
        "prompt_completion (prompt, completion), or a Spider folder."
    )


def _text(v) -> str:
    return "" if v is None else str(v)


def _bad_text(*values: str) -> str:
    if any(not v.strip() for v in values):
        return "missing_field"
    if any(_SURROGATE.search(v) for v in values):
        return "non_utf8"
    return ""


def _row(**kw) -> dict:
    row = {k: "" for k in CANON}
    row.update(kw)
    return row


# ------------------------------------------------------------------------------------ formats
def _flags(table) -> list[bool]:
    return table.column(NON_UTF8).to_pylist() if NON_UTF8 in table.column_names else [False] * table.num_rows


def _gretel_rows(table, source: str) -> list[dict]:
    cols = table.column_names
    flags = _flags(table)
    n = table.num_rows
    data = {c: table.column(c).to_pylist() for c in cols if c in GRETEL_REQUIRED + GRETEL_OPTIONAL}
    for c in GRETEL_OPTIONAL:
        data.setdefault(c, [None] * n)
    ids = data["id"] if "id" in cols else list(range(n))
    out = []
    for i in range(n):
        q, ctx, sql = _text(data["sql_prompt"][i]), _text(data["sql_context"][i]), _text(data["sql"][i])
        schema, sample = split_context(ctx) if ctx.strip() else ("", "")
        if ctx.strip() and not schema:  # a context with only INSERTs still counts as schema
            schema, sample = sample, ""
        out.append(_row(
            id=_text(ids[i]), source=source, kind="sql", question=q.strip(), schema=schema, sample_data=sample,
            sql=sql.strip(), domain=_text(data["domain"][i]), sql_complexity=_text(data["sql_complexity"][i]),
            sql_task_type=_text(data["sql_task_type"][i]),
            bad=_bad_text(q, ctx, sql) or ("non_utf8" if flags[i] else ""),
        ))
    return out


_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
         "model": "assistant", "bot": "assistant"}


def _messages_rows(table, path: Path, source: str) -> list[dict]:
    col = "messages" if "messages" in table.column_names else "conversations"
    flags = _flags(table)
    ids = table.column("id").to_pylist() if "id" in table.column_names else list(range(table.num_rows))
    out = []
    for i, conv in enumerate(table.column(col).to_pylist()):
        msgs, bad = [], ""
        for m in conv or []:
            if not isinstance(m, dict):
                bad = "missing_field"
                break
            role = _ROLE.get(_text(m.get("role", m.get("from"))).lower())
            content = _text(m.get("content", m.get("value")))
            if role is None:
                bad = "missing_field"
                break
            msgs.append({"role": role, "content": content})
        if not msgs or msgs[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in msgs):
            bad = bad or "missing_field"
        bad = bad or _bad_text(*[m["content"] for m in msgs]) or ("non_utf8" if flags[i] else "")
        question = next((m["content"] for m in msgs if m["role"] == "user"), "")
        out.append(_row(id=_text(ids[i]), source=source, kind="chat", question=question,
                        messages_json=json.dumps(msgs, ensure_ascii=False), bad=bad))
    return out


def _prompt_completion_rows(table, source: str) -> list[dict]:
    ids = table.column("id").to_pylist() if "id" in table.column_names else list(range(table.num_rows))
    flags = _flags(table)
    out = []
    for i, (p, c) in enumerate(zip(table.column("prompt").to_pylist(), table.column("completion").to_pylist())):
        p, c = _text(p), _text(c)
        msgs = [{"role": "user", "content": p}, {"role": "assistant", "content": c}]
        out.append(_row(id=_text(ids[i]), source=source, kind="chat", question=p,
                        messages_json=json.dumps(msgs, ensure_ascii=False),
                        bad=_bad_text(p, c) or ("non_utf8" if flags[i] else "")))
    return out


def _spider_rows(path: Path, source: str) -> list[dict]:
    import sqlite3

    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        qfiles = [folder / n for n in ("train_spider.json", "dev.json", "test.json", "questions.json") if (folder / n).is_file()]
        if not qfiles:
            raise DataError(f"{folder}: no questions file (train_spider.json, dev.json, test.json or questions.json)")
    else:
        qfiles = [path]
    db_root = folder / "database"
    if not db_root.is_dir():
        raise DataError(f"{folder}: a Spider folder needs database/<db_id>/<db_id>.sqlite (no database/ folder)")
    schemas: dict[str, tuple[str, str]] = {}

    def schema_of(db_id: str) -> tuple[str, str]:
        if db_id not in schemas:
            db = db_root / db_id / f"{db_id}.sqlite"
            if not db.is_file():
                schemas[db_id] = ("", "")
            else:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    ddl, inserts = [], []
                    for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' "
                                                  "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"):
                        ddl.append(sql.strip().rstrip(";") + ";")
                        cur = conn.execute(f'SELECT * FROM "{name}" LIMIT 3')
                        cols = ", ".join(d[0] for d in cur.description)
                        for r in cur.fetchall():
                            vals = ", ".join("NULL" if v is None else ("'" + str(v).replace("'", "''") + "'")
                                             if isinstance(v, (str, bytes)) else str(v) for v in r)
                            inserts.append(f'INSERT INTO "{name}" ({cols}) VALUES ({vals});')
                    schemas[db_id] = ("\n".join(ddl), "\n".join(inserts))
                finally:
                    conn.close()
        return schemas[db_id]

    out = []
    for qf in qfiles:
        try:
            items = json.loads(_read_text(qf))
        except json.JSONDecodeError as e:
            raise DataError(f"{qf}: not valid JSON: {e}") from None
        if not isinstance(items, list) or (items and not {"db_id", "question", "query"} <= set(items[0])):
            found = sorted(items[0]) if isinstance(items, list) and items and isinstance(items[0], dict) else []
            raise _columns_error(qf, found, "spider", ["db_id", "question", "query"])
        for i, it in enumerate(items):
            schema, sample = schema_of(_text(it.get("db_id")))
            q, sql = _text(it.get("question")), _text(it.get("query"))
            out.append(_row(id=f"{qf.stem}-{i}", source=source, kind="sql", question=q.strip(), schema=schema,
                            sample_data=sample, sql=sql.strip(), domain=_text(it.get("db_id")),
                            db_path=str(db_root / _text(it.get("db_id")) / f"{_text(it.get('db_id'))}.sqlite"),
                            bad=_bad_text(q, schema, sql)))
    return out


# ------------------------------------------------------------------------------------ entry point
def resolve_path(path: str) -> Path:
    if path.startswith("bundled:"):
        split = path.split(":", 1)[1] or "train"
        p = BUNDLED / f"{split}.parquet"
        if not p.is_file():
            raise DataError(f"bundled split '{split}' does not exist (have: train, test)")
        return p
    return Path(path).expanduser()


def load(src: SourceConfig | str):
    """One source -> a datasets.Dataset in the canonical columns (bad rows kept, marked in `bad`)."""
    import datasets

    if isinstance(src, str):
        src = SourceConfig(path=src)
    path = resolve_path(src.path)
    source = src.name or (src.path if src.path.startswith("bundled:") else path.name)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (data source '{src.path}')")
    fmt = src.format
    if fmt == "spider" or (fmt == "auto" and path.is_dir()):
        rows = _spider_rows(path, source)
    else:
        if path.is_dir():
            raise DataError(f"{path}: is a folder; only the spider format reads folders")
        table = _read_table(path)
        if src.max_rows is not None:
            table = table.slice(0, src.max_rows)
        cols = table.column_names
        fmt = _detect(path, cols) if fmt == "auto" else fmt
        expected = {"gretel": GRETEL_REQUIRED, "messages": ["messages | conversations"],
                    "prompt_completion": ["prompt", "completion"]}[fmt]
        if fmt == "gretel" and not set(GRETEL_REQUIRED) <= set(cols) \
                or fmt == "messages" and not ({"messages", "conversations"} & set(cols)) \
                or fmt == "prompt_completion" and not {"prompt", "completion"} <= set(cols):
            raise _columns_error(path, cols, fmt, expected)
        rows = {"gretel": lambda: _gretel_rows(table, source), "messages": lambda: _messages_rows(table, path, source),
                "prompt_completion": lambda: _prompt_completion_rows(table, source)}[fmt]()
    if src.max_rows is not None:
        rows = rows[: src.max_rows]
    import pyarrow as pa

    # straight from Arrow: from_dict would encode 12 values per row in Python and hash the data
    return datasets.Dataset(pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in CANON}))
