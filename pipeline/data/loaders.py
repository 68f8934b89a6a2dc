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
the row's database file), bad (why the row cannot be used, '' if fine: broken_line / field_too_large /
missing_field / non_utf8 / wrong_type - filled here, the rest by prepare), origin (where the record is in
its file - "line 4", "record 4" (JSON), "row 4" (Parquet), "dev.json item 4" (Spider) - and, for a bad
record, what is wrong with it: "line 4: id is a list, not text or a number").

Text files are UTF-8 (a byte-order mark is dropped) or UTF-16 / UTF-32 with a byte-order mark; a record
with bytes that are not UTF-8 is one non_utf8 row. Every record keeps its own fields: the columns are those
of all records together (not of the first), and one record with a field of an odd type (an `id` that is a
list) is that record's wrong_type, never the whole file's failure.

    python -c "from pipeline.data.loaders import load; print(load('bundled:train'))"
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError
from core.settings import REPO_ROOT, decode_text
from pipeline.config import SourceConfig
from sql.statements import split_context

BUNDLED = REPO_ROOT / "data" / "sqlgenie-sql"
CANON = ["id", "source", "kind", "question", "schema", "sample_data", "sql", "domain", "sql_complexity",
         "sql_task_type", "messages_json", "db_path", "bad", "origin"]
GRETEL_REQUIRED = ["sql_prompt", "sql_context", "sql"]
GRETEL_OPTIONAL = ["id", "domain", "domain_description", "sql_complexity", "sql_complexity_description",
                   "sql_task_type", "sql_task_type_description", "sql_explanation"]
_SURROGATE = re.compile("[\udc80-\udcff]")
BAD = "__bad"  # column added by the text readers: why a record cannot be used ('' if it can)
AT = "__at"    # column added by the text readers: where the record is ("line 4"), and what is wrong with it
TEXT_FIELDS = set(GRETEL_REQUIRED + GRETEL_OPTIONAL + ["prompt", "completion"])  # text (numbers are written out)
CHAT_FIELDS = ("messages", "conversations")                                        # lists of {role, content}
SPIDER_QUESTIONS = ("train_spider.json", "dev.json", "test.json", "questions.json")  # what a Spider folder is read for


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
    # Invalid UTF-8 bytes become lone surrogates, so one bad row is counted instead of failing the file;
    # a byte-order mark is dropped (UTF-16 / UTF-32 with one are decoded); UTF-16 without one is one line.
    data = path.read_bytes()
    if path.suffix == ".gz":
        import gzip
        import zlib

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a whole gzip file ({e}): compress it again with gzip") from None
    try:
        return decode_text(data, str(path), lenient=True)
    except ValueError as e:
        raise DataError(str(e)) from None


_RANK = {"": 0, "non_utf8": 1, "wrong_type": 2, "field_too_large": 3}  # a record with several problems: the worst


def _kind(v) -> str:
    kinds = {list: "a list", dict: "a mapping", str: "text", int: "a number", float: "a number", bool: "true/false"}
    return kinds.get(type(v), f"a {type(v).__name__}")


