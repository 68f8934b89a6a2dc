"""A grammar for the SQL a model may write for one schema: SQLite SELECT whose names are the schema's own.

    from sql.grammar import schema_grammar
    g = schema_grammar("CREATE TABLE users (id INT, name TEXT);")      # xgrammar EBNF text
    client.complete(ids, grammar=g)      # vLLM structured outputs: the model cannot name what does not exist

What it allows: SELECT (DISTINCT), FROM with joins (INNER/LEFT/CROSS, ON/USING), derived tables, WHERE,
GROUP BY, HAVING, ORDER BY (ASC/DESC, NULLS FIRST/LAST), LIMIT/OFFSET, UNION/INTERSECT/EXCEPT, WITH
(common table expressions), scalar/IN/EXISTS subqueries, CASE, CAST, BETWEEN, LIKE, IS NULL, window
functions (OVER with PARTITION BY / ORDER BY / frames), SQLite's aggregate and scalar functions, string,
number and NULL literals, keywords in upper or lower case.

What it pins down: in a query without WITH, every table in FROM/JOIN is a schema table and every column
(qualified or not) is a schema column; GROUP BY and ORDER BY items may also be select aliases. Inside a WITH
query, CTE names count as tables and CTE-defined names as columns (a grammar cannot tell which names the
CTEs defined, so there any identifier may stand for a column). What it cannot pin down in a context-free
grammar, and leaves to the checker (sql/validate.py): that a qualified column belongs to the table its
qualifier names, that an alias was defined before use. A derived table's columns must be read through
schema names or `alias.*` outside WITH (write a CTE to name new columns). It generates only reads: no
INSERT/UPDATE/DELETE/DDL, so a constrained model cannot be talked into changing data.
"""
from __future__ import annotations

import re

from sql.validate import schema_columns

KEYWORDS = ["SELECT", "DISTINCT", "ALL", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET",
            "UNION", "INTERSECT", "EXCEPT", "WITH", "AS", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL",
            "OUTER", "CROSS", "NATURAL", "AND", "OR", "NOT", "IN", "EXISTS", "BETWEEN", "LIKE", "GLOB", "IS", "NULL",
            "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "ASC", "DESC", "NULLS", "FIRST", "LAST", "OVER",
            "PARTITION", "ROWS", "RANGE", "UNBOUNDED", "PRECEDING", "FOLLOWING", "CURRENT", "ROW", "TRUE", "FALSE",
            "COLLATE", "NOCASE", "ESCAPE", "RECURSIVE", "FILTER"]
AGGREGATES = ["COUNT", "SUM", "AVG", "MIN", "MAX", "TOTAL", "GROUP_CONCAT"]
WINDOW_ONLY = ["ROW_NUMBER", "RANK", "DENSE_RANK", "NTILE", "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "NTH_VALUE",
               "PERCENT_RANK", "CUME_DIST"]
SCALARS = ["ROUND", "ABS", "LENGTH", "LOWER", "UPPER", "SUBSTR", "SUBSTRING", "TRIM", "LTRIM", "RTRIM", "REPLACE",
           "INSTR", "COALESCE", "IFNULL", "NULLIF", "IIF", "STRFTIME", "DATE", "DATETIME", "JULIANDAY", "TIME",
           "UNIXEPOCH", "PRINTF", "FORMAT", "TYPEOF", "SIGN", "CEIL", "CEILING", "FLOOR", "POWER", "SQRT", "LOG",
           "HEX", "QUOTE", "CHAR", "UNICODE", "RANDOM", "MAX", "MIN"]
TYPES = ["INTEGER", "INT", "REAL", "TEXT", "NUMERIC", "FLOAT", "DECIMAL", "DATE", "BLOB"]
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ALIAS = 32   # a name the query defines (select alias, CTE) is at most this long: no run-away identifiers
MAX_WS = 8       # at most this much whitespace between two tokens: no run-away tabs or newlines


