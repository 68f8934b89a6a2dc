"""What every query family is built from (the registry, the context a family draws with, shared helpers);
the families themselves are dml.py, single.py, joined.py and nested.py, registered when the package loads.

Query families: each draws one intent (a query over a schema, query.py) and says it in words (words.py).

A family is a named kind of question ("list_where", "join_group_count", "not_in_child", ...) with its tier
(the share of the data it belongs to), its Gretel complexity and task type, a weight within its tier and what
it needs of a schema (one table, a key between two tables, a chain of three, a bridge). The tiers' shares are
the spec's: ~45% one table (DML included), ~35% one join or one GROUP BY, ~20% nesting, set operations,
superlatives over groups, three-table and bridge joins, and the rare worded CASE and window functions.

    from pipeline.datagen.families import FAMILIES, TIERS, Ctx, Skip
    fam = FAMILIES["list_where"]; built = fam.build(Ctx(schema, rng, "question"))
    built.query, built.text          # a query.Query / Dml and the question (values still marked)
"""
from __future__ import annotations

import datetime
import math
import random
from dataclasses import dataclass
from typing import Callable

from pipeline.datagen.query import Col, Cond, Dml, Query, Ref
from pipeline.datagen.schema import Column, Link, Schema, Table, nouns
from pipeline.datagen.words import Phr, Speaker, unmark

BASIC, AGG, JOIN1, JOINS, SUBQ, WIN, SETOP = ("basic SQL", "aggregation", "single join", "multiple joins",
                                             "subqueries", "window functions", "set operations")
RETRIEVAL, ANALYTICS, DML = "data retrieval", "analytics and reporting", "data manipulation"
# tier -> share of rows
TIERS = {"one_table": 0.415, "dml": 0.035, "join_or_group": 0.35, "nested": 0.18, "worded": 0.02}
TIER_GROUPS = {"one_table": "one table (45%)", "dml": "one table (45%)", "join_or_group": "one join or group (35%)",
               "nested": "nesting, set ops, 3 tables (20%)", "worded": "nesting, set ops, 3 tables (20%)"}
WORDED = ("case_label", "window_rank", "running_total")          # CASE / windows: only when asked in words


class Skip(Exception):
    """The family does not fit this schema (no such column, no such key); the generator draws again."""


@dataclass
class Built:
    query: Query | Dml
    text: str                       # the question, values marked (words.finish makes the final text)
    subject: Table


@dataclass
class Family:
    name: str
    tier: str
    complexity: str
    task: str
    weight: float
    needs: str                      # one | link | chain | bridge
    build: Callable[["Ctx"], Built]


FAMILIES: dict[str, Family] = {}


def family(tier: str, complexity: str, task: str, weight: float, needs: str = "one"):
    def deco(fn):
        FAMILIES[fn.__name__] = Family(fn.__name__, tier, complexity, task, weight, needs, fn)
        return fn
    return deco


# --------------------------------------------------------------------------------------------- thresholds
def _steps(integer: bool) -> list[float]:
    out = []
    for k in range(8, -1 if integer else -3, -1):
        out += [5 * 10 ** k, 2 * 10 ** k, 10 ** k] if k >= 0 else [5 * 10.0 ** k, 10.0 ** k]
    out.sort(reverse=True)
    return out


def roundest(lo, hi, lo_open: bool, hi_open: bool, integer: bool):
    """The roundest number in the interval (one end at least closed, so there is one)."""
    for step in _steps(integer):
        c = math.ceil(lo / step) * step
        if lo_open and c <= lo:
            c += step
        if c < hi or (c <= hi and not hi_open):
            c = round(c, 2)
            return int(c) if integer or float(c).is_integer() and step >= 1 else c
    return lo if not lo_open else hi


