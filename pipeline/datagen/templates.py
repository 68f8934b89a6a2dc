"""SQL templates of the bundled dataset, one function per (sql_complexity, sql_task_type) pattern.

Each template gets a `Ctx` (a domain, its freshly generated rows, a seeded RNG) and returns a `Case`: the
SQL, several natural phrasings of the question, an explanation and the tables the context needs.
Parameters are always drawn from the generated rows, so filters match something; pipeline/datagen/
generate.py then verifies every case on SQLite and drops those that are empty or non-deterministic.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from pipeline.datagen.domains import Domain, Table


@dataclass
class Case:
    sql: str
    questions: list[str]
    explanation: str
    tables: tuple[str, ...]          # subset of ("g", "e", "v") in dependency order


@dataclass
class Template:
    name: str
    complexity: str
    task_type: str
    weight: float
    build: Callable[["Ctx"], Case]


@dataclass
class Ctx:
    d: Domain
    rng: random.Random
    rows: dict[str, list[dict]] = field(default_factory=dict)

    # --- helpers over the generated rows -------------------------------------------------------------
    @property
    def g(self) -> Table:
        return self.d.group

    @property
    def e(self) -> Table:
        return self.d.entity

    @property
    def v(self) -> Table:
        return self.d.event

    def table(self, key: str) -> Table:
        return {"g": self.g, "e": self.e, "v": self.v}[key]

    def value(self, key: str, col: str):
        return self.rng.choice(self.rows[key])[col]

    def two_values(self, key: str, col: str):
        vals = sorted({r[col] for r in self.rows[key]})
        if len(vals) < 2:
            raise ValueError(f"{key}.{col} has a single value")  # the generator redraws
        a, b = self.rng.sample(vals, 2)
        return a, b

    def threshold(self, key: str, col: str, above: bool = True):
        """A round-ish cut such that at least one row is beyond it and at least one is not."""
        vals = sorted(r[col] for r in self.rows[key])
        i = self.rng.randrange(1, len(vals)) if len(vals) > 1 else 0
        cut = (vals[i - 1] + vals[i]) / 2 if len(vals) > 1 else vals[0]
        t = self.table(key)
        return int(cut) if t.num_int or cut > 100 else round(cut, 1)

    def date_cut(self, key: str, col: str) -> str:
        vals = sorted(r[col] for r in self.rows[key])
        return vals[self.rng.randrange(1, len(vals))] if len(vals) > 1 else vals[0]

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)


def q(v) -> str:
    """SQL literal."""
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v) if isinstance(v, float) else str(v)


TEMPLATES: list[Template] = []


def template(complexity: str, task_type: str, weight: float = 1.0):
    def deco(fn: Callable[[Ctx], Case]) -> Callable[[Ctx], Case]:
        TEMPLATES.append(Template(fn.__name__, complexity, task_type, weight, fn))
        return fn
    return deco


BASIC, AGG, JOIN1, JOINS = "basic SQL", "aggregation", "single join", "multiple joins"
SUBQ, WIN, SETOP, CTE = "subqueries", "window functions", "set operations", "CTEs"
ANALYTICS, RETRIEVAL, DML, DDL = "analytics and reporting", "data retrieval", "data manipulation", "data definition"


# ===================================================================================== basic SQL
@template(BASIC, RETRIEVAL, 1.2)
def filter_by_category(c: Ctx) -> Case:
    e = c.e
    x = c.value("e", e.cat_col)
    sql = f"SELECT {e.label_col} FROM {e.name} WHERE {e.cat_col} = {q(x)};"
    return Case(sql, [
        f"List the {e.label_col} of every {e.noun} whose {e.cat_col.replace('_', ' ')} is {x}.",
        f"Which {e.plural} have {e.cat_col.replace('_', ' ')} '{x}'? Give their {e.label_col}.",
        f"Show the {e.label_col} of all {x} {e.plural}.",
        f"Find {e.plural} in the {x} {e.cat_col.replace('_', ' ')} and return their {e.label_col}.",
    ], f"Selects the {e.label_col} column from {e.name}, keeping rows whose {e.cat_col} equals '{x}'.", ("e",))


@template(BASIC, RETRIEVAL, 1.2)
def filter_numeric_sorted(c: Ctx) -> Case:
    e = c.e
    t = c.threshold("e", e.num_col)
    sql = f"SELECT {e.label_col}, {e.num_col} FROM {e.name} WHERE {e.num_col} > {t} ORDER BY {e.num_col} DESC;"
    return Case(sql, [
        f"Which {e.plural} have a {e.num_word} above {t}? Show {e.label_col} and {e.num_word}, highest first.",
        f"List {e.plural} with {e.num_word} greater than {t}, sorted from highest to lowest {e.num_word}.",
        f"Show the {e.label_col} and {e.num_col} of {e.plural} whose {e.num_word} exceeds {t}, in descending order.",
    ], f"Filters {e.name} to rows with {e.num_col} > {t} and sorts them by {e.num_col} descending.", ("e",))


@template(BASIC, RETRIEVAL)
def filter_date(c: Ctx) -> Case:
    v = c.v
    d = c.date_cut("v", v.date_col)
    sql = f"SELECT * FROM {v.name} WHERE {v.date_col} >= {q(d)};"
    return Case(sql, [
        f"Show all {v.plural} on or after {d}.",
        f"List every {v.noun} with a {v.date_word} of {d} or later.",
        f"Retrieve the {v.plural} recorded since {d}.",
    ], f"Returns every column of {v.name} for rows whose {v.date_col} is on or after {d}.", ("v",))


@template(BASIC, RETRIEVAL)
def top_n(c: Ctx) -> Case:
    e = c.e
    n = c.rng.choice([1, 2, 3])
    low = c.rng.random() < 0.3
    order, word = ("ASC", "lowest") if low else ("DESC", "highest")
    sql = f"SELECT {e.label_col}, {e.num_col} FROM {e.name} ORDER BY {e.num_col} {order} LIMIT {n};"
    what = f"the {e.noun}" if n == 1 else f"the {n} {e.plural}"
    return Case(sql, [
        f"What are {what} with the {word} {e.num_word}?",
        f"Show {what} with the {word} {e.num_word}, with their {e.num_word}.",
        f"Top {n} {e.plural} by {e.num_word} ({word} first).",
    ], f"Sorts {e.name} by {e.num_col} {order.lower()}ending and keeps the first {n} row(s).", ("e",))


@template(BASIC, RETRIEVAL, 0.8)
def in_and_between(c: Ctx) -> Case:
    e = c.e
    a, b = c.two_values("e", e.cat_col)
    nums = sorted(r[e.num_col] for r in c.rows["e"])
    lo, hi = nums[0], nums[-1]
    sql = (f"SELECT {e.label_col} FROM {e.name} WHERE {e.cat_col} IN ({q(a)}, {q(b)}) "
           f"AND {e.num_col} BETWEEN {q(lo)} AND {q(hi)};")
    return Case(sql, [
        f"List the {e.plural} whose {e.cat_col.replace('_', ' ')} is {a} or {b} and whose {e.num_word} is between {lo} and {hi}.",
        f"Which {a} or {b} {e.plural} have a {e.num_word} from {lo} to {hi}?",
    ], f"Keeps {e.name} rows whose {e.cat_col} is '{a}' or '{b}' and whose {e.num_col} lies in [{lo}, {hi}].", ("e",))


@template(BASIC, RETRIEVAL, 0.6)
def distinct_values(c: Ctx) -> Case:
    v = c.v
    sql = f"SELECT DISTINCT {v.cat_col} FROM {v.name};"
    return Case(sql, [
        f"What distinct {v.cat_col.replace('_', ' ')} values appear in the {v.plural}?",
        f"List each {v.cat_col.replace('_', ' ')} used by {v.plural}, without duplicates.",
    ], f"Returns the unique values of {v.cat_col} in {v.name}.", ("v",))


@template(BASIC, DML)
def insert_row(c: Ctx) -> Case:
    e = c.e
    new_id = max(r["id"] for r in c.rows["e"]) + 1
    label = c.rng.choice([x for x in e.labels if x not in {r[e.label_col] for r in c.rows["e"]}] or [f"New {e.noun}"])
    gid = c.value("e", c.d.fk_entity)
    cat = c.rng.choice(e.cats)
    num = _rand_num(c.rng, e)
    date = _rand_date(c.rng)
    cols = f"id, {e.label_col}, {c.d.fk_entity}, {e.cat_col}, {e.num_col}, {e.date_col}"
    sql = f"INSERT INTO {e.name} ({cols}) VALUES ({new_id}, {q(label)}, {gid}, {q(cat)}, {q(num)}, {q(date)});"
    return Case(sql, [
        f"Add a new {e.noun} with id {new_id}, {e.label_col} '{label}', {c.g.noun} id {gid}, {e.cat_col.replace('_', ' ')} '{cat}', {e.num_word} {num} and {e.date_word} {date}.",
        f"Insert {e.noun} {new_id} ('{label}') into {e.name}: {c.g.noun} {gid}, {cat}, {e.num_word} {num}, {e.date_word} {date}.",
    ], f"Inserts one row into {e.name} with the given values.", ("e",))


@template(BASIC, DML)
def update_percent(c: Ctx) -> Case:
    e = c.e
    x = c.value("e", e.cat_col)
    pct = c.rng.choice([5, 10, 15, 20])
    sql = f"UPDATE {e.name} SET {e.num_col} = {e.num_col} * {1 + pct / 100:.2f} WHERE {e.cat_col} = {q(x)};"
    return Case(sql, [
        f"Increase the {e.num_word} of all {x} {e.plural} by {pct}%.",
        f"Raise {e.num_col} by {pct} percent for {e.plural} whose {e.cat_col.replace('_', ' ')} is {x}.",
    ], f"Multiplies {e.num_col} by {1 + pct / 100:.2f} for rows of {e.name} with {e.cat_col} = '{x}'.", ("e",))


@template(BASIC, DML)
def update_by_label(c: Ctx) -> Case:
    e = c.e
    row = c.rng.choice(c.rows["e"])
    new = c.rng.choice([x for x in e.cats if x != row[e.cat_col]])
    sql = f"UPDATE {e.name} SET {e.cat_col} = {q(new)} WHERE {e.label_col} = {q(row[e.label_col])};"
    return Case(sql, [
        f"Change the {e.cat_col.replace('_', ' ')} of {e.noun} '{row[e.label_col]}' to {new}.",
        f"Set {e.cat_col} to '{new}' for the {e.noun} with {e.label_col} '{row[e.label_col]}'.",
    ], f"Updates {e.cat_col} to '{new}' for the {e.name} row whose {e.label_col} is '{row[e.label_col]}'.", ("e",))


@template(BASIC, DML)
def delete_before(c: Ctx) -> Case:
    v = c.v
    d = c.date_cut("v", v.date_col)
    sql = f"DELETE FROM {v.name} WHERE {v.date_col} < {q(d)};"
    return Case(sql, [
        f"Delete all {v.plural} dated before {d}.",
        f"Remove {v.plural} whose {v.date_word} is earlier than {d}.",
    ], f"Deletes rows of {v.name} with {v.date_col} before {d}.", ("v",))


@template(BASIC, DDL, 0.6)
def create_table(c: Ctx) -> Case:
    e = c.e
    name = f"{e.name}_notes"
    sql = (f"CREATE TABLE {name} (id INT PRIMARY KEY, {c.d.fk_event} INT, note_date DATE, note VARCHAR(255), "
           f"FOREIGN KEY ({c.d.fk_event}) REFERENCES {e.name}(id));")
    return Case(sql, [
        f"Create a table {name} to store dated notes about each {e.noun} (id, {c.d.fk_event}, note_date, note).",
        f"Define a new table {name} with an id, a reference to {e.name}, a date and a note text.",
    ], f"Creates {name} with a foreign key {c.d.fk_event} referencing {e.name}(id).", ("e",))


@template(BASIC, DDL, 0.5)
def add_column(c: Ctx) -> Case:
    e = c.e
    col = c.rng.choice(["notes", "is_active", "email", "rating", "last_review_date"])
    typ = {"notes": "TEXT", "is_active": "BOOLEAN", "email": "VARCHAR(100)", "rating": "DECIMAL(3,1)",
           "last_review_date": "DATE"}[col]
    sql = f"ALTER TABLE {e.name} ADD COLUMN {col} {typ};"
    return Case(sql, [
        f"Add a {col.replace('_', ' ')} column of type {typ} to the {e.name} table.",
        f"Alter {e.name} to include a new {typ} column named {col}.",
    ], f"Adds the column {col} ({typ}) to {e.name}.", ("e",))


@template(BASIC, DDL, 0.4)
def create_index(c: Ctx) -> Case:
    v = c.v
    sql = f"CREATE INDEX idx_{v.name}_{v.date_col} ON {v.name} ({v.date_col});"
    return Case(sql, [
        f"Create an index on the {v.date_col} column of {v.name}.",
        f"Speed up lookups of {v.plural} by {v.date_word}: add an index.",
    ], f"Creates an index on {v.name}({v.date_col}).", ("v",))


@template(BASIC, DDL, 0.5)
def create_view(c: Ctx) -> Case:
    e = c.e
    t = c.threshold("e", e.num_col)
    name = f"high_{e.num_col}_{e.name}"
    sql = f"CREATE VIEW {name} AS SELECT {e.label_col}, {e.num_col} FROM {e.name} WHERE {e.num_col} > {t};"
    return Case(sql, [
        f"Create a view {name} listing {e.plural} with a {e.num_word} over {t}.",
        f"Define a view named {name} that shows the {e.label_col} and {e.num_word} of {e.plural} above {t}.",
    ], f"Creates a view over {e.name} keeping rows with {e.num_col} > {t}.", ("e",))


# ====================================================================================== aggregation
def _count_equal(c: Ctx, phrasings, explanation: str) -> Case:
    """COUNT(*) of one table's rows with a category value; `phrasings(e, x, attr)` -> the questions."""
    e = c.e
    x = c.value("e", e.cat_col)
    sql = f"SELECT COUNT(*) FROM {e.name} WHERE {e.cat_col} = {q(x)};"
    return Case(sql, phrasings(e, x, e.cat_col.replace('_', ' ')), explanation.format(t=e.name, col=e.cat_col, x=x),
                ("e",))


