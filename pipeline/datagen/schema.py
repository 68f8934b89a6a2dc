"""One row's database, drawn from the lexicon: tables, names, keys and rows, rendered as CREATE + INSERT.

A schema is a connected set of 1-6 entities of one domain (following its relations and bridges), often with
1-3 distractor tables of another domain. Each entity keeps its label and 60-100% of its attributes in
shuffled order; tables and columns get their canonical or an alternative name (about 60/40), then one naming
style for the whole schema (style.py); primary keys are `id`, `<noun>_id`, `<Noun>ID` or a text `code`;
foreign keys take the relation's names. Rows (4-12 per table) are drawn from the attributes' values and
ranges, with NULLs at the attribute's share; numbers and dates are distinct within a column where the range
allows, so an ORDER BY has no ties to hide.

    from pipeline.datagen.schema import build_schema
    s = build_schema(domain, rng, others=[...])
    s.render(), s.render(reverse=True)            # the context, with each table's rows in reverse order
"""
from __future__ import annotations

import datetime
import functools
import random
from dataclasses import dataclass, field
from typing import Any

from pipeline.datagen.lexicon import FORBIDDEN_DOMAINS, FORBIDDEN_ENTITIES
from pipeline.datagen.lexicon.types import Attr, Bridge, Domain, Entity, Relation
from pipeline.datagen.names import people
from pipeline.datagen.style import Style, name_words, quoted

SIZES = (1, 2, 3, 4, 5, 6)                      # entities of the question's domain
SIZE_WEIGHTS = (0.1, 0.22, 0.26, 0.2, 0.13, 0.09)
DISTRACTOR_SHARE = 0.5                          # schemas with 1-3 tables of another domain
MAX_TABLES = 8
CANONICAL_SHARE = 0.6                           # a name is the canonical one, else an alternative
PK_STYLES = (("id", 0.45), ("noun_id", 0.35), ("NounID", 0.12), ("code", 0.08))
NUMERIC = ("int", "real", "money", "year")
TEXTUAL = ("label", "person", "text", "cat")
ORDERED = NUMERIC + ("date",)

_FORBIDDEN = {tuple(w[:-1] if w.endswith("s") else w for w in f.split("_"))
              for f in FORBIDDEN_DOMAINS + FORBIDDEN_ENTITIES}
_FORBIDDEN_LENGTHS = sorted({len(f) for f in _FORBIDDEN})


@functools.lru_cache(maxsize=65536)
def forbidden(name: str) -> bool:
    """The name (any style) contains a yardstick's domain or entity as whole words (plural or not)."""
    have = tuple(w[:-1] if w.endswith("s") else w for w in name_words(name))
    return any(have[i:i + k] in _FORBIDDEN for k in _FORBIDDEN_LENGTHS for i in range(len(have) - k + 1))


@dataclass(eq=False)
class Column:
    name: str                       # as the schema spells it (styled)
    role: str                       # pk | fk | label | attr
    kind: str                       # the attribute's kind; keys: "key" (integer) or "code" (text)
    sql_type: str
    attr: Attr | None = None
    parent: "Table | None" = None   # fk: the table it references

    @property
    def nullable(self) -> bool:
        return bool(self.attr and self.attr.nullable and self.role == "attr")


@dataclass(eq=False)
class Table:
    name: str
    domain: Domain
    entity: Entity | None           # None for a bridge table
    bridge: Bridge | None = None
    columns: list[Column] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    distractor: bool = False
    pk: Column | None = None
    composite_pk: tuple[Column, ...] = ()

    @property
    def label(self) -> Column | None:
        return next((c for c in self.columns if c.role == "label"), None)

    @property
    def person(self) -> bool:
        return bool(self.label and self.label.kind == "person")

    def attrs(self, *kinds: str, label: bool = False) -> list[Column]:
        """Attribute columns (of these kinds), the label too when asked."""
        roles = ("attr", "label") if label else ("attr",)
        return [c for c in self.columns if c.role in roles and (not kinds or c.kind in kinds)]

    def values(self, col: Column) -> list:
        return [r[col.name] for r in self.rows]


@dataclass(eq=False)
class Link:
    """child.fk references parent's key (a relation, or one end of a bridge table)."""
    child: Table
    fk: Column
    parent: Table
    relation: Relation | None = None
    bridge: Bridge | None = None


