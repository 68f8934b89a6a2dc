"""One-table families (~41% of rows): filters, projections, lookups, counts, single aggregates, top-N and sorted
lists, ranges, missing values, distinct values, prefix matches - each on one table of a schema of several."""
from __future__ import annotations

from pipeline.datagen.families.base import (
    AGG,
    ANALYTICS,
    BASIC,
    RETRIEVAL,
    Ctx,
    Skip,
    and_list,
    cut,
    family,
    group_col,
    roundest,
    rows_np,
    which,
)
from pipeline.datagen.families.base import Built as B
from pipeline.datagen.query import Agg, Col, Cond, Query, Ref
from pipeline.datagen.schema import NUMERIC, ORDERED, Column, Table
from pipeline.datagen.words import be, mark

T = "one_table"


def _np(cx: Ctx, t: Table, conds: list[Cond]) -> tuple[str, list]:
    phrs = [cx.phr(c, t) for c in conds]
    return rows_np(cx, t, phrs), phrs


def ask_rows(cx: Ctx, t: Table, np_: str, phrs: list, lw: str) -> str:
    """A question whose answer is the rows' labels."""
    return cx.say(
        question=[which(cx, t, phrs), f"What are the {lw} of the {np_}?", f"Who are the {np_}?" if t.person else None,
                  f"Which {np_} are there?" if not phrs else None],
        imperative=[f"List the {np_}.", f"Show me all {np_}.", f"Find the {np_}.", f"Give me the {lw} of {np_}.",
                    f"List the {lw} of all {np_}."],
        terse=[np_, f"{lw} of {np_}", f"all {np_}"])


def labels_where(cx: Ctx, t: Table, r: Ref, cond: Cond) -> B:
    """The labels of t's rows that pass one condition, asked for in words."""
    np_, phrs = _np(cx, t, [cond])
    return B(Query([Col(r, t.label)], r, where=[cond]), ask_rows(cx, t, np_, phrs, cx.sp.label_words(t)), t)


