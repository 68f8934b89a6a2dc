"""Nesting, set operations, superlatives over groups, three-table and bridge joins, and the rare worded CASE and
window functions (~20% of rows)."""
from __future__ import annotations

from pipeline.datagen.families.base import (
    AGG,
    ANALYTICS,
    BASIC,
    JOIN1,
    JOINS,
    RETRIEVAL,
    SETOP,
    SUBQ,
    WIN,
    Ctx,
    Skip,
    cut,
    family,
    group_col,
    rows_np,
)
from pipeline.datagen.families.base import Built as B
from pipeline.datagen.families.joined import (
    child_side,
    group_words,
    joined,
    link,
    parent_filter,
    per_parent,
    twin,
)
from pipeline.datagen.families.single import _order_col, add_tail, agg_funcs, agg_word
from pipeline.datagen.query import Agg, Col, Cond, Join, Query, Raw, Ref, alias_refs
from pipeline.datagen.schema import NUMERIC, Table
from pipeline.datagen.words import Phr, article, deconj, mark, predicate, verb_phr

T = "nested"


def _with_children(cx: Ctx, lk, cond_phr: Phr | None, cn: str, cp: str) -> list[str]:
    """'have an employee earning more than 5' / 'have employees who are contractors'."""
    out = []
    if cond_phr is None:
        return [f"have {cp}"]
    if cond_phr.sg:
        art = "an" if cn[:1].lower() in "aeio" else "a"
        out += [f"have {art} {cn} {cond_phr.sg}", f"have at least one {cn} {cond_phr.sg}"]
    out.append(f"have {cp} {cond_phr.post}")
    return out


@family(T, SUBQ, RETRIEVAL, 3, needs="link")
def in_subquery(cx: Ctx) -> B:
    lk = link(cx, ok=lambda lk: not twin(cx, lk))
    ct, pt = lk.child, lk.parent
    cr, pr = Ref(ct), Ref(pt)
    cond = cx.cond(cr)
    ph = cx.phr(cond, ct)
    cn, cp, pp = cx.sp.noun(ct), cx.sp.plural(ct), cx.sp.plural(pt)
    has = cx.rng.choice(_with_children(cx, lk, ph, cn, cp))
    text = cx.say(question=[f"Which {pp} {has}?"],
                  imperative=[f"List the {pp} that {has}.", f"Find the {pp} that {has}."],
                  terse=[f"{pp} with {cp} {ph.post}", f"{pp} that {has}"])
    sub = Query([Col(cr, lk.fk)], cr, where=[cond])
    q = Query([Col(pr, pt.label)], pr, where=[Cond(Col(pr, pt.pk), "IN_Q", sub)])
    return B(q, text, pt)


def _no_children(cx: Ctx) -> tuple[Table, Ref, Query, str, str]:
    """Rows of a table that no row of another table points to: (table, its ref, the sub-query of keys, the
    words for those rows, the family of words used)."""
    opts = []
    for lk in cx.links():
        if twin(cx, lk):
            continue
        used = {r[lk.fk.name] for r in lk.child.rows}
        if any(r[lk.parent.pk.name] not in used for r in lk.parent.rows):
            opts.append(("rel", lk))
    for bt in cx.s.bridges():
        for end in cx.s.ends(bt):
            used = {r[end.fk.name] for r in bt.rows}
            if any(r[end.parent.pk.name] not in used for r in end.parent.rows):
                opts.append(("bridge", end))
    how, lk = cx.one(opts, "every row is referenced")
    pt = lk.parent
    pr = Ref(pt)
    sub_ref = Ref(lk.child)
    sub = Query([Col(sub_ref, lk.fk)], sub_ref)
    pp = cx.sp.plural(pt)
    if how == "rel":
        cp = cx.sp.plural(lk.child)
        words = cx.sp.pick(f"{pp} with no {cp}", f"{pp} without any {cp}", f"{pp} that have no {cp}")
        pred = f"have no {cp}"
        verb = lk.relation.parent_verb
        w = verb.split(" ", 1)[0] if verb else ""
        if verb and verb.endswith(" {c}") and verb.count(" ") == 1 and cx.sp.chance(0.5) and \
                (w.endswith("ed") or w.endswith("s") and not w.endswith("ss") and w not in ("is", "has")):
            pred = f"{deconj(w) if w.endswith('s') else w} no {cp}"       # 'review no earthquakes'
            words = f"{pp} {cx.sp.who(pt)} {pred}"
    else:
        b = lk.child.bridge
        other = [e for e in cx.s.ends(lk.child) if e is not lk][0]
        any_other = f"any {cx.sp.noun(other.parent)}"
        verb = b.a_verb if lk.fk is cx.s.ends(lk.child)[0].fk else b.b_verb
        filled = verb.replace("{b}", any_other).replace("{a}", any_other)
        w = filled.split(" ", 1)[0]
        who = cx.sp.who(pt)
        if w.endswith("s") and not w.endswith("ss") and not w.endswith("ed"):
            neg_pred = f"do not {deconj(filled)}"
            words = f"{pp} {who} {neg_pred}"
        else:
            neg_pred = f"are not {filled}" if not w.startswith("with") else f"have no {filled[5:]}"
            words = f"{pp} not {filled}" if not w.startswith("with") else f"{pp} without {filled[5:]}"
        pred = neg_pred
    return pt, pr, sub, words, pred


