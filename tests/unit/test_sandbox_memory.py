"""The sandbox is bounded in memory too: each hostile case runs in a fresh process and must end with a clear
SandboxError (its kind names the cause) while the process stays under 512 MB of RSS. The limits reported are
the ones that applied (5 s for loading sample rows, the query cap for queries)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sql.sandbox import Sandbox, SandboxError

ROWS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n"
CASE = '''
import json, resource, sys
from sql.sandbox import Sandbox, SandboxError
context, query = json.loads(sys.argv[1])
out = {}
try:
    with Sandbox.from_context(context) as box:
        r = box.query(query) if query else None
        out["ok"] = True
        out["rows"] = len(r.rows) if r else 0
        out["truncated"] = bool(r and r.truncated)
except SandboxError as e:
    out["kind"], out["error"] = e.kind, str(e)
# VmHWM: this program's peak RSS (ru_maxrss would carry the forking pytest's peak across exec)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
out["rss_mb"] = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def _run(context: str, query: str = "") -> dict:
    p = subprocess.run([sys.executable, "-c", CASE, json.dumps([context, query])], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_sample_rows_that_build_gigabytes_fail_as_a_load_error():
    out = _run("CREATE TABLE t (x BLOB);\nINSERT INTO t SELECT zeroblob(900000) FROM (" + ROWS.format(n=2000) + ");")
    assert out.get("kind") == "load" and "schema or sample rows" in out["error"] and "memory" in out["error"], out
    assert out["rss_mb"] < 512, out


def test_a_huge_value_per_row_is_refused_not_materialized():
    out = _run("CREATE TABLE t (x INT);", "SELECT zeroblob(9999999) FROM (" + ROWS.format(n=1000) + ")")
    assert out.get("kind") == "memory" and "1000 KB" in out["error"], out
    assert out["rss_mb"] < 512, out


def test_a_large_result_is_truncated_at_the_byte_budget():
    out = _run("CREATE TABLE t (x INT);", "SELECT zeroblob(900000) FROM (" + ROWS.format(n=1000) + ")")
    assert out.get("ok") and out["truncated"] and out["rows"] < 1000, out
    assert out["rss_mb"] < 512, out


def test_a_sort_over_millions_of_rows_stays_in_capped_memory():
    out = _run("CREATE TABLE t (x INT);", "SELECT i, zeroblob(200) FROM (" + ROWS.format(n=3_000_000) + ") ORDER BY random()")
    assert out.get("kind") in ("memory", "timeout"), out
    assert out["rss_mb"] < 512, out


def test_the_time_cap_reported_is_the_one_that_applied():
    slow = "SELECT count(*) FROM (" + ROWS.format(n=10**9) + ")"
    with Sandbox.from_context("CREATE TABLE t (x INT);", timeout_s=0.5) as box:
        with pytest.raises(SandboxError, match=r"stopped after 0.5 s") as e:
            box.query(slow)
        assert e.value.kind == "timeout"
    with pytest.raises(SandboxError, match=r"did not load \(timeout\): stopped after 5 s") as e:
        Sandbox.from_context(f"CREATE TABLE t AS {slow};", timeout_s=0.5)
    assert e.value.kind == "load"
    with pytest.raises(SandboxError, match="did not load .*no such table: nope") as e:
        Sandbox.from_context("INSERT INTO nope VALUES (1);")