@family(T, BASIC, RETRIEVAL, 8)
def list_where(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    return labels_where(cx, t, r, cx.cond(r))


@family(T, BASIC, RETRIEVAL, 4)
def list_where_two(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c1 = cx.cond(r)
    c2 = cx.cond(r, avoid=(c1.left.column,))
    np_, phrs = _np(cx, t, [c1, c2])
    lw = cx.sp.label_words(t)
    both = phrs[0].pred and phrs[1].pred
    text = cx.say(
        question=[f"Which {cx.sp.plural(t)} {phrs[0].pred} and {phrs[1].pred}?" if both else None,
                  f"What are the {lw} of the {np_}?", f"Who are the {np_}?" if t.person else None],
        imperative=[f"List the {np_}.", f"Find all {np_}.", f"Show the {lw} of {np_}."],
        terse=[np_, f"{lw} of {np_}"])
    return B(Query([Col(r, t.label)], r, where=[c1, c2]), text, t)


def _with_their(cx: Ctx, cols: list[Column], person: bool) -> str:
    return ("their " if person or cx.sp.chance(0.7) else "its ") + and_list([cx.sp.attr(c, plural_=True) for c in cols])


@family(T, BASIC, RETRIEVAL, 6)
def project_where(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    others = [x for x in t.attrs() if x.kind != "bool"]
    if not others:
        raise Skip("no attribute")
    c = cx.cond(r) if cx.sp.chance(0.75) else None
    shown = cx.rng.sample(others, min(len(others), cx.rng.choice((1, 1, 2))))
    np_, phrs = _np(cx, t, [c] if c else [])
    if not c:
        np_ = cx.sp.pick(f"every {cx.sp.noun(t)}", f"all {np_}", f"each {cx.sp.noun(t)}")
    lw = cx.sp.label_words(t)
    words = [cx.sp.attr(x) for x in shown]
    their = _with_their(cx, shown, t.person) if cx.sp.chance(0.5) else "their " + and_list(words)
    plural_np = np_ if c else cx.sp.plural(t)
    text = cx.say(
        question=[f"What are the {and_list([lw] + words)} of {np_}?" if c else None,
                  f"Which {cx.sp.plural(t)} {phrs[0].pred}, and what are {their}?" if c and phrs[0].pred else None],
        imperative=[f"List the {plural_np} with {their}.", f"Show the {and_list([lw] + words)} of {np_}.",
                    f"Give me {and_list([lw] + words)} for {np_}."],
        terse=[f"{plural_np}: {', '.join([lw] + words)}", f"{', '.join([lw] + words)} of {np_}",
               f"{plural_np} with {', '.join(words)}"])
    q = Query([Col(r, t.label)] + [Col(r, x) for x in shown], r, where=[c] if c else [])
    return B(q, text, t)


@family(T, BASIC, RETRIEVAL, 2.5)
def project_all(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    others = [x for x in t.attrs() if x.kind != "bool"]
    if len(others) < 1:
        raise Skip("no attribute")
    shown = cx.rng.sample(others, min(len(others), cx.rng.choice((1, 2, 2, 3))))
    words = [cx.sp.attr(x) for x in shown]
    noun, plural_ = cx.sp.noun(t), cx.sp.plural(t)
    with_label = cx.sp.chance(0.5)
    if with_label:
        lw = "name" if cx.sp.chance(0.7) else t.label.name
        cx.sp.mentions.append((t.label, lw))
        words = [lw] + words
        shown = [t.label] + shown
    text = cx.say(
        question=[f"What is the {and_list(words)} of each {noun}?", f"What are the {and_list(words)} of all {plural_}?"],
        imperative=[f"List the {and_list(words)} of every {noun}.", f"Show each {noun}'s {and_list(words)}.",
                    f"Give me the {and_list(words)} of all {plural_}."],
        terse=[f"{', '.join(words)} of all {plural_}", f"{plural_}: {', '.join(words)}",
               f"{', '.join(words)} from {t.name}"])
    return B(Query([Col(r, x) for x in shown], r), text, t)


@family(T, BASIC, RETRIEVAL, 5)
def lookup(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    others = [c for c in t.attrs() if c.kind != "bool"]
    if not others:
        raise Skip("no attribute")
    shown = cx.rng.sample(others, min(len(others), cx.rng.choice((1, 1, 1, 2))))
    row = cx.rng.choice([x for x in t.rows if all(x[c.name] is not None for c in shown)] or [None])
    if row is None:
        raise Skip("every row misses a value")
    label = row[t.label.name]
    cond = Cond(Col(r, t.label), "=", label)
    named = cx.sp.named(t, label)
    cx.said(cond, named)
    words = and_list([cx.sp.attr(c) for c in shown])
    text = cx.say(
        question=[f"What {be(words) if len(shown) == 1 else 'are'} the {words} of {named}?",
                  f"What's the {words} for {named}?" if len(shown) == 1 and be(words) == "is" else None,
                  f"What {'is' if len(shown) == 1 else 'are'} {named}'s {words}?"
                  if not named.rstrip("\x03").endswith(("s", "'", '"')) else None],
        imperative=[f"Give me the {words} of {named}.", f"Show the {words} for {named}.",
                    f"Look up the {words} of {named}."],
        terse=[f"{words} of {named}", f"{named} {words}", f"{named}: {words}?"])
    return B(Query([Col(r, c) for c in shown], r, where=[cond]), text, t)


@family(T, AGG, ANALYTICS, 5)
def count_where(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    if cx.sp.chance(0.2):
        p = cx.sp.plural(t)
        text = cx.say(question=[f"How many {p} are there?", f"How many rows does the {t.name} table have?",
                                f"What is the total number of {p}?"],
                      imperative=[f"Count the {p}.", f"Count the rows of {t.name}."],
                      terse=[f"number of {p}", f"how many {p}", f"count of {t.name}"])
        return B(Query([Agg("COUNT")], r), text, t)
    c = cx.cond(r)
    np_, phrs = _np(cx, t, [c])
    text = cx.say(
        question=[f"How many {cx.sp.plural(t)} {phrs[0].pred}?" if phrs[0].pred else None,
                  f"How many {np_} are there?", f"What is the number of {np_}?"],
        imperative=[f"Count the {np_}.", f"Tell me how many {np_} there are."],
        terse=[f"number of {np_}", f"how many {np_}", f"count {np_}"])
    return B(Query([Agg("COUNT")], r, where=[c]), text, t)


AGG_WORDS = {"AVG": ("average", "mean"), "SUM": ("total", "combined"), "MIN": ("lowest", "smallest", "minimum"),
             "MAX": ("highest", "largest", "maximum")}
TIME_WORDS = {"MIN": ("earliest",), "MAX": ("latest", "most recent")}


def agg_funcs(c: Column) -> list[str]:
    """The aggregates a person would ask of this column."""
    if c.kind in ("date", "year"):
        return ["MIN", "MAX"]
    out = ["MIN", "MAX", "AVG"]
    words = set(c.attr.name.split("_"))
    if words & NOT_ADDITIVE_WORDS:
        return out
    if c.kind == "money" or c.attr.unit and c.kind in ("int", "real") and c.attr.unit.lower() not in NOT_ADDITIVE:
        out.append("SUM")
    return out


# a column named like these holds a per-row limit, rate or score: nobody adds it up across rows
NOT_ADDITIVE_WORDS = {"max", "maximum", "min", "minimum", "avg", "average", "mean", "rate", "pct", "percent", "ratio",
                      "score", "rating", "age", "year", "yr", "limit", "cap", "capacity", "target", "goal", "threshold",
                      "per", "speed", "temp", "temperature", "rank", "unit"}


# units of measures nobody adds up across rows (an age, a rate, a temperature)
NOT_ADDITIVE = {"years", "year", "percent", "%", "stars", "out of 5", "out of 10", "score", "degrees", "°c", "°f",
                "celsius", "fahrenheit", "bpm", "kph", "mph", "km/h", "rating", "points per game", "per cent", "ratio",
                "dollars per hour", "usd per hour", "per hour", "an hour", "a mile", "per mile", "per night"}


def agg_word(cx: Ctx, func: str, c: Column) -> str:
    return cx.rng.choice((TIME_WORDS if c.kind in ("date", "year") else AGG_WORDS)[func])


@family(T, AGG, ANALYTICS, 4)
def agg_where(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = cx.one(cx.cols(t, NUMERIC + ("date",), distinct=2), "no number")
    func = cx.rng.choice(agg_funcs(c))
    cond = cx.cond(r, avoid=(c,)) if cx.sp.chance(0.6) else None
    w = agg_word(cx, func, c)
    a = cx.sp.attr(c)
    if cond:
        np_, _ = _np(cx, t, [cond])
        of = cx.sp.pick(f"of {np_}", f"among {np_}", f"for {np_}")
    else:
        of = cx.sp.pick(f"of all {cx.sp.plural(t)}", f"across all {cx.sp.plural(t)}", f"of the {cx.sp.plural(t)}")
    text = cx.say(question=[f"What is the {w} {a} {of}?", f"What's the {w} {a} {of}?"],
                  imperative=[f"Find the {w} {a} {of}.", f"Give me the {w} {a} {of}.", f"Compute the {w} {a} {of}."],
                  terse=[f"{w} {a} {of}", f"{w} {a} of {t.name}" if not cond else None])
    return B(Query([Agg(func, Col(r, c))], r, where=[cond] if cond else []), text, t)


def _order_col(cx: Ctx, t: Table) -> Column:
    """A column to sort on: no NULLs, no two rows alike."""
    return cx.one([c for c in cx.cols(t, ORDERED, nonnull=True) if len(set(t.values(c))) == len(t.rows)],
                  "nothing to sort on")


def superlative(cx: Ctx, c: Column, desc: bool) -> tuple[str | None, str]:
    """('best paid', 'highest salary') - the attribute's own superlative if it has one, and a generic one."""
    a = c.attr
    own = a.most if desc else a.least
    temporal = c.kind in ("date", "year")
    gen = cx.rng.choice(("latest", "most recent") if desc else ("earliest",)) if temporal else \
        cx.rng.choice(("highest", "largest") if desc else ("lowest", "smallest"))
    return (own or None), f"{gen} {cx.sp.attr(c)}"


def add_tail(cx: Ctx, text: str, what: str, one: bool, person: bool) -> str:
    """The question with a request for one more column: '..., and what is its salary?' / '..., with its salary.'"""
    its = "their" if person or not one else "its"
    if text.endswith("?"):
        return text[:-1] + f", and what {'is' if one else 'are'} {its} {what}?"
    end = "." if text.endswith(".") else ""
    return text.rstrip(".") + f", with {its} {what}{end}"


@family(T, BASIC, RETRIEVAL, 5)
def top_n(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = _order_col(cx, t)
    desc = cx.sp.chance(0.65)
    n = 1 if cx.sp.chance(0.65) else cx.rng.randint(2, min(5, len(t.rows) - 1))
    cond = cx.cond(r, avoid=(c,)) if cx.sp.chance(0.25) else None
    own, gen = superlative(cx, c, desc)
    noun, plural_ = cx.sp.noun(t), cx.sp.plural(t)
    phr = cx.phr(cond, t) if cond else None
    if n == 1:
        sub = f"{noun} {phr.sg}" if phr and phr.sg else noun
        if phr and not phr.sg:
            raise Skip("no singular wording for the condition")
        text = cx.say(
            question=[f"Which {sub} has the {gen}?", f"Who is the {own} {sub}?" if own and t.person else None,
                      f"Which is the {own} {sub}?" if own else None,
                      f"Among {rows_np(cx, t, [phr])}, which one has the {gen}?" if phr else None],
            imperative=[f"Name the {own} {sub}." if own else None, f"Find the {sub} with the {gen}.",
                        f"Show the {sub} that has the {gen}."],
            terse=[f"{own} {sub}" if own else None, f"{sub} with the {gen}", f"{sub} with {gen}"])
    else:
        np_ = rows_np(cx, t, [phr]) if phr else plural_
        a = cx.sp.attr(c)
        ranked = c.kind not in ("date", "year")
        text = cx.say(
            question=[f"Which {n} {np_} have the {gen}?", f"What are the {n} {own} {np_}?" if own else None],
            imperative=[f"List the {n} {own} {np_}." if own else None, f"Show the {n} {np_} with the {gen}.",
                        (f"Give me the top {n} {np_} by {a}." if desc else f"Give me the bottom {n} {np_} by {a}.")
                        if ranked else None],
            terse=[(f"top {n} {np_} by {a}" if desc else f"bottom {n} {np_} by {a}") if ranked else None,
                   f"{n} {own} {np_}" if own else None, f"{n} {np_} with the {gen}"])
    show = cx.sp.chance(0.35)
    if show:
        text = add_tail(cx, text, cx.sp.attr(c, plural_=n > 1), n == 1, t.person)
    sel = [Col(r, t.label)] + ([Col(r, c)] if show else [])
    return B(Query(sel, r, where=[cond] if cond else [], order_by=[(Col(r, c), desc)], limit=n), text, t)


@family(T, BASIC, RETRIEVAL, 2.5)
def sorted_list(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = _order_col(cx, t)
    desc = cx.sp.chance(0.5)
    cond = cx.cond(r, avoid=(c,)) if cx.sp.chance(0.3) else None
    np_ = _np(cx, t, [cond])[0] if cond else cx.sp.plural(t)
    a = cx.sp.attr(c)
    temporal = c.kind in ("date", "year")
    if temporal:
        way = cx.rng.choice(("latest first", "most recent first", "newest first")) if desc else \
            cx.rng.choice(("earliest first", "oldest first", "in chronological order"))
    else:
        way = cx.rng.choice(("highest first", "from highest to lowest", "in descending order", "largest first")) \
            if desc else cx.rng.choice(("lowest first", "from lowest to highest", "in ascending order", "smallest first"))
    most, least = (c.attr.most, c.attr.least) if desc else (c.attr.least, c.attr.most)
    if most and least and cx.sp.chance(0.3):
        way = f"from the {most} to the {least}"
    text = cx.say(
        question=[f"Can you list the {np_} and their {a}, {way}?"],
        imperative=[f"List the {np_} with their {a}, {way}.", f"Sort the {np_} by {a}, {way}, showing {a}.",
                    f"Show the {np_} and their {a}, ordered by {a} {way}." if "first" in way or "order" not in way
                    else f"Show the {np_} and their {a}, {way}."],
        terse=[f"{np_} by {a}, {way}", f"{np_} and {a}, {way}"])
    return B(Query([Col(r, t.label), Col(r, c)], r, where=[cond] if cond else [], order_by=[(Col(r, c), desc)]),
             text, t)


@family(T, BASIC, RETRIEVAL, 2)
def between_range(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = cx.one(cx.cols(t, ORDERED, distinct=3), "no range")
    vals = sorted({v for v in t.values(c) if v is not None})
    i = cx.rng.randint(0, len(vals) - 2)
    j = cx.rng.randint(i + 1, min(len(vals) - 1, i + 3))
    lo, hi = vals[i], vals[j]
    if c.kind in ("int", "real", "money", "year"):
        integer = c.kind in ("int", "year") or isinstance(lo, int)
        if i > 0:
            lo = roundest(vals[i - 1], vals[i], True, False, integer)
        if j < len(vals) - 1:
            hi = roundest(vals[j], vals[j + 1], False, True, integer)
    cond = Cond(Col(r, c), "BETWEEN", (lo, hi))
    np_, phrs = _np(cx, t, [cond])
    show = cx.sp.chance(0.4)
    lw = cx.sp.label_words(t)
    text = ask_rows(cx, t, np_, phrs, lw)
    if show:
        text = add_tail(cx, text, cx.sp.attr(c, plural_=True), False, t.person)
    return B(Query([Col(r, t.label)] + ([Col(r, c)] if show else []), r, where=[cond]), text, t)


@family(T, BASIC, RETRIEVAL, 2)
def missing_values(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    cols = [c for c in t.attrs() if c.kind != "bool" and None in t.values(c) and
            any(v is not None for v in t.values(c))]
    c = cx.one(cols, "no missing values")
    cond = Cond(Col(r, c), "IS NULL" if cx.sp.chance(0.7) else "IS NOT NULL")
    return labels_where(cx, t, r, cond)


@family(T, BASIC, RETRIEVAL, 2)
def distinct_values(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = group_col(cx, t)
    a = cx.sp.attr(c, plural_=True)
    p = cx.sp.plural(t)
    text = cx.say(
        question=[f"What are the different {a} of the {p}?", f"Which {a} do the {p} have?",
                  f"What distinct {a} appear among the {p}?"],
        imperative=[f"List the distinct {a} of {p}.", f"Show each {a} that occurs among the {p}, once.",
                    f"List the unique {a} in {t.name}."],
        terse=[f"distinct {a} of {p}", f"unique {a} in {t.name}", f"different {a} among {p}"])
    return B(Query([Col(r, c)], r, distinct=True), text, t)


@family(T, AGG, ANALYTICS, 1)
def count_distinct(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = group_col(cx, t)
    a = cx.sp.attr(c, plural_=True)
    p = cx.sp.plural(t)
    text = cx.say(question=[f"How many different {a} are there among the {p}?", f"How many distinct {a} do the {p} have?"],
                  imperative=[f"Count the distinct {a} of the {p}."],
                  terse=[f"number of distinct {a} in {t.name}", f"how many different {a} among {p}"])
    return B(Query([Agg("COUNT", Col(r, c), distinct=True)], r), text, t)


@family(T, BASIC, RETRIEVAL, 1)
def name_like(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    labels = [v for v in t.values(t.label) if isinstance(v, str)]
    v = cx.rng.choice(labels)
    kind = "prefix" if cx.sp.chance(0.7) else "infix"
    if kind == "prefix":
        text_ = v[:cx.rng.choice((1, 1, 2, 3))]
    else:
        words = [w for w in v.split() if len(w) >= 4]
        if not words:
            raise Skip("no word to look for")
        text_ = cx.rng.choice(words)
    if not text_.strip() or "%" in text_ or "_" in text_:
        raise Skip("unusable pattern")
    matches = [x for x in labels if (x.lower().startswith(text_.lower()) if kind == "prefix"
                                     else text_.lower() in x.lower())]
    if len(matches) == len(labels):
        raise Skip("every row matches")
    cond = Cond(Col(r, t.label), "LIKE", (kind, text_))
    lw = cx.sp.label_words(t)
    verb = cx.sp.pick("starts with", "begins with") if kind == "prefix" else "contains"
    single = lw[:-1] if lw.endswith("s") and lw != t.label.name else lw
    cx.said(cond, single)
    val = mark(cx.rng.choice(("'{}'", '"{}"', "{}")).format(text_))
    p = cx.sp.plural(t)
    text = cx.say(
        question=[f"Which {p} have a {single} that {verb} {val}?",
                  f"What {p} have {val} {'at the start of' if kind == 'prefix' else 'in'} their {single}?"],
        imperative=[f"List the {p} whose {single} {verb} {val}.", f"Find {p} with a {single} that {verb} {val}."],
        terse=[f"{p} whose {single} {verb} {val}", f"{p} with {single} {'starting with' if kind == 'prefix' else 'containing'} {val}"])
    return B(Query([Col(r, t.label)], r, where=[cond]), text, t)


@family(T, BASIC, RETRIEVAL, 2)
def in_values(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    cols = [c for c in cx.cols(t, ("cat", "text")) if len({v for v in t.values(c) if v is not None}) >= 3]
    c = cx.one(cols, "no category with 3 values")
    a, b = cx.rng.sample(sorted({v for v in t.values(c) if v is not None}), 2)
    cond = Cond(Col(r, c), "IN", (a, b))
    return labels_where(cx, t, r, cond)


__all__ = ["ask_rows", "agg_funcs", "agg_word", "superlative", "cut"]
