"""One join or one GROUP BY (~35% of rows): counts and aggregates per category, groups kept by HAVING, rows
filtered by their parent (through the relation's verb: "employees who work in Finance"), rows listed with their
parent, counts and aggregates per parent."""
from __future__ import annotations

from pipeline.datagen.families.base import AGG, ANALYTICS, JOIN1, RETRIEVAL, Ctx, Skip, family, group_col, rows_np
from pipeline.datagen.families.base import Built as B
from pipeline.datagen.families.single import add_tail, agg_funcs, agg_word
from pipeline.datagen.query import Agg, Col, Cond, Join, Query, Ref, alias_refs
from pipeline.datagen.schema import NUMERIC, Column, Link
from pipeline.datagen.words import Phr, be, deconj, mark, plural, pluralizable, verb_phr

T = "join_or_group"
NUM_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


# --------------------------------------------------------------------------------------------------- helpers
def group_words(cx: Ctx, c: Column, plural_: bool = False) -> str:
    """'job title' / 'job titles' for a grouping column (a bool groups by its wording of yes / no)."""
    if plural_:
        phrases = [p for p in c.attr.phrases if pluralizable(p)]
        if not phrases or cx.sp.chance(cx.sp.bare):
            w = f"{c.name} values"
            cx.sp.mentions.append((c, c.name))
            return w
        w = plural(cx.rng.choice(phrases))
        cx.sp.mentions.append((c, w))
        return w
    return cx.sp.attr(c)


def number(cx: Ctx, n: int) -> str:
    return mark(NUM_WORDS[n]) if n in NUM_WORDS and cx.sp.chance(0.4) else mark(str(n))


def having_cut(counts: list[int], cx: Ctx) -> tuple[str, int]:
    """(op, n) such that some groups pass and some do not."""
    vals = sorted(set(counts))
    if len(vals) < 2:
        raise Skip("every group the same size")
    i = cx.rng.randint(1, len(vals) - 1)
    return (">", vals[i - 1]) if cx.sp.chance(0.5) else (">=", vals[i])


def count_phrase(cx: Ctx, op: str, n: int, things: str, thing: str = "") -> str:
    if n == 1 and op == ">" and thing:
        return f"more than one {thing}"
    k = number(cx, n)
    return cx.sp.pick(f"more than {k} {things}", f"over {k} {things}") if op == ">" else \
        cx.sp.pick(f"at least {k} {things}", f"{k} or more {things}")


def link(cx: Ctx, ok=None) -> Link:
    """A relation child -> parent whose wording is not ambiguous (a child with two keys to one parent needs
    a verb or a role for each)."""
    out = []
    for lk in cx.links():
        twins = [o for o in cx.links() if o.child is lk.child and o.parent is lk.parent]
        if len(twins) > 1 and not (lk.relation.child_verb or lk.relation.role):
            continue
        if ok is None or ok(lk):
            out.append(lk)
    return cx.one(out, "no key between two tables")


def twin(cx: Ctx, lk: Link) -> bool:
    return sum(1 for o in cx.links() if o.child is lk.child and o.parent is lk.parent) > 1


def child_side(cx: Ctx, lk: Link, filled: str) -> Phr:
    """The child's relation to `filled` (a parent mention): 'who work in the Finance department'."""
    r = lk.relation
    who = cx.sp.who(lk.child)
    if r.child_verb and (cx.sp.chance(0.8) or twin(cx, lk)):
        return verb_phr(r.child_verb, filled, who)
    if twin(cx, lk):
        role = r.role
        post = f"whose {role} {cx.sp.noun(lk.parent)} is {filled}"
        return Phr(post, post, None)
    if lk.parent.person:                     # rows of a person: not 'in Maria Lopez'
        post = cx.sp.pick(f"of {filled}", f"linked to {filled}")
    else:
        post = cx.sp.pick(f"of {filled}", f"in {filled}", f"belonging to {filled}", f"linked to {filled}")
    return Phr(post, post, f"are in {filled}" if post.startswith("in ") else f"belong to {filled}")


def parent_base_verb(lk: Link) -> str | None:
    """'employ' from 'employs {c}' (for 'How many employees does each department employ?')."""
    v = lk.relation.parent_verb
    if not v or not v.endswith(" {c}") or v.count(" ") != 1:
        return None
    w = v[:-4]
    base = deconj(w)
    return base if base != w else None


def parent_has(cx: Ctx, lk: Link, things: str) -> str:
    """The parent side for a plural subject: 'have more than 3 employees' / 'employ more than 3 employees'."""
    v = lk.relation.parent_verb
    if v and "{c}" in v and cx.sp.chance(0.35) and not twin(cx, lk):
        w = v.split(" ", 1)[0]
        if w.endswith("s") and not w.endswith("ss"):
            return deconj(v.replace("{c}", things))
    return f"have {things}"


