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
row- and memory-capped (sql/sandbox.py); a statement that changes data runs only on that throwaway copy. With
`database=` (sql/databases.py: a SQLite file or PostgreSQL, its schema and sample rows read from it) the answer
runs there instead, written for its engine, read-only and capped; a write is refused before it runs, and
votes are still counted on the sample rows.

Options: `constrained` generates under a grammar built from the schema (sql/grammar.py: the model cannot
name a table or column that does not exist); `candidates=N` also samples N answers in the same request and
returns the one most candidates agree with when run on the sample rows (sql/vote.py), with its agreement;
when none of them runs, one more round of N is drawn hotter and the vote covers both (Answer.resampled).
Columns are read where the schema says they are when it leaves one reading (sql/repair.py: a column moved to
the one table of its FROM that has it, a missing table joined through the one shortest foreign-key path, a
broken ON given its key; `repair=False` to see the raw answer), and the answer lists each change (Answer.repairs).
A schema too wide for the model's context is fitted (sql/schema_fit.py): the tables the question needs are
kept, and the answer names the ones left out (Answer.schema_left_out). Errors say which input caused them:
the question, the schema or the sample rows.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import SqlgenieError
from serving import deployments as D
from serving.client import CompletionsClient
from serving.config import DeploymentError
from sql.databases import Database, DatabaseError
from sql.extract import extract_sql
from sql.grammar import schema_grammar
from sql.prompt import ChatFormatter, PromptContract
from sql.repair import repair_all
from sql.result_notes import result_notes
from sql.sandbox import Sandbox, SandboxError
from sql.schema_fit import SchemaFitError, fit_schema
from sql.validate import DIALECTS, SqlCheck, check, schema_columns
from sql.vote import RESAMPLING, choose


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
    server_prompt_ids: list[int] | None = None                   # what the server says it used (a client's first answer)
    sample_rows_in_prompt: bool = False
    constrained: bool = False
    candidates: int = 1                                           # answers considered (greedy + sampled)
    agreement: int | None = None                                  # candidates that returned the chosen result
    failed_candidates: int = 0
    rows_changed: int | None = None                               # a write, run on the throwaway copy
    schema_left_out: list[str] = field(default_factory=list)     # tables not in the prompt (too wide to fit)
    repairs: list[str] = field(default_factory=list)             # what repair changed (moves, joins, ONs)
    resampled: bool = False                                       # no first-round candidate ran: a second round
    replicas: list[str] = field(default_factory=list)            # which replica answered each request ("0@cpu:0")
    notes: list[str] = field(default_factory=list)               # what looks doubtful (sql/result_notes.py)
    database: str = ""                                            # the database that ran it (its label), if one did


_TOKENIZERS: dict[str, object] = {}
_TOK_LOCK = threading.Lock()


def tokenizer_for(path: str | Path):
    """A tokenizer folder loaded once per process. The import is under the lock too: transformers' lazy
    module is not thread-safe on first import (two playground tabs asking at once got "cannot import name
    'AutoTokenizer' from 'transformers'")."""
    key = str(Path(path).resolve())
    with _TOK_LOCK:
        from transformers import AutoTokenizer

        if key not in _TOKENIZERS:
            _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key)
        return _TOKENIZERS[key]