@dataclass(eq=False)
class Schema:
    domain: Domain
    tables: list[Table]
    links: list[Link]
    style: Style
    pk_style: str
    inline_fk: bool = True
    not_null_labels: bool = False

    def table_of(self, entity_key: str) -> Table | None:
        return next((t for t in self.tables if t.entity and t.entity.key == entity_key and not t.distractor), None)

    @property
    def main(self) -> list[Table]:
        """The question's domain's tables (not the distractors), bridges included."""
        return [t for t in self.tables if not t.distractor]

    @property
    def entities(self) -> list[Table]:
        return [t for t in self.main if t.entity]

    def parents(self, t: Table) -> list[Link]:
        return [lk for lk in self.links if lk.child is t and lk.relation]

    def children(self, t: Table) -> list[Link]:
        return [lk for lk in self.links if lk.parent is t and lk.relation and not lk.child.distractor]

    def bridges(self) -> list[Table]:
        return [t for t in self.main if t.bridge]

    def ends(self, bridge: Table) -> tuple[Link, Link]:
        a, b = (lk for lk in self.links if lk.child is bridge)
        return a, b

    def names(self) -> tuple:
        """What makes two schemas the same: every table name with its column names."""
        return tuple(sorted((t.name, tuple(sorted(c.name for c in t.columns))) for t in self.tables))

    def render(self, reverse: bool = False) -> str:
        parts = [self._create(t) for t in self.tables]
        for t in self.tables:
            rows = t.rows[::-1] if reverse else t.rows
            cols = ", ".join(quoted(c.name) for c in t.columns)
            values = ", ".join("(" + ", ".join(lit(r[c.name]) for c in t.columns) + ")" for r in rows)
            parts.append(f"INSERT INTO {quoted(t.name)} ({cols}) VALUES {values};")
        return "\n".join(parts)

    def _create(self, t: Table) -> str:
        defs, tail = [], []
        for c in t.columns:
            d = f"{quoted(c.name)} {c.sql_type}"
            if c is t.pk:
                d += " PRIMARY KEY"
            elif c.role == "label" and self.not_null_labels:
                d += " NOT NULL"
            if c.parent is not None:
                ref = f"REFERENCES {quoted(c.parent.name)}({quoted(c.parent.pk.name)})"
                if self.inline_fk:
                    d += " " + ref
                else:
                    tail.append(f"FOREIGN KEY ({quoted(c.name)}) {ref}")
            defs.append(d)
        if t.composite_pk:
            tail.insert(0, f"PRIMARY KEY ({', '.join(quoted(c.name) for c in t.composite_pk)})")
        return f"CREATE TABLE {quoted(t.name)} ({', '.join(defs + tail)});"


def lit(v) -> str:
    """A value as a SQL literal."""
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ------------------------------------------------------------------------------------------- choosing entities
def _neighbours(d: Domain) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {e.key: [] for e in d.entities}
    for r in d.relations:
        out[r.child].append(r.parent)
        out[r.parent].append(r.child)
    for b in d.bridges:
        out[b.a].append(b.b)
        out[b.b].append(b.a)
    return out


def connected_subset(d: Domain, k: int, rng: random.Random) -> list[Entity]:
    """k entities of d (fewer if its graph is smaller) that the relations and bridges connect."""
    nb = _neighbours(d)
    by_key = {e.key: e for e in d.entities}
    chosen = [rng.choice(d.entities).key]
    while len(chosen) < k:
        frontier = list(dict.fromkeys(n for c in chosen for n in nb[c] if n not in chosen))
        if not frontier:
            break
        chosen.append(rng.choice(frontier))
    return [by_key[c] for c in chosen]


def nouns(e: Entity) -> set[str]:
    """The words that name an entity's rows in questions."""
    return {e.noun.lower(), e.plural.lower()} | {x.lower() for x in e.synonyms}


def _parents_first(entities: list[Entity], relations: tuple[Relation, ...]) -> list[Entity]:
    keys = [e.key for e in entities]
    out: list[Entity] = []
    pending = list(entities)
    while pending:
        for e in pending:
            parents = [r.parent for r in relations if r.child == e.key and r.parent in keys and r.parent != e.key]
            if all(p in [o.key for o in out] for p in parents):
                out.append(e)
                pending.remove(e)
                break
        else:                                  # a cycle of relations: keep the rest as they come
            out += pending
            break
    return out


