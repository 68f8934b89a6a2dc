"""The out-of-distribution yardstick: hand-written multi-table schemas and questions the generator never makes.

    data/ood/schemas/<db_id>.sql     CREATE TABLE (with keys) + INSERT rows, written by hand for this project
    data/ood/questions.jsonl         {"db_id", "question", "query", "difficulty"} per line, gold SQL by hand

    from pipeline.data import ood
    folder = ood.folder()           # a Spider-format folder built from those files (cached by content hash)
    sqlgenie evaluate -c ... --split ood      # test-suite execution accuracy on 3 generated databases per row

The folder holds database/<db_id>/<db_id>.sqlite and questions.json, so the Spider loader and the test-suite
scorer read it as they read Spider. Building it checks every gold query: it must run on its database and
return rows; a question whose gold does not is a DataError naming it (the yardstick is never silently
smaller). Nothing here may be used for training or tuning: the team reports on it, it does not learn from it.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from core.errors import DataError
from core.files import FileLock, publish, staging_dir
from core.settings import REPO_ROOT, home

SOURCE = REPO_ROOT / "data" / "ood"
SUITE_DATABASES = 3


def _digest() -> str:
    h = hashlib.sha256()
    for p in sorted(SOURCE.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(SOURCE).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def questions() -> list[dict]:
    path = SOURCE / "questions.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing: the OOD yardstick ships with the repository")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not JSON ({e})") from None
    return out


def schemas() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((SOURCE / "schemas").glob("*.sql"))}


def build(dest: Path) -> Path:
    """Write the Spider-format folder into `dest`; every gold query checked on its database."""
    sql = schemas()
    qs = questions()
    problems = []
    for db_id, script in sql.items():
        d = dest / "database" / db_id
        d.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(d / f"{db_id}.sqlite")
        try:
            conn.executescript("PRAGMA foreign_keys=ON;\n" + script)
            conn.commit()
        except sqlite3.DatabaseError as e:
            problems.append(f"schema {db_id}: {e}")
        finally:
            conn.close()
    for i, q in enumerate(qs, 1):
        if q.get("db_id") not in sql:
            problems.append(f"question {i}: unknown db_id {q.get('db_id')!r}")
            continue
        conn = sqlite3.connect(f"file:{dest / 'database' / q['db_id'] / (q['db_id'] + '.sqlite')}?mode=ro", uri=True)
        try:
            rows = conn.execute(q["query"]).fetchall()
            if not rows:
                problems.append(f"question {i} ({q['db_id']}): the gold query returns no rows: {q['query']}")
        except sqlite3.DatabaseError as e:
            problems.append(f"question {i} ({q['db_id']}): the gold query fails: {e}: {q['query']}")
        finally:
            conn.close()
    if problems:
        raise DataError("the OOD yardstick does not check out:\n  - " + "\n  - ".join(problems[:20]))
    (dest / "questions.json").write_text(json.dumps(qs, indent=1))
    return dest


def folder() -> Path:
    """The built yardstick (built once per content version, under a lock)."""
    final = home() / "cache" / f"ood-{_digest()}"
    if (final / "questions.json").is_file():
        return final
    with FileLock(final.parent / f".{final.name}.lock", "building the OOD yardstick", wait_s=300):
        if not (final / "questions.json").is_file():
            tmp = staging_dir(final.parent, final.name)
            build(tmp)
            publish(tmp, final)
    return final
