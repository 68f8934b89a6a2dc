import json

import pytest
from transformers import AutoTokenizer

from core.assets import chat_template_text
from core.errors import ConfigError
from sql.prompt import PROMPT_DEFAULT, ChatFormatter, sql_messages

ROW = {"kind": "sql", "question": "  How many rows?  ", "schema": "CREATE TABLE t (a INT);",
       "sample_data": "INSERT INTO t VALUES (1);", "sql": "SELECT COUNT(*) FROM t;"}


@pytest.fixture
def tok(tiny_tokenizer_dir):
    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.mark.parametrize("template", ["chatml", "llama-3.1"])
def test_fast_path_is_byte_identical_to_jinja(tok, template):
    if template == "llama-3.1":
        tok.chat_template = chat_template_text("llama-3.1")
        tok.bos_token = "<|endoftext|>"
    fmt = ChatFormatter(tok, PROMPT_DEFAULT, include_sample_rows=True)
    assert fmt.fast
    rows = [dict(ROW, question=q, sql=s) for q, s in
            [("q1", "SELECT 1;"), ("  padded  ", "  SELECT 2;  "), ("multi\nline", "SELECT\n  3;"), ("{schema}?", "x")]]
    for row in rows:
        msgs = sql_messages(row, PROMPT_DEFAULT, True)
        jinja_prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": row["sql"]}], tokenize=False)
        assert fmt.render(row) == (jinja_prompt, full[len(jinja_prompt):])


def test_system_prompt_holds_schema_and_optional_sample_rows():
    with_rows = sql_messages(ROW, "DB:\n{schema}", True)[0]["content"]
    without = sql_messages(ROW, "DB:\n{schema}", False)[0]["content"]
    assert "INSERT INTO t" in with_rows and "INSERT INTO t" not in without
    assert without == "DB:\nCREATE TABLE t (a INT);"


def test_chatml_completion_is_sql_plus_end_of_turn(tok):
    prompt, completion = ChatFormatter(tok, PROMPT_DEFAULT).render(ROW)
    assert prompt.endswith("<|im_start|>assistant\n") and completion == "SELECT COUNT(*) FROM t;<|im_end|>\n"


def test_chat_rows_use_the_last_assistant_turn(tok):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"},
            {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    prompt, completion = ChatFormatter(tok, PROMPT_DEFAULT).render({"kind": "chat", "messages_json": json.dumps(msgs)})
    assert prompt.count("<|im_start|>user") == 2 and completion == "4<|im_end|>\n"


def test_tokenizer_without_template_is_a_clear_error(tok):
    tok.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        ChatFormatter(tok, PROMPT_DEFAULT)


def test_slow_path_is_used_when_the_fast_path_would_differ(tok):
    # a template that upper-cases content cannot be compiled into literal pieces
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | upper }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    fmt = ChatFormatter(tok, PROMPT_DEFAULT)
    fmt.verify_fast_path([ROW])
    assert not fmt.fast
    assert fmt.render(ROW)[1] == "SELECT COUNT(*) FROM T;</s>"
