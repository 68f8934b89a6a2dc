"""The prompt contract: what the served model sees is, token for token, what it was trained on.

Two real fine-tunes of the embedded SmolLM2 (a few steps each) with a system prompt of their own: one trained
with the sample rows in the prompt, one without. For a training row of each, the ids of the training prompt
(the prepared Parquet's input_ids up to prompt_length) must equal the ids the real vLLM server reports it
used (`return_token_ids`) when the playground's client asks the same question, with the sample rows given
for execution. Checked for the adapters served by name (LoRA, one vLLM), a merged export and a quantized
export (FP8_DYNAMIC), each served by vLLM behind vllm-router. The second model's prompt must not contain its
sample rows, and neither may use the platform's default system prompt.
"""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from core.modelinfo import read_card
from pipeline import config, runs
from pipeline.data import prepare
from pipeline.export import stage as export
from pipeline.train import stage as train
from serving import launch
from serving.config import DeploymentError, load_serve_config
from serving.plan import free_ports
from serving.text_to_sql import TextToSql, tokenizer_for
from sql.prompt import PROMPT_DEFAULT, ChatFormatter, PromptContract
from tests.conftest import gretel_row, share_models, write_gretel

pytestmark = pytest.mark.integration
SYSTEM = "You write one SQLite query. Tables:\n{schema}\nAnswer with SQL only."


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os

    if not launch.SERVE_VENV.joinpath("python").exists():
        pytest.skip("serving environment missing: make setup-serve")
    tmp = tmp_path_factory.mktemp("contract")
    home = share_models(tmp / "home")
    old = os.environ.get("SQLGENIE_HOME")
    os.environ["SQLGENIE_HOME"] = str(home)
    data = write_gretel(tmp / "rows.parquet", [gretel_row(i) for i in range(24)])
    out = {}
    for name, rows_in_prompt in (("with-rows", True), ("schema-only", False)):
        cfg = config.load(None, [f"name={name}", f"data.sources=[{{path: '{data}'}}]", "data.eval_fraction=0",
                                 f"data.include_sample_rows={rows_in_prompt}", f"data.system_prompt={SYSTEM!r}",
                                 "data.max_seq_len=512", "train.max_steps=2", "train.batch_size=4", "train.save_steps=100",
                                 "train.threads=1", "train.lora.r=8", "train.lora.alpha=16"])
        res = train.run(cfg)
        table = pq.read_table(runs.prepared_dir(cfg, prepare.fingerprint(cfg)) / "train.parquet").to_pylist()
        out[name] = (cfg, res, table[0])
    yield out
    if old is None:
        os.environ.pop("SQLGENIE_HOME", None)
    else:
        os.environ["SQLGENIE_HOME"] = old


def _served(name: str, **over) -> None:
    base, router, metrics = free_ports(3)
    cfg = load_serve_config(None, [f"name={name}", f"base_port={base}", f"router_port={router}",
                                   f"metrics_port={metrics}", "max_model_len=1024", "warmup_requests=1",
                                   *[f"{k}={v}" for k, v in over.items()]])
    launch.up(cfg, progress=lambda *_: None)


def _check(deployment: str, model: str, row: dict) -> list[int]:
    t2s = TextToSql.for_deployment(deployment, model)
    gretel = gretel_row(int(row["id"]))
    schema, sample = gretel["sql_context"].split("; INSERT", 1)
    ans = t2s.ask(schema + ";", row["question"], sample_rows="INSERT" + sample, execute=True, max_tokens=1)
    want = row["input_ids"][: row["prompt_length"]]
    assert ans.prompt_ids == want, (model, t2s.tokenizer.decode(ans.prompt_ids), t2s.tokenizer.decode(want))
    assert ans.server_prompt_ids == want, f"{model}: the server saw other ids than training used"
    assert PROMPT_DEFAULT.split("{")[0][:40] not in ans.prompt_text and "You write one SQLite query" in ans.prompt_text
    return ans.prompt_ids


def test_adapters_served_by_name_see_their_training_prompt(trained):
    with_rows, schema_only = trained["with-rows"], trained["schema-only"]
    _served("lora", model="embedded:smollm2-135m-instruct",
            lora_adapters=f"[a={with_rows[1].adapter_dir},b={schema_only[1].adapter_dir}]")
    try:
        ids_a = _check("lora", "a", with_rows[2])
        ids_b = _check("lora", "b", schema_only[2])
        tok = TextToSql.for_deployment("lora", "a").tokenizer
        assert "INSERT INTO products" in tok.decode(ids_a)        # trained with the rows: they are in its prompt
        assert "INSERT" not in tok.decode(ids_b)                   # trained without: given for execution only
        _wide_schema_is_fitted(TextToSql.for_deployment("lora", "b"))
    finally:
        launch.down("lora")


def _wide_schema_is_fitted(t2s: TextToSql) -> None:
    """A schema wider than the model's context: the question's tables are kept, the rest named, and the real
    server takes the prompt (within max_model_len, with room for the answer)."""
    filler = "".join(f"CREATE TABLE archive_{i} (id INT PRIMARY KEY, " + ", ".join(f"field_{i}_{k} TEXT" for k in range(12))
                     + ");\n" for i in range(30))
    schema = filler + "CREATE TABLE volcanoes (volcano_id INT PRIMARY KEY, volcano_name TEXT, height_m INT);\n"
    t2s.max_model_len = 600
    whole = len(t2s.prompt(schema, "q")[1])
    assert whole > 600
    ans = t2s.ask(schema, "Which volcano is the highest?", max_tokens=64)
    assert "CREATE TABLE volcanoes" in ans.prompt_text and ans.schema_left_out
    assert "volcanoes" not in ans.schema_left_out and len(ans.schema_left_out) < 31
    assert ans.prompt_tokens + 64 <= 600 and ans.server_prompt_ids == ans.prompt_ids


@pytest.mark.parametrize("fmt", ["merged", "fp8"])
def test_exports_carry_the_contract_to_serving(trained, fmt):
    cfg, res, row = trained["with-rows"]
    cfg = config.load(None, [f"name={cfg.name}", f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]",
                             "data.eval_fraction=0", "data.include_sample_rows=true", f"data.system_prompt={SYSTEM!r}",
                             "data.max_seq_len=512", "train.max_steps=2", "train.batch_size=4", "train.lora.r=8",
                             "train.lora.alpha=16", "train.threads=1", "train.save_steps=100",
                             f"export.formats=[{fmt}]", f"export.adapter={res.run_id}", "export.verify=false"])
    out = export.run(cfg, progress=lambda *_: None)
    folder = next(i["path"] for i in out.items if i["format"] == fmt)
    try:
        _served(f"x{fmt}", model=folder)
    except DeploymentError as e:
        # a CPU whose FP8 products take ~1 s each (measured by the launcher) cannot serve an FP8 export: the refusal
        # must say so and name the fix; the export must still carry the contract that renders training's ids
        assert fmt == "fp8" and "FP8 export" in str(e) and "merged export" in str(e), e
        gretel = gretel_row(int(row["id"]))
        schema, sample = gretel["sql_context"].split("; INSERT", 1)
        fmt_ = ChatFormatter.for_contract(tokenizer_for(folder), PromptContract.from_card(read_card(folder)))
        ids = fmt_.prompt_ids({"schema": schema + ";", "sample_data": "INSERT" + sample, "question": row["question"]})
        assert ids == row["input_ids"][: row["prompt_length"]]
        return
    try:
        _check(f"x{fmt}", f"x{fmt}", row)
    finally:
        launch.down(f"x{fmt}")