def _plain(v):
    """A message field as text (None stays None): numbers written out, lists and mappings as JSON."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else str(v)


def _flag_rows(records: list[tuple[str, object]]) -> list[dict]:
    """Each (position, record) as a dict with BAD and AT set. BAD: '' (fine), broken_line (not a record),
    non_utf8 (undecodable bytes, replaced so Arrow accepts the row), wrong_type (a field of a type it cannot
    have: a list or mapping where text is read, messages that are not a list of mappings; the field is
    emptied) or field_too_large. AT: the position, plus what is wrong for a bad record. Text fields given as
    numbers become text, so a column of mixed ints and strings loads."""
    out = []
    for at, r in records:
        if not isinstance(r, dict):
            out.append({BAD: "broken_line", AT: at})
            continue
        r.pop(AT, None), r.pop(BAD, None)     # the readers' own columns: a record's fields of those names are not
        reason, note = "", ""

        def flag(why: str, what: str) -> None:
            nonlocal reason, note
            if _RANK[why] > _RANK.get(reason, 0):
                reason, note = why, what

        for k, v in list(r.items()):
            if k in TEXT_FIELDS and v is not None and not isinstance(v, str):
                if isinstance(v, (list, dict)):
                    flag("wrong_type", f"{k} is {_kind(v)}, not text or a number")
                    r[k] = v = None
                else:
                    r[k] = v = str(v)
            elif k in CHAT_FIELDS and v is not None:
                if not isinstance(v, list) or not all(isinstance(m, dict) for m in v):
                    what = (f"{k} is {_kind(v)}, not a list" if not isinstance(v, list) else
                            f"{k} has an item that is not a mapping")
                    r[k] = v = None
                    flag("wrong_type", f"{what} of {{role, content}} mappings")
                else:
                    r[k] = v = [{str(a): _plain(b) for a, b in m.items()} for m in v]
            if isinstance(v, str):
                if _SURROGATE.search(v):
                    r[k] = _SURROGATE.sub("\ufffd", v)
                    flag("non_utf8", f"{k} has bytes that are not UTF-8")
                if len(v) > MAX_FIELD_BYTES:
                    r[k] = ""
                    flag("field_too_large", f"{k} is over {MAX_FIELD_BYTES // 1024} KB")
            elif isinstance(v, (list, dict)):
                text = json.dumps(v, ensure_ascii=False)
                if _SURROGATE.search(text):
                    r[k] = json.loads(_SURROGATE.sub("\ufffd", text))
                    flag("non_utf8", f"{k} has bytes that are not UTF-8")
                if len(text) > MAX_FIELD_BYTES:
                    r[k] = None
                    flag("field_too_large", f"{k} is over {MAX_FIELD_BYTES // 1024} KB")
        r[BAD] = reason
        r[AT] = f"{at}: {note}" if note else at
        out.append(r)
    return out


def _table(rows: list[dict]):
    """An Arrow table of every column any record has (not only the first record's); a column that still mixes
    types (one Arrow cannot hold) is kept as text, JSON for lists and mappings."""
    import pyarrow as pa

    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for c in names:
        values = [r.get(c) for r in rows]
        try:
            columns[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[c] = pa.array([_plain(v) for v in values], pa.string())
    return pa.table(columns)


def _jsonl_records(text: str) -> list[tuple[str, object]]:
    """(position, record) per non-blank line; a line that is not JSON is (position, None). Lines end at "\n"
    only (JSON text may hold U+2028 and the like, which str.splitlines would break)."""
    rows = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {n}", json.loads(line)))
        except (ValueError, RecursionError):      # JSONDecodeError, or an integer too long to read
            rows.append((f"line {n}", None))       # counted as broken_line
    return rows


def _csv_records(text: str) -> list[tuple[str, object]]:
    """(position, record) per record of a CSV with a header. A record with the wrong number of fields, or one
    that swallowed later lines through an unclosed quote, is re-read line by line: lines that are whole
    records load, the rest count as broken_line. No field-size limit here: oversized fields are counted per
    row. Positions are the record's first line (the header is line 1)."""
    import csv
    import io

    csv.field_size_limit(1 << 30)
    lines = io.StringIO(text).readlines()      # split exactly as the reader's lines (at "\n" only)
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
            first, span = prev + 1, lines[prev:reader.line_num]
            prev = reader.line_num
            if not rec:
                continue
            split = [whole(ln) for ln in span] if len(span) > 1 else []
            if len(rec) == width and not (len(split) > 1 and sum(r is not None for r in split[1:]) > 0):
                out.append((f"line {first}", dict(zip(header, rec))))
                continue
            for j, (ln, r) in enumerate(zip(span, split or [whole(span[0]) if span else None])):
                if ln.strip():
                    out.append((f"line {first + j}", dict(zip(header, r)) if r is not None else None))
    except csv.Error:
        out += [(f"line {prev + 1 + j}", None) for j, ln in enumerate(lines[prev:]) if ln.strip()]
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
            if records and all(r is None for _, r in records):
                raise DataError(f"{path}: no record could be read (is it really {suffix[1:]}?)")
            return _table(_flag_rows(records)) if records else pa.table({})
        if suffix == ".json":
            try:
                data = json.loads(_read_text(path))
            except (ValueError, RecursionError) as e:
                raise DataError(f"{path}: not valid JSON: {e} (one record per line is .jsonl)") from None
            if isinstance(data, dict):
                data = data.get("data") or data.get("rows") or [data]
            if not isinstance(data, list):
                raise DataError(f"{path}: holds {_kind(data)}; expected a list of records (or {{\"data\": [...]}})")
            return _table(_flag_rows([(f"record {i}", r) for i, r in enumerate(data, 1)]))
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


def _origin(at: str, bad: str, fields: dict[str, str] | None = None) -> str:
    """Where a row is, and for a row missing a field, which one ("line 7: sql is empty")."""
    if bad == "missing_field" and fields and ":" not in at:
        empty = [k for k, v in fields.items() if not v.strip()]
        if empty:
            return f"{at}: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty"
    return at


def _row(**kw) -> dict:
    row = {k: "" for k in CANON}
    row.update(kw)
    return row


# ------------------------------------------------------------------------------------ formats
def _flags(table) -> list[str]:
    """Per row, the reading problem ('' if none)."""
    return [b or "" for b in table.column(BAD).to_pylist()] if BAD in table.column_names else [""] * table.num_rows


def _ids(table, ats: list[str]) -> list:
    """Per row its id; the row number when the file has no ids, the position for a record without one."""
    if "id" not in table.column_names:
        return list(range(table.num_rows))
    return [at.split(":", 1)[0] if i is None else i for i, at in zip(table.column("id").to_pylist(), ats)]


def _positions(table) -> list[str]:
    """Per row, where it is in its file (the text readers' AT column; Parquet: its row number)."""
    if AT in table.column_names:
        return [a or "" for a in table.column(AT).to_pylist()]
    return [f"row {i}" for i in range(1, table.num_rows + 1)]


def _gretel_rows(table, source: str) -> list[dict]:
    cols = table.column_names
    flags, ats = _flags(table), _positions(table)
    n = table.num_rows
    data = {c: table.column(c).to_pylist() for c in cols if c in GRETEL_REQUIRED + GRETEL_OPTIONAL}
    for c in GRETEL_OPTIONAL:
        data.setdefault(c, [None] * n)
    ids = _ids(table, ats)
    out = []
    for i in range(n):
        q, ctx, sql = _text(data["sql_prompt"][i]), _text(data["sql_context"][i]), _text(data["sql"][i])
        schema, sample = split_context(ctx) if ctx.strip() else ("", "")
        if ctx.strip() and not schema:  # a context with only INSERTs still counts as schema
            schema, sample = sample, ""
        bad = flags[i] or _bad_text(q, ctx, sql)
        out.append(_row(
            id=_text(ids[i]), source=source, kind="sql", question=q.strip(), schema=schema, sample_data=sample,
            sql=sql.strip(), domain=_text(data["domain"][i]), sql_complexity=_text(data["sql_complexity"][i]),
            sql_task_type=_text(data["sql_task_type"][i]), bad=bad,
            origin=_origin(ats[i], bad, {"sql_prompt": q, "sql_context": ctx, "sql": sql}),
        ))
    return out


_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
         "model": "assistant", "bot": "assistant"}


