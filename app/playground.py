"""sqlgenie playground (Gradio): schema + question -> SQL from a served model, checked, run on your sample rows.

    python -m app.playground        # http://127.0.0.1:7860 ; or `sqlgenie console` (it starts this too)
    http://127.0.0.1:7860/?deployment=try-120301&a=try-120301&b=ft-120301     # side by side, from "Try it"
    http://127.0.0.1:7860/?deployment=try-120301&a=try-120301&b=sqlgenie%20@%20sqlgenie  # b from another deployment

Pick a deployment and the model to ask (a base model, or a LoRA adapter served beside it); tick "compare"
to ask a second model the same question side by side (base vs fine-tuned); the second model may be served by
another ready deployment ("model @ deployment": a full fine-tune, served alone, beside the console's base
model). Each answer shows the SQL for the
chosen dialect, three separate marks (parses / names exist / read-only; a statement that changes data is
flagged and only ever runs on a throwaway copy), the rows it returns on your sample rows, latency, and how it
was made (constrained by the schema's grammar or not, candidates tried and how many agreed). The exact
prompt and raw completion are one click away. Each model is prompted exactly as it was trained (its own
tokenizer and prompt contract: serving/text_to_sql.py). Beyond localhost the playground needs SQLGENIE_TOKEN,
and with a token every URL of it (page, API, queue, files) goes through the console's door (app/door.py: the
same login as the dashboard's).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from app.door import Door
from core import access, envs
from core.errors import SqlgenieError
from pipeline.data import feedback
from pipeline.jobs import JobStore
from serving import deployments as D
from serving.client import EndpointError
from serving.text_to_sql import Answer, TextToSql
from sql import databases
from sql.sandbox import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from sql.validate import DIALECTS

EXAMPLES = {
    "hr": ("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary REAL);",
           "INSERT INTO employees VALUES (1, 'Ann', 'Sales', 5000), (2, 'Bob', 'IT', 7000), (3, 'Cid', 'IT', 6500);",
           "What is the average salary in the IT department?"),
    "shop": ("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);\n"
             "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL, "
             "order_date DATE);",
             "INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Linus', 'FI'), (3, 'Grace', 'US');\n"
             "INSERT INTO orders VALUES (1, 1, 120.0, '2024-01-05'), (2, 1, 80.5, '2024-02-11'), "
             "(3, 3, 42.0, '2024-03-01');",
             "What is the total order amount per customer?"),
}
DEFAULT_EXAMPLE = "hr"
PASTE, CONNECT = "type or paste", "connect a database"      # where the schema comes from
_CLIENTS: dict = {}
ELSEWHERE = " @ "          # "model @ deployment": a second model served by another deployment
_CLIENTS_LOCK = threading.Lock()


def ready_deployments() -> list[str]:
    out = []
    for name in D.names():
        try:
            if D.read(name).ready:
                out.append(name)
        except SqlgenieError:
            continue
    return out


def models_of(deployment: str | None) -> list[str]:
    if not deployment:
        return []
    try:
        return list(D.read(deployment).models)
    except SqlgenieError:
        return []


def b_choices(deployment: str | None) -> list[str]:
    """The second model: this deployment's models, then every other ready deployment's as 'model @ deployment'."""
    others = [f"{m}{ELSEWHERE}{d}" for d in ready_deployments() if d != deployment for m in models_of(d)]
    return models_of(deployment) + others


def resolve_model(dep: D.Deployment, ref: str) -> tuple[D.Deployment, str]:
    """(deployment, model) of a model choice: 'model @ deployment' is read from that deployment (once a question)."""
    if ELSEWHERE in ref:
        model, name = ref.split(ELSEWHERE, 1)
        return D.read(name), model
    return dep, ref


def client(dep: D.Deployment, model: str) -> TextToSql:
    """One client per deployment (as started: a restarted one has a new `created`) and model, built once even
    when several tabs ask at the same moment."""
    key = (dep.name, model, dep.created)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = TextToSql.for_deployment(dep, model)
        return _CLIENTS[key]


def marks(a: Answer) -> str:
    """Two lines, never one vague "valid": what the checks say (syntax, names, read-only: well-formed and safe to
    run, not right), then what the result looks like (rows, empty, a constant, literals the rows do not hold)."""
    c = a.check
    ok, no, warn, na = "✓", "✗", "⚠", "·"
    parts = [f"syntax {ok if c.parses else no}",
             f"names {ok if c.names_exist else (no if c.names_exist is False else na)}",
             (f"read-only {ok}" if c.read_only else f"{warn} changes data ({c.statement})") if c.parses
             else f"read-only {na} (no SQL to run)"]
    lines = ["**Checks** (well-formed and safe, not whether it answers the question): " + " · ".join(parts)]
    looks = []
    if a.columns and not a.execution_error:
        looks.append("no rows" if not a.rows else f"{'at least ' if a.truncated else ''}{len(a.rows)} "
                     f"row{'s' if len(a.rows) != 1 else ''}")
    looks += [f"{warn} {n}" for n in a.notes]
    if looks:
        lines.append("**Result**: " + " · ".join(looks))
    lines += [f"- {e}" for e in c.errors] + [f"- {w}" for w in c.warnings]
    if a.execution_error:
        lines.append(f"\n**Not run:** {a.execution_error}")
    return "\n\n".join(lines[:2]) + ("\n" + "\n".join(lines[2:]) if lines[2:] else "")


def _panel(a: Answer | None, error: str = "", served_by: str = "") -> list:
    """sql, marks, table, rows note, stats, prompt+raw for one model's panel."""
    if a is None:
        return ["", f"**Error:** {error}", gr.update(value=None, visible=False), "", "", ""]
    sql = a.check.transpiled or a.sql or a.raw
    where = f"Result on {a.database}" if a.database else "Result on your sample rows"
    if a.columns and a.rows:
        table = gr.update(value={"headers": a.columns, "data": [list(r) for r in a.rows]}, visible=True, label=where)
        note = f"{len(a.rows)} row(s)" + (" (more were cut off)" if a.truncated else "")
    else:
        table = gr.update(value=None, visible=False, label=where)
        note = ("Returned no rows" + (f" (columns: {', '.join(a.columns)})" if a.columns else "") if a.columns else "")
    if a.database and a.columns:
        note += f" · answered by the database `{a.database}` (read-only)"
    if a.rows_changed is not None:
        note = f"On a throwaway copy of your sample rows: {a.rows_changed} row(s) changed. Nothing else was touched."
    how = ["constrained by the schema's grammar" if a.constrained else "unconstrained"]
    if a.candidates > 1:
        how.append(f"{a.candidates} candidates tried, {a.agreement or 0} agreed on this result"
                   + (f", {a.failed_candidates} failed" if a.failed_candidates else "")
                   + (" (none of the first round ran: a second, hotter round was drawn)" if a.resampled else ""))
    if a.repairs:
        how.append("repaired where the schema allows one reading: " + "; ".join(a.repairs))
    if a.schema_left_out:
        how.append(f"schema too wide for the model: left out of the prompt {', '.join(a.schema_left_out)}")
    stats = (f"{a.model}: {a.latency_s * 1000:.0f} ms · {a.prompt_tokens} prompt + {a.completion_tokens} completion "
             f"tokens · {'; '.join(how)}" + (f" · answered by {served_by}" if served_by else ""))
    prompt = (f"--- prompt ({len(a.prompt_ids)} tokens; sample rows {'in' if a.sample_rows_in_prompt else 'not in'} "
              f"the prompt, as the model was trained) ---\n{a.prompt_text}\n--- raw completion ---\n{a.raw}")
    return [sql, marks(a), table, note, stats, prompt]