# -------------------------------------------------------------------------------------------------- naming
class _Namer:
    """Picks names (canonical or alternative), styled, never a yardstick's word, unique in their scope."""

    def __init__(self, style: Style, rng: random.Random):
        self.style, self.rng = style, rng

    def pick(self, canonical: str, alts: tuple[str, ...], taken: set[str], table: bool = False,
             canonical_share: float = CANONICAL_SHARE) -> str | None:
        order = [canonical] + list(alts) if (not alts or self.rng.random() < canonical_share) else \
            [self.rng.choice(alts), canonical] + list(alts)
        for n in dict.fromkeys(order):
            styled = self.style.table(n) if table else self.style.column(n)
            if styled.lower() not in taken and not forbidden(styled) and not forbidden(n):
                taken.add(styled.lower())
                return styled
        return None

    def raw(self, name: str, taken: set[str]) -> str | None:
        if name.lower() in taken or forbidden(name):
            return None
        taken.add(name.lower())
        return name


def _snake(noun: str) -> str:
    return "_".join(w for w in noun.lower().replace("-", " ").split() if w.isalnum()) or "item"


def _pascal(noun: str) -> str:
    return "".join(w.title() for w in _snake(noun).split("_"))


@dataclass
class _Types:
    lite: bool

    def of(self, kind: str) -> str:
        if self.lite:
            return {"label": "TEXT", "person": "TEXT", "text": "TEXT", "cat": "TEXT", "int": "INTEGER",
                    "real": "REAL", "money": "REAL", "date": "DATE", "year": "INTEGER", "bool": "INTEGER",
                    "key": "INTEGER", "code": "TEXT"}[kind]
        return {"label": "VARCHAR(80)", "person": "VARCHAR(60)", "text": "VARCHAR(100)", "cat": "VARCHAR(30)",
                "int": "INT", "real": "DECIMAL(8,2)", "money": "DECIMAL(12,2)", "date": "DATE", "year": "INT",
                "bool": "BOOLEAN", "key": "INT", "code": "VARCHAR(12)"}[kind]


# ---------------------------------------------------------------------------------------------- values
def _unique_or_not(draw, n: int, room: int, rng: random.Random) -> list:
    if room < 2 * n:
        return [draw() for _ in range(n)]
    out: dict = {}
    while len(out) < n:
        out[draw()] = None
    return list(out)


def draw_values(a: Attr, n: int, rng: random.Random) -> list:
    """n values of attribute a, as a table would store them (NULLs not included)."""
    k = a.kind
    lo, hi = a.lo, a.hi
    if k == "label":
        return rng.sample(list(a.values), n)
    if k == "person":
        return rng.sample(list(a.values), n) if len(a.values) >= n else people(rng, n)
    if k in ("text", "cat"):
        return [rng.choice(a.values) for _ in range(n)]
    if k == "bool":
        return [rng.randint(0, 1) for _ in range(n)]
    if k in ("int", "year"):
        lo, hi = int(lo), int(hi)
        return _unique_or_not(lambda: rng.randint(lo, hi), n, hi - lo + 1, rng)
    if k == "real":
        step = 0.1 if hi - lo <= 1000 else 1.0
        room = int((hi - lo) / step)
        return _unique_or_not(lambda: round(lo + step * rng.randint(0, room), 1), n, room, rng)
    if k == "money":
        if hi <= 1000:
            room = int((hi - lo) * 100)
            return _unique_or_not(lambda: round(lo + rng.randint(0, room) / 100, 2), n, room, rng)
        step = 1 if hi <= 20000 else (10 if hi <= 200000 else 100)
        room = int((hi - lo) / step)
        return _unique_or_not(lambda: int(lo + step * rng.randint(0, room)), n, room, rng)
    if k == "date":
        start = datetime.date(int(lo) if lo else 2015, 1, 1)
        end = datetime.date(int(hi) if hi else 2024, 12, 31)
        span = (end - start).days
        return _unique_or_not(lambda: (start + datetime.timedelta(days=rng.randint(0, span))).isoformat(), n, span,
                              rng)
    raise ValueError(f"attribute {a.name}: unknown kind {k!r}")


# ---------------------------------------------------------------------------------------------- building
def _pk_name(style_name: str, noun: str, s: Style) -> str:
    if style_name == "id":
        return s.column("id")
    if style_name == "code":
        return s.column("code")
    if style_name == "NounID" and s.name in ("pascal", "camel"):
        p = _pascal(noun) + "ID"
        return p if s.name == "pascal" else p[0].lower() + p[1:]
    return s.column(_snake(noun) + "_id")


