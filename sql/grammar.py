"""A grammar for the SQL a model may write for one schema: SQLite SELECT whose names are the schema's own.

    from sql.grammar import schema_grammar
    g = schema_grammar("CREATE TABLE users (id INT, name TEXT);")      # xgrammar EBNF text
    client.complete(ids, grammar=g)      # vLLM structured outputs: the model cannot name what does not exist

What it allows: SELECT (DISTINCT), FROM with joins (INNER/LEFT/CROSS, ON/USING), derived tables, WHERE,
GROUP BY, HAVING, ORDER BY (ASC/DESC, NULLS FIRST/LAST), LIMIT/OFFSET, UNION/INTERSECT/EXCEPT, WITH
(common table expressions), scalar/IN/EXISTS subqueries, CASE, CAST, BETWEEN, LIKE, IS NULL, window
functions (OVER with PARTITION BY / ORDER BY / frames), SQLite's aggregate and scalar functions, string,
number and NULL literals.

In one canonical layout, the one the bundled training data and both OOD yardsticks are written in: a single
line, one space between words, none after `(` or before `)`, `, ` after a comma, spaces around binary
operators, keywords in upper case (function names in either case), column aliases with AS. xgrammar (the
engine vLLM uses) fills a token mask before every decode step; free whitespace (`ws?` next to `ws`, runs of
tabs and newlines), implicit aliases and keywords in two cases made each mask a search over tens of
thousands of tokens (25 ms a token on average, 700 ms at worst), where this layout makes it a lookup
(bench/grammar_cost.py). A space always opens a word and never ends a rule, and each place where a space is
followed by an open-ended name or expression is one shared rule (`sp_term`, `sp_alias`, ...), so that
xgrammar decides those tokens once at compile time instead of at every step (see `_query_rules`).

What it pins down: in a query without WITH, every table in FROM/JOIN is a schema table, every column
(qualified or not) is a schema column and a table alias is short (1-2 characters, or a letter and two
digits) or derived from a table name (`cust`, `oi`); GROUP BY and ORDER BY items may also be select aliases.
Inside a WITH query a grammar cannot tell which names the CTEs defined, so there any identifier may stand for
a table or a column. What it cannot pin down in a context-free grammar, and leaves to the checker
(sql/validate.py): that a qualified column belongs to the table its qualifier names, that an alias was
defined before use. A derived table's columns must be read through schema names or `alias.*` outside WITH
(write a CTE to name new columns). Names the query defines are not length-limited (an expanded bound cost 3x
the compile time): a run-away name ends at the request's max_tokens. It generates only reads: no
INSERT/UPDATE/DELETE/DDL, so a constrained model cannot be talked into changing data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sql.validate import schema_columns

KEYWORDS = ["SELECT", "DISTINCT", "ALL", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET",
            "UNION", "INTERSECT", "EXCEPT", "WITH", "AS", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL",
            "OUTER", "CROSS", "NATURAL", "AND", "OR", "NOT", "IN", "EXISTS", "BETWEEN", "LIKE", "GLOB", "IS", "NULL",
            "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "ASC", "DESC", "NULLS", "FIRST", "LAST", "OVER",
            "PARTITION", "ROWS", "RANGE", "UNBOUNDED", "PRECEDING", "FOLLOWING", "CURRENT", "ROW", "TRUE", "FALSE",
            "COLLATE", "NOCASE", "ESCAPE", "RECURSIVE", "FILTER"]
AGGREGATES = ["COUNT", "SUM", "AVG", "MIN", "MAX", "TOTAL", "GROUP_CONCAT"]      # MIN/MAX(a, b) too
WINDOW_ONLY = ["ROW_NUMBER", "RANK", "DENSE_RANK", "NTILE", "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "NTH_VALUE",
               "PERCENT_RANK", "CUME_DIST"]
SCALARS = ["ROUND", "ABS", "LENGTH", "LOWER", "UPPER", "SUBSTR", "SUBSTRING", "TRIM", "LTRIM", "RTRIM", "REPLACE",
           "INSTR", "COALESCE", "IFNULL", "NULLIF", "IIF", "STRFTIME", "DATE", "DATETIME", "JULIANDAY", "TIME",
           "UNIXEPOCH", "PRINTF", "FORMAT", "TYPEOF", "SIGN", "CEIL", "CEILING", "FLOOR", "POWER", "SQRT", "LOG",
           "HEX", "QUOTE", "CHAR", "UNICODE", "RANDOM"]
TYPES = ["INTEGER", "INT", "REAL", "TEXT", "NUMERIC", "FLOAT", "DECIMAL", "DATE", "BLOB"]
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What may follow a table alias: a space (the next keyword), a comma join, the end of a subquery or statement, or
# the dot of a qualified column. Told to xgrammar as a lookahead, it settles at compile time which tokens may end
# an alias (` WHERE` is no alias `WH` followed by `ERE`); without it those were checked at every step.
_AFTER_ALIAS = "(= [ ,);.])"


def _lit(s: str) -> str:
    """An EBNF string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fn(word: str) -> str:
    """A function name, in upper or lower case (people write `count(*)` as often as `COUNT(*)`)."""
    return f"({_lit(word)} | {_lit(word.lower())})"