@family(T, SUBQ, RETRIEVAL, 3, needs="link")
def not_in_child(cx: Ctx) -> B:
    pt, pr, sub, words, pred = _no_children(cx)
    pp = cx.sp.plural(pt)
    text = cx.say(question=[f"Which {pp} {pred}?", f"Are there {words}? List them."],
                  imperative=[f"List the {words}.", f"Find all {words}.", f"Show the {words}."],
                  terse=[words, f"{words}?"])
    q = Query([Col(pr, pt.label)], pr, where=[Cond(Col(pr, pt.pk), "NOT IN_Q", sub)])
    return B(q, text, pt)


@family(T, SUBQ, RETRIEVAL, 1.2, needs="link")
def not_exists_child(cx: Ctx) -> B:
    pt, pr, sub, words, pred = _no_children(cx)
    sub_ref = sub.base
    pr.alias, sub_ref.alias = "", ""
    alias_refs([pr, sub_ref])
    pp = cx.sp.plural(pt)
    fk_col = sub.select[0]
    inner = Query([Raw("1")], sub_ref, where=[Cond(fk_col, "=", Col(pr, pt.pk))])
    text = cx.say(question=[f"Which {pp} {pred}?"], imperative=[f"List the {words}.", f"Show all {words}."],
                  terse=[words])
    q = Query([Col(pr, pt.label)], pr, where=[Cond(None, "NOT EXISTS", inner)])
    return B(q, text, pt)


