"""Shared fixtures: a tiny trained BPE tokenizer with a ChatML template, small Gretel-format files."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    """A run stopped with SIGTERM (CI's timeout, `kill`) tears its fixtures down as Ctrl-C does: the consoles,
    replicas and databases the tests started are stopped instead of left running with their temporary homes."""
    signal.signal(signal.SIGTERM, _interrupted)


def until(cond, timeout: float, what: str, every: float = 0.5):
    """Poll `cond` until it returns something truthy (returned), or fail naming what was awaited."""
    end = time.time() + timeout
    while time.time() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def gretel_row(i: int, **over) -> dict:
    row = {
        "id": i, "domain": "retail", "domain_description": "shops", "sql_complexity": "basic SQL",
        "sql_complexity_description": "simple", "sql_task_type": "data retrieval",
        "sql_task_type_description": "fetch", "sql_prompt": f"How many products cost more than {i}?",
        "sql_context": "CREATE TABLE products (id INT, price INT); INSERT INTO products VALUES (1, 5), (2, 50);",
        "sql": f"SELECT COUNT(*) FROM products WHERE price > {i};", "sql_explanation": "counts",
    }
    row.update(over)
    return row


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A real (tiny) byte-level BPE tokenizer trained on SQL-ish text, ChatML template, saved to disk."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [gretel_row(i)["sql_context"] + gretel_row(i)["sql"] + gretel_row(i)["sql_prompt"] for i in range(50)]
    corpus += ["You are a text-to-SQL assistant. Answer the user's question with one SQL query for the database below."]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    out = tmp_path_factory.mktemp("tiny-tok")
    fast.save_pretrained(out)
    return out


def share_models(home: Path) -> Path:
    """A fresh SQLGENIE_HOME that reuses the embedded models the setup already built (no 30 s rebuild)."""
    home.mkdir(parents=True, exist_ok=True)
    built = Path(__file__).resolve().parents[1] / ".sqlgenie" / "models"
    if built.is_dir() and not (home / "models").exists():
        (home / "models").symlink_to(built)
    return home


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated SQLGENIE_HOME (prepared data, runs, deployments go here; the embedded models are shared)."""
    h = share_models(tmp_path / "home")
    monkeypatch.setenv("SQLGENIE_HOME", str(h))
    return h


def write_gretel(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".jsonl":
        import json

        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        import csv

        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def save_llama(tokenizer_dir: Path, out: Path, **shape) -> Path:
    """A random Llama of `shape` (hidden_size, intermediate_size, heads...) saved with the tokenizer of
    `tokenizer_dir` into `out` (seed 0)."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), num_hidden_layers=2, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True, **shape)
    LlamaForCausalLM(cfg).save_pretrained(out)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    """A tiny random Llama (head_dim 32) saved with the tiny tokenizer: trains in seconds on CPU."""
    return save_llama(tiny_tokenizer_dir, tmp_path_factory.mktemp("tiny-llama"), hidden_size=64,
                      intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32)


def train_cli(home: Path, args: list[str], kill_when: str | None = None, timeout: float = 300) -> None:
    """`python -m pipeline train ...` in a process (and session) of its own with SQLGENIE_HOME=home; SIGKILL it
    (its whole group) once a file matching the glob `kill_when` (under home) exists."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, SQLGENIE_HOME=str(home),
               PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", *args], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    if kill_when is None:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()[-2000:]
        return
    deadline = time.time() + timeout
    while not list(home.glob(kill_when)) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(home.glob(kill_when)), "the run never got there"


@contextlib.contextmanager
def home_env(home: Path):
    """SQLGENIE_HOME=home for the block (module-scoped fixtures cannot use monkeypatch), restored after."""
    old = os.environ.get("SQLGENIE_HOME")
    os.environ["SQLGENIE_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("SQLGENIE_HOME", None)
        else:
            os.environ["SQLGENIE_HOME"] = old


def tiny_train_overrides(model_dir: Path, data_file: Path, *extra: str) -> list[str]:
    return [f"model.name_or_path={model_dir}", f"data.sources=[{{path: '{data_file}'}}]", "data.eval_fraction=0",
            "data.max_seq_len=256", "train.backend=trl", "train.batch_size=4", "train.learning_rate=1e-2", "train.lr_scheduler=constant",
            "train.lora.r=8", "train.lora.alpha=16", "train.logging_steps=1", "train.save_steps=1000",
            "train.threads=1", *extra]
