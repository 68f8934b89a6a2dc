"""Your database from the browser, in a real headless Chromium against the real console (`sqlgenie console
--replicas 1`: the embedded SmolLM2 on vLLM behind vllm-router) and a real PostgreSQL server started here
(tests/pgserver.py):

  playground -> "connect a database" -> a PostgreSQL URL and its password -> Connect: the schema and sample rows
  boxes fill from the database -> a question -> the answer runs on the database (its rows, not the sample rows')
  and the result says which database answered; a second tab at the same time still answers on its own typed
  schema and sample rows; `sqlgenie ask --database` does the same from the command line.

Screenshots: tests/e2e/artifacts/db-1-connected.png, db-2-answer.png, db-3-second-tab.png.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from serving.plan import free_ports
from tests.conftest import share_models, until
from tests.pgserver import PASSWORD, USER, postgres_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "tests" / "e2e" / "artifacts"
COMPANY = """
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT, floor INTEGER);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department_id INTEGER REFERENCES departments(id),
                        salary REAL);
INSERT INTO departments VALUES (1, 'Sales', 2), (2, 'IT', 3), (3, 'HR', 1);
INSERT INTO employees VALUES (1, 'Ann', 1, 5000), (2, 'Bob', 2, 7000), (3, 'Cid', 2, 6500), (4, 'Dee', 3, 4000),
    (5, 'Eve', 2, 8000), (6, 'Fay', 1, 5200), (7, 'Gus', 3, 3900);
"""
QUESTION = "How many employees are there?"


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        server.sql("postgres", "CREATE DATABASE company")
        server.sql("company", COMPANY)
        yield server


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    home = share_models(tmp_path_factory.mktemp("yourdb") / "home")
    dash, play, router = free_ports(3)
    env = dict(os.environ, SQLGENIE_HOME=str(home), DASHBOARD_PORT=str(dash), PLAYGROUND_PORT=str(play),
               SQLGENIE_ROUTER_PORT=str(router), PYTHONUNBUFFERED="1")
    ART.mkdir(parents=True, exist_ok=True)
    out = home.parent / "console.out"
    with open(out, "w") as log:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sqlgenie"), "console", "--replicas", "1"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: "console is up" in out.read_text() or proc.poll() is not None, 900, "the console")
        assert proc.poll() is None, out.read_text()
        yield {"play": f"http://127.0.0.1:{play}", "home": home, "env": env}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(180)
    assert "nothing left running" in out.read_text(), out.read_text()[-2000:]


def _db_rows(pg, sql: str) -> list[tuple]:
    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user=USER, dbname="company") as c:
        return c.execute(sql).fetchall()


def _cells(page, panel: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#{panel}_result tbody td").all_text_contents()]


def _ask(page, question: str | None = None) -> None:
    if question:
        page.locator("#question textarea").fill(question)
    page.click("#go")
    page.wait_for_selector("#a_stats:has-text('ms')", timeout=300000)


def test_the_playground_answers_from_a_connected_postgres_database(console, browser, pg):
    url = pg.url("company")
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(console["play"])
    page.wait_for_selector("#go", timeout=60000)
    until(lambda: page.locator("#deployment input").input_value() == "sqlgenie", 60, "the console's deployment")

    page.get_by_label("connect a database").check()
    page.locator("#db_url textarea").fill(url)
    page.locator("#db_password input").fill(PASSWORD)
    page.click("#connect")
    page.wait_for_selector("#db_status:has-text('Connected:')", timeout=60000)
    status = page.locator("#db_status").inner_text()
    assert f"postgresql://{USER}@127.0.0.1:{pg.port}/company" in status and "2 table(s)" in status, status
    assert page.locator("#db_password input").input_value() == ""          # not kept in the page
    assert PASSWORD not in page.content()
    schema = page.locator("#schema .cm-content").inner_text()
    rows = page.locator("#rows .cm-content").inner_text()
    assert schema.splitlines() == [
        "CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT, floor INTEGER);",
        "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department_id INTEGER REFERENCES departments(id), "
        "salary REAL);"], schema
    assert rows.splitlines()[1] == ("INSERT INTO employees VALUES (1, 'Ann', 1, 5000.0), (2, 'Bob', 2, 7000.0), "
                                    "(3, 'Cid', 2, 6500.0);"), rows
    assert page.locator("#execute").inner_text().strip().startswith("Run on the database")
    page.screenshot(path=str(ART / "db-1-connected.png"), full_page=True)

    # a second tab at the same time keeps typing its own schema: its answers run on its sample rows
    other = browser.new_page(viewport={"width": 1500, "height": 1300})
    other.goto(console["play"])
    other.wait_for_selector("#go", timeout=60000)
    until(lambda: other.locator("#deployment input").input_value() == "sqlgenie", 60, "the deployment (tab 2)")

    _ask(page, QUESTION)
    sql = page.locator("#a_sql .cm-content").inner_text()
    want = _db_rows(pg, "SELECT COUNT(*) FROM employees")                 # 7: the sample rows hold 3
    note = page.locator("#a_note").inner_text()
    page.screenshot(path=str(ART / "db-2-answer.png"), full_page=True)
    assert _cells(page, "a") == [str(v) for r in want for v in r], (
        sql, page.locator("#a_marks").inner_text(), note, page.locator("#a_result").inner_html()[:3000])
    assert f"answered by the database postgresql://{USER}@127.0.0.1:{pg.port}/company (read-only)" in note, note
    assert page.locator("#a_marks").inner_text().count("✓") == 3                # syntax, names, read-only

    _ask(other)                                                        # the typed example, on its sample rows
    other_note = other.locator("#a_note").inner_text()
    assert "answered by the database" not in other_note, other_note
    assert other.locator("#db_status").inner_text().strip() == ""
    other.screenshot(path=str(ART / "db-3-second-tab.png"), full_page=True)
    page.close()
    other.close()


def test_ask_database_reads_the_schema_and_answers_on_it(console, pg):
    env = dict(console["env"], PGPASSWORD=PASSWORD)
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "sqlgenie"), "ask", "--database", pg.url("company"), "--json",
                        QUESTION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["database"] == f"postgresql://{USER}@127.0.0.1:{pg.port}/company" and not out["execution_error"], out
    assert [tuple(r) for r in out["rows"]] == _db_rows(pg, "SELECT COUNT(*) FROM employees"), out
    assert PASSWORD not in p.stdout + p.stderr
