"""Fit a wide schema into the prompt budget: keep the tables a question needs, say which were left out.

    from sql.schema_fit import fit_schema
    kept_ddl, left_out = fit_schema(ddl, "total sales per store", fits=lambda d: len(render(d)) <= budget)

Tables are ranked by how much of the question their names and columns cover (words split on snake_case,
CamelCase, spaces and digits, compared by their first five letters so "orders" meets "ordered"), then
tables joined to a chosen one by a foreign key (REFERENCES) come next, so a join path is not cut in half;
the rest keep their order in the schema. Tables are added in that order while `fits(kept_ddl)` holds; the
kept statements stay in their original order and text. Raises SchemaFitError when not even the best table
fits (the question or the table itself is too long).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from core.errors import SqlgenieError
from sql.statements import split_statements

_CREATE = re.compile(r"^\s*CREATE\s+(?:TEMP\w*\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                     r"(?:\"([^\"]+)\"|\[([^\]]+)\]|`([^`]+)`|([\w.]+))", re.I)
_REFERENCES = re.compile(r"REFERENCES\s+(?:\"([^\"]+)\"|\[([^\]]+)\]|`([^`]+)`|([\w.]+))", re.I)
_STOP = {"the", "a", "an", "of", "for", "in", "on", "to", "by", "and", "or", "with", "what", "which", "who", "how",
         "many", "much", "is", "are", "was", "were", "each", "per", "list", "show", "give", "me", "all", "that",
         "have", "has", "than", "more", "less", "most", "least", "top", "from", "their", "its", "it", "do", "does"}


class SchemaFitError(SqlgenieError):
    """Not even the table that matters most fits the model's context."""


def _words(text: str) -> set[str]:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return {w[:5] for w in re.split(r"[^A-Za-z]+", text.lower()) if len(w) > 1 and w not in _STOP}


def _name(m: re.Match) -> str:
    return next(g for g in m.groups() if g)


def tables_of(ddl: str) -> list[tuple[str, str]]:
    """(table name, its CREATE statement) in schema order; other statements are ignored."""
    out = []
    for stmt in split_statements(ddl):
        m = _CREATE.match(stmt)
        if m:
            out.append((_name(m), stmt.strip().rstrip(";") + ";"))
    return out


def rank_tables(ddl: str, question: str) -> list[str]:
    """Table names, the ones the question needs most first (see the module docstring)."""
    tables = tables_of(ddl)
    q = _words(question)
    score = {name: len(q & _words(stmt)) + 2 * len(q & _words(name)) for name, stmt in tables}
    refs = {name: {_name(m) for m in _REFERENCES.finditer(stmt)} for name, stmt in tables}
    order = [n for n, _ in sorted(tables, key=lambda t: -score[t[0]]) if score[n] > 0]
    ranked: list[str] = []
    for name in order:
        if name not in ranked:
            ranked.append(name)
        for other, _ in tables:   # its FK neighbours, both directions, right after it
            if other not in ranked and score[other] > 0 and (other in refs[name] or name in refs[other]):
                ranked.append(other)
    ranked += [n for n, _ in tables if n not in ranked]
    return ranked


def fit_schema(ddl: str, question: str, fits: Callable[[str], bool]) -> tuple[str, list[str]]:
    """(the schema with the tables that fit, the names left out); the whole schema when it fits."""
    if fits(ddl):
        return ddl, []
    tables = tables_of(ddl)
    if not tables:
        raise SchemaFitError("the schema has no CREATE TABLE statement to choose from")
    text = dict(tables)
    kept: set[str] = set()
    for name in rank_tables(ddl, question):
        trial = "\n".join(text[n] for n, _ in tables if n in kept or n == name)
        if fits(trial):
            kept.add(name)
    if not kept:
        raise SchemaFitError(f"not even table {rank_tables(ddl, question)[0]!r} alone fits with this question: "
                             "shorten the question, or leave out columns the question does not need")
    return "\n".join(text[n] for n, _ in tables if n in kept), [n for n, _ in tables if n not in kept]
