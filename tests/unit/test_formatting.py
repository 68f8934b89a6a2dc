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


SCHEMAS = ["CREATE TABLE users (id INT, name TEXT);", "CREATE TABLE orders (id INT, user_id INT, total REAL);"]


def _recording(fmt):
    seen: list[str] = []
    encode = fmt.encode

    def rec(text):
        seen.append(text)
        return encode(text)
    fmt.encode = rec
    return seen


@pytest.mark.parametrize("template", ["chatml", "llama-3.1"])
def test_prompt_ids_encode_a_schema_once_and_equal_the_whole_prompt(tok, template):
    if template == "llama-3.1":
        tok.chat_template = chat_template_text("llama-3.1")
        tok.bos_token = "<|endoftext|>"
        tok.add_special_tokens({"additional_special_tokens": ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]})
    fmt = ChatFormatter(tok, PROMPT_DEFAULT, include_sample_rows=True)
    seen, known = _recording(fmt), set()
    for schema in SCHEMAS * 2:                         # a schema again after another one: still kept
        for q in ("How many?", "  Which ones, by name?  ", "{schema} and <|im_end|> typed in a question"):
            row = {"schema": schema, "question": q, "sample_data": "INSERT INTO t VALUES (1);"}
            seen.clear()
            text, ids = fmt.prompt_with_ids(row)
            assert text == fmt.prompt(row) and ids == tok(text, add_special_tokens=False).input_ids
            if schema in known:
                assert all(schema not in t for t in seen), "the schema was encoded again"
            known.add(schema)
    assert fmt.head_cache_ok and len(fmt._heads) == 2


def test_a_tokenizer_whose_pieces_differ_from_the_whole_encodes_whole_prompts(tmp_path):
    """Metaspace with prepend_scheme 'first' gives the first piece of a text a leading '▁': the tail of a prompt
    encoded alone differs from the same tail inside the prompt, so the head cache must switch itself off."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import CHATML

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    raw.train_from_iterator([SCHEMAS[0] + " How many users are there?\n"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>")
    tok.chat_template = CHATML
    fmt = ChatFormatter(tok, PROMPT_DEFAULT)
    assert fmt.head_cache_ok                           # not known until a prompt is tried
    for q in ("How many users?", "How many users are there?"):
        row = {"schema": SCHEMAS[0], "question": q}
        text, ids = fmt.prompt_with_ids(row)
        assert ids == tok(text, add_special_tokens=False).input_ids
    assert not fmt.head_cache_ok and not fmt._heads
