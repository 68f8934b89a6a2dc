"""Prepare the bundled dataset with the real SmolLM2 tokenizer (the embedded default's data stage)."""
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from core import assets
from core.settings import REPO_ROOT
from pipeline import config
from pipeline.data import prepare

pytestmark = pytest.mark.integration


def test_prepare_bundled_with_smollm2(home):
    cfg = config.load(REPO_ROOT / "configs" / "smollm2-cpu.yaml")
    res = prepare.run(cfg)
    rep = res.report
    assert rep["fast_template"] is True
    assert res.eval_rows == 60 and rep["rows_in"] == 20_060
    # The bundled schemas are long (a few dozen rows run past 1024 SmolLM2 tokens): those are the only drops,
    # each is counted, and they stay a sliver of the data.
    too_long = rep["dropped"]["too_long"]
    assert sum(rep["dropped"].values()) == too_long < 200
    assert res.train_rows + too_long == 20_000
    assert rep["sources"]["bundled:train"]["examples"].get("too_long", []) or too_long == 0
    assert 100 < rep["tokens"]["mean"] < cfg.data.max_seq_len
    tok = AutoTokenizer.from_pretrained(assets.resolve("embedded:smollm2-135m-instruct"))
    row = pq.read_table(res.out_dir / "train.parquet").slice(0, 1).to_pylist()[0]
    text = tok.decode(row["input_ids"])
    assert text.startswith("<|im_start|>system\nYou are a text-to-SQL assistant")
    assert tok.decode(row["input_ids"][row["prompt_length"]:]) == row["sql"] + "<|im_end|>\n"
    assert (res.out_dir / "lengths.png").stat().st_size > 5_000
