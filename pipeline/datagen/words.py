"""How a question names things: entities, attributes, values and conditions, in the words people use.

A `Speaker` is made per question with a register ("question", "imperative" or "terse") and draws among the
lexicon's words: an entity's plural or a synonym, an attribute's phrases (or, sometimes, the bare column
name as the schema spells it), comparatives ("earning more than {v}"), filter phrases ("in {v}"), relation
verbs ("works in {p}"). Values are wrapped in markers while the sentence is built, so `finish` can lower-case
a sloppy question's words and never a value; numbers are written only in forms equal to the SQL literal
(50000 or 50,000), dates as stored (ISO).

    sp = Speaker(rng, "question")
    p = sp.cond(cond, table)         # Phr(post="earning more than 50,000", pred="are earning more than ...")
    finish(f"Which {sp.plural(t)} {p.post}?", sloppy=False)
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from pipeline.datagen.schema import Column, Table

V_OPEN, V_CLOSE = "\x02", "\x03"
_MARKED = re.compile("\x02(.*?)\x03", re.S)
PREPS = {"in", "on", "at", "from", "under", "inside", "near", "for", "of", "by", "within", "between", "to", "into",
         "outside", "after", "before", "during", "over", "above", "below", "across", "via", "through", "among",
         "since", "until", "per", "with", "without", "about", "against", "at"}
PARTICIPLES = {"born", "made", "sold", "built", "held", "set", "run", "paid", "led", "taught", "written", "grown",
               "shown", "given", "seen", "done", "drawn", "kept", "won", "lost", "bought", "brought", "caught",
               "found", "sent", "spent", "shot", "hit", "cut", "put", "read", "known", "driven", "flown", "worn",
               "broken", "chosen", "stolen", "frozen", "begun", "sung", "sunk", "spun", "hung", "bound", "ground"}
NOT_VERBS = {"is", "was", "has", "this", "its", "plus", "less", "us", "thus", "always", "towards", "various"}
IRREGULAR_PLURALS = {"person": "people", "child": "children", "man": "men", "woman": "women", "staff": "staff",
                     "series": "series", "species": "species", "foot": "feet", "tooth": "teeth", "mouse": "mice",
                     "analysis": "analyses", "crisis": "crises", "criterion": "criteria", "datum": "data",
                     "equipment": "equipment", "information": "information", "news": "news", "personnel":
                     "personnel", "sheep": "sheep", "fish": "fish", "aircraft": "aircraft", "media": "media"}
FUNCTION_WORDS = {"it", "its", "of", "per", "in", "the", "a", "an", "to", "by", "from", "on", "at", "for", "with",
                  "was", "is", "were", "when", "who", "that", "which", "and", "or", "as", "has", "had"}
_DET = {"a", "an", "the", "its", "their", "his", "her", "number", "amount", "share"}


def mark(text: str) -> str:
    return f"{V_OPEN}{text}{V_CLOSE}"


def unmark(text: str) -> str:
    return text.replace(V_OPEN, "").replace(V_CLOSE, "")


def values_in(text: str) -> list[str]:
    """The marked values of a sentence under construction."""
    return _MARKED.findall(text)


def finish(text: str, sloppy: bool, rng: random.Random) -> str:
    """The sentence as the user types it: capitalized (values untouched), or for a sloppy one lower-cased
    words outside values, trailing punctuation dropped, a few fillers dropped."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,?.:])", r"\1", text)
    if sloppy:
        pieces = re.split(f"({V_OPEN}.*?{V_CLOSE})", text)
        out = []
        for p in pieces:
            if p.startswith(V_OPEN):
                out.append(p)
                continue
            p = p.lower()
            if rng.random() < 0.5:
                p = re.sub(r"\b(the|please|me) ", "", p)
            p = p.replace("average", "avg") if rng.random() < 0.4 else p
            p = p.replace(" with ", " w/ ") if rng.random() < 0.2 else p
            out.append(p)
        text = "".join(out).strip().rstrip("?.! ")
        if rng.random() < 0.3:
            text = re.sub(r"^(what is|what are|show( me)?|list|give( me)?|find|get) ", "", text)
        text = re.sub(r"^me ", "give me ", text)
    elif text[:1] != V_OPEN:
        text = text[:1].upper() + text[1:]
    return unmark(re.sub(r"\s+", " ", text)).strip()


