"""The out-of-distribution yardsticks: hand-written multi-table schemas and questions the generator never makes.

    data/<name>/schemas/<db_id>.sql  CREATE TABLE (with keys) + INSERT rows, written by hand for this project
    data/<name>/questions.jsonl      {"db_id", "question", "query", "difficulty"} per line, gold SQL by hand

Two of them, read the same way (SPLITS): `ood`, the one the team reports on as it works, and `ood2`, an
independent second one written later in other domains, looked at only for final figures (so that fitting
the first one by accident shows).

    from pipeline.data import ood
    folder = ood.folder()           # a Spider-format folder built from those files (cached by content hash)
    folder = ood.folder("ood2")     # the second yardstick
    sqlgenie evaluate -c ... --split ood      # (or ood2) test-suite execution accuracy on 3 generated databases

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

SPLITS = ("ood", "ood2")
SUITE_DATABASES = 3


def source(name: str = "ood") -> Path:
    """The folder of the yardstick `name` (one of SPLITS)."""
    if name not in SPLITS:
        raise DataError(f"no OOD yardstick named {name!r} (have: {', '.join(SPLITS)})")
    return REPO_ROOT / "data" / name


def _digest(name: str) -> str:
    root = source(name)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def questions(name: str = "ood") -> list[dict]:
    path = source(name) / "questions.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing: the {name} yardstick ships with the repository")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not JSON ({e})") from None
    return out


def schemas(name: str = "ood") -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((source(name) / "schemas").glob("*.sql"))}


def build(dest: Path, name: str = "ood") -> Path:
    """Write the Spider-format folder of yardstick `name` into `dest`; every gold query checked on its database."""
    sql = schemas(name)
    qs = questions(name)
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
        raise DataError(f"the {name} yardstick ({source(name)}) does not check out:\n  - " + "\n  - ".join(problems[:20]))
    (dest / "questions.json").write_text(json.dumps(qs, indent=1))
    return dest


def folder(name: str = "ood") -> Path:
    """The built yardstick `name` (built once per content version, under a lock)."""
    final = home() / "cache" / f"{name}-{_digest(name)}"
    if (final / "questions.json").is_file():
        return final
    with FileLock(final.parent / f".{final.name}.lock", f"building the {name} yardstick", wait_s=300):
        if not (final / "questions.json").is_file():
            tmp = staging_dir(final.parent, final.name)
            build(tmp, name)
            publish(tmp, final)
    return final