def ask_one(dep: D.Deployment, model, schema, rows, question, target, execute, constrained, candidates, temperature,
            database: databases.Database | None = None):
    try:
        a = client(dep, model).ask(schema, question, target=target, sample_rows=rows or "", execute=execute,
                                   constrained=constrained, candidates=int(candidates),
                                   temperature=float(temperature), database=database)
        served = list(dict.fromkeys(a.replicas))      # from the answers' own header, in the order asked
        return a, _panel(a, served_by=("replica " + ", ".join(served)) if served else "")
    except EndpointError as e:
        return None, _panel(None, f"deployment {dep.name} did not answer: {e}")
    except SqlgenieError as e:
        return None, _panel(None, str(e))


def _asked(a: Answer | None, question: str, schema: str, rows: str, model: str, deployment: str) -> dict | None:
    """What a mark of this answer keeps (the panel's gr.State): None when there is no answer to mark."""
    if a is None or not ((a.sql or "").strip() or (a.raw or "").strip()):
        return None
    found = bool((a.sql or "").strip())      # prose can be marked wrong (with the SQL expected), never right
    return {"question": question, "schema": schema, "rows": rows or "", "sql": a.sql if found else a.raw,
            "model": model, "deployment": deployment, "dialect": "sqlite", "sql_found": found}