def joined(cx: Ctx, lk: Link, parent_first: bool) -> tuple[Ref, Ref, Query]:
    """A query skeleton over child JOIN parent (or parent JOIN child) on the link's key."""
    c, p = Ref(lk.child), Ref(lk.parent)
    if parent_first:
        q = Query([], p, joins=[Join(c, Col(c, lk.fk), Col(p, lk.parent.pk))])
    else:
        q = Query([], c, joins=[Join(p, Col(c, lk.fk), Col(p, lk.parent.pk))])
    alias_refs(q.refs)
    return c, p, q


def parent_filter(cx: Ctx, lk: Link, p: Ref) -> tuple[Cond, str]:
    """A condition on the parent and the words for the parents it keeps: 'the Finance department' /
    'departments with a budget over 1,000,000'."""
    pt = lk.parent
    has_children = {r[lk.fk.name] for r in lk.child.rows}
    named_rows = [r for r in pt.rows if r[pt.pk.name] in has_children]
    if named_rows and (cx.sp.chance(0.65) or not cx.cols(pt)):
        v = cx.rng.choice(named_rows)[pt.label.name]
        cond = Cond(Col(p, pt.label), "=", v)
        words = cx.sp.named(pt, v)
        cx.said(cond, words)
        return cond, words
    cond = cx.cond(p)
    return cond, rows_np(cx, pt, [cx.phr(cond, pt)])


