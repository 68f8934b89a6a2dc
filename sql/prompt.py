"""The prompt contract: how a text-to-SQL row becomes the model's prompt, the same at training and serving.

System = the contract's system prompt with {schema} filled by the table DDL (+ the sample rows when the
contract says so), user = the question, assistant = the SQL. The prompt is the conversation up to and
including the assistant header (`add_generation_prompt=True`); the completion is what the template puts
after it (SQL + end of turn), so the loss falls on the SQL only. Tokens are always made with
`add_special_tokens=False`: a template that writes its own <|begin_of_text|> (Llama-3.1) must not get a
second one, so serving sends these token ids, not text, to /v1/completions.

Training writes the contract into the model card (core/modelinfo.py, `sqlgenie.json`) beside the adapter;
export copies it into every format; serving reads it back from the served model. One renderer
(`ChatFormatter`) is used by prepare, evaluate, export calibration and serving: train/serve skew cannot
come from two implementations.

Rendering 100k rows through Jinja is slow, so `ChatFormatter` compiles the template once: it renders it
with sentinel strings, keeps the literal pieces between them, and checks on real rows that the fast path
gives byte-identical text before using it (falling back to Jinja for any template where it does not).

A user asks many questions about one schema, so `prompt_with_ids` keeps the token ids of the prompt's head
(everything up to the special token that closes the system turn) per schema, and encodes only the rest: a
fast tokenizer splits text at special tokens before anything else, so the two halves' ids are the whole
prompt's. That is checked, not assumed: the first time a head is seen the whole prompt is encoded too and
compared; a tokenizer where the halves differ (one that puts a prefix space before each text it encodes)
never uses the cache again. It saves encoding the schema (~2 ms of a 1,400-token prompt) on later questions.

    from sql.prompt import PromptContract, ChatFormatter
    contract = PromptContract.from_card(card)          # or PromptContract() for an untrained base model
    fmt = ChatFormatter(tokenizer, contract.system_prompt, contract.include_sample_rows)
    prompt, completion = fmt.render(row)
    ids = fmt.prompt_ids({"schema": ddl, "question": q, "sample_data": rows})
    text, ids = fmt.prompt_with_ids(row)     # the same ids; a schema's head is encoded once (serving)
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields

from core.errors import ConfigError

PROMPT_DEFAULT = (
    "You are a text-to-SQL assistant. Answer the user's question with one SQL query for the database "
    "below. Reply with the SQL only.\n\n{schema}"
)


@dataclass
class PromptContract:
    """What a model was trained to read. Defaults are the platform's, used for a base model nobody trained."""
    system_prompt: str = PROMPT_DEFAULT
    include_sample_rows: bool = True
    dialect: str = "sqlite"
    max_seq_len: int = 1024

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict | None) -> "PromptContract":
        """The contract stored in a model card; the defaults for a model without one."""
        data = (card or {}).get("contract") or {}
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


_S, _U, _A = "\u2402SYS\u2402", "\u2402USR\u2402", "\u2402AST\u2402"


def schema_text(row: dict, include_sample_rows: bool) -> str:
    schema = row.get("schema") or ""
    sample = row.get("sample_data") or ""
    return f"{schema}\n{sample}".strip() if include_sample_rows and sample else schema.strip()


def sql_messages(row: dict, system_prompt: str, include_sample_rows: bool) -> list[dict]:
    """[system, user] messages of a text-to-SQL row (the serving client builds the same)."""
    return [
        {"role": "system", "content": system_prompt.replace("{schema}", schema_text(row, include_sample_rows))},
        {"role": "user", "content": row["question"]},
    ]