def _history_row(question: str, model: str, a: Answer) -> list:
    return [question, model, (a.check.transpiled or a.sql).replace("\n", " "), "ok" if a.check.ok else "check",
            f"{a.latency_s * 1000:.0f} ms", ""]


def answer(deployment, model_a, compare, model_b, schema, rows, question, target, execute, constrained,
           candidates, temperature, history, database=None):
    """`database`: this tab's connected database (its gr.State), where the answers run; None: the sample rows.
    Returns both panels, the history (each model's answer a row) and what a mark of each answer keeps."""
    blank_b = ["", "", gr.update(value=None, visible=False), "", "", ""]
    if not deployment or not model_a:
        msg = "no deployment is ready: start one on the dashboard (Serving, or Try it on a trained run)"
        return ["### Model", *_panel(None, msg), "", *blank_b, history, history, None, None, "", ""]
    try:
        dep = D.read(deployment)       # once a question: both panels and their titles see the same state
    except SqlgenieError as e:
        return ["### Model", *_panel(None, str(e)), "", *blank_b, history, history, None, None, "", ""]
    a, pa = ask_one(dep, model_a, schema, rows, question, target, execute, constrained, candidates, temperature,
                    database)
    b, pb, dep_b, name_b = None, blank_b, dep, model_b
    if compare and model_b:
        try:
            dep_b, name_b = resolve_model(dep, model_b)
            b, pb = ask_one(dep_b, name_b, schema, rows, question, target, execute, constrained, candidates,
                            temperature, database)
        except SqlgenieError as e:           # that deployment stopped meanwhile
            pb = _panel(None, str(e))
    new = [_history_row(question, m, x) for m, x in ((model_a, a), (name_b, b)) if x is not None]
    history = new + history
    heads = [f"### {_title(dep, model_a)}", f"### {_title(dep_b, name_b) if compare and model_b else ''}"]
    return [heads[0], *pa, heads[1], *pb, history, history, _asked(a, question, schema, rows, model_a, dep.name),
            _asked(b, question, schema, rows, name_b, dep_b.name), "", ""]


def on_mark(verdict: str, asked: dict | None, expected: str, note: str, history: list):
    """Keep a mark of the panel's last answer (pipeline/data/feedback.py); the history row shows it."""
    if not asked:
        return "Nothing to mark yet: generate an answer first.", history, history
    asked = dict(asked)
    if verdict == "right" and not asked.pop("sql_found", True):
        return ("**Not kept:** the answer has no SQL, so it cannot be right: mark it wrong and give the SQL you "
                "expected to teach it"), history, history
    asked.pop("sql_found", None)
    try:
        feedback.record(feedback.Mark(verdict=verdict, expected_sql=expected or "", note=note or "", **asked))
    except SqlgenieError as e:
        return f"**Not kept:** {e}", history, history
    newest = next((i for i, row in enumerate(history) if row[:2] == [asked["question"], asked["model"]]), None)
    history = [row[:5] + [verdict if i == newest else row[5]] for i, row in enumerate(history)]
    trains = "it will teach its SQL" if verdict == "right" else (
        "it will teach the SQL you expected" if (expected or "").strip() else
        "give the SQL you expected and mark it again to teach it; as it is, it trains nothing")
    return (f"Kept: **{verdict}** ({trains}). `sqlgenie feedback export FILE.jsonl` turns the marks into training rows.",
            history, history)