# ---------------------------------------------------------------------------------------- one-table groups
@family(T, AGG, ANALYTICS, 5)
def group_count(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    g = group_col(cx, t)
    cond = cx.cond(r, avoid=(g,)) if cx.sp.chance(0.2) else None
    np_ = rows_np(cx, t, [cx.phr(cond, t)]) if cond else cx.sp.plural(t)
    a = group_words(cx, g)
    text = cx.say(
        question=[f"How many {np_} are there for each {a}?", f"For each {a}, how many {np_} are there?",
                  f"How many {np_} does each {a} have?" if g.kind == "text" and not cond else None],
        imperative=[f"Count the {np_} per {a}.", f"Show the number of {np_} for each {a}.",
                    f"List each {a} with the number of {np_}."],
        terse=[f"number of {np_} per {a}", f"{np_} per {a}", f"{a}, count of {np_}", f"count {np_} by {a}"])
    q = Query([Col(r, g), Agg("COUNT")], r, where=[cond] if cond else [], group_by=[Col(r, g)])
    return B(q, text, t)


@family(T, AGG, ANALYTICS, 4)
def group_agg(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    g = group_col(cx, t)
    c = cx.one([x for x in cx.cols(t, NUMERIC) if x is not g and x.kind != "year"], "no number")
    func = cx.rng.choice([f for f in agg_funcs(c) if f != "COUNT"])
    w = agg_word(cx, func, c)
    a, ga = cx.sp.attr(c), group_words(cx, g)
    p = cx.sp.plural(t)
    text = cx.say(
        question=[f"What is the {w} {a} of {p} for each {ga}?", f"For each {ga}, what is the {w} {a}?",
                  f"What is the {w} {a} per {ga}?"],
        imperative=[f"Show the {w} {a} of {p} per {ga}.", f"List each {ga} with the {w} {a} of its {p}.",
                    f"Give me the {w} {a} for every {ga}."],
        terse=[f"{w} {a} per {ga}", f"{w} {a} by {ga}", f"{ga} and {w} {a}"])
    q = Query([Col(r, g), Agg(func, Col(r, c))], r, group_by=[Col(r, g)])
    return B(q, text, t)


@family(T, AGG, ANALYTICS, 2.5)
def group_having(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    g = group_col(cx, t)
    counts = {}
    for v in t.values(g):
        counts[v] = counts.get(v, 0) + 1
    op, n = having_cut(list(counts.values()), cx)
    ga = group_words(cx, g, plural_=True)
    things = count_phrase(cx, op, n, cx.sp.plural(t), t.entity.noun)
    text = cx.say(question=[f"Which {ga} have {things}?", f"Which {ga} are shared by {things}?"],
                  imperative=[f"List the {ga} with {things}.", f"Show the {ga} that have {things}."],
                  terse=[f"{ga} with {things}", f"{ga} having {things}"])
    q = Query([Col(r, g)], r, group_by=[Col(r, g)], having=Cond(Agg("COUNT"), op, n))
    return B(q, text, t)


# ------------------------------------------------------------------------------------------------ joins
def children_of_some(cx: Ctx) -> tuple[Link, Ref, Query, Cond, Phr, str]:
    """Child rows kept by a condition on their parent: the link, the child's ref, the joined query, the
    condition, the words for the relation ('who work in the Finance department') and the child plural."""
    lk = link(cx)
    c, p, q = joined(cx, lk, parent_first=False)
    cond, filled = parent_filter(cx, lk, p)
    return lk, c, q, cond, child_side(cx, lk, filled), cx.sp.plural(lk.child)


@family(T, JOIN1, RETRIEVAL, 6, needs="link")
def join_where_parent(cx: Ctx) -> B:
    lk, c, q, cond, rel, cp = children_of_some(cx)
    lw = cx.sp.label_words(lk.child)
    shown = [x for x in lk.child.attrs() if x.kind != "bool"]
    extra = cx.rng.choice(shown) if shown and cx.sp.chance(0.25) else None
    text = cx.say(
        question=[f"Which {cp} {rel.pred}?" if rel.pred else None, f"What are the {lw} of the {cp} {rel.post}?",
                  f"Who are the {cp} {rel.post}?" if lk.child.person else None],
        imperative=[f"List the {cp} {rel.post}.", f"Show me the {cp} {rel.post}.", f"Find all {cp} {rel.post}."],
        terse=[f"{cp} {rel.post}", f"{lw} of {cp} {rel.post}"])
    if extra:
        text = add_tail(cx, text, cx.sp.attr(extra, plural_=True), False, lk.child.person)
    q.select = [Col(c, lk.child.label)] + ([Col(c, extra)] if extra else [])
    q.where = [cond]
    return B(q, text, lk.child)


@family(T, JOIN1, RETRIEVAL, 4, needs="link")
def join_project(cx: Ctx) -> B:
    lk = link(cx)
    c, p, q = joined(cx, lk, parent_first=False)
    pt, ct = lk.parent, lk.child
    cn, cp = cx.sp.noun(ct), cx.sp.plural(ct)
    _, pn = per_parent(cx, lk)
    its = "their" if ct.person else "its"
    cond = cx.cond(c) if cx.sp.chance(0.3) else None
    np_ = rows_np(cx, ct, [cx.phr(cond, ct)]) if cond else cp
    pattrs = [x for x in pt.attrs() if x.kind != "bool"]
    pa = cx.rng.choice(pattrs) if cx.sp.chance(0.3) and pattrs else None
    if pa is None:
        text = cx.say(
            question=[f"What {pn} does each {cn} belong to?" if not cond else None,
                      f"Which {pn} does each of the {np_} belong to?" if cond else None],
            imperative=[f"List each {cn} with {its} {pn}." if not cond else f"List the {np_} with their {pn}.",
                        f"Show every {cn} and the name of {its} {pn}." if not cond else
                        f"Show the {np_} and the name of their {pn}.",
                        f"For each {cn}, give {its} name and {its} {pn}." if not cond else None],
            terse=[f"{np_} with their {pn}", f"{cn} and {pn} names" if not cond else f"{np_}: name, {pn}"])
        q.select = [Col(c, ct.label), Col(p, pt.label)]
    else:
        pw = cx.sp.attr(pa)
        text = cx.say(
            question=[f"What {be(pw)} the {pw} of the {pn} of each {cn}?" if not cond else
                      f"What {be(pw)} the {pw} of the {pn} of each of the {np_}?"],
            imperative=[f"List each {cn} with the {pw} of {its} {pn}." if not cond else
                        f"List the {np_} with the {pw} of their {pn}.",
                        f"Show the {np_} and their {pn}'s {pw}."],
            terse=[f"{np_} with {pn} {pw}", f"{cn}, {pn} {pw}" if not cond else None])
        q.select = [Col(c, ct.label), Col(p, pa)]
    q.where = [cond] if cond else []
    return B(q, text, ct)


@family(T, JOIN1, ANALYTICS, 2.5, needs="link")
def join_count_where(cx: Ctx) -> B:
    lk, c, q, cond, rel, cp = children_of_some(cx)
    text = cx.say(question=[f"How many {cp} {rel.pred}?" if rel.pred else None, f"How many {cp} {rel.post} are there?",
                            f"What is the number of {cp} {rel.post}?"],
                  imperative=[f"Count the {cp} {rel.post}."],
                  terse=[f"number of {cp} {rel.post}", f"how many {cp} {rel.post}"])
    q.select, q.where = [Agg("COUNT")], [cond]
    return B(q, text, lk.child)


def per_parent(cx: Ctx, lk: Link) -> tuple[str, str]:
    """('each department', 'department') for 'per parent' questions."""
    pn = cx.sp.noun(lk.parent)
    if twin(cx, lk):
        if not lk.relation.role:
            raise Skip("two keys to one table, no role to tell them apart")
        pn = f"{lk.relation.role} {pn}"
    return f"each {pn}", pn


@family(T, JOIN1, ANALYTICS, 4, needs="link")
def join_group_count(cx: Ctx) -> B:
    lk = link(cx)
    c, p, q = joined(cx, lk, parent_first=True)
    each, pn = per_parent(cx, lk)
    cp = cx.sp.plural(lk.child)
    rel = child_side(cx, lk, each) if not twin(cx, lk) else Phr("", None, None)
    base = parent_base_verb(lk)
    text = cx.say(
        question=[f"How many {cp} does {each} have?", f"How many {cp} {rel.pred}?" if rel.pred else None,
                  f"How many {cp} does {each} {base}?" if base and not twin(cx, lk) else None,
                  f"For {each}, how many {cp} are there?"],
        imperative=[f"Count the {cp} of {each}.", f"List {each} with its number of {cp}.",
                    f"Show the number of {cp} per {pn}."],
        terse=[f"number of {cp} per {pn}", f"{cp} per {pn}", f"{pn} and count of {cp}"])
    pt = lk.parent
    q.select = [Col(p, pt.label), Agg("COUNT")]
    q.group_by = [Col(p, pt.pk), Col(p, pt.label)]
    return B(q, text, pt)


@family(T, JOIN1, ANALYTICS, 3, needs="link")
def join_group_agg(cx: Ctx) -> B:
    lk = link(cx)
    c, p, q = joined(cx, lk, parent_first=True)
    col = cx.one([x for x in cx.cols(lk.child, NUMERIC) if x.kind != "year"], "no number")
    func = cx.rng.choice(agg_funcs(col))
    w = agg_word(cx, func, col)
    each, pn = per_parent(cx, lk)
    cp = cx.sp.plural(lk.child)
    a = cx.sp.attr(col)
    text = cx.say(
        question=[f"What is the {w} {a} of the {cp} of {each}?", f"For {each}, what is the {w} {a} of its {cp}?"],
        imperative=[f"Show the {w} {a} of {cp} per {pn}.", f"List {each} with the {w} {a} of its {cp}."],
        terse=[f"{w} {cp} {a} per {pn}", f"{w} {a} of {cp} by {pn}", f"{pn}, {w} {a} of its {cp}"])
    pt = lk.parent
    q.select = [Col(p, pt.label), Agg(func, Col(c, col))]
    q.group_by = [Col(p, pt.pk), Col(p, pt.label)]
    return B(q, text, pt)


@family(T, JOIN1, ANALYTICS, 2.5, needs="link")
def join_having(cx: Ctx) -> B:
    lk = link(cx, ok=lambda lk: not twin(cx, lk))
    c, p, q = joined(cx, lk, parent_first=True)
    counts: dict = {}
    for r in lk.child.rows:
        counts[r[lk.fk.name]] = counts.get(r[lk.fk.name], 0) + 1
    op, n = having_cut(list(counts.values()), cx)
    pp, cp = cx.sp.plural(lk.parent), cx.sp.plural(lk.child)
    things = count_phrase(cx, op, n, cp, lk.child.entity.noun)
    has = parent_has(cx, lk, things)
    text = cx.say(question=[f"Which {pp} {has}?"],
                  imperative=[f"List the {pp} that {has}.", f"Show the {pp} with {things}."],
                  terse=[f"{pp} with {things}", f"{pp} having {things}"])
    pt = lk.parent
    q.select = [Col(p, pt.label)]
    q.group_by = [Col(p, pt.pk), Col(p, pt.label)]
    q.having = Cond(Agg("COUNT"), op, n)
    return B(q, text, pt)


@family(T, JOIN1, ANALYTICS, 2.5, needs="link")
def join_agg_where(cx: Ctx) -> B:
    lk, c, q, cond, rel, cp = children_of_some(cx)
    col = cx.one([x for x in cx.cols(lk.child, NUMERIC + ("date",), distinct=1)], "no number")
    func = cx.rng.choice(agg_funcs(col))
    w = agg_word(cx, func, col)
    a = cx.sp.attr(col)
    text = cx.say(question=[f"What is the {w} {a} of the {cp} {rel.post}?", f"What's the {w} {a} among {cp} {rel.post}?"],
                  imperative=[f"Find the {w} {a} of {cp} {rel.post}.", f"Give me the {w} {a} for {cp} {rel.post}."],
                  terse=[f"{w} {a} of {cp} {rel.post}", f"{w} {a}, {cp} {rel.post}"])
    q.select, q.where = [Agg(func, Col(c, col))], [cond]
    return B(q, text, lk.child)
