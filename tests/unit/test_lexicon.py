"""The generator's lexicon keeps its rules (pipeline/datagen/lexicon/types.py): well-formed names, kinds,
phrases and values; relations between entities that exist; no domain, entity or table of a yardstick."""
from __future__ import annotations

import re

import pytest

from pipeline.datagen.lexicon import FORBIDDEN_DOMAINS, FORBIDDEN_ENTITIES, load_all
from pipeline.datagen.lexicon.types import KINDS

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
DOMAINS = load_all()


def _attrs(e):
    return (e.label, *e.attrs)


def _forbidden(name: str) -> str | None:
    """The yardstick word a snake_case name contains (whole words, plural or not), if any."""
    def words(n: str) -> list[str]:
        return [w[:-1] if w.endswith("s") else w for w in n.split("_")]
    have = words(name)
    for f in FORBIDDEN_DOMAINS + FORBIDDEN_ENTITIES:
        fw = words(f)
        if any(have[i:i + len(fw)] == fw for i in range(len(have))):
            return f
    return None


def test_the_lexicon_is_there():
    if not DOMAINS:
        pytest.skip("no lexicon module yet")
    assert len({d.key for d in DOMAINS}) == len(DOMAINS), "two domains share a key"


@pytest.mark.parametrize("d", DOMAINS, ids=lambda d: d.key)
def test_a_domain_keeps_the_rules(d):
    problems = []
    if not SNAKE.match(d.key) or _forbidden(d.key):
        problems.append(f"domain key {d.key!r}: not snake_case or a yardstick's domain ({_forbidden(d.key)})")
    if not 3 <= len(d.entities) <= 8:
        problems.append(f"{len(d.entities)} entities (3-8)")
    keys = {e.key for e in d.entities}
    for e in d.entities:
        for n in (e.key, *e.table_names):
            if not SNAKE.match(n) or _forbidden(n):
                problems.append(f"{e.key}: name {n!r} not snake_case or a yardstick's ({_forbidden(n)})")
        if not 5 <= len(e.attrs) <= 14:
            problems.append(f"{e.key}: {len(e.attrs)} attrs (5-14)")
        if e.label.kind not in ("label", "person"):
            problems.append(f"{e.key}: label kind {e.label.kind}")
        seen_names, seen_phrases = set(), set()
        for a in _attrs(e):
            where = f"{e.key}.{a.name}"
            if a.kind not in KINDS:
                problems.append(f"{where}: kind {a.kind!r}")
            for n in (a.name, *a.alt_names):
                if not SNAKE.match(n):
                    problems.append(f"{where}: name {n!r} not snake_case")
                if n in seen_names:
                    problems.append(f"{where}: name {n!r} used twice in the entity")
                seen_names.add(n)
            if a.name == "id" or a.name.endswith("_id"):
                problems.append(f"{where}: keys are the generator's, not the lexicon's")
            if not a.phrases or any(p != p.lower() or not p.strip() for p in a.phrases):
                problems.append(f"{where}: phrases must be non-empty, lower case")
            for p in a.phrases:
                if p in seen_phrases:
                    problems.append(f"{where}: phrase {p!r} names two attributes")
                seen_phrases.add(p)
            if a.kind == "cat" and len(set(a.values)) < 4:
                problems.append(f"{where}: a category needs 4+ values")
            if a.kind in ("label", "text") and len(set(a.values)) < 8:
                problems.append(f"{where}: {a.kind} needs 8+ values")
            if a.kind in ("int", "real", "money", "year") and not a.lo < a.hi:
                problems.append(f"{where}: range {a.lo}..{a.hi}")
            if a.kind == "bool" and not (a.is_true and a.is_false):
                problems.append(f"{where}: a bool needs is_true and is_false")
            if not 0 <= a.nullable <= 0.3:
                problems.append(f"{where}: nullable {a.nullable}")
            for phrase in (a.more, a.less, a.filter_phrase):
                if phrase and "{v}" not in phrase:
                    problems.append(f"{where}: {phrase!r} must take {{v}}")
    for r in d.relations:
        if r.child not in keys or r.parent not in keys:
            problems.append(f"relation {r.child}->{r.parent}: unknown entity")
        if r.child_verb and "{p}" not in r.child_verb or r.parent_verb and "{c}" not in r.parent_verb:
            problems.append(f"relation {r.child}->{r.parent}: verbs take {{p}} / {{c}}")
    for b in d.bridges:
        if b.a not in keys or b.b not in keys:
            problems.append(f"bridge {b.a}<->{b.b}: unknown entity")
        if "{b}" not in b.a_verb or "{a}" not in b.b_verb:
            problems.append(f"bridge {b.a}<->{b.b}: a_verb takes {{b}}, b_verb takes {{a}}")
    assert not problems, "\n".join(problems)


def test_entity_keys_are_unique_across_the_lexicon():
    seen: dict[str, str] = {}
    for d in DOMAINS:
        for e in d.entities:
            assert e.key not in seen, f"entity {e.key!r} in {seen.get(e.key)} and {d.key}"
            seen[e.key] = d.key