def _title(dep: D.Deployment, model: str) -> str:
    """A panel's title: 'ft-171217 (fine-tune, LoRA on try-171533)' / 'try-171533 (base)'."""
    return dep.models[model].describe() if model in dep.models else model


def _waiting(name: str) -> tuple[str, bool]:
    """(what to say, keep waiting) about a deployment the URL names that is not ready (yet)."""
    try:
        dep = D.read(name)
    except SqlgenieError:
        dep = None
    if dep is None:
        try:
            job = JobStore().serving().get(name)
        except SqlgenieError:
            job = None
        if job is None:
            return (f"No deployment named **{name}**, and no serve job is starting one: start it on the dashboard "
                    "(Serving, or Try it on a trained run)."), False
        return f"⏳ Deployment **{name}**: its serve job #{job.id} is {job.status}; this page selects it when ready.", True
    if dep.ready:
        return "", False
    if dep.phase in ("stopping", "stopped"):
        return (f"Deployment **{name}** stopped before it was ready: its serve job's log (dashboard, Jobs) says "
                "why."), False
    return (f"⏳ Deployment **{name}** is starting ({time.time() - dep.created:.0f} s so far; a CPU replica takes "
            "about 30-60 s, a GPU one a few minutes the first time): this page selects it when it is ready."), True


def _select(q: dict) -> tuple:
    """Updates for (deployment, model a, compare, model b, waiting note, timer, wanted) from what the URL asks
    (?deployment=..&a=..&b=..): that deployment once it is ready, never another one in silence; with no
    deployment asked, the first ready one."""
    deps = ready_deployments()
    name = q.get("deployment")
    if name and name not in deps:
        text, wait = _waiting(name)
        return (gr.update(choices=deps, value=None), gr.update(choices=[], value=None), gr.update(),
                gr.update(choices=[], value=None), gr.update(value=text, visible=bool(text)),
                gr.Timer(active=wait), q if wait else {})
    dep = name or (deps[0] if deps else None)
    models, seconds = models_of(dep), b_choices(dep)
    a = q.get("a") if q.get("a") in models else (models[0] if models else None)
    b = q.get("b") if q.get("b") in seconds else (models[1] if len(models) > 1 else None)
    return (gr.update(choices=deps, value=dep), gr.update(choices=models, value=a),
            gr.update(value=bool(q.get("b")) and b == q.get("b")), gr.update(choices=seconds, value=b),
            gr.update(value="", visible=False), gr.Timer(active=False), {})


def on_load(request: gr.Request):
    return _select(dict(request.query_params) if request else {})


def on_tick(wanted: dict):
    """Every few seconds while the URL's deployment starts: select it once ready, or say why it will not be."""
    return _select(wanted) if wanted else (gr.update(), gr.update(), gr.update(), gr.update(), gr.update(),
                                           gr.Timer(active=False), {})


def on_deployment(dep, a: str | None = None, b: str | None = None):
    """The model lists of a newly picked deployment; the models already picked stay where it still offers them (a
    URL's second model from another deployment is not reset when the page selects the URL's deployment)."""
    models, seconds = models_of(dep), b_choices(dep)
    return (gr.update(choices=models, value=a if a in models else (models[0] if models else None)),
            gr.update(choices=seconds, value=b if b in seconds else (models[1] if len(models) > 1 else None)))


def refresh(dep):
    deps = ready_deployments()
    dep = dep if dep in deps else (deps[0] if deps else None)
    return (gr.update(choices=deps, value=dep), *on_deployment(dep))


def on_connect(upload, url, password):
    """Connect this tab to a database (an uploaded SQLite file, else the path or URL typed): its schema and sample
    rows fill the boxes (what the model reads), the answer's dialect becomes the database's, and from now on
    answers run there. Returns (database, schema, rows, target, execute, status, password): the password box
    is emptied (the password stays on the server, in this tab's state, and is never shown back)."""
    keep = gr.skip()
    target = upload or (url or "").strip()
    try:
        db = databases.connect(target, password or None)
        if upload:
            db.label = f"sqlite:{Path(upload).name} (uploaded)"
        read = db.schema()
    except SqlgenieError as e:
        return None, keep, keep, keep, keep, f"**Not connected:** {e}", ""
    notes = "".join(f"\n- {n}" for n in read.notes)
    status = (f"**Connected:** `{db.label}` · {len(read.tables)} table(s): {', '.join(read.tables)}. The boxes below "
              f"hold its schema and up to {databases.SAMPLE_ROWS} rows a table (what the model reads); answers run on "
              f"this database, read-only (at most {DEFAULT_TIMEOUT_S:g} s and {DEFAULT_MAX_ROWS} rows).{notes}")
    return (db, read.ddl, read.rows, db.dialect, gr.update(value=True, label="Run on the database"), status, "")