@template(AGG, ANALYTICS, 1.2)
def count_by_category(c: Ctx) -> Case:
    return _count_equal(c, lambda e, x, attr: [
        f"How many {e.plural} have {attr} {x}?",
        f"Count the {x} {e.plural}.",
        f"What is the number of {e.plural} whose {attr} is '{x}'?",
    ], "Counts the rows of {t} with {col} = '{x}'.")


@template(AGG, ANALYTICS, 1.2)
def avg_group_by(c: Ctx) -> Case:
    e = c.e
    sql = f"SELECT {e.cat_col}, AVG({e.num_col}) AS avg_{e.num_col} FROM {e.name} GROUP BY {e.cat_col};"
    return Case(sql, [
        f"What is the average {e.num_word} of {e.plural} for each {e.cat_col.replace('_', ' ')}?",
        f"Show the mean {e.num_word} per {e.cat_col.replace('_', ' ')}.",
        f"For every {e.cat_col.replace('_', ' ')}, compute the average {e.num_col} of {e.plural}.",
    ], f"Groups {e.name} by {e.cat_col} and averages {e.num_col} in each group.", ("e",))


@template(AGG, ANALYTICS)
def sum_filtered(c: Ctx) -> Case:
    v = c.v
    x = c.value("v", v.cat_col)
    sql = f"SELECT SUM({v.num_col}) FROM {v.name} WHERE {v.cat_col} = {q(x)};"
    return Case(sql, [
        f"What is the total {v.num_word} of {x} {v.plural}?",
        f"Sum the {v.num_col} over all {v.plural} whose {v.cat_col.replace('_', ' ')} is {x}.",
        f"Total {v.num_word} for {v.plural} with {v.cat_col.replace('_', ' ')} '{x}'?",
    ], f"Adds up {v.num_col} over rows of {v.name} with {v.cat_col} = '{x}'.", ("v",))


