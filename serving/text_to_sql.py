"""Schema + question -> validated, formatted SQL (and optionally its rows) through a served model.

    from serving.text_to_sql import TextToSql
    t2s = TextToSql("http://127.0.0.1:8000", tokenizer_dir)                   # the router (or one replica)
    ans = t2s.ask(schema_ddl, "How many users signed up in 2024?", dialect="sqlite", target="postgres",
                  sample_rows="INSERT INTO users VALUES (1, 'a', '2024-01-02');", execute=True)
    ans.sql, ans.check.errors, ans.rows, ans.latency_s

The prompt is built exactly as in training (pipeline/data/formatting: system = prompt with the schema,
user = question), the chat template is applied HERE with the generation prompt, and the string goes to
/v1/completions at temperature 0 (the reference design's contract). `mode="chat"` sends the messages to
/v1/chat/completions instead (the server applies its template). Execution runs on an in-memory SQLite
built from the schema + sample rows, read-only, time- and row-capped (serving/sql/sandbox.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import PROMPT_DEFAULT
from pipeline.errors import SqlgenieError
from serving.client import CompletionsClient
from serving.sql.extract import extract_sql
from serving.sql.validate import SqlCheck, check


class AskError(SqlgenieError):
    """The question or schema cannot be sent (empty, does not parse, too long for the model)."""


@dataclass
class Answer:
    question: str
    raw: str
    sql: str
    check: SqlCheck
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    truncated: bool = False
    execution_error: str = ""


class TextToSql:
    def __init__(self, base_url: str, tokenizer_dir: str | Path, system_prompt: str = PROMPT_DEFAULT,
                 max_model_len: int | None = None, api_key: str | None = None, timeout_s: float = 60.0):
        from transformers import AutoTokenizer

        self.client = CompletionsClient(base_url, timeout_s=timeout_s, retries=2, api_key=api_key)
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if not self.tokenizer.chat_template:
            raise AskError(f"tokenizer {tokenizer_dir} has no chat template: the prompt cannot be built")
        self.system_prompt = system_prompt
        self.max_model_len = max_model_len

    def prompt(self, schema: str, question: str, sample_rows: str = "") -> str:
        from pipeline.data.formatting import sql_messages

        row = {"schema": schema, "sample_data": sample_rows, "question": question}
        msgs = sql_messages(row, self.system_prompt, bool(sample_rows))
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def ask(self, schema: str, question: str, dialect: str = "sqlite", target: str | None = None,
            sample_rows: str = "", execute: bool = False, max_tokens: int = 256, mode: str = "completions") -> Answer:
        from serving.sql.validate import schema_columns

        question = (question or "").strip()
        if not question:
            raise AskError("the question is empty: ask something about the schema")
        if not (schema or "").strip():
            raise AskError("the schema is empty: paste the CREATE TABLE statements")
        tables, problems = schema_columns(schema, dialect)
        if problems:
            raise AskError(f"the schema does not parse ({problems[0].removeprefix('schema: ')}): fix the DDL")
        if not tables:
            raise AskError("the schema has no CREATE TABLE statement")
        t0 = time.time()
        if mode == "chat":
            from pipeline.data.formatting import sql_messages

            msgs = sql_messages({"schema": schema, "sample_data": sample_rows, "question": question},
                                self.system_prompt, bool(sample_rows))
            out = self.client.chat(msgs, max_tokens=max_tokens)
        else:
            prompt = self.prompt(schema, question, sample_rows)
            n = len(self.tokenizer(prompt, add_special_tokens=False).input_ids)
            limit = self.max_model_len
            if limit and n + 1 > limit:
                raise AskError(f"the prompt is {n} tokens, the model's limit is {limit}: shorten the schema "
                               "(drop unrelated tables or sample rows)")
            out = self.client.complete(prompt, max_tokens=max_tokens, stop=[self.tokenizer.eos_token])
        sql = extract_sql(out.text)
        result = check(sql, schema, dialect, target, known_tables=tables)
        ans = Answer(question, out.text, sql, result, out.prompt_tokens, out.completion_tokens, time.time() - t0)
        if execute and sql and not any(e.startswith("does not parse") for e in result.errors):
            from serving.sql.sandbox import Sandbox, SandboxError

            try:
                with Sandbox.from_context(schema + "\n" + (sample_rows or "")) as box:
                    q = box.query(sql)
                ans.columns, ans.rows, ans.truncated = q.columns, q.rows, q.truncated
            except SandboxError as e:
                ans.execution_error = f"{e.kind}: {e}"
        return ans
