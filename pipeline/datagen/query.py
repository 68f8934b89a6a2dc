"""The intent's SQL: a small query tree (what is selected, from which tables through which keys, conditions,
grouping, having, order, limit, nesting, set operation, DML) and its rendering as plain SQLite.

House style of the rendered SQL, the same in every row so a small model sees one way to write each thing:
one table -> bare column names; joins -> a short alias per table and `JOIN t2 a2 ON a1.fk = a2.key` over
the schema's real keys; COUNT(*) for "how many"; GROUP BY the key and the label when grouping by a row;
ORDER BY ... LIMIT n for superlatives; NOT IN for "no ..." (NOT EXISTS in its own family); a year of a
date as `col LIKE '2021%'`.

    from pipeline.datagen.query import Query, Ref, Col, Agg, Cond, render
    e = Ref(employees)
    render(Query([Col(e, name)], e, where=[Cond(Col(e, salary), ">", 50000)]))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.datagen.schema import Column, Table, lit
from pipeline.datagen.style import _KEYWORDS, name_words, quoted


@dataclass(eq=False)
class Ref:
    """One occurrence of a table in a query (its alias is set when the query joins)."""
    table: Table
    alias: str = ""


@dataclass(eq=False)
class Col:
    ref: Ref
    column: Column

    def sql(self) -> str:
        return f"{self.ref.alias}.{quoted(self.column.name)}" if self.ref.alias else quoted(self.column.name)


@dataclass(eq=False)
class Agg:
    func: str                       # COUNT | AVG | SUM | MIN | MAX
    arg: Col | None = None          # None: COUNT(*)
    distinct: bool = False

    def sql(self) -> str:
        if self.arg is None:
            return f"{self.func}(*)"
        return f"{self.func}({'DISTINCT ' if self.distinct else ''}{self.arg.sql()})"


@dataclass(eq=False)
class Raw:
    """An expression written out by its family (CASE, a window function, arithmetic)."""
    text: str
    cols: tuple[Col, ...] = ()

    def sql(self) -> str:
        return self.text.format(*[c.sql() for c in self.cols])


Expr = Col | Agg | Raw


@dataclass(eq=False)
class Cond:
    left: Expr
    op: str                         # = <> > < >= <= BETWEEN IN LIKE YEAR IS NULL / IS NOT NULL / IN_Q / NOT IN_Q /
    value: Any = None               # EXISTS / NOT EXISTS (value: a Query); a Col: column = column

    def sql(self) -> str:
        left = self.left.sql() if self.op not in ("EXISTS", "NOT EXISTS") else ""
        v, op = self.value, self.op
        if op in ("IS NULL", "IS NOT NULL"):
            return f"{left} {op}"
        if op == "BETWEEN":
            return f"{left} BETWEEN {lit(v[0])} AND {lit(v[1])}"
        if op == "IN":
            return f"{left} IN ({', '.join(lit(x) for x in v)})"
        if op == "YEAR":
            return f"{left} LIKE '{v}%'"
        if op == "LIKE":
            kind, text = v
            pattern = {"prefix": f"{text}%", "suffix": f"%{text}", "infix": f"%{text}%"}[kind]
            return f"{left} LIKE {lit(pattern)}"
        if op in ("IN_Q", "NOT IN_Q"):
            return f"{left} {op[:-2]} ({render(v, end='')})"
        if op in ("EXISTS", "NOT EXISTS"):
            return f"{op} ({render(v, end='')})"
        if isinstance(v, Query):
            return f"{left} {op} ({render(v, end='')})"
        if isinstance(v, (Col, Agg, Raw)):
            return f"{left} {op} {v.sql()}"
        return f"{left} {op} {lit(v)}"


@dataclass(eq=False)
class Join:
    ref: Ref
    left: Col                       # an fk or key already in the query
    right: Col                      # the key of the joined table (or its fk)


@dataclass(eq=False)
class Query:
    select: list[Expr]
    base: Ref
    joins: list[Join] = field(default_factory=list)
    where: list[Cond] = field(default_factory=list)
    group_by: list[Col] = field(default_factory=list)
    having: Cond | None = None
    order_by: list[tuple[Expr, bool]] = field(default_factory=list)   # (expression, descending)
    limit: int | None = None
    distinct: bool = False
    setop: tuple[str, "Query"] | None = None                       # ("INTERSECT" | "EXCEPT" | "UNION", q)
    or_where: bool = False                                          # the WHERE conditions joined by OR

    @property
    def refs(self) -> list[Ref]:
        return [self.base] + [j.ref for j in self.joins]


@dataclass(eq=False)
class Dml:
    kind: str                       # UPDATE | DELETE | INSERT
    table: Table
    sets: list[tuple[Column, str]] = field(default_factory=list)    # UPDATE: column, SQL expression
    where: list[Cond] = field(default_factory=list)
    values: list[tuple[Column, Any]] = field(default_factory=list)  # INSERT


def alias_refs(refs: list[Ref]) -> None:
    """Short distinct aliases: initials of the table's words ('order_items' -> 'oi'), never a keyword."""
    used: set[str] = set()
    for r in refs:
        words = [w for w in name_words(r.table.name) if w not in ("tbl",)] or ["t"]
        cands = ["".join(w[0] for w in words), words[0][:2], words[0][:3]]
        cands += [cands[0] + str(i) for i in range(2, 9)]
        for c in cands:
            c = c.lower()
            if c and c[0].isalpha() and c not in used and c not in _KEYWORDS:
                r.alias = c
                used.add(c)
                break