def _entity_table(e: Entity, d: Domain, namer: _Namer, types: _Types, pk_style: str, taken_tables: set[str],
                  distractor: bool, rng: random.Random) -> Table | None:
    name = namer.pick(e.table_names[0], tuple(e.table_names[1:]), taken_tables, table=True)
    if name is None:
        return None
    t = Table(name, d, e, distractor=distractor)
    taken: set[str] = set()
    pk_kind = "code" if pk_style == "code" else "key"
    t.pk = Column(_pk_name(pk_style, e.noun, namer.style), "pk", pk_kind, types.of(pk_kind))
    if forbidden(t.pk.name):
        t.pk.name = namer.style.column("id")
    taken.add(t.pk.name.lower())
    label_name = namer.pick(e.label.name, e.label.alt_names, taken) or namer.raw(_snake(e.noun) + "_name", taken)
    if label_name is None:
        return None
    label = Column(label_name, "label", e.label.kind, types.of(e.label.kind), e.label)
    share = rng.uniform(0.6, 1.0)
    keep = [a for a in e.attrs if rng.random() < share] or list(e.attrs[:3])
    rng.shuffle(keep)
    attrs = []
    for a in keep:
        if a.kind not in ("label", "person", "text", "cat", "int", "real", "money", "date", "year", "bool"):
            continue
        if a.kind in ("label", "person", "text", "cat") and not a.values and a.kind != "person":
            continue
        n = namer.pick(a.name, a.alt_names, taken)
        if n is not None:
            attrs.append(Column(n, "attr", a.kind, types.of(a.kind), a))
    t.columns = [t.pk, label] + attrs
    return t


def _add_fk(child: Table, parent: Table, names: tuple[str, ...], namer: _Namer, rng: random.Random,
            pk_style: str) -> Column | None:
    taken = {c.name.lower() for c in child.columns}
    default = _snake(parent.entity.noun) + "_id"
    options = list(names) or [default]
    first = options[0] if rng.random() < 0.5 else rng.choice(options)
    order = [first] + options + [default]
    if pk_style != "id" and rng.random() < 0.4:           # the key's own name, as many schemas do
        order.insert(0, parent.pk.name)
    col = None
    for n in dict.fromkeys(order):
        styled = n if n == parent.pk.name else namer.style.column(n)
        if styled.lower() not in taken and not forbidden(styled):
            col = Column(styled, "fk", parent.pk.kind, parent.pk.sql_type, parent=parent)
            break
    if col is None:
        return None
    # a foreign key sits right after the label or among the attributes, as real tables have them
    pos = rng.choice([2] + list(range(2, len(child.columns) + 1)))
    child.columns.insert(min(pos, len(child.columns)), col)
    return col


def _fill_rows(t: Table, n: int, rng: random.Random) -> None:
    cols = {}
    for c in t.columns:
        if c.role in ("label", "attr"):
            vals = draw_values(c.attr, n, rng)
            if c.role == "attr" and c.attr.nullable:
                vals = [None if rng.random() < c.attr.nullable else v for v in vals]
            cols[c.name] = vals
    t.rows = [{c: cols[c][i] for c in cols} for i in range(n)]


def _pk_values(t: Table, n: int, rng: random.Random) -> list:
    if t.pk.kind == "code":
        stem = "".join(ch for ch in (t.entity.noun if t.entity else t.name).upper() if ch.isalpha())[:3] or "K"
        return [f"{stem}{i:02d}" for i in range(1, n + 1)]
    start = rng.choice((1, 1, 1, 101, 1001))
    return list(range(start, start + n))


def _row_count(e: Entity, is_parent: bool, rng: random.Random) -> int:
    n = rng.randint(4, 8) if is_parent else rng.randint(5, 12)
    if e.label.kind == "label":
        n = min(n, len(e.label.values))
    return max(n, 1)