def _name_forms(name: str) -> list[str]:
    """How a schema name may be written: as declared (and lower case) when it is a plain word; always quoted
    with double quotes, brackets or backticks."""
    forms = []
    if _PLAIN.match(name) and name.upper() not in KEYWORDS:
        forms += [name, name.lower()]
    forms += [f'"{name}"', f"[{name}]", f"`{name}`"]
    return list(dict.fromkeys(forms))


def _alternatives(names: list[str]) -> str:
    forms = sorted({f for n in names for f in _name_forms(n)}, key=lambda s: (-len(s), s))
    return " | ".join(_lit(f) for f in forms) if forms else '"__no_name__"'


def _words(name: str) -> list[str]:
    """A name of any style as lower-case words: "HireDt" / "hire_dt" / "Hire Dt" -> hire, dt."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name))
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _derived_aliases(tables: list[str]) -> list[str]:
    """The longer table aliases people write for these tables: a prefix of 3 to 6 letters (`emp`, `cust`), the
    initials of a name's words (`oi` for order_items, `ba` for BankAccounts, `sr` for "Service Requests") and
    those initials numbered (`oi2`), also with a `tbl` prefix left out (`ins` for tbl_inspectors). One or two
    characters (`o`, `t1`) are always allowed; the whole table name is the table itself."""
    out = []
    for t in tables:
        low = t.lower()
        if _PLAIN.match(t):
            out += [low[:n] for n in range(3, min(6, len(low) - 1) + 1)]
        words = _words(t)
        for ws in (words, [w for w in words if w != "tbl"]):
            if not ws:
                continue
            initials = "".join(w[0] for w in ws)
            out += [ws[0][:n] for n in range(3, min(6, len(ws[0]) - 1) + 1)] + [initials]
            out += [initials + str(i) for i in range(2, 10)]
    return [a for a in dict.fromkeys(out) if _PLAIN.match(a) and a.upper() not in KEYWORDS and len(a) > 2]


def _alternatives_plain(names: list[str]) -> str:
    return " | ".join(_lit(n) for n in sorted(set(names), key=lambda s: (-len(s), s))) or '"__no_alias__"'


def _declared_names(ddl: str, dialect: str) -> tuple[list[str], list[str]]:
    """(table names, column names) as written in the DDL (case kept)."""
    import sqlglot
    from sqlglot import exp

    tables, columns = [], []
    for st in sqlglot.parse(ddl, read=dialect or None):
        if isinstance(st, exp.Create) and st.kind in ("TABLE", "VIEW"):
            target = st.this
            tables.append(target.this.name if isinstance(target, exp.Schema) else target.name)
            columns += [c.name for c in st.find_all(exp.ColumnDef)]
            if isinstance(st.expression, exp.Query):
                columns += [s.alias_or_name for s in st.expression.selects]
    return list(dict.fromkeys(tables)), list(dict.fromkeys(columns))


@dataclass(frozen=True)
class _Names:
    """Which names one copy of the query rules accepts: the schema's own (no WITH) or any (inside WITH)."""

    sfx: str             # rule-name suffix of this copy
    table: str           # a table in FROM/JOIN
    column_ref: str      # a column in an expression, qualified or not
    qualifier: str       # what stands before `.*` or `.column`
    table_alias: str
    using_column: str
    alias_items: bool    # GROUP BY / ORDER BY items may be select aliases (inside WITH they are columns anyway)