def on_source(source):
    """Type/paste or connect: (database, connect box, example picker, execute, status). Back to typing
    forgets this tab's connection (answers run on the sample rows again)."""
    if source == CONNECT:
        return gr.skip(), gr.update(visible=True), gr.update(visible=False), gr.skip(), gr.skip()
    return (None, gr.update(visible=False), gr.update(visible=True), gr.update(label="Run on the sample rows"),
            gr.update(value=""))


def _answer_panel(title: str, prefix: str, visible: bool = True):
    with gr.Column(visible=visible) as col:
        head = gr.Markdown(f"### {title}", elem_id=f"{prefix}_title")
        sql = gr.Code(label="SQL", language="sql", interactive=False, wrap_lines=True, elem_id=f"{prefix}_sql")
        mk = gr.Markdown(elem_id=f"{prefix}_marks")
        table = gr.Dataframe(label="Result on your sample rows", interactive=False, visible=False, wrap=True,
                             elem_id=f"{prefix}_result")
        note = gr.Markdown(elem_id=f"{prefix}_note")
        stats = gr.Markdown(elem_id=f"{prefix}_stats")
        with gr.Accordion("Exact prompt and raw completion", open=False):
            prompt = gr.Textbox(show_label=False, lines=12, max_lines=30, elem_id=f"{prefix}_prompt")
        with gr.Accordion("Mark this answer (feedback for the next fine-tune)", open=False):
            with gr.Row():
                right = gr.Button("✓ Right", size="sm", elem_id=f"{prefix}_right")
                wrong = gr.Button("✗ Wrong", size="sm", elem_id=f"{prefix}_wrong")
            expected = gr.Code(label="The SQL you expected (for a wrong answer; optional)", language="sql",
                               elem_id=f"{prefix}_expected")
            why = gr.Textbox(label="Note (optional)", elem_id=f"{prefix}_why")
            said = gr.Markdown(elem_id=f"{prefix}_mark_status")
    return col, head, [sql, mk, table, note, stats, prompt], (right, wrong, expected, why, said)