@family(T, SUBQ, RETRIEVAL, 2.5)
def above_average(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = cx.one([x for x in cx.cols(t, ("int", "real", "money"), distinct=3)], "no number")
    up = cx.sp.chance(0.7)
    a = cx.sp.attr(c)
    given = c.attr.more if up else c.attr.less
    avg_words = cx.sp.pick(f"the average {a}", "the average", "average")
    p = cx.sp.plural(t)
    opts = []
    if given and given.endswith("{v}") and avg_words != "average":
        phrase = given.replace("{v}", avg_words)
        opts.append((f"{p} {phrase}", predicate(phrase), given))
    cmp_ = cx.sp.pick("above", "higher than", "greater than") if up else cx.sp.pick("below", "lower than", "less than")
    opts.append((f"{p} whose {a} is {cmp_} {avg_words if avg_words != 'average' else 'the average'}", None, a))
    art = ("an " if up else "a ") if article(a) else ""
    opts.append((f"{p} with {art}{'above' if up else 'below'}-average {a}",
                 f"have {art}{'above' if up else 'below'}-average {a}", a))
    np_, pred, said = cx.rng.choice(opts)
    show = cx.sp.chance(0.4)
    text = cx.say(question=[f"Which {p} {pred}?" if pred else None, f"What are the {cx.sp.label_words(t)} of the {np_}?"],
                  imperative=[f"List the {np_}.", f"Find all {np_}."],
                  terse=[np_])
    if show:
        text = add_tail(cx, text, cx.sp.attr(c, plural_=True), False, t.person)
    sub = Query([Agg("AVG", Col(Ref(t), c))], Ref(t))
    cond = Cond(Col(r, c), ">" if up else "<", sub)
    cx.said(cond, said)
    return B(Query([Col(r, t.label)] + ([Col(r, c)] if show else []), r, where=[cond]), text, t)


@family(T, AGG, ANALYTICS, 1.5)
def group_superlative(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    g = group_col(cx, t)
    most = cx.sp.chance(0.75)
    a = group_words(cx, g)
    p = cx.sp.plural(t)
    common = "most common" if most else "least common"
    text = cx.say(question=[f"Which {a} is the {common} among the {p}?", f"What is the {common} {a} of the {p}?",
                            f"Which {a} has the {'most' if most else 'fewest'} {p}?"],
                  imperative=[f"Find the {common} {a} among {p}.", f"Name the {a} with the {'most' if most else 'fewest'} {p}."],
                  terse=[f"{common} {a} of {p}", f"{a} with {'most' if most else 'fewest'} {p}"])
    q = Query([Col(r, g)], r, group_by=[Col(r, g)], order_by=[(Agg("COUNT"), most)], limit=1)
    return B(q, text, t)


@family(T, JOIN1, ANALYTICS, 2, needs="link")
def join_superlative(cx: Ctx) -> B:
    lk = link(cx)
    c, p, q = joined(cx, lk, parent_first=True)
    pt, ct = lk.parent, lk.child
    _, pn = per_parent(cx, lk)
    cp = cx.sp.plural(ct)
    most = cx.sp.chance(0.75)
    nums = [x for x in cx.cols(ct, NUMERIC) if x.kind != "year"]
    if nums and cx.sp.chance(0.4):
        col = cx.rng.choice(nums)
        func = cx.rng.choice([f for f in agg_funcs(col) if f in ("AVG", "SUM")])
        w = agg_word(cx, func, col)
        a = cx.sp.attr(col)
        hi = "highest" if most else "lowest"
        text = cx.say(question=[f"Which {pn} has the {hi} {w} {a} of {cp}?",
                                f"Which {pn}'s {cp} have the {hi} {w} {a}?"],
                      imperative=[f"Find the {pn} whose {cp} have the {hi} {w} {a}."],
                      terse=[f"{pn} with the {hi} {w} {a} of {cp}", f"{pn} with {hi} {w} {cp} {a}"])
        order = Agg(func, Col(c, col))
    else:
        m = "most" if most else "fewest"
        verb = lk.relation.parent_verb
        alt = None
        if verb and verb.endswith(" {c}") and verb.count(" ") == 1 and not twin(cx, lk):
            alt = f"Which {pn} {verb.replace('{c}', f'the {m} {cp}')}?"
        text = cx.say(question=[f"Which {pn} has the {m} {cp}?", alt],
                      imperative=[f"Find the {pn} with the {m} {cp}.", f"Name the {pn} that has the {m} {cp}."],
                      terse=[f"{pn} with the {m} {cp}", f"{pn} with {m} {cp}"])
        order = Agg("COUNT")
    q.select = [Col(p, pt.label)]
    q.group_by = [Col(p, pt.pk), Col(p, pt.label)]
    q.order_by, q.limit = [(order, most)], 1
    return B(q, text, pt)


@family(T, JOINS, RETRIEVAL, 2.5, needs="chain")
def chain_join(cx: Ctx) -> B:
    a, b = cx.one([(x, y) for x, y in cx.chains() if not twin(cx, x) and not twin(cx, y)], "no chain of three")
    ct, pt, gt = a.child, a.parent, b.parent
    cr, pr, gr = Ref(ct), Ref(pt), Ref(gt)
    q = Query([], cr, joins=[Join(pr, Col(cr, a.fk), Col(pr, pt.pk)), Join(gr, Col(pr, b.fk), Col(gr, gt.pk))])
    alias_refs(q.refs)
    cond, filled = parent_filter(cx, b, gr)
    mid = child_side(cx, b, filled)
    via = f"{cx.sp.plural(pt)} {mid.post}"
    rel = child_side(cx, a, via)
    cp = cx.sp.plural(ct)
    count = cx.sp.chance(0.3)
    if count:
        text = cx.say(question=[f"How many {cp} {rel.pred}?" if rel.pred else None, f"How many {cp} {rel.post} are there?"],
                      imperative=[f"Count the {cp} {rel.post}."], terse=[f"number of {cp} {rel.post}"])
        q.select = [Agg("COUNT")]
    else:
        lw = cx.sp.label_words(ct)
        text = cx.say(question=[f"Which {cp} {rel.pred}?" if rel.pred else None, f"What are the {lw} of the {cp} {rel.post}?"],
                      imperative=[f"List the {cp} {rel.post}.", f"Show all {cp} {rel.post}."],
                      terse=[f"{cp} {rel.post}", f"{lw} of {cp} {rel.post}"])
        q.select = [Col(cr, ct.label)]
    q.where = [cond]
    b_ = B(q, text, ct)
    return b_


def _bridge(cx: Ctx):
    bt = cx.one([t for t in cx.s.bridges()], "no bridge table")
    ea, eb = cx.s.ends(bt)
    return bt, ea, eb


@family(T, JOINS, RETRIEVAL, 2.5, needs="bridge")
def bridge_join(cx: Ctx) -> B:
    bt, ea, eb = _bridge(cx)
    b = bt.bridge
    if cx.sp.chance(0.5):              # rows of a linked to a given b
        this, other, verb = ea, eb, b.a_verb
    else:
        this, other, verb = eb, ea, b.b_verb
    tr, br, orf = Ref(this.parent), Ref(bt), Ref(other.parent)
    q = Query([], tr, joins=[Join(br, Col(br, this.fk), Col(tr, this.parent.pk)),
                             Join(orf, Col(br, other.fk), Col(orf, other.parent.pk))])
    alias_refs(q.refs)
    ot = other.parent
    linked = {r[other.fk.name] for r in bt.rows}
    rows = [r for r in ot.rows if r[ot.pk.name] in linked]
    if rows and cx.sp.chance(0.7):
        v = cx.rng.choice(rows)[ot.label.name]
        cond = Cond(Col(orf, ot.label), "=", v)
        filled = cx.sp.named(ot, v)
        cx.said(cond, filled)
        distinct = False
    else:
        cond = cx.cond(orf)
        filled = rows_np(cx, ot, [cx.phr(cond, ot)])
        distinct = True
    rel = verb_phr(verb, filled, cx.sp.who(this.parent))
    tp = cx.sp.plural(this.parent)
    text = cx.say(question=[f"Which {tp} {rel.pred}?" if rel.pred else None, f"Who are the {tp} {rel.post}?"
                            if this.parent.person else None],
                  imperative=[f"List the {tp} {rel.post}.", f"Show all {tp} {rel.post}."],
                  terse=[f"{tp} {rel.post}"])
    q.select, q.where, q.distinct = [Col(tr, this.parent.label)], [cond], distinct
    return B(q, text, this.parent)


@family(T, JOIN1, ANALYTICS, 1.5, needs="bridge")
def bridge_count(cx: Ctx) -> B:
    bt, ea, eb = _bridge(cx)
    b = bt.bridge
    if cx.sp.chance(0.5):          # how many a per b
        counted, per, verb = ea, eb, b.a_verb
    else:
        counted, per, verb = eb, ea, b.b_verb
    pr, br = Ref(per.parent), Ref(bt)
    q = Query([], pr, joins=[Join(br, Col(br, per.fk), Col(pr, per.parent.pk))])
    alias_refs(q.refs)
    each = f"each {cx.sp.noun(per.parent)}"
    rel = verb_phr(verb, each, cx.sp.who(counted.parent))
    cp = cx.sp.plural(counted.parent)
    text = cx.say(question=[f"How many {cp} {rel.pred}?" if rel.pred else None, f"For {each}, how many {cp} {rel.post}?"
                            if rel.pred is None else None],
                  imperative=[f"Count the {cp} {rel.post}.", f"For {each}, count the {cp} {rel.post.replace(each, 'it')}."
                              if each in rel.post else None],
                  terse=[f"number of {cp} {rel.post}"])
    pt = per.parent
    q.select = [Col(pr, pt.label), Agg("COUNT")]
    q.group_by = [Col(pr, pt.pk), Col(pr, pt.label)]
    return B(q, text, pt)


def _two_conds(cx: Ctx, r: Ref, g) -> tuple[Cond, Cond]:
    """Two conditions on the same table that split its rows differently (a yes/no column's two sides, two
    values of a category, or both sides of a threshold)."""
    t = r.table
    cols = [c for c in cx.cols(t, ("bool", "cat", "int", "real", "money", "year", "date"), nonnull=True) if c is not g]
    c = cx.one(cols, "nothing to split on")
    vals = sorted(set(t.values(c)))
    if len(vals) < 2:
        raise Skip("one value")
    if c.kind == "bool":
        return Cond(Col(r, c), "=", 1), Cond(Col(r, c), "=", 0)
    if c.kind == "cat":
        a, b = cx.rng.sample(vals, 2)
        return Cond(Col(r, c), "=", a), Cond(Col(r, c), "=", b)
    v = cut(vals, ">", cx.rng, c.kind)
    return Cond(Col(r, c), ">", v), Cond(Col(r, c), "<=", v) if cx.sp.chance(0.2) else Cond(Col(r, c), "<", v)


def _set_of_groups(cx: Ctx, op: str):
    """Values of a grouping column found under one condition, INTERSECT / EXCEPT those under another: the
    query and the words (group plural, row plural, the two conditions' words)."""
    t = cx.subject()
    g = group_col(cx, t)
    r1, r2 = Ref(t), Ref(t)
    c1, c2 = _two_conds(cx, r1, g)
    c2 = Cond(Col(r2, c2.left.column), c2.op, c2.value)
    p1, p2 = cx.phr(c1, t), cx.phr(c2, t)
    q = Query([Col(r1, g)], r1, where=[c1], setop=(op, Query([Col(r2, g)], r2, where=[c2])))
    return t, q, group_words(cx, g, plural_=True), cx.sp.plural(t), p1.post, p2.post


@family(T, SETOP, RETRIEVAL, 1)
def set_both(cx: Ctx) -> B:
    t, q, ga, p, w1, w2 = _set_of_groups(cx, "INTERSECT")
    text = cx.say(question=[f"Which {ga} have both {p} {w1} and {p} {w2}?"],
                  imperative=[f"List the {ga} that have {p} {w1} as well as {p} {w2}.",
                              f"Find the {ga} shared by {p} {w1} and {p} {w2}."],
                  terse=[f"{ga} with both {p} {w1} and {p} {w2}"])
    return B(q, text, t)


@family(T, SETOP, RETRIEVAL, 1)
def set_but_not(cx: Ctx) -> B:
    t, q, ga, p, w1, w2 = _set_of_groups(cx, "EXCEPT")
    text = cx.say(question=[f"Which {ga} have {p} {w1} but no {p} {w2}?"],
                  imperative=[f"List the {ga} that have {p} {w1} but none {w2}.",
                              f"Find the {ga} with {p} {w1}, leaving out those with {p} {w2}."],
                  terse=[f"{ga} with {p} {w1} but not {w2}"])
    return B(q, text, t)


@family("worded", BASIC, ANALYTICS, 0.8)
def case_label(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = cx.one(cx.cols(t, ("int", "real", "money"), nonnull=True, distinct=3), "no number")
    v = cut(t.values(c), ">", cx.rng, c.kind)
    hi, lo = cx.rng.choice((("high", "low"), ("above", "below"), ("large", "small"), ("yes", "no"), ("over", "under")))
    a = cx.sp.attr(c)
    noun = cx.sp.noun(t)
    vv = cx.sp.value(c, v)
    h, l_ = mark(f"'{hi}'"), mark(f"'{lo}'")
    its = "their" if t.person else "its"
    text = cx.say(question=[f"For each {noun}, can you show its name and {h} if {its} {a} is over {vv}, otherwise {l_}?"],
                  imperative=[f"Label each {noun} as {h} when {its} {a} is more than {vv} and {l_} otherwise, "
                              f"showing its name and the label.",
                              f"List every {noun}'s name with {h} if {its} {a} exceeds {vv} or {l_} if not."],
                  terse=[f"{noun} name, {h} if {a} > {vv} else {l_}"])
    case = Raw(f"CASE WHEN {{0}} > {v} THEN '{hi}' ELSE '{lo}' END", (Col(r, c),))
    cond = Cond(Col(r, c), ">", v)
    cx.said(cond, a)
    return B(Query([Col(r, t.label), case], r), text, t)


@family("worded", WIN, ANALYTICS, 0.8)
def window_rank(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    c = _order_col(cx, t)
    if c.kind in ("date", "year"):
        raise Skip("rank by a number")
    a = cx.sp.attr(c)
    noun, p = cx.sp.noun(t), cx.sp.plural(t)
    g = None
    if cx.sp.chance(0.4):
        try:
            g = group_col(cx, t)
        except Skip:
            g = None
    if g is not None:
        ga = group_words(cx, g)
        text = cx.say(question=[f"How does each {noun} rank by {a} within its {ga}? Show the name, {ga}, {a} and rank."],
                      imperative=[f"Rank the {p} by {a} within each {ga}, highest first, showing name, {ga}, {a} "
                                  f"and rank."],
                      terse=[f"rank {p} by {a} per {ga} (name, {ga}, {a}, rank)"])
        win = Raw("RANK() OVER (PARTITION BY {0} ORDER BY {1} DESC)", (Col(r, g), Col(r, c)))
        sel = [Col(r, t.label), Col(r, g), Col(r, c), win]
    else:
        text = cx.say(question=[f"Can you rank the {p} by {a}, highest first, with their names, {a} and rank?"],
                      imperative=[f"Rank the {p} by {a} from highest to lowest, showing name, {a} and rank.",
                                  f"Show each {noun}'s name, {a} and its rank by {a} (1 = highest)."],
                      terse=[f"rank of {p} by {a}, highest first: name, {a}, rank"])
        win = Raw("RANK() OVER (ORDER BY {0} DESC)", (Col(r, c),))
        sel = [Col(r, t.label), Col(r, c), win]
    return B(Query(sel, r), text, t)


@family("worded", WIN, ANALYTICS, 0.4)
def running_total(cx: Ctx) -> B:
    t = cx.subject()
    r = Ref(t)
    d = cx.one([c for c in cx.cols(t, ("date",), nonnull=True) if len(set(t.values(c))) == len(t.rows)], "no date")
    c = cx.one([x for x in cx.cols(t, ("int", "real", "money"), nonnull=True) if "SUM" in agg_funcs(x)], "no amount")
    a, da = cx.sp.attr(c), cx.sp.attr(d)
    p = cx.sp.plural(t)
    text = cx.say(question=[f"What is the running total of {a} over the {p}, ordered by {da}? Show each {da}, {a} "
                            f"and the running total."],
                  imperative=[f"Show each {cx.sp.noun(t)}'s {da} and {a} with a running total of {a} by {da}.",
                              f"List the {p} by {da} with their {a} and the cumulative {a}."],
                  terse=[f"running total of {a} by {da} for {p}"])
    win = Raw("SUM({0}) OVER (ORDER BY {1})", (Col(r, c), Col(r, d)))
    sel = [Col(r, d), Col(r, c), win]
    if "cumulative" in text:
        sel = [Col(r, t.label), Col(r, d), Col(r, c), win]
        text = text.replace("with their", "with their name,")
    return B(Query(sel, r), text, t)
