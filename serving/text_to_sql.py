"""Schema + question -> validated, formatted SQL (and optionally its rows) through a served model.

    from serving.text_to_sql import TextToSql
    t2s = TextToSql.for_deployment("sqlgenie", model="ft")              # tokenizer + contract of that model
    ans = t2s.ask(schema_ddl, "How many users signed up in 2024?", target="postgres",
                  sample_rows="INSERT INTO users VALUES (1, 'a', '2024-01-02');", execute=True)
    ans.sql, ans.check.errors, ans.rows, ans.latency_s, ans.prompt_text

The prompt is the one the model was trained on, by construction: the served model's own tokenizer and the
prompt contract from its model card (sql/prompt.py), rendered by the same ChatFormatter as training, sent
as token ids to /v1/completions at temperature 0 (so the server adds no second BOS). Sample rows go into
the prompt only when the contract says the model was trained with them; they are always used for
execution. Execution runs on an in-memory SQLite built from the schema + sample rows, read-only, time-,
row- and memory-capped (sql/sandbox.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import SqlgenieError
from serving import deployments as D
from serving.client import CompletionsClient
from sql.extract import extract_sql
from sql.prompt import ChatFormatter, PromptContract
from sql.sandbox import Sandbox, SandboxError
from sql.validate import SqlCheck, check, schema_columns


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
    model: str = ""
    prompt_text: str = ""
    prompt_ids: list[int] = field(default_factory=list)          # what we sent
    server_prompt_ids: list[int] | None = None                   # what the server says it used
    sample_rows_in_prompt: bool = False


_TOKENIZERS: dict[str, object] = {}
_TOK_LOCK = threading.Lock()


def tokenizer_for(path: str | Path):
    """A tokenizer folder loaded once per process."""
    from transformers import AutoTokenizer

    key = str(Path(path).resolve())
    with _TOK_LOCK:
        if key not in _TOKENIZERS:
            _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key)
        return _TOKENIZERS[key]


class TextToSql:
    def __init__(self, base_url: str, tokenizer_dir: str | Path, contract: PromptContract | None = None,
                 model: str | None = None, max_model_len: int | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0):
        self.client = CompletionsClient(base_url, model=model, timeout_s=timeout_s, retries=2, api_key=api_key)
        self.tokenizer = tokenizer_for(tokenizer_dir)
        if not self.tokenizer.chat_template:
            raise AskError(f"tokenizer {tokenizer_dir} has no chat template: the prompt cannot be built")
        self.contract = contract or PromptContract()
        self.formatter = ChatFormatter.for_contract(self.tokenizer, self.contract)
        self.max_model_len = max_model_len

    @classmethod
    def for_deployment(cls, name: str, model: str | None = None, api_key: str | None = None) -> "TextToSql":
        """Through a deployment's router, prompting `model` (default: its base) with that model's own tokenizer
        and contract."""
        st = D.load(name)
        models = st.get("models") or {}
        model = model or st["name"]
        if model not in models:
            raise AskError(f"deployment {name!r} serves {', '.join(models) or 'nothing'}, not {model!r}")
        m = models[model]
        return cls(st["router"]["url"], m["tokenizer"], PromptContract(**m["contract"]), model=model,
                   max_model_len=_max_len(st), api_key=api_key)

    # ----------------------------------------------------------------------------------- prompt
    def prompt(self, schema: str, question: str, sample_rows: str = "") -> tuple[str, list[int]]:
        """(text, token ids) exactly as training renders this row under the model's contract."""
        row = {"schema": schema, "sample_data": sample_rows, "question": question}
        text = self.formatter.prompt(row)
        return text, self.formatter.encode(text)

    # ----------------------------------------------------------------------------------- ask
    def ask(self, schema: str, question: str, dialect: str | None = None, target: str | None = None,
            sample_rows: str = "", execute: bool = False, max_tokens: int = 256) -> Answer:
        dialect = dialect or self.contract.dialect
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
        in_prompt = sample_rows if self.contract.include_sample_rows else ""
        text, ids = self.prompt(schema, question, in_prompt)
        limit = self.max_model_len
        if limit and len(ids) + 1 > limit:
            raise AskError(f"the prompt is {len(ids)} tokens, the model's limit is {limit}: the question is too long "
                           "for this schema (or drop unrelated tables / sample rows)")
        out = self.client.complete(ids, max_tokens=max_tokens, stop=[self.tokenizer.eos_token], return_token_ids=True)
        sql = extract_sql(out.text)
        result = check(sql, schema, dialect, target, known_tables=tables)
        ans = Answer(question, out.text, sql, result, out.prompt_tokens, out.completion_tokens, time.time() - t0,
                     self.client.model, text, ids, out.prompt_token_ids, bool(in_prompt))
        if execute and sql and not any(e.startswith("does not parse") for e in result.errors):
            try:
                with Sandbox.from_context(schema + "\n" + (sample_rows or "")) as box:
                    q = box.query(sql)
                ans.columns, ans.rows, ans.truncated = q.columns, q.rows, q.truncated
            except SandboxError as e:
                ans.execution_error = f"{e.kind}: {e}"
        return ans


def _max_len(state: dict) -> int | None:
    args = (state.get("replicas") or [{}])[0].get("args", [])
    if "--max-model-len" in args:
        return int(args[args.index("--max-model-len") + 1])
    return state.get("config", {}).get("max_model_len")