def _lit(s: str) -> str:
    """An EBNF string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kw(word: str) -> str:
    return f"({_lit(word)} | {_lit(word.lower())})" if word.lower() != word else _lit(word)


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


def _derived_aliases(tables: list[str]) -> list[str]:
    """The longer table aliases people write for these tables: a prefix of 3 to 6 letters (`emp`, `cust`) and
    the initials of a snake_case or CamelCase name (`oi` for order_items, `ba` for BankAccounts). One or two
    characters (`o`, `t1`) are always allowed; the whole table name is the table itself."""
    out = []
    for t in tables:
        if not _PLAIN.match(t):
            continue
        low = t.lower()
        out += [low[:n] for n in range(3, min(6, len(low) - 1) + 1)]
        words = [w for w in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", t) if w]
        if len(words) >= 2:
            out.append("".join(w[0] for w in words).lower())
    return [a for a in dict.fromkeys(out) if a.upper() not in KEYWORDS and len(a) > 2]


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


def _rules(sfx: str, table_ref_names: str, column_names: str) -> list[str]:
    """Every rule of the query grammar, with suffix `sfx` (the WITH variant also accepts CTE names for tables
    and CTE-defined names for columns)."""
    K = _kw
    q = f"query{sfx}"
    return [
        f"column_ref{sfx} ::= (qualifier{sfx} ws? \".\" ws?)? ({column_names})",
        f"qualifier{sfx} ::= table_name | table_alias{sfx}",
        f"{q} ::= select_core{sfx} (ws setop ws select_core{sfx})* (ws order_by{sfx})? (ws limit{sfx})?",
        f"select_core{sfx} ::= {K('SELECT')} (ws ({K('DISTINCT')} | {K('ALL')}))? ws select_list{sfx} "
        f"(ws {K('FROM')} ws from_clause{sfx})? (ws {K('WHERE')} ws expr{sfx})? "
        f"(ws {K('GROUP')} ws {K('BY')} ws group_items{sfx})? (ws {K('HAVING')} ws expr{sfx})?",
        f"group_items{sfx} ::= (expr{sfx} | alias) (ws? \",\" ws? (expr{sfx} | alias))*",
        f"select_list{sfx} ::= select_item{sfx} (ws? \",\" ws? select_item{sfx})*",
        f"select_item{sfx} ::= \"*\" | qualifier{sfx} ws? \".\" ws? \"*\" | expr{sfx} (ws ({K('AS')} ws)? alias)?",
        f"from_clause{sfx} ::= table_ref{sfx} (join{sfx})*",
        f"join{sfx} ::= ws? \",\" ws? table_ref{sfx} | ws join_kw ws table_ref{sfx} "
        f"(ws {K('ON')} ws expr{sfx} | ws {K('USING')} ws? \"(\" ws? column_name (ws? \",\" ws? column_name)* ws? \")\")?",
        f"table_ref{sfx} ::= ({table_ref_names}) (ws ({K('AS')} ws)? table_alias{sfx})? | "
        f"\"(\" ws? {q} ws? \")\" (ws ({K('AS')} ws)? table_alias{sfx})?",
        f"expr{sfx} ::= term{sfx} (ws? sym_op ws? term{sfx} | ws kw_op ws term{sfx})*",
        f"term{sfx} ::= ({K('NOT')} ws | \"-\" ws? | \"+\" ws?)* atom{sfx} (ws suffix{sfx})*",
        f"suffix{sfx} ::= ({K('NOT')} ws)? {K('IN')} ws? \"(\" ws? ({q} | expr_list{sfx}) ws? \")\" | "
        f"({K('NOT')} ws)? {K('BETWEEN')} ws term{sfx} ws {K('AND')} ws term{sfx} | "
        f"{K('IS')} ws ({K('NOT')} ws)? ({K('NULL')} | {K('TRUE')} | {K('FALSE')}) | "
        f"{K('COLLATE')} ws {K('NOCASE')} | {K('ESCAPE')} ws string",
        f"atom{sfx} ::= literal | column_ref{sfx} | func{sfx} | case{sfx} | cast{sfx} | "
        f"{K('EXISTS')} ws? \"(\" ws? {q} ws? \")\" | \"(\" ws? {q} ws? \")\" | \"(\" ws? expr_list{sfx} ws? \")\"",
        f"func{sfx} ::= agg_name ws? \"(\" ws? (({K('DISTINCT')} ws)? expr_list{sfx} | \"*\")? ws? \")\" "
        f"(ws {K('FILTER')} ws? \"(\" ws? {K('WHERE')} ws expr{sfx} ws? \")\")? (ws over{sfx})? | "
        f"window_name ws? \"(\" ws? expr_list{sfx}? ws? \")\" ws over{sfx} | "
        f"scalar_name ws? \"(\" ws? expr_list{sfx}? ws? \")\"",
        f"over{sfx} ::= {K('OVER')} ws? \"(\" ws? ({K('PARTITION')} ws {K('BY')} ws expr_list{sfx})? ws? "
        f"({K('ORDER')} ws {K('BY')} ws order_items{sfx})? ws? frame? ws? \")\"",
        f"case{sfx} ::= {K('CASE')} (ws expr{sfx})? (ws {K('WHEN')} ws expr{sfx} ws {K('THEN')} ws expr{sfx})+ "
        f"(ws {K('ELSE')} ws expr{sfx})? ws {K('END')}",
        f"cast{sfx} ::= {K('CAST')} ws? \"(\" ws? expr{sfx} ws {K('AS')} ws type_name ws? \")\"",
        f"expr_list{sfx} ::= expr{sfx} (ws? \",\" ws? expr{sfx})*",
        f"order_by{sfx} ::= {K('ORDER')} ws {K('BY')} ws order_items{sfx}",
        f"order_items{sfx} ::= order_item{sfx} (ws? \",\" ws? order_item{sfx})*",
        f"order_item{sfx} ::= (expr{sfx} | alias) (ws ({K('ASC')} | {K('DESC')}))? "
        f"(ws {K('NULLS')} ws ({K('FIRST')} | {K('LAST')}))?",
        f"limit{sfx} ::= {K('LIMIT')} ws expr{sfx} (ws {K('OFFSET')} ws expr{sfx} | ws? \",\" ws? expr{sfx})?",
    ]


def schema_grammar(ddl: str, dialect: str = "sqlite") -> str:
    """xgrammar EBNF for read queries over this schema (see the module docstring for what it pins down)."""
    tables, columns = _declared_names(ddl, dialect)
    if not tables:
        known, _ = schema_columns(ddl, dialect)
        tables, columns = list(known), sorted({c for cols in known.values() for c in cols})
    K = _kw
    rules = [
        "root ::= ws? (query_plain | with_query) ws? (\";\" ws?)?",
        f"with_query ::= {K('WITH')} ws ({K('RECURSIVE')} ws)? cte (ws? \",\" ws? cte)* ws query_w",
        f"cte ::= alias (ws? \"(\" ws? alias (ws? \",\" ws? alias)* ws? \")\")? ws {K('AS')} ws? \"(\" ws? query_w ws? \")\"",
        *_rules("_plain", "table_name", "column_name"),
        *_rules("_w", "table_name | alias", "column_name | alias"),
        f"setop ::= {K('UNION')} (ws {K('ALL')})? | {K('INTERSECT')} | {K('EXCEPT')}",
        f"join_kw ::= ({K('NATURAL')} ws)? (({K('LEFT')} | {K('RIGHT')} | {K('FULL')}) (ws {K('OUTER')})? ws | "
        f"{K('INNER')} ws | {K('CROSS')} ws)? {K('JOIN')}",
        "sym_op ::= \"||\" | \"<=\" | \">=\" | \"<>\" | \"!=\" | \"==\" | \"=\" | \"<\" | \">\" | \"+\" | \"-\" | \"*\" | \"/\" | \"%\"",
        f"kw_op ::= {K('AND')} | {K('OR')} | ({K('NOT')} ws)? ({K('LIKE')} | {K('GLOB')}) | {K('IS')} (ws {K('NOT')})?",
        f"table_alias_plain ::= short_alias | {_alternatives_plain(_derived_aliases(tables))}",
        "table_alias_w ::= table_alias_plain | alias",
        "short_alias ::= [A-Za-z_] [A-Za-z0-9_]? | [A-Za-z] [0-9] [0-9]?",
        f"frame ::= ({K('ROWS')} | {K('RANGE')}) ws ({K('BETWEEN')} ws bound ws {K('AND')} ws bound | bound)",
        f"bound ::= {K('UNBOUNDED')} ws ({K('PRECEDING')} | {K('FOLLOWING')}) | {K('CURRENT')} ws {K('ROW')} | "
        f"number ws ({K('PRECEDING')} | {K('FOLLOWING')})",
        "literal ::= number | string | " + " | ".join(K(w) for w in ("NULL", "TRUE", "FALSE"))
        + " | " + " | ".join(K(w) for w in ("CURRENT_DATE", "CURRENT_TIMESTAMP", "CURRENT_TIME")),
        "number ::= [0-9]+ (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)? | \".\" [0-9]+",
        "string ::= \"'\" ([^'] | \"''\")* \"'\"",
        "agg_name ::= " + " | ".join(K(f) for f in AGGREGATES),
        "window_name ::= " + " | ".join(K(f) for f in WINDOW_ONLY + AGGREGATES),
        "scalar_name ::= " + " | ".join(K(f) for f in SCALARS),
        "type_name ::= " + " | ".join(K(t) for t in TYPES),
        f"table_name ::= {_alternatives(tables)}",
        f"column_name ::= {_alternatives(columns)}",
        f"alias ::= [A-Za-z_] [A-Za-z0-9_]{{0,{MAX_ALIAS - 1}}} | \"\\\"\" [^\"]{{1,{MAX_ALIAS}}} \"\\\"\"",
        f"ws ::= [ \\t\\n\\r]{{1,{MAX_WS}}}",
    ]
    return "\n".join(rules) + "\n"
