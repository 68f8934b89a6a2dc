"""Training data brought from the browser: each upload is a folder of its own, its original file kept as given.

    up = receive("questions.jsonl", data)    # checked, then <home>/uploads/questions/ (never over an earlier one)
    up.preview()                             # the first rows as the loaders read them: question, schema, SQL
    up.source                                # the data source a config names: {"path": ...} (+ format: spider)
    train_tree(up, preset_tree)              # a preset's config tree that trains on it (its name: the upload's)
    list_uploads(); get("questions"); remove(up, keep_prepared=True)

What an upload may be: a .jsonl or .csv file in the Gretel layout that pipeline/data/loaders.py reads
(sql_prompt, sql_context, sql; id, domain, sql_complexity, sql_task_type ... kept when present), or a Spider
dataset as a .zip (tables.json, a questions file, database/<db_id>/<db_id>.sqlite), at the top of the zip or in
one folder of it. The file's shape is checked here, strictly and at once: a line that is not a JSON object, a
record without a key or a CSV header without a column the layout needs, an empty file, a zip without
tables.json refuse the upload with one message naming the line or the key and what the file should look like,
and nothing is stored (it is built in a hidden staging folder, published in one rename). What is in the rows
(gold SQL that does not parse or run on its own schema, duplicates, rows too long) is the prepare stage's
report (pipeline/data/prepare.py), run on the stored upload by a prepare job: the same loading and checks a
training does, into the prepared folder that training then reuses.

Folder: upload.json (file, format, rows, bytes, created, the check: its prepare job and prepared folder),
preview.json, the original file, and for a Spider zip the dataset unpacked into a folder named as the upload.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import DataError
from core.files import staging_dir, write_atomic
from core.settings import decode_text, home
from pipeline import runs
from pipeline.config import SourceConfig
from pipeline.data.loaders import GRETEL_REQUIRED, SPIDER_QUESTIONS, load

TYPES = (".jsonl", ".csv", ".zip")
PREVIEW_ROWS = 20
INFO = "upload.json"
MAX_UNZIPPED = 8 << 30            # bytes a Spider zip may unpack to (a zip bomb is refused, not unpacked)
EXAMPLE = {"sql_prompt": "How many orders cost more than 100?",
           "sql_context": "CREATE TABLE orders (id INTEGER, total REAL); INSERT INTO orders VALUES (1, 250.0);",
           "sql": "SELECT COUNT(*) FROM orders WHERE total > 100;"}
KEPT = "id, domain, sql_complexity and sql_task_type are kept when present; other keys are ignored"
JSONL_SHAPE = (f"A .jsonl file holds one JSON object a line with the keys {', '.join(GRETEL_REQUIRED)} (the question, "
               f"its CREATE TABLE statements with optional INSERTs, the answer), e.g. {json.dumps(EXAMPLE)}; {KEPT}.")
CSV_SHAPE = (f"A .csv file has a header line naming at least the columns {', '.join(GRETEL_REQUIRED)}, then one "
             f"row a question, e.g.\n{','.join(EXAMPLE)}\n" + ",".join(f'"{v}"' for v in EXAMPLE.values())
             + f"\n({KEPT.replace('keys', 'columns')}).")
SPIDER_SHAPE = (f"A Spider dataset zip holds tables.json, a questions file ({', '.join(SPIDER_QUESTIONS)}: a list of "
                "{db_id, question, query}) and database/<db_id>/<db_id>.sqlite for every db_id, at the top of the zip "
                "or inside one folder.")


class UploadError(DataError):
    """An upload refused: one message naming the line, key or file, and what it should look like."""


@dataclass
class Upload:
    dir: Path
    info: dict

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def file(self) -> Path:
        """The file as it was uploaded."""
        return self.dir / self.info["file"]

    @property
    def format(self) -> str:
        return self.info["format"]          # jsonl | csv | spider

    @property
    def rows(self) -> int:
        return self.info["rows"]

    @property
    def created(self) -> float:
        return self.info.get("created", 0.0)

    @property
    def source(self) -> dict:
        """The data source that reads it (data.sources item)."""
        src = {"path": str(self.dir / self.info["source"])}
        return src | ({"format": "spider"} if self.format == "spider" else {})

    @property
    def check(self) -> dict:
        """{"job": prepare job id, "prepared": its folder} once a check was started."""
        return self.info.get("check") or {}

    def preview(self) -> list[dict]:
        return json.loads((self.dir / "preview.json").read_text())

    def report(self) -> dict | None:
        """The prepare report of the check (None before it is written)."""
        path = Path(self.check["prepared"]) / "report.json" if self.check else None
        return json.loads(path.read_text()) if path and path.is_file() else None

    def dropped(self, limit: int = 1000) -> list[dict]:
        """The check's dropped rows, one a row (source, id, reason, where, question), the first `limit`."""
        path = Path(self.check["prepared"]) / "dropped.jsonl" if self.check else None
        if not path or not path.is_file():
            return []
        with path.open() as f:
            return [json.loads(line) for _, line in zip(range(limit), f)]

    def lengths_plot(self) -> Path | None:
        path = Path(self.check["prepared"]) / "lengths.png" if self.check else None
        return path if path and path.is_file() else None