class ChatFormatter:
    """Renders rows with the tokenizer's chat template (compiled once), and encodes prompts to token ids."""

    def __init__(self, tokenizer, system_prompt: str = PROMPT_DEFAULT, include_sample_rows: bool = True):
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError([
                f"tokenizer '{getattr(tokenizer, 'name_or_path', '?')}' has no chat template: set "
                "model.chat_template to `llama-3.1` or a .jinja file"
            ])
        self.tok = tokenizer
        self.system_prompt = system_prompt
        self.include_sample_rows = include_sample_rows
        self._pieces = self._compile()
        self.fast = self._pieces is not None
        self._closer = self._system_closer()    # the special token that ends the system turn, if p1 opens with one
        self._heads: OrderedDict[str, list[int]] = OrderedDict()   # prompt head -> its ids (a few schemas)
        self._heads_lock = threading.Lock()
        self.head_cache_ok = self._closer is not None

    # ----------------------------------------------------------------------------------- slow path
    def _jinja(self, messages: list[dict], completion: str | None) -> tuple[str, str]:
        prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if completion is None:
            return prompt, ""
        full = self.tok.apply_chat_template(messages + [{"role": "assistant", "content": completion}], tokenize=False)
        if not full.startswith(prompt):
            raise ConfigError(["the chat template renders the assistant turn in a way that does not extend the "
                               "generation prompt; completion-only training needs a template where it does"])
        return prompt, full[len(prompt):]

    # ----------------------------------------------------------------------------------- fast path
    def _compile(self):
        try:
            msgs = [{"role": "system", "content": f" {_S} "}, {"role": "user", "content": f" {_U} "}]
            prompt, completion = self._jinja(msgs, f" {_A} ")
        except Exception:  # noqa: BLE001 - an exotic template: use Jinja for every row
            return None
        if prompt.count(_S) != 1 or prompt.count(_U) != 1 or completion.count(_A) != 1:
            return None
        trims = [f" {x} " not in (prompt + completion) for x in (_S, _U, _A)]
        p0, rest = prompt.split(_S)
        p1, p2 = rest.split(_U)
        c0, c1 = completion.split(_A)
        # remove the padding spaces we added (kept by templates that do not trim)
        strip = lambda s, left, right: s[1 if left and s[:1] == " " else 0: len(s) - (1 if right and s[-1:] == " " else 0)]
        pieces = (strip(p0, False, not trims[0]), strip(p1, not trims[0], not trims[1]), strip(p2, not trims[1], False),
                  strip(c0, False, not trims[2]), strip(c1, not trims[2], False), trims)
        return pieces

    def _fast(self, system: str, user: str, sql: str) -> tuple[str, str]:
        p0, p1, p2, c0, c1, (ts, tu, ta) = self._pieces
        return (p0 + (system.strip() if ts else system) + p1 + (user.strip() if tu else user) + p2,
                c0 + (sql.strip() if ta else sql) + c1)

    def verify_fast_path(self, rows: list[dict]) -> None:
        """Switch to Jinja if the compiled template differs from it on any of these rows."""
        if not self.fast:
            return
        for row in rows:
            if row.get("kind") == "chat":
                continue
            msgs = sql_messages(row, self.system_prompt, self.include_sample_rows)
            if self._fast(msgs[0]["content"], msgs[1]["content"], row["sql"]) != self._jinja(msgs, row["sql"]):
                self.fast = False
                return

    # ----------------------------------------------------------------------------------- public
    def render(self, row: dict, with_completion: bool = True) -> tuple[str, str]:
        if row.get("kind") == "chat":
            msgs = json.loads(row["messages_json"])
            return self._jinja(msgs[:-1], msgs[-1]["content"] if with_completion else None)
        msgs = sql_messages(row, self.system_prompt, self.include_sample_rows)
        if self.fast:
            prompt, completion = self._fast(msgs[0]["content"], msgs[1]["content"], row.get("sql", ""))
            return prompt, completion if with_completion else ""
        return self._jinja(msgs, row["sql"] if with_completion else None)

    def prompt(self, row: dict) -> str:
        return self.render(row, with_completion=False)[0]

    def encode(self, text: str) -> list[int]:
        """Token ids exactly as training makes them: no special tokens added beyond what the text holds."""
        return self.tok(text, add_special_tokens=False).input_ids

    def prompt_ids(self, row: dict) -> list[int]:
        """Rows with a new schema each (evaluation, calibration): the whole prompt encoded, no head cache."""
        return self.encode(self.prompt(row))

    HEADS_KEPT = 8

    def _system_closer(self) -> str | None:
        if self._pieces is None:
            return None
        p1 = self._pieces[1]
        special = [t.content for t in getattr(self.tok, "added_tokens_decoder", {}).values()
                   if getattr(t, "special", False) and not getattr(t, "lstrip", False) and not getattr(t, "rstrip", False)]
        starts = [t for t in special if t and p1.startswith(t)]
        return max(starts, key=len) if starts else None

    def prompt_with_ids(self, row: dict) -> tuple[str, list[int]]:
        """(prompt text, its token ids) exactly as `encode(prompt(row))`, with the head's ids reused per schema."""
        if not (self.fast and self.head_cache_ok) or row.get("kind") == "chat":
            text = self.prompt(row)
            return text, self.encode(text)
        system, user = (m["content"] for m in sql_messages(row, self.system_prompt, self.include_sample_rows))
        text = self._fast(system, user, "")[0]           # what render() makes of it, messages built once
        head = self._pieces[0] + (system.strip() if self._pieces[5][0] else system) + self._closer
        if not text.startswith(head):
            return text, self.encode(text)
        with self._heads_lock:
            ids = self._heads.get(head)
            if ids is not None:
                self._heads.move_to_end(head)
        if ids is not None:
            return text, ids + self.encode(text[len(head):])
        whole, head_ids = self.encode(text), self.encode(head)
        if whole != head_ids + self.encode(text[len(head):]):
            self.head_cache_ok = False           # this tokenizer does not split cleanly there: encode whole prompts
            return text, whole
        with self._heads_lock:
            self._heads[head] = head_ids
            while len(self._heads) > self.HEADS_KEPT:
                self._heads.popitem(last=False)
        return text, whole

    @classmethod
    def for_contract(cls, tokenizer, contract: PromptContract) -> "ChatFormatter":
        return cls(tokenizer, contract.system_prompt, contract.include_sample_rows)