@template(AGG, ANALYTICS)
def min_max_per_group(c: Ctx) -> Case:
    v = c.v
    fn, word = c.rng.choice([("MAX", "highest"), ("MIN", "lowest")])
    sql = f"SELECT {v.cat_col}, {fn}({v.num_col}) FROM {v.name} GROUP BY {v.cat_col};"
    return Case(sql, [
        f"What is the {word} {v.num_word} for each {v.cat_col.replace('_', ' ')} of {v.plural}?",
        f"Show the {word} {v.num_col} per {v.cat_col.replace('_', ' ')}.",
    ], f"Groups {v.name} by {v.cat_col} and takes the {fn} of {v.num_col}.", ("v",))


@template(AGG, ANALYTICS)
def having_count(c: Ctx) -> Case:
    v = c.v
    counts: dict = {}
    for r in c.rows["v"]:
        counts[r[c.d.fk_event]] = counts.get(r[c.d.fk_event], 0) + 1
    k = c.rng.choice(sorted(set(counts.values())))
    k = max(1, k - 1)
    sql = (f"SELECT {c.d.fk_event}, COUNT(*) AS {v.name}_count FROM {v.name} GROUP BY {c.d.fk_event} "
           f"HAVING COUNT(*) > {k};")
    return Case(sql, [
        f"Which {c.e.plural} have more than {k} {v.plural}? Show the {c.e.noun} id and the count.",
        f"List {c.d.fk_event} values with over {k} {v.plural}, with how many each has.",
    ], f"Counts {v.name} rows per {c.d.fk_event} and keeps groups with more than {k}.", ("v",))


