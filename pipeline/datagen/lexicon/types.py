"""The shape of the generator's lexicon: what a domain's entities, attributes and relations are, with the
words people use for them and the values their rows hold. The lexicon modules beside this one only fill
these in; pipeline/datagen/ turns them into schemas, rows, SQL and questions.

    from pipeline.datagen.lexicon.types import Attr, Entity, Relation, Bridge, Domain

Rules every lexicon entry keeps (tests/unit/test_lexicon.py checks them):
- names are snake_case ASCII; `alt_names` are other column / table names real schemas use for the same thing
  (abbreviations, synonyms, prefixes): `("dob", "birth_dt", "date_of_birth")`;
- `phrases` are how a person asks about it, in lower case, the first the plainest: ("birth year", "year of
  birth"); a phrase never repeats another attribute's phrase in the same entity;
- values are stored exactly as a user's table would hold them (case, spacing, codes: "FR", "English",
  "in progress"), at least 4 per categorical attribute, 8+ for labels;
- numeric ranges are realistic for the thing (a weight in kg, a price in dollars, a year);
- no entity of the yardsticks' domains (see FORBIDDEN in lexicon/__init__.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# What a column holds. The generator picks SQL types, value drawers and question shapes from it.
KINDS = (
    "label",    # the entity's own name or title: unique-ish text ("Golden Harvest", "Order 1042")
    "person",   # a person's full name ("Maria Lopez"); values drawn from names.py unless given
    "text",     # other free text with a fixed value list (a city, a street, an email domain)
    "cat",      # categorical: a few repeating values (status, type, color, country code)
    "int",      # a count or measure in whole numbers
    "real",     # a measure with decimals
    "money",    # an amount of money (real, 2 decimals)
    "date",     # 'YYYY-MM-DD'
    "year",     # an integer year (1950-2025)
    "bool",     # 0 / 1
)


@dataclass(frozen=True)
class Attr:
    name: str                              # canonical column name, snake_case: "birth_year"
    kind: str                              # one of KINDS
    phrases: tuple[str, ...]               # how questions name it: ("birth year", "year of birth")
    alt_names: tuple[str, ...] = ()        # other column names for it: ("year_born", "yob")
    values: tuple = ()                     # label / text / cat: the stored values, case as stored
    lo: float = 0                          # int / real / money / year / date(year): the range drawn from
    hi: float = 0
    unit: str = ""                         # "kg", "minutes", "USD" (questions may say it)
    more: str = ""                         # comparative up, a phrase taking the value: "heavier than {v}"
    less: str = ""                         # comparative down: "lighter than {v}"
    most: str = ""                         # superlative up, of the entity: "heaviest"
    least: str = ""                        # superlative down: "lightest"
    is_true: str = ""                      # bool: how a question says the row has it: "active", "on sale"
    is_false: str = ""                     # bool: ... and does not: "inactive", "not on sale"
    filter_phrase: str = ""                # an equality filter in words, taking the value: "written by {v}",
                                           # "made in {v}", "in {v}" (default: "whose <phrase> is {v}")
    nullable: float = 0.0                  # share of rows left NULL (0-0.3): questions about "missing" ones


@dataclass(frozen=True)
class Entity:
    key: str                               # unique across the lexicon: "employee"
    noun: str                              # "employee"
    plural: str                            # "employees"
    table_names: tuple[str, ...]           # ("employees", "employee", "staff", "emp"): the first is plainest
    label: Attr                            # what names one row (kind label or person)
    attrs: tuple[Attr, ...]                # 5-14 further attributes (no keys: the generator adds those)
    synonyms: tuple[str, ...] = ()         # other nouns for it in questions: ("staff member", "worker")


@dataclass(frozen=True)
class Relation:
    """child -> parent, many to one: the child's table holds the parent's key."""
    child: str                             # entity key
    parent: str                            # entity key
    fk_names: tuple[str, ...] = ()         # column names for the key: ("department_id", "dept_id"); default
                                           # <parent>_id
    child_verb: str = ""                   # the child's side, taking the parent: "works in {p}", "written by {p}"
    parent_verb: str = ""                  # the parent's side, taking the child plural: "employs {c}", "has {c}"
    role: str = ""                         # when a child has two keys to one parent: "home", "away", "origin"


@dataclass(frozen=True)
class Bridge:
    """a many-to-many link, a table of its own: (a, b) pairs, optionally with attributes of the pair."""
    a: str                                 # entity key
    b: str                                 # entity key
    table_names: tuple[str, ...]           # ("enrollments", "student_courses")
    a_verb: str                            # "{a} enrolled in {b}" -> "enrolled in {b}"
    b_verb: str                            # "{b} taken by {a}" -> "taken by {a}"
    attrs: tuple[Attr, ...] = ()           # ("grade", "enrolled_on", ...)
    noun: str = ""                         # what one row is called: "enrollment"
    plural: str = ""


@dataclass(frozen=True)
class Domain:
    key: str                               # "hr"
    description: str                       # one sentence: "Companies, their departments and employees."
    entities: tuple[Entity, ...]           # 3-8
    relations: tuple[Relation, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    tags: tuple[str, ...] = field(default=())   # a loose family ("commerce", "science") for held-out splits
