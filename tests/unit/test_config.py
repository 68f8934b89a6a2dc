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
