"""Score one prediction against the gold SQL of a row.

- execution match: the row's context is loaded into a fresh in-memory SQLite (sql/sandbox.py);
  queries run read-only with a time and row cap and their results compare as multisets (as lists when
  the gold has a top-level ORDER BY), floats to 1e-6 relative; DML / DDL compare the database states after.
- valid SQL: sqlglot parses the prediction; exact match: sqlglot-normalised text is equal.
- status: match | mismatch | pred_error | pred_timeout | pred_denied | empty_prediction | unscorable
  (the gold itself does not run on SQLite: counted, never dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

from sql.results import result_rows, same_result
from sql.sandbox import Sandbox, SandboxError

WRITE_TASKS = ("data manipulation", "data definition")


@dataclass
class Score:
    status: str
    valid: bool
    exact: bool
    error: str = ""

    @property
    def correct(self) -> bool:
        return self.status == "match"

    @property
    def runs(self) -> bool:
        """The prediction executed without an error (right or wrong)."""
        return self.status in ("match", "mismatch", "mismatch_suite")


def syntax(gold: str, pred: str) -> tuple[bool, bool]:
    """(prediction parses, prediction equals the gold after sqlglot normalisation)."""
    norm_pred = _normalise(pred) if pred else None
    return norm_pred is not None, norm_pred is not None and norm_pred == _normalise(gold)


def _normalise(sql: str) -> str | None:
    """sqlglot's normalised text, or None when it does not parse as a real statement (its fallback `Command`
    parse of prose or a lone keyword does not count)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        if tree is None or isinstance(tree, exp.Command):
            return None
        return tree.sql(dialect="sqlite", normalize=True, pretty=False)
    except Exception:  # noqa: BLE001 - any parse failure means "not valid"
        return None


def _outcome(context: str, sql: str, write: bool, timeout_s: float, max_rows: int):
    with Sandbox.from_context(context, timeout_s=timeout_s, max_rows=max_rows) as box:
        res = box.query(sql, read_only=not write)
        return box.state() if write else result_rows(res.rows)


def score(context: str, gold: str, pred: str, task_type: str = "", timeout_s: float = 2.0,
          max_rows: int = 10_000) -> Score:
    valid, exact = syntax(gold, pred)
    write = task_type in WRITE_TASKS
    try:
        want = _outcome(context, gold, write, timeout_s, max_rows)
    except SandboxError as e:
        return Score("unscorable", valid, exact, f"gold: {e}")
    if not pred.strip():
        return Score("empty_prediction", False, False)
    try:
        got = _outcome(context, pred, write, timeout_s, max_rows)
    except SandboxError as e:
        return Score(f"pred_{e.kind}", valid, exact, str(e))
    same = got == want if write else same_result(gold, got, want)
    return Score("match" if same else "mismatch", valid, exact)