def _query_rules(n: _Names) -> list[str]:
    """The query rules for one set of names. Every rule that starts with `sp_` opens with the one space
    before a word; the rest start at a word and never end in a space. Where a space may be followed by an
    open-ended name (a column, a table), that name has an `sp_` rule of its own which refers to no recursive
    rule (`sp_column_ref`, `sp_table_name`, `sp_alias`): xgrammar computes the mask of such a rule once and its
    cache reuses it for the next schema, where a rule inside the recursive query rules is computed anew."""
    s = n.sfx
    q, e, el = f"query{s}", f"expr{s}", f"expr_list{s}"
    se, st, gi = f"sp_expr{s}", f"sp_term{s}", f"sp_group_item{s}"
    return [
        f"{q} ::= select_core{s} (setop \" \" select_core{s})* (\" ORDER BY\" order_items{s})? "
        f"(\" LIMIT\" {se} (\" OFFSET\" {se} | \",\" {se})?)?",
        f"select_core{s} ::= \"SELECT\" (\" DISTINCT\" | \" ALL\")? sp_select_item{s} (\",\" sp_select_item{s})* "
        f"(\" FROM\" sp_table_ref{s} join{s}*)? (\" WHERE\" {se})? (\" GROUP BY\" {gi} (\",\" {gi})*)? "
        f"(\" HAVING\" {se})?",
        f"sp_select_item{s} ::= sp_star | sp_qstar{s} | {se} (\" AS\" sp_alias)?",
        f"sp_qstar{s} ::= \" \" {n.qualifier} \".*\"",
        f"join{s} ::= \",\" sp_table_ref{s} | join_kw sp_table_ref{s} "
        f"(\" ON\" {se} | \" USING (\" {n.using_column} (\", \" {n.using_column})* \")\")?",
        f"sp_table_ref{s} ::= sp_table_name{s} table_alias_part{s}? | sp_derived{s} table_alias_part{s}?",
        f"sp_table_name{s} ::= \" \" {n.table}",
        f"sp_derived{s} ::= \" (\" {q} \")\"",
        f"table_alias_part{s} ::= \" AS\" sp_table_alias{s} | sp_table_alias{s}",
        f"sp_table_alias{s} ::= \" \" {n.table_alias} {_AFTER_ALIAS}",
        f"{se} ::= {st} (binop {st})*",
        f"{e} ::= term{s} (binop {st})*",
        f"{st} ::= sp_column_ref{s} suffix{s}* | sp_term_other{s}",
        f"sp_column_ref{s} ::= \" \" {n.column_ref}",
        f"sp_term_other{s} ::= \" \" (\"NOT\" {st} | \"-\" term{s} | atom_other{s} suffix{s}*)",
        f"{gi} ::= {se} | sp_alias" if n.alias_items else f"{gi} ::= {se}",
        f"term{s} ::= \"NOT\" {st} | \"-\" term{s} | atom{s} suffix{s}*",
        f"suffix{s} ::= \" NOT\"? (\" IN (\" ({q} | {el}) \")\" | \" BETWEEN\" {st} \" AND\" {st} | "
        f"(\" LIKE\" | \" GLOB\") {st} (\" ESCAPE \" string)?) | \" IS\" {st} | \" COLLATE NOCASE\"",
        f"atom{s} ::= {n.column_ref} | atom_other{s}",
        f"atom_other{s} ::= literal | func{s} | case{s} | cast{s} | "
        f"(\"EXISTS (\" | \"EXISTS(\") {q} \")\" | \"(\" {q} \")\" | \"(\" {el} \")\"",
        f"func{s} ::= agg_name \"(\" (\"DISTINCT\" {se} | {el} | \"*\")? \")\" (\" FILTER (WHERE\" {se} \")\")? "
        f"(\" \" over{s})? | window_name \"(\" {el}? \")\" \" \" over{s} | scalar_name \"(\" {el}? \")\"",
        f"over{s} ::= \"OVER (\" (\"PARTITION BY\" {se} (\",\" {se})* (\" ORDER BY\" order_items{s})? (\" \" frame)? | "
        f"\"ORDER BY\" order_items{s} (\" \" frame)? | frame)? \")\"",
        f"case{s} ::= \"CASE\" {se}? (\" WHEN\" {se} \" THEN\" {se})+ (\" ELSE\" {se})? \" END\"",
        f"cast{s} ::= {_fn('CAST')} \"(\" {e} \" AS \" type_name \")\"",
        f"{el} ::= {e} (\",\" {se})*",
        f"order_items{s} ::= {gi} order_dir (\",\" {gi} order_dir)*",
    ]


