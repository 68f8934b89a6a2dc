"""Stored evaluations as records: every `sqlgenie evaluate` folder on this machine (a run's, or a base model's),
its figures, and its rows one by one with what each needs to be looked at (the schema of an OOD question, the
meaning of its error kind).

    from pipeline.evaluate import records
    evs = records.all_evaluations()              # newest first; a damaged metrics.json is a record with .problem
    ev = evs[0]; ev.title(), ev.ex, ev.valid, ev.runs
    rows = ev.rows()                             # rows.jsonl as dicts, each with "right" (bool) added
    records.schema_of(rows[0], ev.split)         # the CREATE TABLEs an OOD question was asked over, or None
    records.run_on_database(sql, rows[0], ev.split)   # that query's result on the question's own database
"""
from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import runs
from pipeline.data import ood
from sql.sandbox import QueryResult, Sandbox, SandboxError


@dataclass
class Evaluation:
    dir: Path
    metrics: dict = field(default_factory=dict)
    problem: str | None = None        # why metrics.json cannot be read (then every figure is None)

    @classmethod
    def read(cls, folder: Path) -> Evaluation:
        try:
            return cls(Path(folder), json.loads((Path(folder) / "metrics.json").read_text()))
        except (OSError, ValueError) as e:
            return cls(Path(folder), {}, f"unreadable ({e}); run the evaluation again")

    @property
    def label(self) -> str:
        return self.metrics.get("label") or self.dir.name

    @property
    def split(self) -> str:
        return self.metrics.get("split") or "?"

    @property
    def ex(self) -> float | None:
        return self.metrics.get("execution_accuracy")

    @property
    def valid(self) -> float | None:
        return self.metrics.get("valid_sql_rate")

    @property
    def runs(self) -> float | None:
        return self.metrics.get("runs_rate")

    @property
    def scored(self) -> int:
        return int(self.metrics.get("scored") or 0)

    @property
    def model(self) -> str:
        """What was evaluated: the run id, or the base model's reference."""
        return str(self.metrics.get("run") or self.metrics.get("model") or self.dir.parent.parent.name)

    @property
    def when(self) -> float:
        try:
            return (self.dir / "metrics.json").stat().st_mtime
        except OSError:
            return 0.0

    def decoding(self) -> str:
        """How the answers were made: greedy / constrained / vote N, + repair."""
        m = self.metrics
        parts = ["constrained" if m.get("constrained") else "greedy"]
        if m.get("vote_candidates"):
            parts.append(f"vote {m['vote_candidates']}")
        if m.get("repair"):
            parts.append("repair")
        return " + ".join(parts)

    def title(self) -> str:
        if self.problem:
            return f"{self.dir.name} ({self.problem})"
        return (f"{self.label} on {self.split} ({self.decoding()}): EX {self.ex or 0:.1%} of {self.scored} - "
                f"{self.model}, {time.strftime('%m-%d %H:%M', time.localtime(self.when))}")

    def rows(self) -> list[dict]:
        """The evaluation's rows (rows.jsonl, or a compressed copy), each with `right` added; [] when none."""
        for name, opener in (("rows.jsonl", open), ("rows.jsonl.gz", gzip.open)):
            path = self.dir / name
            if path.is_file():
                with opener(path, "rt") as f:
                    rows = [json.loads(line) for line in f if line.strip()]
                for r in rows:
                    r["right"] = r.get("status") == "match"
                return rows
        return []


def all_evaluations() -> list[Evaluation]:
    """Every evaluation on this machine (runs' and base models'), newest first."""
    return sorted((Evaluation.read(d) for d in runs.all_evals()), key=lambda e: e.when, reverse=True)


def schema_of(row: dict, split: str) -> str | None:
    """The schema (CREATE TABLEs) an OOD yardstick row was asked over, found by its database; None for other
    splits (their rows do not carry the schema)."""
    if split not in ood.SPLITS:
        return None
    return ood.schemas(split).get(row.get("domain", ""))


def run_on_database(sql: str, row: dict, split: str, max_rows: int = 20) -> QueryResult | str:
    """`sql` run (read-only, capped) on the database an OOD yardstick row was asked over: its result, or one
    line why not (a query that fails, a split whose rows name no database)."""
    if split not in ood.SPLITS or not row.get("domain"):
        return f"the {split} rows name no database to run on"
    db = ood.folder(split) / "database" / row["domain"] / f"{row['domain']}.sqlite"
    if not db.is_file():
        return f"no database {row['domain']} in the {split} yardstick"
    with Sandbox.from_database(str(db), max_rows=max_rows) as box:
        try:
            return box.query(sql)
        except SandboxError as e:
            return str(e)
