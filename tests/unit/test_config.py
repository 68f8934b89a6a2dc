import codecs

import pytest

from core.errors import ConfigError
from core.settings import REPO_ROOT
from pipeline import config


def test_defaults_validate():
    cfg = config.load()
    assert cfg.data.max_seq_len == 1024
    assert cfg.data.sources[0].path == "bundled:train"


def test_reference_recipe_has_the_reference_hyperparameters():
    cfg = config.load(REPO_ROOT / "configs" / "llama31-8b-qlora.yaml")
    t = cfg.train
    assert (t.lora.r, t.lora.alpha, t.lora.dropout) == (128, 128, 0.0)
    assert t.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (cfg.data.max_seq_len, t.batch_size, t.grad_accum) == (1024, 128, 2)
    assert (t.learning_rate, t.warmup_ratio, t.epochs, t.save_steps) == (8e-4, 0.05, 1.0, 200)
    assert t.precision == "4bit"


def test_every_recipe_in_configs_loads():
    for path in (REPO_ROOT / "configs").glob("*.yaml"):
        assert config.load(path).name == path.stem


def test_dotted_overrides_are_typed():
    cfg = config.load(None, ["data.max_seq_len=512", "train.lora.r=8", "train.liger=false", "name=x"])
    assert cfg.data.max_seq_len == 512 and cfg.train.lora.r == 8 and cfg.train.liger is False and cfg.name == "x"


def test_on_off_choices_take_yaml_booleans():
    # YAML reads `off` as false: train.gradient_checkpointing=off was refused as "False is not one of auto, on, off"
    assert config.load(None, ["train.gradient_checkpointing=off"]).train.gradient_checkpointing == "off"
    assert config.load(None, ["train.gradient_checkpointing=on"]).train.gradient_checkpointing == "on"
    with pytest.raises(ConfigError, match="train.precision: False is not one of"):   # no on/off there: still refused
        config.load(None, ["train.precision=off"])


def test_override_of_a_list_of_sources(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.jsonl"
    a.touch(), b.touch()
    cfg = config.load(None, [f"data.sources=[{{path: {a}, weight: 2}}, {{path: {b}}}]"])
    assert [(s.path, s.weight) for s in cfg.data.sources] == [(str(a), 2.0), (str(b), 1.0)]


def test_override_of_one_list_item_as_the_readme_shows(tmp_path):
    """`data.sources.0.path=...` (the README's command) sets the path of the first source."""
    f = tmp_path / "gretel.parquet"
    f.touch()
    cfg = config.load(REPO_ROOT / "configs" / "llama31-8b-qlora.yaml", [f"data.sources.0.path={f}"])
    assert cfg.data.sources[0].path == str(f) and cfg.data.sources[0].weight == 1.0
    with pytest.raises(ConfigError, match="has 1 item"):
        config.load(None, [f"data.sources.3.path={f}"])


def test_ten_problems_of_every_kind_come_in_one_error(tmp_path):
    """Types, allowed values, ranges, cross-field rules and paths: all ten in one ConfigError, before
    anything is loaded."""
    with pytest.raises(ConfigError) as e:
        config.load(None, ["train.lora.dropout=1.5", "train.threads=-2", "data.sources.0.weight=-1",
                           "data.num_rows=-5", "train.max_steps=-3", "train.epochs=0", "train.backend=tensorflow",
                           "data.max_seq_len=abc", "data.eval_sources=[{path: /no/such/file.jsonl}]",
                           "model.name_or_path=/no/such/model"], need_model=True)
    p = e.value.problems
    assert len(p) == 10, p
    for part in ("train.lora.dropout: 1.5 must be >= 0 and < 1", "train.threads: -2 must be >= 1",
                 "data.sources[0].weight: -1.0 must be >= 0", "data.num_rows: -5 must be >= 1",
                 "train.max_steps: -3 must be >= -1", "train.epochs: 0.0 must be > 0", "train.backend",
                 "data.max_seq_len", "/no/such/file.jsonl does not exist", "/no/such/model is not a folder"):
        assert any(part in x for x in p), (part, p)


def test_the_model_folder_is_checked_only_where_the_model_is_loaded():
    assert config.load(REPO_ROOT / "configs" / "llama31-8b-qlora.yaml").name == "llama31-8b-qlora"  # prepare
    with pytest.raises(ConfigError, match="meta-llama/Llama-3.1-8B-Instruct is not a folder with config.json"):
        config.load(REPO_ROOT / "configs" / "llama31-8b-qlora.yaml", need_model=True)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        config.load(None, ["data.max_seq_len=abc", "train.lr=1", "train.backend=tensorflow", "data.bogus=1"])
    msg = str(e.value)
    assert len(e.value.problems) == 4
    for part in ("data.max_seq_len", "train.lr: unknown field", "train.backend", "data.bogus"):
        assert part in msg


def test_semantic_validation_collects_all():
    with pytest.raises(ConfigError) as e:
        config.load(None, ["data.max_seq_len=8", "train.learning_rate=0", "train.micro_batch_size=3",
                           "data.system_prompt=no placeholder"])
    assert len(e.value.problems) == 4


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)