def schema_grammar(ddl: str, dialect: str = "sqlite") -> str:
    """xgrammar EBNF for read queries over this schema (see the module docstring for what it pins down)."""
    tables, columns = _declared_names(ddl, dialect)
    if not tables:
        known, _ = schema_columns(ddl, dialect)
        tables, columns = list(known), sorted({c for cols in known.values() for c in cols})
    plain = _Names("_plain", table="table_name", column_ref="(qualifier_plain \".\")? column_name",
                   qualifier="qualifier_plain", table_alias="table_alias_plain", using_column="column_name",
                   alias_items=True)
    anywhere = _Names("_w", table="any_name", column_ref="any_name (\".\" any_name)?", qualifier="any_name",
                      table_alias="alias", using_column="any_name", alias_items=False)
    rules = [
        "root ::= (query_plain | with_query) \";\"?",
        "with_query ::= (\"WITH RECURSIVE\" | \"WITH\") sp_cte (\",\" sp_cte)* \" \" query_w",
        "sp_cte ::= sp_alias (\"(\" alias (\", \" alias)* \")\")? \" AS (\" query_w \")\"",
        *_query_rules(plain),
        *_query_rules(anywhere),
        "qualifier_plain ::= table_name | table_alias_plain",
        "setop ::= \" UNION ALL\" | \" UNION\" | \" INTERSECT\" | \" EXCEPT\"",
        "join_kw ::= \" NATURAL\"? (\" LEFT\" | \" RIGHT\" | \" FULL\")? \" OUTER\"? (\" INNER\" | \" CROSS\")? \" JOIN\"",
        "binop ::= \" ||\" | \" <=\" | \" >=\" | \" <>\" | \" !=\" | \" ==\" | \" =\" | \" <\" | \" >\" | \" +\" | \" -\" | "
        "\" *\" | \" /\" | \" %\" | \" AND\" | \" OR\"",
        "order_dir ::= (\" ASC\" | \" DESC\")? (\" NULLS FIRST\" | \" NULLS LAST\")?",
        "sp_alias ::= \" \" alias",
        "sp_star ::= \" *\"",
        f"table_alias_plain ::= short_alias | ({_alternatives_plain(_derived_aliases(tables))}) {_AFTER_ALIAS}",
        f"short_alias ::= ([A-Za-z_] | [A-Za-z_] [A-Za-z0-9_] | [A-Za-z] [0-9] [0-9]) {_AFTER_ALIAS}",
        "frame ::= (\"ROWS\" | \"RANGE\") \" \" (\"BETWEEN \" bound \" AND \" bound | bound)",
        "bound ::= \"UNBOUNDED PRECEDING\" | \"UNBOUNDED FOLLOWING\" | \"CURRENT ROW\" | number (\" PRECEDING\" | \" FOLLOWING\")",
        "literal ::= number | string | \"NULL\" | \"TRUE\" | \"FALSE\" | \"CURRENT_DATE\" | \"CURRENT_TIMESTAMP\" | \"CURRENT_TIME\"",
        "number ::= [0-9]+ (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)? | \".\" [0-9]+",
        "string ::= \"'\" ([^'] | \"''\")* \"'\"",
        "agg_name ::= " + " | ".join(_fn(f) for f in AGGREGATES),
        "window_name ::= " + " | ".join(_fn(f) for f in WINDOW_ONLY),
        "scalar_name ::= " + " | ".join(_fn(f) for f in SCALARS),
        "type_name ::= " + " | ".join(_lit(t) for t in TYPES),
        f"table_name ::= {_alternatives(tables)}",
        f"column_name ::= {_alternatives(columns)}",
        "alias ::= [A-Za-z_] [A-Za-z0-9_]* | \"\\\"\" [^\"]+ \"\\\"\"",
        "any_name ::= alias | \"[\" [^\\]]+ \"]\" | \"`\" [^`]+ \"`\"",
    ]
    return "\n".join(rules) + "\n"