@template(AGG, ANALYTICS)
def count_per_year(c: Ctx) -> Case:
    v = c.v
    sql = (f"SELECT strftime('%Y', {v.date_col}) AS year, COUNT(*) FROM {v.name} "
           f"GROUP BY strftime('%Y', {v.date_col}) ORDER BY year;")
    return Case(sql, [
        f"How many {v.plural} were there each year?",
        f"Count {v.plural} per year of {v.date_word}, in chronological order.",
    ], f"Extracts the year of {v.date_col}, counts {v.name} rows per year and orders by year.", ("v",))


@template(AGG, ANALYTICS, 0.8)
def avg_in_year(c: Ctx) -> Case:
    v = c.v
    year = c.value("v", v.date_col)[:4]
    sql = f"SELECT AVG({v.num_col}) FROM {v.name} WHERE {v.date_col} BETWEEN '{year}-01-01' AND '{year}-12-31';"
    return Case(sql, [
        f"What was the average {v.num_word} of {v.plural} in {year}?",
        f"Average {v.num_col} for {v.plural} during {year}?",
    ], f"Averages {v.num_col} over {v.name} rows dated within {year}.", ("v",))


# ===================================================================================== single join
@template(JOIN1, RETRIEVAL)
def join_group_name(c: Ctx) -> Case:
    e, g = c.e, c.g
    x = c.rng.choice([r for r in c.rows["g"] if any(er[c.d.fk_entity] == r["id"] for er in c.rows["e"])])["name"]
    sql = (f"SELECT e.{e.label_col} FROM {e.name} e JOIN {g.name} g ON e.{c.d.fk_entity} = g.id "
           f"WHERE g.name = {q(x)};")
    return Case(sql, [
        f"List the {e.plural} that belong to the {g.noun} '{x}'.",
        f"Which {e.plural} are in {x}? Give their {e.label_col}.",
        f"Show the {e.label_col} of every {e.noun} of {g.noun} {x}.",
    ], f"Joins {e.name} to {g.name} on {c.d.fk_entity} and keeps the {g.noun} named '{x}'.", ("g", "e"))


@template(JOIN1, ANALYTICS, 1.2)
def join_sum_per_entity(c: Ctx) -> Case:
    e, v = c.e, c.v
    sql = (f"SELECT e.{e.label_col}, SUM(v.{v.num_col}) AS total_{v.num_col} FROM {e.name} e "
           f"JOIN {v.name} v ON v.{c.d.fk_event} = e.id GROUP BY e.{e.label_col};")
    return Case(sql, [
        f"What is the total {v.num_word} of {v.plural} for each {e.noun}?",
        f"For every {e.noun}, sum the {v.num_col} of its {v.plural}.",
        f"Show each {e.noun}'s {e.label_col} with its total {v.num_word}.",
    ], f"Joins {v.name} to {e.name}, groups by {e.label_col} and sums {v.num_col}.", ("e", "v"))


@template(JOIN1, RETRIEVAL)
def join_distinct_with_event(c: Ctx) -> Case:
    e, v = c.e, c.v
    x = c.value("v", v.cat_col)
    sql = (f"SELECT DISTINCT e.{e.label_col} FROM {e.name} e JOIN {v.name} v ON v.{c.d.fk_event} = e.id "
           f"WHERE v.{v.cat_col} = {q(x)};")
    return Case(sql, [
        f"Which {e.plural} have at least one {x} {v.noun}?",
        f"List the {e.plural} with {v.plural} whose {v.cat_col.replace('_', ' ')} is {x}.",
    ], f"Joins {e.name} with {v.name} and returns distinct {e.plural} having a {v.noun} with {v.cat_col} = '{x}'.", ("e", "v"))


