"""sqlgenie playground (Gradio): schema + question -> formatted, validated SQL from the balanced backends.

    .venv/bin/python app/playground.py        # http://127.0.0.1:7860 ; SQLGENIE_ENDPOINT=http://127.0.0.1:8000

Input: the schema (CREATE TABLE statements; examples to load), optional sample rows (INSERT ...), the
question, the target dialect, "run on sample data". Output: the SQL formatted for the target dialect,
validation (parse errors with line/column, unknown tables/columns), the result table (in-memory SQLite,
read-only, time- and row-capped), latency and tokens, and which replica answered (the router's
per-replica counts before/after). A history of the session's questions. Queue: 4 requests at a time.
Binding beyond localhost needs SQLGENIE_TOKEN (used as the password).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradio as gr  # noqa: E402

from app import auth  # noqa: E402
from sql.validate import DIALECTS  # noqa: E402

EXAMPLES = {
    "shop": ("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);\n"
             "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, order_date DATE);",
             "INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Linus', 'FI'), (3, 'Grace', 'US');\n"
             "INSERT INTO orders VALUES (1, 1, 120.0, '2024-01-05'), (2, 1, 80.5, '2024-02-11'), (3, 3, 42.0, '2024-03-01');",
             "What is the total order amount per customer?"),
    "hr": ("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary REAL);",
           "INSERT INTO employees VALUES (1, 'Ann', 'Sales', 5000), (2, 'Bob', 'IT', 7000), (3, 'Cid', 'IT', 6500);",
           "What is the average salary in the IT department?"),
}


def endpoint() -> str:
    if os.environ.get("SQLGENIE_ENDPOINT"):
        return os.environ["SQLGENIE_ENDPOINT"]
    try:
        from serving import launch

        return launch.load_state(os.environ.get("SQLGENIE_DEPLOYMENT", "sqlgenie"))["router"]["url"]
    except Exception:  # noqa: BLE001 - nothing deployed yet: the default router address
        return "http://127.0.0.1:8000"


_CLIENTS: dict = {}


def client(url: str):
    from core import assets
    from serving.text_to_sql import TextToSql

    if url not in _CLIENTS:
        tok = os.environ.get("SQLGENIE_TOKENIZER", "embedded:smollm2-135m-instruct")
        _CLIENTS[url] = TextToSql(url, assets.resolve(tok), max_model_len=int(os.environ.get("SQLGENIE_MAX_MODEL_LEN", "2048")))
    return _CLIENTS[url]


def routed_counts(url: str) -> dict:
    try:
        from serving import launch
        from serving.stats import router_snapshot

        state = launch.load_state(os.environ.get("SQLGENIE_DEPLOYMENT", "sqlgenie"))
        if state["router"]["url"] != url:
            return {}
        return {w: v.get("routed", 0) for w, v in router_snapshot(state["router"]["metrics"])["workers"].items()}
    except Exception:  # noqa: BLE001 - not our deployment: no per-replica counts
        return {}


def answer(schema: str, rows: str, question: str, target: str, execute: bool, history: list):
    from core.errors import SqlgenieError

    url = endpoint()
    try:
        before = routed_counts(url)
        ans = client(url).ask(schema, question, "sqlite", target, rows if execute else "", execute)
        after = routed_counts(url)
    except SqlgenieError as e:
        return "", f"**Error:** {e}", None, "", history, history
    served_by = [w for w in after if after[w] > before.get(w, 0)]
    status = "✅ valid" if ans.check.ok else "⚠️ " + "; ".join(ans.check.errors)
    if ans.execution_error:
        status += f"\n\n**Execution:** {ans.execution_error}"
    elif execute and ans.columns:
        status += f"\n\n{len(ans.rows)} row(s)" + (" (truncated)" if ans.truncated else "")
    stats = (f"{ans.latency_s * 1000:.0f} ms · {ans.prompt_tokens} prompt + {ans.completion_tokens} completion tokens"
             + (f" · answered by {', '.join(served_by)}" if served_by else "")
             + (f" · router counts {after}" if after else ""))
    table = {"headers": ans.columns, "data": [list(r) for r in ans.rows]} if ans.columns else None
    sql = ans.check.transpiled or ans.sql or ans.raw
    history = [[question, sql.replace("\n", " "), "valid" if ans.check.ok else "invalid", f"{ans.latency_s * 1000:.0f} ms"]] + history
    return sql, status, table, stats, history, history


def build() -> gr.Blocks:
    with gr.Blocks(title="sqlgenie playground") as demo:
        gr.Markdown("# 🧞 sqlgenie playground\nAsk a question about your schema; get SQL that is checked against it.")
        history = gr.State([])
        with gr.Row():
            with gr.Column():
                schema = gr.Code(EXAMPLES["hr"][0], language="sql", label="Schema (CREATE TABLE ...)", elem_id="schema")
                rows = gr.Code(EXAMPLES["hr"][1], language="sql", label="Sample rows (INSERT ..., optional)", elem_id="rows")
                question = gr.Textbox(EXAMPLES["hr"][2], label="Question", elem_id="question")
                with gr.Row():
                    target = gr.Dropdown(list(DIALECTS), value="sqlite", label="Dialect of the answer")
                    execute = gr.Checkbox(True, label="Run on sample data")
                go_btn = gr.Button("Generate SQL", variant="primary", elem_id="go")
                ex = gr.Dropdown(list(EXAMPLES), label="Load an example schema")
            with gr.Column():
                sql = gr.Code(label="SQL", language="sql", elem_id="sql_out", interactive=False)
                status = gr.Markdown(elem_id="status")
                table = gr.Dataframe(label="Result", elem_id="result", interactive=False)
                stats = gr.Markdown(elem_id="stats")
        hist = gr.Dataframe(headers=["question", "SQL", "check", "latency"], label="History", interactive=False)
        ex.change(lambda k: EXAMPLES[k], ex, [schema, rows, question])
        go_btn.click(answer, [schema, rows, question, target, execute, history],
                     [sql, status, table, stats, history, hist], concurrency_limit=4)
        question.submit(answer, [schema, rows, question, target, execute, history],
                        [sql, status, table, stats, history, hist], concurrency_limit=4)
    return demo


def main() -> None:
    host = auth.bind_address()
    auth.check_bind(host)
    demo = build()
    demo.queue(max_size=64)
    demo.launch(server_name=host, server_port=int(os.environ.get("PLAYGROUND_PORT", "7860")),
                auth=(lambda u, p: auth.token_ok(p)) if auth.token() else None, show_error=True)


if __name__ == "__main__":
    main()