def _messages_rows(table, path: Path, source: str) -> list[dict]:
    col = "messages" if "messages" in table.column_names else "conversations"
    flags, ats = _flags(table), _positions(table)
    ids = _ids(table, ats)
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
                        messages_json=json.dumps(msgs, ensure_ascii=False), bad=bad, origin=ats[i]))
    return out


def _prompt_completion_rows(table, source: str) -> list[dict]:
    flags, ats = _flags(table), _positions(table)
    ids = _ids(table, ats)
    out = []
    for i, (p, c) in enumerate(zip(table.column("prompt").to_pylist(), table.column("completion").to_pylist())):
        p, c = _text(p), _text(c)
        msgs = [{"role": "user", "content": p}, {"role": "assistant", "content": c}]
        bad = flags[i] or _bad_text(p, c)
        out.append(_row(id=_text(ids[i]), source=source, kind="chat", question=p,
                        messages_json=json.dumps(msgs, ensure_ascii=False), bad=bad,
                        origin=_origin(ats[i], bad, {"prompt": p, "completion": c})))
    return out


def _spider_rows(path: Path, source: str) -> list[dict]:
    import sqlite3

    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        qfiles = [folder / n for n in SPIDER_QUESTIONS if (folder / n).is_file()]
        if not qfiles:
            raise DataError(f"{folder}: no questions file ({', '.join(SPIDER_QUESTIONS[:-1])} or {SPIDER_QUESTIONS[-1]})")
    else:
        qfiles = [path]
    db_root = folder / "database"
    if not db_root.is_dir():
        raise DataError(f"{folder}: a Spider folder needs database/<db_id>/<db_id>.sqlite (no database/ folder)")
    schemas: dict[str, tuple[str, str, str]] = {}

    def schema_of(db_id: str) -> tuple[str, str, str]:
        """(DDL, three sample rows per table as INSERTs, the problem when the database cannot be read)."""
        if db_id not in schemas:
            rel = f"database/{db_id}/{db_id}.sqlite"
            db = db_root / db_id / f"{db_id}.sqlite"
            if not db_id or not db.is_file():
                schemas[db_id] = ("", "", f"{rel} does not exist" if db_id else "db_id is empty")
                return schemas[db_id]
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                ddl, inserts = [], []
                for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' "
                                              "AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY rowid"):
                    ddl.append(sql.strip().rstrip(";") + ";")
                    cur = conn.execute(f'SELECT * FROM "{name}" LIMIT 3')
                    cols = ", ".join(d[0] for d in cur.description)
                    for r in cur.fetchall():
                        vals = ", ".join("NULL" if v is None else ("'" + str(v).replace("'", "''") + "'")
                                         if isinstance(v, (str, bytes)) else str(v) for v in r)
                        inserts.append(f'INSERT INTO "{name}" ({cols}) VALUES ({vals});')
                schemas[db_id] = ("\n".join(ddl), "\n".join(inserts), "" if ddl else f"{rel} has no tables")
            except sqlite3.DatabaseError as e:   # not a database, encrypted, truncated ...
                schemas[db_id] = ("", "", f"{rel} cannot be read: {e}")
            finally:
                conn.close()
        return schemas[db_id]

    out = []
    for qf in qfiles:
        try:
            items = json.loads(_read_text(qf))
        except (ValueError, RecursionError) as e:
            raise DataError(f"{qf}: not valid JSON: {e}") from None
        first = next((it for it in items if isinstance(it, dict)), None) if isinstance(items, list) else None
        if not isinstance(items, list) or (items and not {"db_id", "question", "query"} <= set(first or {})):
            raise _columns_error(qf, sorted(first or {}), "spider", ["db_id", "question", "query"])
        rows = []
        for i, it in enumerate(items, 1):
            at = f"{qf.name} item {i}"
            if not isinstance(it, dict):
                rows.append(_row(id=f"{qf.stem}-{i - 1}", source=source, kind="sql", bad="broken_line",
                                 origin=f"{at}: {_kind(it)}, not a record"))
                continue
            odd = [k for k in ("db_id", "question", "query") if isinstance(it.get(k), (list, dict))]
            db_id = "" if "db_id" in odd else _text(it.get("db_id"))
            schema, sample, problem = schema_of(db_id)
            q, sql = ("" if k in odd else _text(it.get(k)) for k in ("question", "query"))
            bad = "wrong_type" if odd else _bad_text(q, schema, sql)
            note = (f"{odd[0]} is {_kind(it[odd[0]])}, not text" if odd else
                    problem if problem and bad == "missing_field" else "")
            rows.append(_row(id=f"{qf.stem}-{i - 1}", source=source, kind="sql", question=q.strip(), schema=schema,
                             sample_data=sample, sql=sql.strip(), domain=db_id,
                             sql_complexity=_text(it.get("difficulty")),
                             db_path=str(db_root / db_id / f"{db_id}.sqlite") if db_id else "", bad=bad,
                             origin=f"{at}: {note}" if note else _origin(at, bad, {"question": q, "query": sql})))
        unread = sorted({_text(it.get("db_id")) for it in items if isinstance(it, dict)
                         and not isinstance(it.get("db_id"), (list, dict)) and schema_of(_text(it.get("db_id")))[2]})
        if rows and unread and not any(schema_of(r["domain"])[0] for r in rows):
            raise DataError(f"{qf}: none of its databases can be read from {db_root} ({schema_of(unread[0])[2]}"
                            f"{f', and {len(unread) - 1} more' if len(unread) > 1 else ''}): each db_id needs "
                            "database/<db_id>/<db_id>.sqlite")
        out += rows
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