@template(JOIN1, ANALYTICS)
def join_count_per_category(c: Ctx) -> Case:
    e, v = c.e, c.v
    sql = (f"SELECT e.{e.cat_col}, COUNT(v.id) AS {v.name}_count FROM {e.name} e JOIN {v.name} v "
           f"ON v.{c.d.fk_event} = e.id GROUP BY e.{e.cat_col};")
    return Case(sql, [
        f"How many {v.plural} are there per {e.noun} {e.cat_col.replace('_', ' ')}?",
        f"Count {v.plural} grouped by the {e.cat_col.replace('_', ' ')} of their {e.noun}.",
    ], f"Joins {v.name} to {e.name} and counts {v.plural} per {e.cat_col}.", ("e", "v"))


# ==================================================================================== multiple joins
@template(JOINS, ANALYTICS, 1.2)
def joins_sum_per_group(c: Ctx) -> Case:
    g, e, v = c.g, c.e, c.v
    sql = (f"SELECT g.name, SUM(v.{v.num_col}) AS total_{v.num_col} FROM {g.name} g "
           f"JOIN {e.name} e ON e.{c.d.fk_entity} = g.id JOIN {v.name} v ON v.{c.d.fk_event} = e.id "
           f"GROUP BY g.name;")
    return Case(sql, [
        f"What is the total {v.num_word} of {v.plural} for each {g.noun}?",
        f"Sum the {v.num_col} of all {v.plural} per {g.noun}, going through their {e.plural}.",
        f"For each {g.noun}, how much {v.num_word} did its {e.plural}' {v.plural} add up to?",
    ], f"Joins {g.name} -> {e.name} -> {v.name}, groups by {g.noun} name and sums {v.num_col}.", ("g", "e", "v"))


@template(JOINS, RETRIEVAL)
def joins_list_filtered(c: Ctx) -> Case:
    g, e, v = c.g, c.e, c.v
    t = c.threshold("v", v.num_col)
    sql = (f"SELECT v.id, e.{e.label_col}, g.name, v.{v.num_col} FROM {v.name} v "
           f"JOIN {e.name} e ON v.{c.d.fk_event} = e.id JOIN {g.name} g ON e.{c.d.fk_entity} = g.id "
           f"WHERE v.{v.num_col} > {t};")
    return Case(sql, [
        f"List {v.plural} with a {v.num_word} over {t}, showing the {e.noun} and the {g.noun} they belong to.",
        f"Show each {v.noun} above {t} in {v.num_word} with its {e.noun}'s {e.label_col} and {g.noun} name.",
    ], f"Joins {v.name} to {e.name} and {g.name} and keeps {v.plural} with {v.num_col} > {t}.", ("g", "e", "v"))


@template(JOINS, ANALYTICS)
def joins_avg_per_group_attr(c: Ctx) -> Case:
    g, e, v = c.g, c.e, c.v
    x = c.value("v", v.cat_col)
    sql = (f"SELECT g.{g.cat_col}, AVG(v.{v.num_col}) FROM {g.name} g JOIN {e.name} e ON e.{c.d.fk_entity} = g.id "
           f"JOIN {v.name} v ON v.{c.d.fk_event} = e.id WHERE v.{v.cat_col} = {q(x)} GROUP BY g.{g.cat_col};")
    return Case(sql, [
        f"What is the average {v.num_word} of {x} {v.plural} for each {g.noun} {g.cat_col.replace('_', ' ')}?",
        f"Per {g.cat_col.replace('_', ' ')} of {g.plural}, average the {v.num_col} of {v.plural} with {v.cat_col.replace('_', ' ')} {x}.",
    ], f"Joins the three tables, keeps {v.plural} with {v.cat_col} = '{x}' and averages {v.num_col} per {g.cat_col}.", ("g", "e", "v"))


# ======================================================================================== subqueries
@template(SUBQ, RETRIEVAL, 1.2)
def above_average(c: Ctx) -> Case:
    e = c.e
    sql = f"SELECT {e.label_col}, {e.num_col} FROM {e.name} WHERE {e.num_col} > (SELECT AVG({e.num_col}) FROM {e.name});"
    return Case(sql, [
        f"Which {e.plural} have a {e.num_word} above the average?",
        f"List {e.plural} whose {e.num_word} is higher than the average {e.num_word} of all {e.plural}.",
    ], f"Compares each {e.noun}'s {e.num_col} with the average from a scalar subquery.", ("e",))


@template(SUBQ, RETRIEVAL)
def in_subquery(c: Ctx) -> Case:
    e, v = c.e, c.v
    x = c.value("v", v.cat_col)
    sql = (f"SELECT {e.label_col} FROM {e.name} WHERE id IN "
           f"(SELECT {c.d.fk_event} FROM {v.name} WHERE {v.cat_col} = {q(x)});")
    return Case(sql, [
        f"Find the {e.plural} that have any {v.noun} with {v.cat_col.replace('_', ' ')} {x}.",
        f"Which {e.plural} appear in {x} {v.plural}?",
    ], f"Keeps {e.plural} whose id is among the {c.d.fk_event} values of {x} {v.plural}.", ("e", "v"))