def _date_between(lo: str, hi: str, lo_open: bool) -> str:
    """A round date in [lo, hi) (lo_open False) or (lo, hi]: a new year, a first of the month, or the end."""
    a, b = datetime.date.fromisoformat(lo), datetime.date.fromisoformat(hi)
    for y in range(a.year, b.year + 1):
        d = datetime.date(y, 1, 1)
        if (a < d if lo_open else a <= d) and (d <= b if lo_open else d < b):
            return d.isoformat()
    d = datetime.date(a.year, a.month, 1)
    for _ in range(30):
        if (a < d if lo_open else a <= d) and (d <= b if lo_open else d < b):
            return d.isoformat()
        d = (d.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return hi if lo_open else lo


def cut(values: list, op: str, rng: random.Random, kind: str):
    """A threshold for `col op v` that some rows pass and some do not (values: the column's non-null values)."""
    vals = sorted(set(values))
    if len(vals) < 2:
        raise Skip("one distinct value")
    i = rng.randint(1, len(vals) - 1)
    lo, hi = vals[i - 1], vals[i]
    lo_open = op in ("<", ">=")            # > : v in [lo, hi)   < : v in (lo, hi]
    if kind == "date":
        return _date_between(lo, hi, lo_open)
    integer = kind in ("int", "year") or (isinstance(lo, int) and isinstance(hi, int))
    if kind == "year":
        return hi if lo_open else lo
    return roundest(lo, hi, lo_open, not lo_open, integer)


# ------------------------------------------------------------------------------------------------ context
FILTER_KINDS = ("cat", "text", "int", "real", "money", "year", "date", "bool")


class Ctx:
    """One attempt: the schema, the rng, the speaker; helpers that draw what families need or raise Skip."""

    def __init__(self, schema: Schema, rng: random.Random, register: str):
        self.s = schema
        self.rng = rng
        seen: dict[str, int] = {}
        for t in schema.tables:
            if t.entity:
                for w in nouns(t.entity):
                    seen[w] = seen.get(w, 0) + 1
        self.sp = Speaker(rng, register, frozenset(w for w, k in seen.items() if k > 1))
        self.register = register
        self.filters: list[tuple[Cond, list[str]]] = []     # each condition said, with the words that said it

    def say(self, question=(), imperative=(), terse=()) -> str:
        by = {"question": question, "imperative": imperative, "terse": terse}
        options = [o for o in by[self.register] if o]
        if not options:
            options = [o for group in (question, imperative, terse) for o in group if o]
        if not options:
            raise Skip("no phrasing")
        return self.rng.choice(options)

    def one(self, items: list, why: str):
        if not items:
            raise Skip(why)
        return self.rng.choice(items)

    # -------------------------------------------------------------------------------------- tables
    def subject(self, ok=None) -> Table:
        return self.one([t for t in self.s.entities if ok is None or ok(t)], "no fitting table")

    def links(self) -> list[Link]:
        """Relations between two entity tables of the question's domain (child -> parent)."""
        return [lk for lk in self.s.links if lk.relation and not lk.child.distractor and lk.child.entity
                and lk.parent.entity]

    def chains(self) -> list[tuple[Link, Link]]:
        """child -> parent -> grandparent, three distinct tables."""
        ls = self.links()
        return [(a, b) for a in ls for b in ls if a.parent is b.child and b.parent is not a.child
                and len({id(a.child), id(a.parent), id(b.parent)}) == 3]

    # --------------------------------------------------------------------------------------- columns
    def cols(self, t: Table, kinds=FILTER_KINDS, nonnull: bool = False, distinct: int = 1) -> list[Column]:
        out = []
        for c in t.attrs(*kinds):
            vals = [v for v in t.values(c) if v is not None]
            if nonnull and len(vals) < len(t.rows):
                continue
            if len(set(vals)) >= distinct:
                out.append(c)
        return out

    def value(self, t: Table, c: Column):
        return self.one([v for v in t.values(c) if v is not None], "no value")

    def cond(self, ref: Ref, kinds=FILTER_KINDS, avoid: tuple = (), ops: tuple | None = None) -> Cond:
        """A condition on one of ref's columns that some rows pass (and, for comparisons, some do not)."""
        t = ref.table
        cols = [c for c in self.cols(t, kinds) if c not in avoid]
        c = self.one(cols, "nothing to filter on")
        vals = [v for v in t.values(c) if v is not None]
        if c.kind == "bool":
            return Cond(Col(ref, c), "=", self.rng.choice(sorted(set(vals))))
        if c.kind in ("cat", "text"):
            return Cond(Col(ref, c), "=", self.rng.choice(vals))
        choices = ops or ((">", "<", ">", "<", ">=", "<=") if c.kind != "date" else (">", "<", ">", "<", "YEAR"))
        op = self.rng.choice(choices)
        if op == "YEAR":
            years = sorted({v[:4] for v in vals})
            if len(years) < 2:
                op = self.rng.choice((">", "<"))
            else:
                return Cond(Col(ref, c), "YEAR", self.rng.choice(years))
        return Cond(Col(ref, c), op, cut(vals, op, self.rng, c.kind))

    def phr(self, c: Cond, t: Table) -> Phr:
        before = len(self.sp.mentions)
        p = self.sp.cond(c, t)
        p.cond = c
        self.filters.append((c, [w for _, w in self.sp.mentions[before:]]))
        return p

    def said_before(self, c, words: str) -> None:
        """The condition ended up said before the noun ('active projects', 'remote-first departments')."""
        self.filters = [(x, [unmark(words)] if x is c else w) for x, w in self.filters]

    def said(self, c: Cond, words: str) -> None:
        """A condition said by the family itself (a row named by its label, a relation verb)."""
        self.filters.append((c, [words]))


# words of a text column that identifies or contacts, not groups (a phone number repeats only by chance)
NOT_GROUPS = {"phone", "email", "mail", "address", "url", "website", "serial", "number", "no", "num", "code", "id",
              "note", "notes", "description", "comment", "street", "zip", "postcode", "postal", "iban", "vin", "plate",
              "license", "licence", "sku", "barcode", "isbn", "handle", "username", "login", "ip", "mac", "hostname",
              "summary", "title", "headline", "remarks", "reference", "ref"}


def groupable(c: Column) -> bool:
    """A column people group or count distinct values of: a category, a year, a place-like text."""
    if c.kind in ("cat", "year"):
        return True
    if c.kind != "text":
        return False
    words = set(c.attr.name.split("_")) | {w for p in c.attr.phrases for w in p.split()}
    return not words & NOT_GROUPS


def group_col(cx: Ctx, t: Table) -> Column:
    """A column to group by or count the distinct values of: no NULLs, values that repeat (fewer groups than
    rows, more than one)."""
    cols = [c for c in cx.cols(t, ("cat", "text", "year"), nonnull=True)
            if groupable(c) and 1 < len(set(t.values(c))) < len(t.rows)]
    return cx.one(cols, "nothing to group by")


def rows_np(cx: Ctx, t: Table, phrs: list[Phr], plural_noun: str | None = None) -> str:
    """'employees earning more than 50,000 and hired after 2019-01-01' / 'active projects'."""
    noun = plural_noun or cx.sp.plural(t)
    pres = [p for p in phrs if p.pre and cx.sp.chance(0.35)]
    for p in pres:
        cx.said_before(p.cond, p.pre)
    posts = [p.post for p in phrs if p not in pres]
    head = " ".join([p.pre for p in pres] + [noun])
    return head + (" " + " and ".join(posts) if posts else "")


def which(cx: Ctx, t: Table, phrs: list[Phr]) -> str | None:
    """'Which employees earn more than 50,000' when the one condition has a natural predicate, else None."""
    if len(phrs) != 1 or not phrs[0].pred:
        return None
    return f"Which {cx.sp.plural(t)} {phrs[0].pred}?"


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