# ----------------------------------------------------------------------------------------------- English
def plural(noun: str) -> str:
    """The plural of a noun phrase: its head (the word before a preposition, else the last) pluralized."""
    if " or " in noun:
        return " or ".join(plural(x) for x in noun.split(" or "))
    words = noun.split()
    if not words:
        return noun
    head = len(words) - 1
    if head and _participle(words[-1]):          # 'license sold' -> 'licenses sold'
        head -= 1
    for i, w in enumerate(words[1:], 1):
        if w in PREPS or w in ("who", "that"):
            head = i - 1
            break
    words[head] = _plural_word(words[head])
    return " ".join(words)


def _plural_word(w: str) -> str:
    low = w.lower()
    if low in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[low]
    if re.search(r"(ss|us|is|as|x|z|ch|sh)$", low):
        return w + "es"
    if low.endswith("s"):               # 'works', 'premises', 'headquarters': already a plural form
        return w
    if re.search(r"[^aeiou]y$", low):
        return w[:-1] + "ies"
    return w + "s"


def pluralizable(phrase: str) -> bool:
    """A phrase whose plural reads well: no function words (not "year it opened")."""
    return not any(w in FUNCTION_WORDS for w in phrase.split()) and len(phrase.split()) <= 3


def article(phrase: str) -> str:
    w = phrase.split()[0].lower() if phrase.split() else ""
    if w in _DET or w.endswith("s") and not w.endswith("ss") or w in ("staff", "equipment", "information"):
        return ""
    return "an " if re.match(r"[aeio]|u[^n]|hour", w) else "a "


def be(phrase: str) -> str:
    """'is' or 'are' for a phrase as a subject ('the affected users are')."""
    last = phrase.split()[-1].lower() if phrase.split() else ""
    return "are" if last.endswith("s") and not last.endswith(("ss", "us", "is")) else "is"


def deconj(phrase: str) -> str:
    """A third-person singular verb phrase for a plural subject: 'works in' -> 'work in', 'has' -> 'have'."""
    w, _, rest = phrase.partition(" ")
    irregular = {"is": "are", "has": "have", "does": "do", "goes": "go", "was": "were"}
    if w in irregular:
        w = irregular[w]
    elif re.search(r"(ss|x|ch|sh|z)es$", w):
        w = w[:-2]
    elif re.search(r"[^aeiou]ies$", w):
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return f"{w} {rest}".strip()


def _is_3sg(w: str) -> bool:
    return w.endswith("s") and not w.endswith("ss") and w not in NOT_VERBS and len(w) > 2


_NOT_EN = {"open", "even", "seven", "ten", "often", "green", "between", "garden", "screen", "kitchen", "children",
           "women", "men", "when", "then", "than", "been", "seen"}


_NOT_ED = {"bed", "red", "shed", "hundred", "embed", "sled", "wed", "naked", "sacred", "wicked", "kindred"}


def _participle(w: str) -> bool:
    return (w.endswith("ed") and not w.endswith("eed") and w not in _NOT_ED) or w in PARTICIPLES or \
        (w.endswith("en") and len(w) > 4 and w not in _NOT_EN)


def nominal(phrase: str) -> bool:
    """A phrase that names a thing ('hire date', 'salary'), not a verb form ('founded', 'released')."""
    words = phrase.split()
    last = words[-1] if words else ""
    if not words or words[0] in ("how", "what", "when", "where", "why", "who", "whether", "if") or "it" in words:
        return False
    if last in PREPS or any(_participle(w) and nxt in PREPS for w, nxt in zip(words, words[1:])):
        return False                                     # 'made by', 'based in'
    if words[0] in ("is", "has", "was", "can", "does", "number", "no"):
        return words[0] == "number"
    return not (_participle(last) or last.endswith("ing") and len(last) > 5 and last not in ("rating", "building",
                                                                                              "listing", "ranking",
                                                                                              "setting", "booking",
                                                                                              "clothing", "funding",
                                                                                              "earnings", "housing"))


def predicate(phrase: str, past: bool = False) -> str | None:
    """A postmodifier of a plural noun ('earning more than 5', 'with parking', 'born after 1990') as the
    predicate of a plural subject ('are earning more than 5', 'have parking', 'were born after 1990')."""
    w, _, rest = phrase.partition(" ")
    if w in ("who", "that", "which"):
        return rest
    if w == "with":
        return "have " + rest
    if w == "without":
        return "have no " + rest
    if w in ("whose", "where"):
        return None
    if w in PREPS or w == "not" or w.endswith("ing") or w.endswith("er") or \
            w in ("more", "less", "fewer", "due", "still", "open", "closed"):
        return "are " + phrase
    if _participle(w):
        return ("were " if past else "are ") + phrase
    if _is_3sg(w):
        return deconj(phrase)
    return None