def build_schema(d: Domain, rng: random.Random, others: list[Domain] = (), size: int | None = None) -> Schema:
    """A schema about d: a connected set of its entities (with their relations and bridges), and often a few
    tables of another domain."""
    style = Style.pick(rng)
    pk_style = rng.choices([p for p, _ in PK_STYLES], [w for _, w in PK_STYLES])[0]
    types = _Types(lite=rng.random() < 0.5)
    namer = _Namer(style, rng)
    k = size or rng.choices(SIZES, SIZE_WEIGHTS)[0]
    ents = _parents_first(connected_subset(d, k, rng), d.relations)
    groups = [(d, ents, False)]
    if others and rng.random() < DISTRACTOR_SHARE and len(ents) < MAX_TABLES - 1:
        od = rng.choice(others)
        extra = _parents_first(connected_subset(od, rng.randint(1, min(3, MAX_TABLES - len(ents) - 1)), rng),
                               od.relations)
        ours = {w for e in ents for w in nouns(e)}
        extra = [e for e in extra if not nouns(e) & ours]        # a question's noun must name one table
        if extra:
            groups.insert(rng.randint(0, 1), (od, extra, True))
    taken_tables: set[str] = set()
    tables: list[Table] = []
    links: list[Link] = []
    for dom, es, distractor in groups:
        by_key: dict[str, Table] = {}
        for e in es:
            t = _entity_table(e, dom, namer, types, pk_style, taken_tables, distractor, rng)
            if t is not None:
                by_key[e.key] = t
        parent_keys = {r.parent for r in dom.relations if r.child in by_key and r.parent in by_key}
        for e in es:
            t = by_key.get(e.key)
            if t is None:
                continue
            for r in dom.relations:
                if r.child == e.key and r.parent in by_key:
                    fk = _add_fk(t, by_key[r.parent], r.fk_names, namer, rng, pk_style)
                    if fk is not None:
                        links.append(Link(t, fk, by_key[r.parent], relation=r))
        group_tables = [by_key[e.key] for e in es if e.key in by_key]
        for t in group_tables:
            n = _row_count(t.entity, t.entity.key in parent_keys, rng)
            _fill_rows(t, n, rng)
            for r, pkv in zip(t.rows, _pk_values(t, n, rng)):
                r[t.pk.name] = pkv
        for b in dom.bridges:
            if b.a in by_key and b.b in by_key and rng.random() < 0.85:
                bt = _bridge_table(b, dom, by_key[b.a], by_key[b.b], namer, types, taken_tables, distractor, rng)
                if bt is not None:
                    group_tables.append(bt)
                    fa, fb = [c for c in bt.columns if c.role == "fk"]
                    links += [Link(bt, fa, by_key[b.a], bridge=b), Link(bt, fb, by_key[b.b], bridge=b)]
        for lk in links:
            if lk.relation and lk.child in group_tables:
                parent_keys_vals = [r[lk.parent.pk.name] for r in lk.parent.rows]
                for r in lk.child.rows:
                    r[lk.fk.name] = rng.choice(parent_keys_vals)
        tables += group_tables
    s = Schema(d, tables, links, style, pk_style, inline_fk=rng.random() < 0.65, not_null_labels=rng.random() < 0.3)
    for t in s.tables:        # rows keyed in column order (INSERT lists follow it)
        t.rows = [{c.name: r.get(c.name) for c in t.columns} for r in t.rows]
    return s


def _bridge_table(b: Bridge, d: Domain, ta: Table, tb: Table, namer: _Namer, types: _Types, taken_tables: set[str],
                  distractor: bool, rng: random.Random) -> Table | None:
    if not b.table_names:
        return None
    name = namer.pick(b.table_names[0], tuple(b.table_names[1:]), taken_tables, table=True)
    if name is None:
        return None
    t = Table(name, d, None, bridge=b, distractor=distractor)
    taken: set[str] = set()
    ends = []
    for parent in (ta, tb):
        base = parent.pk.name if parent.pk.name.lower() not in ("id", "code") else \
            namer.style.column(_snake(parent.entity.noun) + "_id")
        n = namer.raw(base, taken) or namer.raw(namer.style.column(_snake(parent.entity.key) + "_id"), taken)
        if n is None:
            return None
        ends.append(Column(n, "fk", parent.pk.kind, parent.pk.sql_type, parent=parent))
    t.columns = list(ends)
    for a in b.attrs:
        n = namer.pick(a.name, a.alt_names, taken)
        if n is not None and (a.values or a.kind not in ("label", "text", "cat")):
            t.columns.append(Column(n, "attr", a.kind, types.of(a.kind), a))
    if rng.random() < 0.4:
        pk_name = namer.raw(namer.style.column("id"), taken)
        if pk_name:
            t.pk = Column(pk_name, "pk", "key", types.of("key"))
            t.columns.insert(0, t.pk)
    if t.pk is None:
        t.composite_pk = tuple(ends)
    pairs = [(x[ta.pk.name], y[tb.pk.name]) for x in ta.rows for y in tb.rows]
    n = min(len(pairs), rng.randint(4, 12))
    chosen = rng.sample(pairs, n)
    _fill_rows(t, n, rng)
    for i, (r, (x, y)) in enumerate(zip(t.rows, chosen)):
        r[ends[0].name], r[ends[1].name] = x, y
        if t.pk is not None:
            r[t.pk.name] = i + 1
    return t