class TextToSql:
    def __init__(self, base_url: str, tokenizer_dir: str | Path, contract: PromptContract | None = None,
                 model: str | None = None, max_model_len: int | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, seeded: bool = True):
        self.client = CompletionsClient(base_url, model=model, timeout_s=timeout_s, retries=2, api_key=api_key)
        self.tokenizer = tokenizer_for(tokenizer_dir)
        if not self.tokenizer.chat_template:
            raise AskError(f"tokenizer {tokenizer_dir} has no chat template: the prompt cannot be built")
        self.contract = contract or PromptContract()
        self.formatter = ChatFormatter.for_contract(self.tokenizer, self.contract)
        self.max_model_len = max_model_len
        # seeded sampling (reproducible votes) only where the engine supports it: vLLM CPU 0.32 kills its engine
        # on a seeded request whose prefill is chunked ("CPU Generator does not use offset")
        self.seeded = seeded
        # The server says which prompt ids it used on this client's first answer, and they must be ours (the
        # contract: nothing added, nothing re-tokenized). Only the first: echoing ~1,400 ids back on every
        # answer cost 0.5-1.8 ms of a ~75 ms answer on an H200 (measured with a probe since retired: docs/benchmarks.md, serving rows).
        self.ids_checked = False

    @classmethod
    def for_deployment(cls, deployment: "str | D.Deployment", model: str | None = None,
                       api_key: str | None = None) -> "TextToSql":
        """Through a deployment's router (its name, or the record D.read gave), prompting `model` (default: its
        base) with that model's own tokenizer and contract."""
        dep = D.read(deployment) if isinstance(deployment, str) else deployment
        try:
            m = dep.model(model or dep.name)
        except DeploymentError as e:
            raise AskError(str(e)) from None
        return cls(dep.router_url, m.tokenizer, PromptContract(**m.contract), model=m.name,
                   max_model_len=dep.max_model_len, api_key=api_key, seeded=not (dep.on_cpu or dep.has_workers))

    # ----------------------------------------------------------------------------------- prompt
    def prompt(self, schema: str, question: str, sample_rows: str = "") -> tuple[str, list[int]]:
        """(text, token ids) exactly as training renders this row under the model's contract."""
        return self.formatter.prompt_with_ids({"schema": schema, "sample_data": sample_rows, "question": question})

    # ----------------------------------------------------------------------------------- ask
    def ask(self, schema: str, question: str, dialect: str | None = None, target: str | None = None,
            sample_rows: str = "", execute: bool = False, max_tokens: int = 256, constrained: bool = False,
            candidates: int = 0, temperature: float = 0.7, top_p: float = 0.95, seed: int | None = -1,
            repair: bool = True, database: Database | None = None) -> Answer:
        """`database`: run the answer there (read-only, capped: sql/databases.py) instead of on the sample rows."""
        dialect = dialect or self.contract.dialect
        question = (question or "").strip()
        if not question:
            raise AskError("the question is empty: ask something about the schema")
        if not (schema or "").strip():
            raise AskError("the schema is empty: paste the CREATE TABLE statements")
        tables, problems = schema_columns(schema, dialect)
        if problems:
            raise AskError(f"the schema does not parse ({problems[0].removeprefix('schema: ')}): fix the CREATE TABLE "
                           "statements")
        if not tables:
            raise AskError("the schema has no CREATE TABLE statement: paste the tables the question is about")
        if not 0 <= candidates <= 32:
            raise AskError(f"candidates {candidates}: choose between 0 (greedy only) and 32")
        for what, d in (("target", target), ("dialect", dialect)):
            if d and not known_dialect(d):
                raise AskError(f"{what} dialect {d!r} is unknown: choose one of {', '.join(DIALECTS)}")
        t0 = time.time()
        in_prompt = sample_rows if self.contract.include_sample_rows else ""
        text, ids = self.prompt(schema, question, in_prompt)
        limit = self.max_model_len
        prompt_schema, left_out = schema, []
        if limit and len(ids) + 1 > limit:
            q_tokens = len(self.formatter.encode(question))
            if q_tokens > limit // 2:
                raise AskError(f"the prompt is {len(ids)} tokens, the model's limit is {limit}: the question is too "
                               "long: ask it in fewer words")
            if in_prompt:
                raise AskError(f"the prompt is {len(ids)} tokens, the model's limit is {limit}: the sample rows make "
                               "it too long (the model was trained with them in the prompt): keep a few per table")
            budget = limit - min(max_tokens, limit // 4)   # room for the answer
            try:
                prompt_schema, left_out = fit_schema(
                    schema, question, lambda d: len(self.prompt(d, question)[1]) <= budget)
            except SchemaFitError as e:
                raise AskError(f"the prompt is {len(ids)} tokens, the model's limit is {limit}: {e}") from e
            text, ids = self.prompt(prompt_schema, question)
            max_tokens = min(max_tokens, limit - len(ids))
        grammar = _grammar(prompt_schema, dialect) if constrained else None
        stop = [self.tokenizer.eos_token]
        checking = not self.ids_checked
        out = self.client.complete(ids, max_tokens=max_tokens, stop=stop, return_token_ids=checking, grammar=grammar)
        if checking and out.prompt_token_ids is not None:
            self._check_server_ids(ids, out.prompt_token_ids)
        texts = [out.text]
        replicas = [out.replica]
        completion_tokens = out.completion_tokens
        if candidates:
            more = self.client.complete(ids, max_tokens=max_tokens, stop=stop, grammar=grammar, n=candidates,
                                        temperature=temperature, top_p=top_p,
                                        seed=(0 if self.seeded else None) if seed == -1 else seed)
            texts += more.texts
            replicas.append(more.replica)
            completion_tokens += more.completion_tokens
        sqls, moves = self._candidates(texts, schema, dialect, tables, repair)
        agreement, failed, resampled = None, 0, False
        sql, raw = sqls[0], texts[0]
        if candidates:
            context = schema + "\n" + (sample_rows or "")
            pick = choose(sqls, context)
            if pick.none_ran:      # every candidate failed: one more round, hotter (sql/vote.py)
                again = self.client.complete(ids, max_tokens=max_tokens, stop=stop, grammar=grammar, n=candidates,
                                             seed=(1 if self.seeded else None) if seed == -1 else seed,
                                             **{**RESAMPLING, "temperature": max(temperature, RESAMPLING["temperature"])})
                texts += again.texts
                replicas.append(again.replica)
                completion_tokens += again.completion_tokens
                more, more_moves = self._candidates(again.texts, schema, dialect, tables, repair)
                sqls, moves = sqls + more, {**more_moves, **moves}   # the first round's are repaired already
                pick, resampled = choose(sqls, context), True
            sql, agreement, failed = pick.sql, pick.agreement, pick.failed
            raw = texts[sqls.index(sql)] if sql in sqls else raw
        result = check(sql, schema, dialect, target, known_tables=tables)
        ans = Answer(question=question, raw=raw, sql=sql, check=result, prompt_tokens=out.prompt_tokens,
                     completion_tokens=completion_tokens, latency_s=time.time() - t0, model=self.client.model,
                     prompt_text=text, prompt_ids=ids, server_prompt_ids=out.prompt_token_ids,
                     sample_rows_in_prompt=bool(in_prompt), constrained=constrained, candidates=len(texts),
                     agreement=agreement, failed_candidates=failed, schema_left_out=left_out,
                     repairs=moves.get(sql, []), resampled=resampled, replicas=[r for r in replicas if r],
                     notes=result_notes(sql, dialect, sample_rows) if result.parses else [])
        if execute and result.parses:
            if database is not None:
                self._execute_on(ans, database, dialect)
            else:
                self._execute(ans, schema, sample_rows)
        return ans

    def _check_server_ids(self, ids: list[int], server: list[int]) -> None:
        if list(server) != list(ids):
            at = next((i for i, (a, b) in enumerate(zip(ids, server)) if a != b), min(len(ids), len(server)))
            raise AskError(f"the server prompted {self.client.model!r} with other token ids than this client sent "
                           f"({len(server)} vs {len(ids)} ids, first difference at position {at}): it is not "
                           "serving the prompt the model was trained on; restart the deployment with the model's "
                           "own export, or report the server version")
        self.ids_checked = True

    @staticmethod
    def _candidates(texts: list[str], schema: str, dialect: str, tables, repair: bool
                    ) -> tuple[list[str], dict[str, list[str]]]:
        """Each completion's SQL (repaired when asked) and {repaired query: its changes}."""
        sqls = [extract_sql(t) for t in texts]
        return repair_all(sqls, schema, dialect, tables) if repair else (sqls, {})

    @staticmethod
    def _execute(ans: Answer, schema: str, sample_rows: str) -> None:
        """Run the answer on a throwaway in-memory copy of the schema + sample rows (a write is allowed there
        only, and reported as rows changed); a failure says whether the rows or the query caused it."""
        try:
            box = Sandbox.from_context(schema + "\n" + (sample_rows or ""))
        except SandboxError as e:
            ans.execution_error = ("the sample rows did not load, so the query was not run: "
                                   f"{str(e).split(': ', 1)[-1]} (fix the INSERT statements)")
            return
        with box:
            try:
                q = box.query(ans.sql, read_only=ans.check.read_only)
            except SandboxError as e:
                ans.execution_error = f"the query failed on your sample rows ({e.kind}): {e}"
                return
        ans.columns, ans.rows, ans.truncated = q.columns, q.rows, q.truncated
        if not ans.check.read_only:
            ans.rows_changed = q.changes


    @staticmethod
    def _execute_on(ans: Answer, db: Database, dialect: str) -> None:
        """Run the answer on the user's database, written for its engine; a write is refused before it runs."""
        ans.database = db.label
        try:
            q = db.run(ans.sql, from_dialect=dialect)
        except DatabaseError as e:
            ans.execution_error = str(e) if e.kind == "denied" else f"the query failed on {db.label} ({e.kind}): {e}"
            return
        ans.columns, ans.rows, ans.truncated = q.columns, q.rows, q.truncated


def known_dialect(name: str) -> bool:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
        return True
    except ValueError:
        return False


_GRAMMARS: dict[tuple[str, str], str] = {}


def _grammar(schema: str, dialect: str) -> str:
    """The schema's grammar, built once per schema (questions about one schema come in a row)."""
    key = (schema, dialect)
    if key not in _GRAMMARS:
        if len(_GRAMMARS) > 64:
            _GRAMMARS.clear()
        _GRAMMARS[key] = schema_grammar(schema, dialect)
    return _GRAMMARS[key]