def render(q: Query | Dml, end: str = ";") -> str:
    if isinstance(q, Dml):
        return _render_dml(q) + end
    parts = ["SELECT " + ("DISTINCT " if q.distinct else "") + ", ".join(e.sql() for e in q.select)]
    parts.append(f"FROM {quoted(q.base.table.name)}" + (f" {q.base.alias}" if q.base.alias else ""))
    for j in q.joins:
        parts.append(f"JOIN {quoted(j.ref.table.name)} {j.ref.alias} ON {j.left.sql()} = {j.right.sql()}")
    if q.where:
        parts.append("WHERE " + (" OR " if q.or_where else " AND ").join(c.sql() for c in q.where))
    if q.group_by:
        parts.append("GROUP BY " + ", ".join(c.sql() for c in q.group_by))
    if q.having is not None:
        parts.append("HAVING " + q.having.sql())
    if q.setop:
        return " ".join(parts) + f" {q.setop[0]} " + render(q.setop[1], end=end)
    if q.order_by:
        parts.append("ORDER BY " + ", ".join(e.sql() + (" DESC" if desc else "") for e, desc in q.order_by))
    if q.limit is not None:
        parts.append(f"LIMIT {q.limit}")
    return " ".join(parts) + end


def _render_dml(d: Dml) -> str:
    t = quoted(d.table.name)
    where = (" WHERE " + " AND ".join(c.sql() for c in d.where)) if d.where else ""
    if d.kind == "UPDATE":
        return f"UPDATE {t} SET " + ", ".join(f"{quoted(c.name)} = {e}" for c, e in d.sets) + where
    if d.kind == "DELETE":
        return f"DELETE FROM {t}{where}"
    cols = ", ".join(quoted(c.name) for c, _ in d.values)
    return f"INSERT INTO {t} ({cols}) VALUES ({', '.join(lit(v) for _, v in d.values)})"


def tie_probe(q: Query) -> Query | None:
    """For a query with ORDER BY ... LIMIT n: the same query selecting its sort keys without the limit, so the
    caller can check that row n and row n+1 differ (a tie at the limit makes the answer arbitrary)."""
    if q.limit is None or not q.order_by or q.setop:
        return None
    return Query([e for e, _ in q.order_by], q.base, q.joins, q.where, q.group_by, q.having, q.order_by, None,
                 q.distinct, None, q.or_where)


def conditions(q: Query | Dml) -> list[Cond]:
    """Every condition of the query on a column, nested ones included."""
    out: list[Cond] = []
    todo: list = [q]
    while todo:
        x = todo.pop()
        if isinstance(x, Query):
            out += x.where
            if x.having is not None:
                out.append(x.having)
            if x.setop:
                todo.append(x.setop[1])
            todo += [c.value for c in x.where if isinstance(c.value, Query)]
        elif isinstance(x, Dml):
            out += x.where
    return out


def explain(q: Query | Dml) -> str:
    """One sentence saying what the SQL does (the dataset's sql_explanation)."""
    if isinstance(q, Dml):
        what = {"UPDATE": "Updates", "DELETE": "Deletes", "INSERT": "Inserts one row into"}[q.kind]
        where = f" where {' and '.join(c.sql() for c in q.where)}" if q.where else ""
        sets = f", setting {', '.join(f'{c.name} = {e}' for c, e in q.sets)}" if q.sets else ""
        return f"{what} {q.table.name}{' rows' if q.kind != 'INSERT' else ''}{where}{sets}."
    tables = [r.table.name for r in q.refs]
    s = f"Reads {tables[0]}"
    if q.joins:
        s += " joined to " + ", ".join(tables[1:]) + " on their keys"
    if q.where:
        s += f", keeps rows where {(' or ' if q.or_where else ' and ').join(c.sql() for c in q.where)}"
    if q.group_by:
        s += f", groups by {', '.join(c.column.name for c in q.group_by)}"
    if q.having is not None:
        s += f" keeping groups with {q.having.sql()}"
    s += f" and returns {', '.join(e.sql() for e in q.select)}"
    if q.order_by:
        s += " ordered by " + ", ".join(e.sql() + (" descending" if d else "") for e, d in q.order_by)
    if q.limit is not None:
        s += f", first {q.limit}"
    if q.setop:
        s += f"; {q.setop[0]} with the same from another condition"
    return s + "."
