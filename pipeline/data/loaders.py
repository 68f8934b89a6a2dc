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

from core.errors import DataError
from core.settings import REPO_ROOT
from pipeline.config import SourceConfig
from sql.statements import split_context

BUNDLED = REPO_ROOT / "data" / "sqlgenie-sql"
CANON = ["id", "source", "kind", "question", "schema", "sample_data", "sql", "domain", "sql_complexity",
         "sql_task_type", "messages_json", "db_path", "bad"]
GRETEL_REQUIRED = ["sql_prompt", "sql_context", "sql"]
GRETEL_OPTIONAL = ["id", "domain", "domain_description", "sql_complexity", "sql_complexity_description",
                   "sql_task_type", "sql_task_type_description", "sql_explanation"]
_SURROGATE = re.compile("[\udc80-\udcff]")
BAD = "__bad"  # column added by the text readers: why a record cannot be used ('' if it can)


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


# ------------------------------------------------------------------------------------ file reading
MAX_FIELD_BYTES = 512 * 1024  # a longer field is a row dropped as field_too_large (its prompt could never fit)


def _read_text(path: Path) -> str:
    # Invalid UTF-8 bytes become lone surrogates, so one bad row is counted instead of failing the file.
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def _flag_rows(rows: list) -> list[dict]:
    """Each record as a dict with BAD set: '' (fine), broken_line (not a record), non_utf8 (undecodable bytes,
    replaced so Arrow accepts the row) or field_too_large."""
    out = []
    for r in rows:
        if not isinstance(r, dict):
            out.append({BAD: "broken_line"})
            continue
        reason = r.pop(BAD, "") or ""
        for k, v in r.items():
            if isinstance(v, str):
                if _SURROGATE.search(v):
                    r[k] = _SURROGATE.sub("\ufffd", v)
                    reason = reason or "non_utf8"
                if len(v) > MAX_FIELD_BYTES:
                    r[k] = ""
                    reason = "field_too_large"
            elif isinstance(v, (list, dict)):
                text = json.dumps(v, ensure_ascii=False)
                if _SURROGATE.search(text):
                    r[k] = json.loads(_SURROGATE.sub("\ufffd", text))
                    reason = reason or "non_utf8"
                if len(text) > MAX_FIELD_BYTES:
                    r[k] = None
                    reason = "field_too_large"
        r[BAD] = reason
        out.append(r)
    return out


def _jsonl_records(text: str) -> list:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            rows.append(None)                      # counted as broken_line
    return rows


def _csv_records(text: str) -> list:
    """Records of a CSV with a header. A record with the wrong number of fields, or one that swallowed
    later lines through an unclosed quote, is re-read line by line: lines that are whole records load,
    the rest count as broken_line. No field-size limit here: oversized fields are counted per row."""
    import csv
    import io

    csv.field_size_limit(1 << 30)
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    width = len(header)
    out, prev = [], reader.line_num

    def whole(line: str) -> list | None:
        try:
            rec = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            return None
        return rec if len(rec) == width else None

    try:
        for rec in reader:
            span = lines[prev:reader.line_num]
            prev = reader.line_num
            if not rec:
                continue
            split = [whole(ln) for ln in span] if len(span) > 1 else []
            if len(rec) == width and not (len(split) > 1 and sum(r is not None for r in split[1:]) > 0):
                out.append(dict(zip(header, rec)))
                continue
            for ln, r in zip(span, split or [whole(span[0]) if span else None]):
                if ln.strip():
                    out.append(dict(zip(header, r)) if r is not None else None)
    except csv.Error:
        out += [None for ln in lines[prev:] if ln.strip()]
    return out


def _read_table(path: Path):
    """A pyarrow Table from parquet / jsonl / json / csv (records that cannot be read are rows with BAD set),
    or one clear DataError when the file as a whole cannot be read."""
    import pyarrow as pa

    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix in (".jsonl", ".jsonl.gz", ".csv"):
            records = _jsonl_records(_read_text(path)) if suffix != ".csv" else _csv_records(_read_text(path))
            if records and all(r is None for r in records):
                raise DataError(f"{path}: no record could be read (is it really {suffix[1:]}?)")
            return pa.Table.from_pylist(_flag_rows(records)) if records else pa.table({})
        if suffix == ".json":
            data = json.loads(_read_text(path))
            if isinstance(data, dict):
                data = data.get("data") or data.get("rows") or [data]
            return pa.Table.from_pylist(_flag_rows(data))
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
def _flags(table) -> list[str]:
    """Per row, the reading problem ('' if none)."""
    return [b or "" for b in table.column(BAD).to_pylist()] if BAD in table.column_names else [""] * table.num_rows


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
            bad=flags[i] or _bad_text(q, ctx, sql),
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
        bad = flags[i] or bad or _bad_text(*[m["content"] for m in msgs])
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
                        bad=flags[i] or _bad_text(p, c)))
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
                            sql_complexity=_text(it.get("difficulty")),
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
        cols = [c for c in table.column_names if c != BAD]
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