@template(SUBQ, RETRIEVAL)
def not_in_subquery(c: Ctx) -> Case:
    e, v = c.e, c.v
    sql = f"SELECT {e.label_col} FROM {e.name} WHERE id NOT IN (SELECT {c.d.fk_event} FROM {v.name});"
    return Case(sql, [
        f"Which {e.plural} have no {v.plural} at all?",
        f"List the {e.plural} without any {v.noun}.",
    ], f"Keeps {e.plural} whose id never appears in {v.name}.{c.d.fk_event}.", ("e", "v"))


@template(SUBQ, RETRIEVAL)
def max_subquery(c: Ctx) -> Case:
    v = c.v
    x = c.value("v", v.cat_col)
    sql = (f"SELECT * FROM {v.name} WHERE {v.cat_col} = {q(x)} AND {v.num_col} = "
           f"(SELECT MAX({v.num_col}) FROM {v.name} WHERE {v.cat_col} = {q(x)});")
    return Case(sql, [
        f"Show the {x} {v.noun} with the highest {v.num_word}.",
        f"Which {v.noun} among the {x} ones has the largest {v.num_col}?",
    ], f"Finds the maximum {v.num_col} among {x} {v.plural} in a subquery and returns that row.", ("v",))


@template(SUBQ, DML)
def update_with_subquery(c: Ctx) -> Case:
    e, v = c.e, c.v
    t = c.threshold("v", v.num_col)
    x = c.rng.choice(e.cats)
    sql = (f"UPDATE {e.name} SET {e.cat_col} = {q(x)} WHERE id IN "
           f"(SELECT {c.d.fk_event} FROM {v.name} WHERE {v.num_col} > {t});")
    return Case(sql, [
        f"Set the {e.cat_col.replace('_', ' ')} to {x} for every {e.noun} that has a {v.noun} with {v.num_word} above {t}.",
        f"Mark {e.plural} with any {v.noun} over {t} in {v.num_word} as {x}.",
    ], f"Updates {e.name}.{e.cat_col} for ids found by a subquery over {v.name} with {v.num_col} > {t}.", ("e", "v"))


@template(SUBQ, DML)
def delete_with_subquery(c: Ctx) -> Case:
    e, v = c.e, c.v
    x = c.value("e", e.cat_col)
    sql = f"DELETE FROM {v.name} WHERE {c.d.fk_event} IN (SELECT id FROM {e.name} WHERE {e.cat_col} = {q(x)});"
    return Case(sql, [
        f"Delete the {v.plural} of all {x} {e.plural}.",
        f"Remove every {v.noun} that belongs to a {e.noun} whose {e.cat_col.replace('_', ' ')} is {x}.",
    ], f"Deletes {v.name} rows whose {c.d.fk_event} points to a {x} {e.noun}.", ("e", "v"))


# ================================================================================= window functions
@template(WIN, ANALYTICS, 1.2)
def rank_within_category(c: Ctx) -> Case:
    e = c.e
    sql = (f"SELECT {e.label_col}, {e.cat_col}, {e.num_col}, RANK() OVER (PARTITION BY {e.cat_col} "
           f"ORDER BY {e.num_col} DESC) AS rnk FROM {e.name};")
    return Case(sql, [
        f"Rank the {e.plural} by {e.num_word} within each {e.cat_col.replace('_', ' ')}.",
        f"For each {e.cat_col.replace('_', ' ')}, rank {e.plural} from highest to lowest {e.num_word}.",
    ], f"Uses RANK() over partitions of {e.cat_col} ordered by {e.num_col} descending.", ("e",))


@template(WIN, ANALYTICS)
def running_total(c: Ctx) -> Case:
    v = c.v
    sql = (f"SELECT {v.date_col}, {v.num_col}, SUM({v.num_col}) OVER (ORDER BY {v.date_col}) AS running_total "
           f"FROM {v.name} ORDER BY {v.date_col};")
    return Case(sql, [
        f"Show the running total of {v.num_word} over time for {v.plural}.",
        f"List {v.plural} by {v.date_word} with a cumulative sum of {v.num_col}.",
    ], f"Computes a cumulative SUM of {v.num_col} ordered by {v.date_col}.", ("v",))


@template(WIN, ANALYTICS)
def top_per_group(c: Ctx) -> Case:
    e = c.e
    sql = (f"SELECT {e.cat_col}, {e.label_col}, {e.num_col} FROM (SELECT {e.cat_col}, {e.label_col}, {e.num_col}, "
           f"ROW_NUMBER() OVER (PARTITION BY {e.cat_col} ORDER BY {e.num_col} DESC) AS rn FROM {e.name}) t "
           f"WHERE rn = 1;")
    return Case(sql, [
        f"Which {e.noun} has the highest {e.num_word} in each {e.cat_col.replace('_', ' ')}?",
        f"For every {e.cat_col.replace('_', ' ')}, show the top {e.noun} by {e.num_word}.",
    ], f"Numbers rows per {e.cat_col} by {e.num_col} descending with ROW_NUMBER() and keeps the first.", ("e",))


@template(WIN, ANALYTICS)
def lag_difference(c: Ctx) -> Case:
    v = c.v
    sql = (f"SELECT {v.date_col}, {v.num_col}, {v.num_col} - LAG({v.num_col}) OVER (ORDER BY {v.date_col}) "
           f"AS change FROM {v.name} ORDER BY {v.date_col};")
    return Case(sql, [
        f"For each {v.noun}, how did its {v.num_word} change compared with the previous one by date?",
        f"Show {v.plural} in date order with the difference in {v.num_col} from the previous {v.noun}.",
    ], f"Uses LAG() ordered by {v.date_col} to subtract the previous {v.num_col}.", ("v",))