def test_explain_documents_every_leaf_field():
    rows = config.explain()
    names = {r[0] for r in rows}
    assert {"data.max_seq_len", "train.lora.r", "model.name_or_path"} <= names
    assert all(help_ for _, _, help_ in rows)


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        config.load(None, ["data.max_seq_len"])


RECIPE = "name: enc\ndata:\n  max_seq_len: 512   # caf\u00e9\n"


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors save UTF-16 with a BOM (a traceback before) or UTF-8 with one: the BOM tells, so the file is
    read as meant."""
    path = tmp_path / "x.yaml"
    for data in (RECIPE.encode("utf-16"), codecs.BOM_UTF16_BE + RECIPE.encode("utf-16-be"), RECIPE.encode("utf-32"),
                 RECIPE.encode("utf-8-sig")):
        path.write_bytes(data)
        cfg = config.load(path)
        assert cfg.name == "enc" and cfg.data.max_seq_len == 512, data[:4]


@pytest.mark.parametrize("content, says", [
    (RECIPE.encode("utf-16-le"), "x.yaml is UTF-16 (without a byte-order mark): save it as UTF-8"),
    (bytes(range(256)) * 4, "x.yaml is not a text file"),
    ("name: caf\u00e9\n".encode("latin-1"), "x.yaml: line 1 has a byte that is not UTF-8 (0xe9): save the file as UTF-8"),
    (b"", "x.yaml is empty"),
    (b"- a\n- b\n", "x.yaml: the top level is a list; a config is a mapping"),
    (b"name: x\ndata:\n\tmax_seq_len: 512\n", "x.yaml: not valid YAML at line 3, column 1: a tab; YAML indents with spaces"),
], ids=["utf16-without-bom", "binary", "latin1", "empty", "list", "tab"])
def test_a_config_file_that_is_not_a_yaml_mapping_is_one_line(tmp_path, content, says):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert len(e.value.problems) == 1 and "\n" not in e.value.problems[0], e.value.problems
    assert says in e.value.problems[0], e.value.problems


def test_a_misspelt_section_is_named_with_the_likely_one(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\ntrian:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="trian: unknown field \\(did you mean train\\?"):
        config.load(path)


def test_a_missing_list_index_is_reported_with_every_other_problem(tmp_path):
    """`data.sources.5.path=x` where there are 2 sources used to hide the other problems of the command."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.touch(), b.touch()
    with pytest.raises(ConfigError) as e:
        config.load(None, [f"data.sources=[{{path: {a}}}, {{path: {b}}}]", "data.sources.5.path=x",
                           "train.lora.dropout=1.5", "data.max_seq_len=abc", "train.backend=tensorflow",
                           "data.eval_sources.0.weight=2", "data.max_seq_len.x=1", "train.lora.target_modules.0.x=1"])
    p = e.value.problems
    assert len(p) == 7, p
    for part in ("override data.sources.5.path: data.sources has 2 item(s) (0..1); no item 5",
                 "override data.eval_sources.0.weight: data.eval_sources is empty; no item 0",
                 "override data.max_seq_len.x: data.max_seq_len is not a section",
                 "override train.lora.target_modules.0.x: train.lora.target_modules.0 is not a section",  # a traceback
                 "train.lora.dropout: 1.5 must be >= 0 and < 1", "data.max_seq_len: expected a whole number",
                 "train.backend: 'tensorflow' is not one of"):
        assert any(part in x for x in p), (part, p)


def test_the_schedule_and_the_dialect_are_checked_when_the_config_loads():
    """A typo in train.lr_scheduler failed only when the Trainer started; an unknown data.sql_dialect only when
    prepare transpiled the first row. Both are now one line each at load, naming the allowed values, and the
    schedule is a choice on the New-job form."""
    from core.settings import form_fields
    from pipeline.config import TrainConfig

    with pytest.raises(ConfigError) as e:
        config.load(None, ["train.lr_scheduler=cosin", "data.sql_dialect=klingon"])
    text = str(e.value)
    assert "train.lr_scheduler: 'cosin' is not one of linear, cosine" in text
    assert "data.sql_dialect: 'klingon' is not a dialect sqlglot knows" in text
    assert config.load(None, ["train.lr_scheduler=cosine", "data.sql_dialect=postgres"]).data.sql_dialect == "postgres"
    (field,) = [f for f in form_fields(TrainConfig) if f.name == "lr_scheduler"]
    assert field.type == "choice" and "constant" in field.choices