def build() -> gr.Blocks:
    schema0, rows0, q0 = EXAMPLES[DEFAULT_EXAMPLE]
    with gr.Blocks(title="sqlgenie playground") as demo:
        gr.Markdown("# sqlgenie playground\nAsk a question about your schema; get SQL checked against it and run on "
                    "your sample rows, or on your database (read-only).")
        with gr.Row():
            deployment = gr.Dropdown(label="Deployment", choices=[], elem_id="deployment", scale=2)
            model_a = gr.Dropdown(label="Model", choices=[], elem_id="model_a", scale=2)
            compare = gr.Checkbox(label="Compare with a second model", elem_id="compare", scale=1)
            model_b = gr.Dropdown(label="Second model", choices=[], elem_id="model_b", scale=2)
            refresh_btn = gr.Button("Refresh", scale=0, elem_id="refresh")
        waiting = gr.Markdown(visible=False, elem_id="waiting")
        with gr.Row():
            with gr.Column(scale=5):
                source = gr.Radio([PASTE, CONNECT], value=PASTE, label="Schema from", elem_id="source")
                with gr.Group(visible=False) as db_box:
                    db_file = gr.File(label="A SQLite file (upload)", file_types=[".db", ".sqlite", ".sqlite3"],
                                      type="filepath", height=120, elem_id="db_file")
                    db_url = gr.Textbox(label="or a SQLite file on this server, or a database URL",
                                        placeholder="postgresql://user@host:5432/dbname   or   /data/shop.db",
                                        elem_id="db_url")
                    db_password = gr.Textbox(label="Password (apart from the URL; never shown back)", type="password",
                                             elem_id="db_password")
                    connect_btn = gr.Button("Connect", elem_id="connect")
                db_status = gr.Markdown(elem_id="db_status")
                ex = gr.Dropdown(list(EXAMPLES), value=DEFAULT_EXAMPLE, label="Example schema", elem_id="example")
                schema = gr.Code(schema0, language="sql", label="Schema (CREATE TABLE ...)", elem_id="schema",
                                 wrap_lines=True)
                rows = gr.Code(rows0, language="sql", label="Sample rows (INSERT ..., optional)", elem_id="rows",
                               wrap_lines=True)
                question = gr.Textbox(q0, label="Question", elem_id="question")
                with gr.Row():
                    target = gr.Dropdown(list(DIALECTS), value="sqlite", label="Dialect of the answer")
                    execute = gr.Checkbox(True, label="Run on the sample rows", elem_id="execute")
                    constrained = gr.Checkbox(False, label="Constrain to the schema (grammar)", elem_id="constrained")
                with gr.Accordion("Candidates and sampling", open=False):
                    candidates = gr.Slider(0, 16, value=0, step=1, label="Extra sampled candidates (0: greedy only; "
                                           "N: vote by result on the sample rows)", elem_id="candidates")
                    temperature = gr.Slider(0.1, 1.5, value=0.7, step=0.1, label="Sampling temperature")
                go_btn = gr.Button("Generate SQL", variant="primary", elem_id="go")
            with gr.Column(scale=7):
                with gr.Row():
                    _, head_a, out_a, mark_a = _answer_panel("Model", "a")
                    col_b, head_b, out_b, mark_b = _answer_panel("Second model", "b", visible=False)
        wanted = gr.State({})
        database = gr.State(None)        # this tab's connection (a Database: no open connection, no module global)
        timer = gr.Timer(3.0, active=False)
        history = gr.State([])
        hist = gr.Dataframe(headers=["question", "model", "SQL", "check", "latency", "mark"], label="History",
                            interactive=False, wrap=True, elem_id="history")
        asked_a, asked_b = gr.State(None), gr.State(None)     # what a mark of each panel's last answer keeps
        ex.change(lambda k: EXAMPLES[k], ex, [schema, rows, question])
        source.change(on_source, source, [database, db_box, ex, execute, db_status])
        connect_btn.click(on_connect, [db_file, db_url, db_password],
                          [database, schema, rows, target, execute, db_status, db_password], concurrency_limit=4)
        compare.change(lambda c: gr.update(visible=c), compare, col_b)
        deployment.change(on_deployment, [deployment, model_a, model_b], [model_a, model_b])
        refresh_btn.click(refresh, deployment, [deployment, model_a, model_b])
        picked = [deployment, model_a, compare, model_b, waiting, timer, wanted]
        demo.load(on_load, None, picked)
        timer.tick(on_tick, wanted, picked)
        inputs = [deployment, model_a, compare, model_b, schema, rows, question, target, execute, constrained,
                  candidates, temperature, history, database]
        outputs = [head_a, *out_a, head_b, *out_b, history, hist, asked_a, asked_b, mark_a[4], mark_b[4]]
        go_btn.click(answer, inputs, outputs, concurrency_limit=4)
        question.submit(answer, inputs, outputs, concurrency_limit=4)
        for (right, wrong, expected, why, said), asked in ((mark_a, asked_a), (mark_b, asked_b)):
            for button, verdict in ((right, "right"), (wrong, "wrong")):
                button.click(lambda asked_, exp, note, hist_, v=verdict: on_mark(v, asked_, exp, note, hist_),
                             [asked, expected, why, history], [said, history, hist])
    return demo


def main() -> None:
    host = access.bind_address()
    access.check_bind(host)
    demo = build()
    demo.queue(max_size=64)
    demo.launch(server_name=host, server_port=envs.port("PLAYGROUND_PORT"), show_error=True,
                quiet=True, share=False, footer_links=["gradio", "settings"],
                # Gradio's launch asks itself for startup-events (it returns only whether they ran)
                app_kwargs={"middleware": [Middleware(Door, open_paths=("/gradio_api/startup-events",))]})


if __name__ == "__main__":
    main()