@dataclass
class Phr:
    """A condition in words: after a plural noun (`post`), after a singular one (`sg`), as the predicate of a
    plural subject (`pred`, None where no natural one exists), before the noun (`pre`, rare)."""
    post: str
    sg: str | None = None
    pred: str | None = None
    pre: str | None = None
    cond: object = None             # the query.Cond it says (set by the caller that keeps track)


def verb_phr(verb: str, filled: str, who: str) -> Phr:
    """A relation or bridge verb ('works in {p}', 'based in {p}', 'appears in {b}') filled in."""
    phrase = verb.replace("{p}", filled).replace("{c}", filled).replace("{a}", filled).replace("{b}", filled)
    w = phrase.split(" ", 1)[0]
    if w in ("who", "that", "which", "whose"):
        rest = phrase.split(" ", 1)[1] if " " in phrase else ""
        sg = phrase
        if w in ("who", "that", "which") and rest.split(" ", 1)[0] in ("are", "have", "were"):
            sg = None
        return Phr(phrase, sg, predicate(phrase))
    if w in PREPS or w.endswith("ing") or _participle(w) or w == "with":
        return Phr(phrase, phrase, predicate(phrase))
    if _is_3sg(w):
        return Phr(f"{who} {deconj(phrase)}", f"{who} {phrase}", deconj(phrase))
    return Phr(phrase, phrase, "are " + phrase)      # an adjective or participle the lists above do not know


# ----------------------------------------------------------------------------------------------- speaker
REGISTERS = ("question", "imperative", "terse")


