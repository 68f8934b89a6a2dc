"""Answers users marked right or wrong (the playground's marks), kept with what was asked, and turned into training
rows in the Gretel format: the feedback loop into the next fine-tune.

A mark is one JSON line in <home>/feedback/marks.jsonl (appended under a lock: two tabs can mark at once; nothing
is ever rewritten). An answer marked right becomes a row whose SQL is the answer; one marked wrong becomes a row
only when the user gave the SQL that was expected (the wrong answer itself never trains anything).

    from pipeline.data import feedback
    feedback.record(feedback.Mark(question=..., schema=..., rows=..., sql=..., verdict="right", model=...))
    feedback.marks()                                   # every mark, oldest first
    feedback.export(Path("fb.jsonl"))                  # -> (rows written, marks left out and why)
    sqlgenie feedback list | export FILE.jsonl         # the same from the command line
    data.sources: [{path: fb.jsonl}]                   # a config trains on it like any Gretel file
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import DataError
from core.files import FileLock, write_atomic
from core.settings import home

VERDICTS = ("right", "wrong")


@dataclass
class Mark:
    question: str
    schema: str
    sql: str                          # the answer that was marked
    verdict: str                      # right | wrong
    rows: str = ""                    # the sample rows the question was asked with (INSERTs)
    expected_sql: str = ""            # for a wrong answer: the SQL the user expected (optional)
    note: str = ""                    # what the user said about it (optional)
    model: str = ""
    deployment: str = ""
    dialect: str = "sqlite"
    time: float = field(default_factory=time.time)

    def problem(self) -> str | None:
        """Why this mark cannot be kept, in one line; None when it can."""
        if self.verdict not in VERDICTS:
            return f"verdict {self.verdict!r}: mark an answer right or wrong"
        if not self.question.strip():
            return "there is no question to mark: ask one first"
        if not self.sql.strip():
            return "there is no answer to mark: ask the question first"
        if not self.schema.strip():
            return "the question has no schema: the mark could not train anything"
        return None

    def training_sql(self) -> str | None:
        """The SQL a training row would teach: the answer when right, the expected SQL when wrong (if given)."""
        if self.verdict == "right":
            return self.sql.strip()
        return self.expected_sql.strip() or None


def marks_path() -> Path:
    return home() / "feedback" / "marks.jsonl"


def record(mark: Mark) -> Path:
    """Append `mark` (DataError naming what is missing when it cannot be kept)."""
    why = mark.problem()
    if why:
        raise DataError(f"this mark cannot be kept: {why}")
    path = marks_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.parent / ".marks.lock", "recording a mark", wait_s=30):
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(mark)) + "\n")
    return path


def marks() -> list[Mark]:
    """Every mark kept here, oldest first (a line that cannot be read is skipped, never the file)."""
    path = marks_path()
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
            out.append(Mark(**{k: v for k, v in d.items() if k in Mark.__dataclass_fields__}))
        except (ValueError, TypeError):
            continue
    return out


def gretel_row(i: int, mark: Mark) -> dict:
    """One training row in the Gretel format the loaders read (pipeline/data/loaders.py)."""
    context = mark.schema.strip() + ("\n" + mark.rows.strip() if mark.rows.strip() else "")
    return {"id": i, "domain": "feedback", "domain_description": f"marked in the playground ({mark.model})",
            "sql_complexity": "", "sql_complexity_description": "", "sql_task_type": "",
            "sql_task_type_description": "", "sql_prompt": mark.question.strip(), "sql_context": context,
            "sql": mark.training_sql(), "sql_explanation": mark.note.strip()}


def gretel_jsonl() -> tuple[str, int, dict[str, int]]:
    """(the marks that can train as Gretel JSONL text, how many rows, marks left out by reason); DataError when
    none can."""
    rows, left = [], {}
    for m in marks():
        if m.training_sql() is None:
            left["wrong, with no expected SQL"] = left.get("wrong, with no expected SQL", 0) + 1
            continue
        rows.append(gretel_row(len(rows) + 1, m))
    if not rows:
        raise DataError(f"no mark can train anything yet ({sum(left.values())} marked wrong with no expected SQL): "
                        "mark answers right, or give the expected SQL of a wrong one, in the playground")
    return "".join(json.dumps(r) + "\n" for r in rows), len(rows), left


def export(out: Path) -> tuple[int, dict[str, int]]:
    """Write the marks that can train as Gretel JSONL to `out`: (rows written, marks left out by reason)."""
    text, n, left = gretel_jsonl()
    write_atomic(Path(out), text)
    return n, left
