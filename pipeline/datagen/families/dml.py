"""Data changes asked for in words (~3.5% of rows): set a value, scale a number, delete rows, add a row."""
from __future__ import annotations

from pipeline.datagen.families.base import BASIC, DML, Ctx, Skip, family, rows_np
from pipeline.datagen.families.base import Built as B
from pipeline.datagen.names import people
from pipeline.datagen.query import Col, Cond, Dml, Ref
from pipeline.datagen.schema import draw_values, lit
from pipeline.datagen.words import mark

T = "dml"


@family(T, BASIC, DML, 1.2)
def update_value(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    cols = [c for c in t.attrs("cat", "text", "int", "money", "real", "date", "year")]
    c = cx.one(cols, "nothing to set")
    row = cx.rng.choice(t.rows)
    label = row[t.label.name]
    if c.kind in ("cat", "text"):
        new = cx.one([v for v in c.attr.values if v != row[c.name]], "no other value")
    else:
        new = cx.one([v for v in draw_values(c.attr, 3, cx.rng) if v != row[c.name]], "no other value")
    cond = Cond(Col(r, t.label), "=", label)
    named = cx.sp.named(t, label)
    cx.said(cond, named)
    a = cx.sp.attr(c)
    v = cx.sp.value(c, new)
    text = cx.say(question=[f"Can you change the {a} of {named} to {v}?"],
                  imperative=[f"Set the {a} of {named} to {v}.", f"Change {named}'s {a} to {v}.",
                              f"Update {named}: its {a} is now {v}." if not t.person else
                              f"Update {named}: their {a} is now {v}."],
                  terse=[f"set {a} = {v} for {named}", f"update {a} of {named} to {v}"])
    return B(Dml("UPDATE", t, sets=[(c, lit(new))], where=[cond]), text, t)


@family(T, BASIC, DML, 0.8)
def update_scale(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = cx.one([c for c in t.attrs("money", "int", "real") if any(v for v in t.values(c))], "no amount")
    cond = cx.cond(r, avoid=(c,)) if cx.sp.chance(0.8) else None
    np_ = rows_np(cx, t, [cx.phr(cond, t)]) if cond else f"all {cx.sp.plural(t)}"
    a = cx.sp.attr(c)
    up = cx.sp.chance(0.7)
    pct = cx.rng.choice((5, 10, 10, 15, 20, 25))
    factor = round(1 + pct / 100 if up else 1 - pct / 100, 2)
    verb = cx.sp.pick("Increase", "Raise") if up else cx.sp.pick("Reduce", "Cut", "Lower")
    p = mark(f"{pct}%")
    text = cx.say(question=[f"Could you {verb.lower()} the {a} of {np_} by {p}?"],
                  imperative=[f"{verb} the {a} of {np_} by {p}.", f"{verb} {np_}'s {a} by {p}."
                              if not np_.endswith("s") else f"{verb} the {a} of {np_} by {p}."],
                  terse=[f"{verb.lower()} {a} by {p} for {np_}"])
    expr = f"{Col(r, c).sql()} * {factor}"
    return B(Dml("UPDATE", t, sets=[(c, expr)], where=[cond] if cond else []), text, t)


@family(T, BASIC, DML, 1)
def delete_where(cx: Ctx) -> B:
    leaves = [t for t in cx.s.entities if not cx.s.children(t)] + \
        [t for t in cx.s.bridges() if t.attrs()]
    t = cx.one(leaves, "no table without dependents")
    r = Ref(t)
    cond = cx.cond(r)
    np_ = rows_np(cx, t, [cx.phr(cond, t)])
    text = cx.say(question=[f"Can you delete the {np_}?"],
                  imperative=[f"Delete all {np_}.", f"Remove the {np_}.", f"Delete the {np_}."],
                  terse=[f"delete {np_}", f"remove {np_}"])
    return B(Dml("DELETE", t, where=[cond]), text, t)


@family(T, BASIC, DML, 0.8)
def insert_row(cx: Ctx) -> B:
    t = cx.subject(lambda t: t.pk is not None and t.pk.kind == "key")
    lab = t.label
    taken = set(t.values(lab))
    if lab.kind == "person":
        new_label = next(n for n in people(cx.rng, len(taken) + 5) if n not in taken)
    else:
        new_label = cx.one([v for v in lab.attr.values if v not in taken], "no unused name")
    others = [c for c in t.attrs("cat", "text", "int", "money", "real", "date", "year")]
    shown = cx.rng.sample(others, min(len(others), cx.rng.choice((1, 2, 2))))
    values = [(c, draw_values(c.attr, 1, cx.rng)[0]) for c in shown]
    noun = cx.sp.noun(t)
    lv = cx.sp.value(lab, new_label)
    parts = [f"{cx.sp.attr(c)} {cx.sp.value(c, v)}" for c, v in values]
    withs = " and ".join(parts)
    called = cx.sp.pick("named", "called") if lab.kind == "person" or cx.sp.chance(0.5) else "called"
    text = cx.say(question=[f"Can you add a new {noun} {called} {lv} with {withs}?"],
                  imperative=[f"Add a new {noun} {called} {lv} with {withs}.",
                              f"Insert a {noun} {called} {lv}: {', '.join(parts)}.",
                              f"Create a {noun} {lv} with {withs}."],
                  terse=[f"new {noun} {lv}, {', '.join(parts)}", f"insert {noun} {lv} with {withs}"])
    if not shown:
        raise Skip("nothing else to set")
    return B(Dml("INSERT", t, values=[(lab, new_label)] + values), text, t)