# =================================================================================== set operations
@template(SETOP, RETRIEVAL)
def union_two_filters(c: Ctx) -> Case:
    e = c.e
    a = c.value("e", e.cat_col)
    t = c.threshold("e", e.num_col)
    sql = (f"SELECT {e.label_col} FROM {e.name} WHERE {e.cat_col} = {q(a)} UNION "
           f"SELECT {e.label_col} FROM {e.name} WHERE {e.num_col} > {t};")
    return Case(sql, [
        f"List the {e.plural} that are {a} or have a {e.num_word} above {t}.",
        f"Combine {a} {e.plural} with {e.plural} whose {e.num_word} exceeds {t}, without duplicates.",
    ], f"UNION of {a} {e.plural} and {e.plural} with {e.num_col} > {t}.", ("e",))


@template(SETOP, RETRIEVAL)
def intersect_events(c: Ctx) -> Case:
    e, v = c.e, c.v
    a, b = c.two_values("v", v.cat_col)
    sql = (f"SELECT {c.d.fk_event} FROM {v.name} WHERE {v.cat_col} = {q(a)} INTERSECT "
           f"SELECT {c.d.fk_event} FROM {v.name} WHERE {v.cat_col} = {q(b)};")
    return Case(sql, [
        f"Which {e.noun} ids have both {a} and {b} {v.plural}?",
        f"Find {e.plural} (by id) that appear in {v.plural} of {v.cat_col.replace('_', ' ')} {a} as well as {b}.",
    ], f"INTERSECT of {c.d.fk_event} values of {a} and of {b} {v.plural}.", ("v",))


@template(SETOP, RETRIEVAL)
def except_events(c: Ctx) -> Case:
    e, v = c.e, c.v
    x = c.value("v", v.cat_col)
    sql = (f"SELECT {e.label_col} FROM {e.name} EXCEPT SELECT e.{e.label_col} FROM {e.name} e "
           f"JOIN {v.name} v ON v.{c.d.fk_event} = e.id WHERE v.{v.cat_col} = {q(x)};")
    return Case(sql, [
        f"Which {e.plural} never had a {x} {v.noun}?",
        f"List all {e.plural} except those with {v.plural} whose {v.cat_col.replace('_', ' ')} is {x}.",
    ], f"All {e.plural} EXCEPT those joined to a {v.noun} with {v.cat_col} = '{x}'.", ("e", "v"))


# ============================================================================================= CTEs
@template(CTE, ANALYTICS, 1.2)
def cte_above_avg_total(c: Ctx) -> Case:
    e, v = c.e, c.v
    sql = (f"WITH totals AS (SELECT {c.d.fk_event}, SUM({v.num_col}) AS total FROM {v.name} GROUP BY {c.d.fk_event}) "
           f"SELECT e.{e.label_col}, t.total FROM totals t JOIN {e.name} e ON e.id = t.{c.d.fk_event} "
           f"WHERE t.total > (SELECT AVG(total) FROM totals);")
    return Case(sql, [
        f"Which {e.plural} have a total {v.num_word} above the average total per {e.noun}?",
        f"Using per-{e.noun} totals of {v.num_col}, list {e.plural} whose total beats the average.",
    ], f"A CTE sums {v.num_col} per {e.noun}; the outer query keeps totals above the average total.", ("e", "v"))


@template(CTE, ANALYTICS)
def cte_category_stats(c: Ctx) -> Case:
    e = c.e
    sql = (f"WITH stats AS (SELECT {e.cat_col}, COUNT(*) AS n, AVG({e.num_col}) AS avg_{e.num_col} FROM {e.name} "
           f"GROUP BY {e.cat_col}) SELECT * FROM stats ORDER BY avg_{e.num_col} DESC;")
    return Case(sql, [
        f"For each {e.cat_col.replace('_', ' ')}, how many {e.plural} are there and what is their average {e.num_word}? Sort by the average, highest first.",
        f"Summarise {e.plural} per {e.cat_col.replace('_', ' ')} (count and mean {e.num_col}), ordered by the mean descending.",
    ], f"A CTE aggregates {e.name} per {e.cat_col}; the outer query sorts by the average {e.num_col}.", ("e",))


@template(CTE, ANALYTICS)
def cte_monthly(c: Ctx) -> Case:
    v = c.v
    sql = (f"WITH monthly AS (SELECT strftime('%Y-%m', {v.date_col}) AS month, SUM({v.num_col}) AS total "
           f"FROM {v.name} GROUP BY month) SELECT month, total FROM monthly ORDER BY total DESC LIMIT 1;")
    return Case(sql, [
        f"Which month had the highest total {v.num_word} of {v.plural}?",
        f"Find the month with the largest sum of {v.num_col}.",
    ], f"A CTE totals {v.num_col} per month; the outer query returns the month with the largest total.", ("v",))


def _rand_num(rng: random.Random, t: Table):
    lo, hi = t.num_range
    return rng.randint(int(lo), int(hi)) if t.num_int else round(rng.uniform(lo, hi), 2)


def _rand_date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


