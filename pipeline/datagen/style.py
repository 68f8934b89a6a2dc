"""Naming styles for generated schemas, so a model meets the names real schemas have, not one house style.

A row's schema gets one style for all its tables and columns; the gold SQL is rewritten to match through
sqlglot (tables, columns, INSERT column lists), quoting names that need it. Questions keep natural words, so
column names often differ from the question's words (`sal` for salary, `HireDt` for hire date).

    from pipeline.datagen.style import Style
    s = Style.pick(rng)                        # snake | camel | pascal | prefixed | abbrev | spaced | upper
    s.table("maintenance_jobs"), s.column("hire_date")     # -> e.g. "tbl_maintenance_jobs", "HireDate"
    s.rewrite(sql, tables, columns)           # the template's SQL with the styled names
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

STYLES = ("snake", "camel", "pascal", "prefixed", "abbrev", "spaced", "upper")
WEIGHTS = (0.34, 0.14, 0.14, 0.1, 0.12, 0.08, 0.08)
ABBREV = {"amount": "amt", "quantity": "qty", "number": "num", "date": "dt", "salary": "sal", "price": "prc",
          "category": "cat", "customer": "cust", "department": "dept", "employee": "emp", "address": "addr",
          "experience": "exp", "years": "yrs", "total": "tot", "revenue": "rev", "capacity": "cap", "rating": "rtg",
          "score": "scr", "status": "stat", "type": "typ", "weight": "wt", "hours": "hrs", "minutes": "mins",
          "count": "cnt", "passengers": "pax", "enrollment": "enrl", "monthly": "mthly", "premium": "prem",
          "reading": "rdg", "output": "out", "transaction": "txn", "session": "sess", "maintenance": "maint",
          "appointment": "appt", "installed": "inst", "launch": "lnch", "credit": "cr", "activation": "actv",
          "delivery": "dlv", "kg": "kg", "mb": "mb", "mw": "mw", "mwh": "mwh", "description": "descr",
          "location": "loc", "average": "avg", "percent": "pct", "account": "acct", "reference": "ref",
          "manager": "mgr", "warehouse": "whse", "inventory": "inv", "distance": "dist", "duration": "dur",
          "message": "msg", "region": "rgn", "country": "ctry", "building": "bldg", "estimated": "est",
          "registration": "reg", "certificate": "cert", "payment": "pmt", "balance": "bal", "volume": "vol",
          "height": "ht", "length": "len", "production": "prod", "contract": "ctr", "phone": "ph",
          "first": "fst", "last": "lst", "name": "nm", "code": "cd", "year": "yr",
          "month": "mo", "value": "val", "level": "lvl"}
# SQLite's keywords (sqlite3_keyword_name): an identifier spelled like one is quoted. Some (name-like words such
# as "key", "action", "release") work bare in SQLite, but quoting them is harmless and other engines need it.
_KEYWORDS = set("""
abort action add after all alter always analyze and as asc attach autoincrement before begin between by cascade
case cast check collate column commit conflict constraint create cross current current_date current_time
current_timestamp database default deferrable deferred delete desc detach distinct do drop each else end escape
except exclude exclusive exists explain fail filter first following for foreign from full generated glob group
groups having if ignore immediate in index indexed initially inner insert instead intersect into is isnull join
key last left like limit match materialized natural no not nothing notnull null nulls of offset on or order others
outer over partition plan pragma preceding primary query raise range recursive references regexp reindex release
rename replace restrict returning right rollback row rows savepoint select set table temp temporary then ties to
transaction trigger unbounded union unique update using vacuum values view virtual when where window with without
""".split())
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Style:
    name: str = "snake"

    @classmethod
    def pick(cls, rng: random.Random) -> "Style":
        return cls(rng.choices(STYLES, WEIGHTS)[0])

    def _word(self, name: str) -> str:
        parts = name.split("_")
        s = self.name
        if s == "camel":
            return parts[0] + "".join(p.title() for p in parts[1:])
        if s == "pascal":
            return "".join(p.title() for p in parts)
        if s == "abbrev":
            return "_".join(ABBREV.get(p, p) for p in parts)
        if s == "spaced":
            return " ".join(p.title() for p in parts)
        if s == "upper":
            return name.upper()
        return name

    def table(self, name: str) -> str:
        return ("tbl_" + name) if self.name == "prefixed" else self._word(name)

    def column(self, name: str) -> str:
        if self.name == "prefixed":
            return name
        return self._word(name)


def name_words(name: str) -> list[str]:
    """A table or column name of any style as lower-case words: "HireDt" / "hire_dt" / "Hire Dt" -> hire, dt."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name))
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def needs_quotes(name: str) -> bool:
    return not _PLAIN.match(name) or name.lower() in _KEYWORDS


def quoted(name: str) -> str:
    """The name as it must appear in SQL text (double quotes when needed)."""
    return '"' + name.replace('"', '""') + '"' if needs_quotes(name) else name


def rewrite(sql: str, tables: dict[str, str], columns: dict[str, str]) -> str:
    """`sql` with table and column names replaced (maps from the template's names to the styled ones)."""
    if all(k == v for k, v in tables.items()) and all(k == v for k, v in columns.items()):
        return sql
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")

    def ident(new: str) -> exp.Identifier:
        return exp.Identifier(this=new, quoted=needs_quotes(new))

    for t in tree.find_all(exp.Table):
        if t.name in tables:
            t.set("this", ident(tables[t.name]))
    for c in tree.find_all(exp.Column):
        if c.name in columns:
            c.set("this", ident(columns[c.name]))
    for s in tree.find_all(exp.Schema):          # INSERT INTO t (a, b): the column list
        for i, e in enumerate(s.expressions):
            if isinstance(e, exp.Identifier) and e.name in columns:
                s.expressions[i] = ident(columns[e.name])
    return tree.sql(dialect="sqlite") + ";"


_SLOPPY = [
    (re.compile(r"^(What is|What was|What are|Show me|Show|List|Give me|Find|Retrieve|Return) (the |all |every )?", re.I), ""),
    (re.compile(r"^How many ", re.I), "number of "),
    (re.compile(r"\bwith their\b", re.I), "w/"),
    (re.compile(r"\baverage\b", re.I), "avg"),
    (re.compile(r"\bnumber\b", re.I), "no."),
]


def sloppy(question: str, rng: random.Random) -> str:
    """A terse or sloppy rewording: lower case, question words dropped, abbreviations, no final punctuation."""
    q = question
    for pattern, repl in _SLOPPY:
        if pattern.search(q) and rng.random() < 0.6:
            q = pattern.sub(repl, q)
    q = q.strip().rstrip("?.")
    return q.lower() if rng.random() < 0.7 else q