def uploads_home() -> Path:
    return home() / "uploads"


# ------------------------------------------------------------------------------------ the file's shape
def _keys(names: list[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    return (", ".join(quoted[:-1]) + " or " + quoted[-1]) if len(quoted) > 1 else quoted[0]


def _text(data: bytes, label: str) -> str:
    try:
        return decode_text(data, label, lenient=True)   # as the loaders read it: a non-UTF-8 byte is that row's drop
    except ValueError as e:
        raise UploadError(str(e)) from None


def _jsonl_rows(data: bytes, label: str) -> int:
    """Records in a Gretel JSONL file, every line a JSON object with the keys the layout needs."""
    rows = 0
    for n, line in enumerate(_text(data, label).split("\n"), 1):      # lines end at "\n", as the loader's do
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UploadError(f"{label}: line {n} is not JSON ({e.msg} at column {e.colno}). {JSONL_SHAPE}") from None
        except (ValueError, RecursionError):
            raise UploadError(f"{label}: line {n} is not JSON that can be read. {JSONL_SHAPE}") from None
        if not isinstance(record, dict):
            raise UploadError(f"{label}: line {n} is a JSON {type(record).__name__}, not an object. {JSONL_SHAPE}")
        missing = [k for k in GRETEL_REQUIRED if k not in record]
        if missing:
            raise UploadError(f"{label}: line {n} has no {_keys(missing)} key (its keys: "
                              f"{', '.join(record) or 'none'}). {JSONL_SHAPE}")
        rows += 1
    return rows


def _csv_rows(data: bytes, label: str) -> int:
    """Records in a Gretel CSV file: a header with the columns the layout needs, then records of its width."""
    csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(_text(data, label)))
    rows, line = 0, 1
    try:
        header = next(reader, None)
        if header is None:
            return 0
        missing = [c for c in GRETEL_REQUIRED if c not in header]
        if missing:
            raise UploadError(f"{label}: the header (line 1) has no {_keys(missing)} column (it has: "
                              f"{', '.join(header) or 'nothing'}). {CSV_SHAPE}")
        line = reader.line_num
        for record in reader:
            first, line = line + 1, reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                raise UploadError(f"{label}: the record on line {first} has {len(record)} fields where the header has "
                                  f"{len(header)} (a comma outside quotes, or a quote left open?). {CSV_SHAPE}")
            rows += 1
    except csv.Error as e:
        raise UploadError(f"{label}: line {line + 1} cannot be read as CSV ({e}). {CSV_SHAPE}") from None
    return rows


def _unzip_spider(zpath: Path, dest: Path, label: str) -> None:
    """The Spider dataset of a zip unpacked into `dest` (tables.json at its top), after its shape is checked."""
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError):
        raise UploadError(f"{label} is not a zip file. {SPIDER_SHAPE}") from None
    with zf:
        files = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        names = [i.filename for i in files]
        unsafe = next((n for n in names if n.startswith(("/", "\\")) or ".." in PurePosixPath(n).parts), None)
        if unsafe:
            raise UploadError(f"{label}: the zip holds a path outside its own folder ({unsafe}): refused")
        tables = sorted((n for n in names if PurePosixPath(n).name == "tables.json"), key=lambda n: n.count("/"))
        if not tables:
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            raise UploadError(f"{label}: no tables.json in the zip (it holds: {shown or 'nothing'}). {SPIDER_SHAPE}")
        top = str(PurePosixPath(tables[0]).parent)
        prefix = "" if top == "." else top + "/"
        if not any(prefix + q in names for q in SPIDER_QUESTIONS):
            raise UploadError(f"{label}: no questions file beside {tables[0]} (one of {', '.join(SPIDER_QUESTIONS)}). "
                              f"{SPIDER_SHAPE}")
        if not any(n.startswith(prefix + "database/") and n.endswith(".sqlite") for n in names):
            raise UploadError(f"{label}: no database/<db_id>/<db_id>.sqlite beside {tables[0]}. {SPIDER_SHAPE}")
        mine = [i for i in files if i.filename.startswith(prefix)]
        if sum(i.file_size for i in mine) > MAX_UNZIPPED:
            raise UploadError(f"{label} unpacks to more than {MAX_UNZIPPED >> 30} GiB: refused")
        written = 0
        try:
            for info in mine:
                target = dest / info.filename[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > MAX_UNZIPPED:      # sizes in the zip's directory can lie
                            raise UploadError(f"{label} unpacks to more than {MAX_UNZIPPED >> 30} GiB: refused")
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise UploadError(f"{label}: the zip is damaged ({e}): make it again") from None


def _loaded(src: SourceConfig, label: str, shape: str) -> list[dict]:
    """The rows as pipeline/data/loaders.py reads them; a row that is no record refuses the upload."""
    try:
        rows = load(src).to_list()
    except DataError as e:
        raise UploadError(f"{label}: {e} {shape}") from None
    broken = next((r for r in rows if r["bad"] == "broken_line"), None)
    if broken:
        raise UploadError(f"{label}: {broken['origin']} is not a record. {shape}")
    return rows


# ------------------------------------------------------------------------------------ storing
def _slug(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip("-.")[:60] or "upload"


def _free_name(root: Path, slug: str) -> str:
    """`slug`, or `slug-<stamp>` (then -2, -3 ...) when an upload of that name exists: never over an earlier one."""
    if not (root / slug).exists():
        return slug
    stamped = f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while (root / (stamped if n == 1 else f"{stamped}-{n}")).exists():
        n += 1
    return stamped if n == 1 else f"{stamped}-{n}"


def _publish(tmp: Path, root: Path, name: str) -> Path:
    """Rename the finished staging folder to a name no upload has: a folder of that name that appeared meanwhile
    (another tab's upload) makes the rename fail, and a fresh name is tried; nothing is ever replaced."""
    for _ in range(5):
        final = root / _free_name(root, name)
        try:
            tmp.rename(final)
            return final
        except OSError:
            if not final.exists():
                raise
    raise UploadError(f"could not find a free name for the upload {name!r} under {root}")


def receive(filename: str, data: bytes) -> Upload:
    """Check an uploaded file's shape and store it (UploadError, with nothing stored, when it is not right)."""
    base = Path(filename.replace("\\", "/")).name or "upload"
    suffix = Path(base).suffix.lower()
    if suffix not in TYPES:
        raise UploadError(f"{base}: a {suffix or 'file without an extension'} cannot be uploaded here: a .jsonl or .csv "
                          f"file in the Gretel layout, or a Spider dataset as a .zip. {JSONL_SHAPE}")
    if not data.strip():
        raise UploadError(f"{base} is empty: there is nothing to train on. "
                          + (SPIDER_SHAPE if suffix == ".zip" else JSONL_SHAPE if suffix == ".jsonl" else CSV_SHAPE))
    root = uploads_home()
    name = _free_name(root, _slug(base))
    tmp = staging_dir(root, f"{name}-{time.time_ns()}")     # the dashboard's sessions are threads of one process
    try:
        (tmp / base).write_bytes(data)                       # the original, as given
        if suffix == ".zip":
            _unzip_spider(tmp / base, tmp / name, base)
            rows = _loaded(SourceConfig(path=str(tmp / name), format="spider"), base, SPIDER_SHAPE)
            count, fmt, source = len(rows), "spider", name
            if not rows:
                raise UploadError(f"{base}: its questions file holds no questions. {SPIDER_SHAPE}")
        else:
            fmt, shape = suffix[1:], JSONL_SHAPE if suffix == ".jsonl" else CSV_SHAPE
            count = (_jsonl_rows if suffix == ".jsonl" else _csv_rows)(data, base)
            if not count:
                raise UploadError(f"{base} holds no records: there is nothing to train on. {shape}")
            rows = _loaded(SourceConfig(path=str(tmp / base), format="gretel", max_rows=PREVIEW_ROWS), base, shape)
            source = base
        preview = [{"where": r["origin"], "question": r["question"], "schema": r["schema"],
                    "sample rows": r["sample_data"], "sql": r["sql"]} for r in rows[:PREVIEW_ROWS]]
        (tmp / "preview.json").write_text(json.dumps(preview, ensure_ascii=False, indent=1))
        info = {"file": base, "format": fmt, "rows": count, "bytes": len(data), "created": time.time(),
                "source": source}
        (tmp / INFO).write_text(json.dumps(info, indent=2))
        final = _publish(tmp, root, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Upload(final, info)


# ------------------------------------------------------------------------------------ the uploads
def list_uploads() -> list[Upload]:
    """Every upload, newest first (a folder whose upload.json cannot be read is left out)."""
    out = []
    root = uploads_home()
    for d in root.iterdir() if root.is_dir() else []:
        if d.name.startswith(".") or not (d / INFO).is_file():
            continue
        try:
            out.append(Upload(d, json.loads((d / INFO).read_text())))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda u: u.created, reverse=True)


def get(name: str) -> Upload:
    d = uploads_home() / name
    if "/" in name or name.startswith(".") or not (d / INFO).is_file():
        raise UploadError(f"no upload named {name!r} (the Data page lists them)")
    return Upload(d, json.loads((d / INFO).read_text()))


def note_check(up: Upload, job_id: int, prepared: Path) -> Upload:
    """Remember the prepare job that checks the upload and the folder it prepares."""
    up.info["check"] = {"job": job_id, "prepared": str(prepared), "started": time.time()}
    write_atomic(up.dir / INFO, json.dumps(up.info, indent=2))
    return up


def train_tree(up: Upload, preset: dict) -> dict:
    """A preset's config tree that trains on the upload alone: data.sources is the upload, its eval loss is
    measured on a held-out share of it (no eval_sources, no mixture size), and the run is named after it."""
    tree = copy.deepcopy(preset)
    tree["name"] = up.name
    data = tree.setdefault("data", {})
    data["sources"] = [up.source]
    data["eval_sources"] = []
    for key in ("num_rows", "output_dir"):
        data.pop(key, None)
    return tree


def used_by(up: Upload) -> list[runs.Run]:
    """Runs whose config reads the upload."""
    where = str(up.dir) + "/"
    out = []
    for r in runs.list_runs():
        try:
            if where in (r.dir / "config.yaml").read_text():
                out.append(r)
        except OSError:
            continue
    return out


def remove(up: Upload, keep_prepared: bool) -> str:
    """Delete the upload's folder (and its check's prepared folder unless `keep_prepared`); one line what was done."""
    gone = up.dir.with_name(f".{up.name}.removed-{time.time_ns()}")
    up.dir.rename(gone)                    # out of the list at once; deleted after
    shutil.rmtree(gone, ignore_errors=True)
    prepared = Path(up.check["prepared"]) if up.check else None
    if prepared is None or not prepared.exists():
        return f"upload {up.name} removed"
    if keep_prepared:
        return f"upload {up.name} removed; its prepared data stays ({prepared.name}): runs and jobs use it"
    shutil.rmtree(prepared, ignore_errors=True)
    return f"upload {up.name} removed, with its prepared data"