class Speaker:
    """The words of one question (one register, one rng); remembers which words named which column."""

    def __init__(self, rng: random.Random, register: str, shared: frozenset = frozenset()):
        self.rng = rng
        self.shared = shared          # synonyms that also name another table of the schema: never used
        self.register = register
        self.bare = 0.3 if register == "terse" else 0.1
        self.mentions: list[tuple[Column, str]] = []       # (column, the words that named it)
        r = rng.random()
        self.quote = "'" if r < 0.15 else ('"' if r < 0.22 else "")      # how this writer quotes text values
        self.commas = rng.random() < 0.4                                 # and writes big numbers: 50,000

    def pick(self, *options):
        options = [o for o in options if o is not None]
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    @property
    def terse(self) -> bool:
        return self.register == "terse"

    # ------------------------------------------------------------------------------------------ nouns
    def plural(self, t: Table) -> str:
        if t.entity is None:
            b = t.bridge
            return b.plural or plural(b.noun) if (b.plural or b.noun) else " ".join(t.name.lower().split("_"))
        syn = [x for x in t.entity.synonyms if x.lower() not in self.shared]
        if syn and self.chance(0.2):
            return plural(self.rng.choice(syn))
        return t.entity.plural

    def noun(self, t: Table) -> str:
        if t.entity is None:
            return t.bridge.noun or "record"
        syn = [x for x in t.entity.synonyms if x.lower() not in self.shared]
        if syn and self.chance(0.15):
            return self.rng.choice(syn)
        return t.entity.noun

    def who(self, t: Table) -> str:
        return "who" if t.person else "that"

    # ------------------------------------------------------------------------------------- attributes
    def attr(self, col: Column, plural_: bool = False, bare: bool = True, noun: bool = True) -> str:
        """Words for a column: one of its phrases (the first, plainest, more often) or its bare name; `noun`:
        only phrases that name a thing ('with their hire date', not 'with their founded')."""
        a = col.attr
        phrases = [p for p in a.phrases if nominal(p)] if a is not None and noun else list(a.phrases) if a else []
        if not phrases or (bare and self.chance(self.bare)):
            words = col.name
        else:
            words = phrases[0] if self.chance(0.5) else self.rng.choice(phrases)
            if plural_ and pluralizable(words):
                words = plural(words)
        self.mentions.append((col, words))
        return words

    def label_words(self, t: Table) -> str:
        """How a question asks for the label column: 'names', 'titles' (a label phrase), or the column name."""
        lab = t.label
        if self.chance(self.bare):
            self.mentions.append((lab, lab.name))
            return lab.name
        nouns = {t.entity.noun, t.entity.plural}
        good = [p for p in lab.attr.phrases if p not in nouns and pluralizable(p) and nominal(p)]
        named = lab.kind == "person" or any("name" in p.split() for p in lab.attr.phrases)
        if named and (not good or self.chance(0.6)):
            words = "names"
        elif good:
            words = plural(self.rng.choice(good))
        else:
            words = lab.name
        self.mentions.append((lab, words))
        return words

    # ----------------------------------------------------------------------------------------- values
    def value(self, col: Column | None, v) -> str:
        if isinstance(v, str):
            if col is not None and col.kind == "date":
                return mark(v)
            q = self.quote
            return mark(f"{q}{v}{q}")
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int) and abs(v) >= 10000 and (col is None or col.kind != "year") and self.commas:
            return mark(f"{v:,}")
        if isinstance(v, float):
            return mark(f"{v:,.2f}".rstrip("0").rstrip(".") if abs(v) >= 10000 and self.commas else repr(v))
        return mark(str(v))

    def named(self, t: Table, v) -> str:
        """A row named by its label value: 'the Finance department', 'project Apollo', 'Maria Lopez'."""
        val = self.value(t.label, v)
        if t.person:
            return self.pick(val, val, f"{self.noun(t)} {val}")
        n = self.noun(t)
        if str(v).lower().startswith("the "):        # 'The Clockwork Isles': no 'the The ...'
            return self.pick(f"{n} {val}", val)
        return self.pick(f"the {val} {n}", f"{n} {val}", val, f"the {n} {val}")

    # ------------------------------------------------------------------------------------- conditions
    def cond(self, c, t: Table) -> Phr:
        """Words for a WHERE condition on a column of t (the query.Cond), after a noun for rows of t."""
        col: Column = c.left.column
        op, v = c.op, c.value
        who = self.who(t)
        if col.kind == "bool":
            return self._bool(col, v == 1, who)
        if op in ("IS NULL", "IS NOT NULL"):
            p = self.attr(col, bare=False)
            art = article(p)
            if op == "IS NULL":
                post = self.pick(f"with no {p}", f"whose {p} is missing", f"without {art}{p}",
                                 f"that have no {p} recorded" if not t.person else f"who have no {p} recorded")
                return Phr(post, self.pick(f"with no {p}", f"whose {p} is missing"), f"have no {p}")
            post = self.pick(f"that have {art}{p}" if not t.person else f"who have {art}{p}", f"whose {p} is known",
                             f"with {art}{p} on record")
            return Phr(post, f"with {art}{p}", f"have {art}{p}")
        if op in (">", "<", ">=", "<=", "BETWEEN", "YEAR"):
            return self._cmp(col, op, v, who)
        if op in ("=", "IN", "<>", "LIKE"):
            return self._eq(col, op, v, who)
        raise ValueError(f"no words for {op}")

    def _bool(self, col: Column, yes: bool, who: str) -> Phr:
        x = col.attr.is_true if yes else col.attr.is_false
        self.mentions.append((col, x))
        w = x.split(" ", 1)[0]
        if w in ("who", "that", "which"):
            rest = x.split(" ", 1)[1]
            sg = None if rest.split(" ", 1)[0] in ("are", "have", "were") else x
            return Phr(x, sg, predicate(x))
        if w in ("with", "without", "not") or w in PREPS or w.endswith("ing"):
            return Phr(x, x, predicate(x) or f"are {x}")
        single = " " not in x and not (x.endswith("s") and not x.endswith("ss"))
        return Phr(f"{who} are {x}", f"{who} is {x}" if single else None, f"are {x}", x if single else None)

    def _fmt(self, col: Column, v) -> str:
        return self.value(col, v)

    def _cmp(self, col: Column, op: str, v, who: str) -> Phr:
        a = col.attr
        temporal = col.kind in ("date", "year")
        if op == "BETWEEN":
            lo, hi = self._fmt(col, v[0]), self._fmt(col, v[1])
            if a.more and re.search(r" after \{v\}$", a.more) and temporal and self.chance(0.6):
                phrase = a.more.replace(" after {v}", f" between {lo} and {hi}")
                self.mentions.append((col, a.more.replace(" after {v}", " between {v}")))
                return Phr(phrase, phrase, predicate(phrase, past=True))
            p = self.attr(col)
            post = self.pick(f"whose {p} is between {lo} and {hi}", f"with {article(p)}{p} between {lo} and {hi}",
                             f"with {p} from {lo} to {hi}")
            return Phr(post, post, f"have {article(p)}{p} between {lo} and {hi}")
        if op == "YEAR":
            val = mark(str(v))
            if a.more and re.search(r" after \{v\}$", a.more) and self.chance(0.7):
                phrase = a.more.replace(" after {v}", f" in {val}")
                self.mentions.append((col, a.more.replace(" after {v}", " in {v}")))
                return Phr(phrase, phrase, predicate(phrase, past=True))
            p = self.attr(col)
            post = self.pick(f"whose {p} is in {val}", f"with {article(p)}{p} in {val}")
            return Phr(post, post, f"have {article(p)}{p} in {val}")
        val = self._fmt(col, v)
        up = op in (">", ">=")
        given = a.more if up else a.less
        if op in (">", "<") and given and "{v}" in given and self.chance(0.75 if not self.terse else 0.5):
            phrase = given.replace("{v}", val)
            self.mentions.append((col, given))
            return Phr(phrase, phrase, predicate(phrase, past=temporal))
        p = self.attr(col)
        if temporal:
            words = {">": ("after", "later than"), "<": ("before", "earlier than"),
                     ">=": ("on or after",) if col.kind == "date" else ("in or after",),
                     "<=": ("on or before",) if col.kind == "date" else ("in or before",)}[op]
        else:
            words = {">": ("more than", "above", "over", "greater than", "higher than"),
                     "<": ("less than", "below", "under", "lower than"),
                     ">=": ("at least", "no less than"), "<=": ("at most", "no more than")}[op]
        w = self.rng.choice(words)
        sym = {">": ">", "<": "<", ">=": ">=", "<=": "<="}[op]
        of = "of " if w in ("at least", "at most", "no less than", "no more than") else ""
        options = [f"whose {p} is {w} {val}", f"with {article(p)}{p} {of}{w} {val}"]
        if self.terse:
            options += [f"with {p} {sym} {val}", f"where {p} {sym} {val}"]
        post = self.pick(*options)
        return Phr(post, post, f"have {article(p)}{p} {of}{w} {val}")

    def _eq(self, col: Column, op: str, v, who: str) -> Phr:
        a = col.attr
        if op == "LIKE":
            kind, text = v
            p = self.attr(col)
            verb = {"prefix": "starts with", "suffix": "ends with", "infix": "contains"}[kind]
            val = self.value(None, text)
            post = self.pick(f"whose {p} {verb} {val}", f"with {article(p)}{p} that {verb} {val}")
            return Phr(post, post, None)
        if op == "IN":
            vals = f"{self.value(col, v[0])} or {self.value(col, v[1])}"
        elif op == "<>":
            vals = self.value(col, v)
        else:
            vals = self.value(col, v)
        if op == "<>":
            p = self.attr(col)
            post = self.pick(f"whose {p} is not {vals}", f"with {article(p)}{p} other than {vals}")
            return Phr(post, post, None)
        if a.filter_phrase and self.chance(0.65):
            if re.search(r"""['"]\{v\}['"]""", a.filter_phrase):          # the phrase quotes the value itself
                vals = " or ".join(mark(str(x)) for x in (v if op == "IN" else (v,)))
            phrase = a.filter_phrase.replace("{v}", vals)
            self.mentions.append((col, a.filter_phrase))
            w = phrase.split(" ", 1)[0]
            if w in ("who", "that", "which"):
                sg = None if phrase.split(" ")[1] in ("are", "have", "were") else phrase
                return Phr(phrase, sg, predicate(phrase))
            if _is_3sg(w) and not _participle(w) and w not in PREPS:
                return Phr(f"{who} {deconj(phrase)}", f"{who} {phrase}", deconj(phrase))
            return Phr(phrase, phrase, predicate(phrase))
        p = self.attr(col)
        options = [f"whose {p} is {vals}", f"with {p} {vals}"]
        if self.terse:
            options += [f"where {p} = {vals}", f"with {p} = {vals}"]
        post = self.pick(*options)
        pre = None
        if op == "=" and col.kind == "cat" and isinstance(v, str) and re.fullmatch(r"[A-Za-z][a-z-]{2,14}", v) and \
                any(k in p for k in ("status", "type", "kind", "category", "level", "tier", "class", "state")):
            pre = vals
        pred = f"have {article(p)}{p} of {vals}" if col.kind == "cat" else None
        return Phr(post, post, pred, pre)