# ============================================================ families added for unseen schemas (round 5)
@template(BASIC, ANALYTICS, 1.3)
def count_rows(c: Ctx) -> Case:
    """The question real users ask first, and the one a fine-tune got wrong most: how many rows a table has."""
    key = c.rng.choice(["g", "e", "v"])
    t = c.table(key)
    sql = f"SELECT COUNT(*) FROM {t.name};"
    return Case(sql, [
        f"How many {t.plural} are there?",
        f"Count the {t.plural}.",
        f"What is the total number of {t.plural}?",
        f"How many {t.plural} do we have in the database?",
    ], f"Counts every row of {t.name}.", (key,))


@template(BASIC, ANALYTICS, 0.8)
def count_where(c: Ctx) -> Case:
    return _count_equal(c, lambda e, x, attr: [
        f"How many {e.plural} have {attr} {x}?",
        f"Number of {x} {e.plural}?",
        f"Count the {e.plural} whose {attr} is '{x}'.",
    ], "Counts {t} rows with {col} = '{x}'.")


@template(AGG, ANALYTICS, 0.7)
def count_distinct(c: Ctx) -> Case:
    e = c.e
    sql = f"SELECT COUNT(DISTINCT {e.cat_col}) FROM {e.name};"
    return Case(sql, [
        f"How many different {e.cat_col.replace('_', ' ')} values do the {e.plural} have?",
        f"Count the distinct {e.cat_col.replace('_', ' ')}s among {e.plural}.",
    ], f"Counts the distinct {e.cat_col} values in {e.name}.", ("e",))


@template(BASIC, RETRIEVAL, 0.8)
def case_bucket(c: Ctx) -> Case:
    e = c.e
    t = c.threshold("e", e.num_col)
    sql = (f"SELECT {e.label_col}, CASE WHEN {e.num_col} >= {t} THEN 'high' ELSE 'low' END AS {e.num_col}_level "
           f"FROM {e.name};")
    return Case(sql, [
        f"Label each {e.noun} as 'high' if its {e.num_word} is at least {t}, otherwise 'low'.",
        f"For every {e.noun}, show its {e.label_col} and whether the {e.num_word} is high (>= {t}) or low.",
    ], f"Buckets {e.name}.{e.num_col} into high/low at {t} with CASE.", ("e",))


@template(SUBQ, RETRIEVAL, 0.9)
def correlated_above_group_avg(c: Ctx) -> Case:
    e = c.e
    fk = c.d.fk_entity
    sql = (f"SELECT e.{e.label_col} FROM {e.name} e WHERE e.{e.num_col} > "
           f"(SELECT AVG(e2.{e.num_col}) FROM {e.name} e2 WHERE e2.{fk} = e.{fk});")
    return Case(sql, [
        f"Which {e.plural} have a {e.num_word} above the average of their own {c.g.noun}?",
        f"List {e.plural} whose {e.num_word} beats the mean {e.num_word} within the same {c.g.noun}.",
    ], f"Keeps {e.plural} whose {e.num_col} exceeds the average of {e.plural} with the same {fk} (correlated).",
        ("g", "e"))


@template(SUBQ, RETRIEVAL, 0.9)
def exists_child(c: Ctx) -> Case:
    g, e = c.g, c.e
    x = c.value("e", e.cat_col)
    sql = (f"SELECT g.name FROM {g.name} g WHERE EXISTS (SELECT 1 FROM {e.name} e WHERE e.{c.d.fk_entity} = g.id "
           f"AND e.{e.cat_col} = {q(x)});")
    return Case(sql, [
        f"Which {g.plural} have at least one {x} {e.noun}?",
        f"Name the {g.plural} with some {e.plural} of {e.cat_col.replace('_', ' ')} {x}.",
    ], f"Keeps {g.plural} for which a {e.noun} with {e.cat_col} = '{x}' exists.", ("g", "e"))


@template(JOINS, ANALYTICS, 0.9)
def joins_having(c: Ctx) -> Case:
    g, e, v = c.g, c.e, c.v
    counts: dict = {}
    by_entity = {r["id"]: r[c.d.fk_entity] for r in c.rows["e"]}
    for r in c.rows["v"]:
        gid = by_entity[r[c.d.fk_event]]
        counts[gid] = counts.get(gid, 0) + 1
    k = max(1, c.rng.choice(sorted(set(counts.values()))) - 1)
    sql = (f"SELECT g.name, COUNT(v.id) AS {v.name}_count FROM {g.name} g JOIN {e.name} e ON e.{c.d.fk_entity} = g.id "
           f"JOIN {v.name} v ON v.{c.d.fk_event} = e.id GROUP BY g.name HAVING COUNT(v.id) > {k};")
    return Case(sql, [
        f"Which {g.plural} have more than {k} {v.plural} across all their {e.plural}? Show the count.",
        f"{g.plural.title()} with over {k} {v.plural} in total, with how many.",
    ], f"Joins three tables, counts {v.plural} per {g.noun} and keeps those with more than {k}.", ("g", "e", "v"))


@template(JOIN1, RETRIEVAL, 0.8)
def top_entity_by_total(c: Ctx) -> Case:
    e, v = c.e, c.v
    sql = (f"SELECT e.{e.label_col} FROM {e.name} e JOIN {v.name} v ON v.{c.d.fk_event} = e.id GROUP BY e.id, "
           f"e.{e.label_col} ORDER BY SUM(v.{v.num_col}) DESC LIMIT 1;")
    return Case(sql, [
        f"Which {e.noun} has the highest total {v.num_word} over its {v.plural}?",
        f"The {e.noun} with the largest summed {v.num_word}?",
    ], f"Sums {v.num_col} per {e.noun} and keeps the top one.", ("e", "v"))
