"""The sandbox's caps hold for single expensive statements: one call of a SQLite function cannot be stopped by
the progress handler or interrupt(), so calls that would loop for seconds (printf's repeats, instr / replace /
trim / json_patch over two long arguments, a long LIKE pattern over a long value) are refused at once with an
error that names the cap, never a silent NULL; the same functions on ordinary values still give SQLite's own
answers. And the memory a hostile answer took is given back to the system, in the long-lived playground too."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from sql.sandbox import Sandbox, SandboxError

T = "CREATE TABLE t (x);"
BIG = "hex(zeroblob(499999))"                                      # 999,998 characters: under the 1 MB value cap


@pytest.mark.parametrize("context, query", [
    (T, "SELECT length(printf('%.*c', 2000000000, 'x'))"),      # looped ~15 s, then NULL
    (T, "SELECT length(format('%!.*c', 2000000000, 'x'))"),
    (T, "SELECT length(printf('%2000000000d', 1))"),            # NULL at once
    (T + "INSERT INTO t VALUES (2000000000);", "SELECT length(printf('%.*c', x, 'y')) FROM t"),   # width from a row
])
def test_a_printf_over_the_value_cap_is_refused_naming_the_cap(context, query):
    with Sandbox.from_context(context) as box:
        with pytest.raises(SandboxError, match=r"printf\(\)|format\(\)") as e:
            box.query(query)
        assert e.value.kind == "memory" and "1000 KB (the cap for one value)" in str(e.value)
        assert box.query("SELECT printf('%5.1f|%.3c|%*d|%-4s|', 2.25, 'r', 3, 7, 'ab')").rows == [(
            "  2.3|rrr|  7|ab  |",)]                             # within the cap printf is SQLite's (2.25 rounds up)


def test_sample_rows_built_by_a_printf_over_the_cap_do_not_load():
    with pytest.raises(SandboxError, match=r"did not load \(memory\): printf\(\) builds a value over 1000 KB") as e:
        Sandbox.from_context(T + "INSERT INTO t VALUES (printf('%.*c', 2000000000, 'x'));")
    assert e.value.kind == "load"


@pytest.mark.parametrize("query", [
    f"SELECT instr({BIG} || '1', hex(zeroblob(25000)) || '1')",          # ~4 s in SQLite 3.40 (16 s: 400 KB needle)
    f"SELECT length(replace({BIG}, hex(zeroblob(250000)) || '1', 'x'))",  # ~7 s
    "SELECT length(trim(replace(hex(zeroblob(150000)), '0', char(2040)), (WITH RECURSIVE n(i) AS (SELECT 1 "
    "UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT group_concat(char(i + 40), '') FROM n)))",  # ~7 s (72 s)
    "SELECT length(json_patch(j, j)) FROM (SELECT (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
    "WHERE i < 50000) SELECT json_group_object('k' || i, i) FROM n) AS j)",                           # ~7 s
])
def test_one_call_too_costly_to_interrupt_is_refused_naming_the_time_cap(query):
    with Sandbox.from_context(T, timeout_s=1.5) as box:
        with pytest.raises(SandboxError, match=r"would run past the 1.5 s time cap") as e:
            box.query(query)
        assert e.value.kind == "timeout"
        assert box.query("SELECT 1").rows == [(1,)]


def test_the_checked_functions_still_answer_as_sqlite_does():
    context = ("CREATE TABLE t (a, b); INSERT INTO t VALUES ('héllo wörld', 'ö'), (12.5, 2), (NULL, 'x'), "
               "(x'414243', x'42'), (100.0, '0.'), (1e20, 'e'), ('  pad  ', ' '), ('xxabcxx', 'x'), ('abc', '');")
    query = ("SELECT instr(a, b), replace(a, b, 'Z'), trim(a, b), ltrim(a, b), rtrim(a, b), trim(a), "
             "printf('%s|%.2f|%q', a, 1.005, b), json_patch('{\"a\":1,\"b\":2}', '{\"b\":null}') FROM t")
    plain = sqlite3.connect(":memory:")
    plain.executescript(context)
    with Sandbox.from_context(context) as box:
        assert box.query(query).rows == plain.execute(query).fetchall()
        with pytest.raises(SandboxError) as e:   # a value SQLite would take apart for ~10 s: refused at once
            box.query(f"SELECT instr({BIG} || '1', hex(zeroblob(25000)) || '1')")
        assert e.value.kind == "timeout"


@pytest.mark.parametrize("op", ["LIKE '%' || hex(zeroblob(2000)) || '1'",      # ~6 s per row in SQLite 3.40
                                "GLOB '*' || hex(zeroblob(2000)) || '1'"])
def test_a_long_like_pattern_is_refused_and_a_usual_one_works(op):
    with Sandbox.from_context(T + "INSERT INTO t VALUES ('user12'), ('other');") as box:
        with pytest.raises(SandboxError, match=r"LIKE or GLOB pattern over 100 bytes") as e:
            box.query(f"SELECT {BIG} {op}")
        assert e.value.kind == "timeout"
        assert box.query("SELECT x FROM t WHERE x LIKE '%er1%' OR x GLOB 'o*r'").rows == [("user12",), ("other",)]


PLAYGROUND = '''
import json, sys
from concurrent.futures import ThreadPoolExecutor
from serving.text_to_sql import Answer, TextToSql
from sql.validate import SqlCheck

def status(key):
    return int([ln for ln in open("/proc/self/status") if ln.startswith(key)][0].split()[1]) // 1024

sql = sys.argv[1]
before = status("VmRSS")
errors = []
with ThreadPoolExecutor(4) as pool:          # the web UI answers on a pool of worker threads, kept alive
    for _ in range(3):
        ans = Answer("q", sql, sql, SqlCheck(sql=sql, ok=True, parses=True, read_only=True))
        pool.submit(TextToSql._execute, ans, "CREATE TABLE t (x INT);", "").result()
        errors.append(ans.execution_error)
    print(json.dumps({"before": before, "peak": status("VmHWM"), "after": status("VmRSS"), "errors": errors}))
'''


def test_the_playground_gives_back_the_memory_a_hostile_answer_took():
    sort = ("SELECT i, zeroblob(200) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 3000000) SELECT i FROM n) ORDER BY random()")
    p = subprocess.run([sys.executable, "-c", PLAYGROUND, sort], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert all("memory cap" in e or "time cap" in e for e in out["errors"]), out
    assert out["peak"] - out["before"] > 150, out       # the answers did take memory (up to SQLite's 384 MB cap)
    assert out["after"] - out["before"] < 64, out       # and it went back (it stayed at ~+400 MB, +860 MB in 4 threads)
