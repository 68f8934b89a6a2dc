"""Typed run configuration: dataclasses are the single source of truth, YAML files are override sets.

A recipe (configs/*.yaml) holds only what differs from the defaults below. Loading goes
defaults <- YAML file <- dotted CLI overrides (`data.max_seq_len=512`), then `validate()` collects every
problem into one ConfigError before any heavy work starts.

    python -m pipeline config --config configs/smollm2-cpu.yaml data.max_seq_len=512   # prints the result
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

import yaml

from pipeline.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """Where sqlgenie keeps models, prepared data, runs and the job store (git-ignored)."""
    return Path(os.environ.get("SQLGENIE_HOME", REPO_ROOT / ".sqlgenie")).resolve()


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its documentation attached (shown by `config --explain` and the UI forms)."""
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: _copy(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


# --------------------------------------------------------------------------------------------- model
@dataclass
class ModelConfig:
    name_or_path: str = opt(
        "embedded:smollm2-135m-instruct",
        "Base model: a local folder with config.json + safetensors, or `embedded:<name>` for a model the "
        "setup command built (smollm2-135m-instruct).",
    )
    tokenizer: Optional[str] = opt(
        None,
        "Tokenizer folder (or `embedded:llama-3.1-tokenizer`); default: the model's own.",
    )
    chat_template: Optional[str] = opt(
        None, "Jinja chat template overriding the tokenizer's (a file path or `llama-3.1`)."
    )


# ---------------------------------------------------------------------------------------------- data
@dataclass
class SourceConfig:
    path: str = opt("", "File or folder: .parquet/.jsonl/.json/.csv, or a Spider folder; `bundled:train`.")
    format: Literal["auto", "gretel", "spider", "messages", "prompt_completion"] = opt(
        "auto", "Row layout; auto detects it from the columns."
    )
    weight: float = opt(
        1.0,
        "Share in the mixture. With data.num_rows set: relative weight; without: a multiplier on the "
        "source's own size (1.0 = every row once, 0.5 = half, 2.0 = twice).",
    )
    max_rows: Optional[int] = opt(None, "Read at most this many rows of the source (before mixing).")
    name: Optional[str] = opt(None, "Label in reports; default: the file name.")


PROMPT_DEFAULT = (
    "You are a text-to-SQL assistant. Answer the user's question with one SQL query for the database "
    "below. Reply with the SQL only.\n\n{schema}"
)


@dataclass
class DataConfig:
    sources: list[SourceConfig] = opt(
        [SourceConfig(path="bundled:train")], "Training sources, mixed by weight."
    )
    eval_sources: list[SourceConfig] = opt(
        [], "Held-out sources for eval loss; if empty, eval_fraction of the mixture is held out."
    )
    eval_fraction: float = opt(0.02, "Share of the mixture held out for eval loss when eval_sources is empty.")
    num_rows: Optional[int] = opt(None, "Total rows of the mixture (weights become shares); None: see weight.")
    system_prompt: str = opt(PROMPT_DEFAULT, "System prompt; {schema} is replaced by the table DDL (+ rows).")
    include_sample_rows: bool = opt(True, "Put the INSERT statements (sample rows) in the prompt too.")
    max_seq_len: int = opt(1024, "Longest prompt+completion in tokens; longer rows are dropped (counted).")
    sql_dialect: str = opt("", "sqlglot dialect used to check that gold SQL parses ('' = generic).")
    check_sql: bool = opt(True, "Drop rows whose gold SQL sqlglot cannot parse.")
    seed: int = opt(42, "Seed for sampling, shuffling and the eval split.")
    output_dir: Optional[str] = opt(None, "Where prepared data goes; default: <home>/data/<run.name>.")


# ------------------------------------------------------------------------------------------- train
@dataclass
class LoraConfig:
    r: int = opt(16, "LoRA rank.")
    alpha: int = opt(32, "LoRA alpha (scale = alpha / r).")
    dropout: float = opt(0.0, "LoRA dropout.")
    target_modules: list[str] = opt(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Linear layers that get adapters.",
    )


@dataclass
class TrainConfig:
    backend: Literal["auto", "trl", "unsloth"] = opt(
        "auto", "auto: unsloth on CUDA when installed, else TRL SFTTrainer + PEFT."
    )
    precision: Literal["auto", "4bit", "bf16", "fp32", "fp8"] = opt(
        "auto", "auto: 4-bit QLoRA when 16-bit weights would not fit the memory budget, else fp8 on GPUs with FP8 "
                "tensor cores, else bf16 LoRA. fp8: frozen base GEMMs in FP8 (Ada/Hopper/Blackwell; TRL backend; "
                "1.14x the fastest anchor on an H200).")
    lora: LoraConfig = opt(LoraConfig(), "Adapter shape.")
    batch_size: int = opt(8, "Effective per-device batch before accumulation (rows per micro-step x micro-steps).")
    micro_batch_size: Optional[int] = opt(None, "Rows per forward pass; None: chosen to fit memory.")
    max_memory_gib: Optional[float] = opt(
        None, "Most GPU memory the plan may use, in GiB (e.g. 13 to leave a 24 GB card room, or to share a GPU); "
              "None: 85% of the free memory.")
    grad_accum: int = opt(1, "Gradient accumulation steps (effective batch = batch_size x grad_accum).")
    learning_rate: float = opt(2e-4, "Peak learning rate.")
    warmup_ratio: float = opt(0.05, "Share of steps spent warming up.")
    lr_scheduler: str = opt("linear", "Learning-rate schedule (transformers name).")
    epochs: float = opt(1.0, "Passes over the training mixture.")
    max_steps: int = opt(-1, "Stop after this many optimizer steps (-1: epochs decide).")
    save_steps: int = opt(200, "Checkpoint every N optimizer steps.")
    eval_steps: int = opt(200, "Holdout eval loss every N optimizer steps.")
    logging_steps: int = opt(1, "Metrics line every N optimizer steps.")
    packing: bool = opt(True, "Pack rows into max_seq_len without cross-example attention.")
    gradient_checkpointing: Literal["auto", "on", "off"] = opt("auto", "Recompute activations to save memory.")
    liger: bool = opt(True, "Liger fused kernels on CUDA.")
    resume: Optional[str] = opt(None, "`latest` or a checkpoint folder to continue from.")
    output_dir: Optional[str] = opt(None, "Default: <home>/runs/<run.name>/train.")
    threads: Optional[int] = opt(None, "CPU threads for torch (None: all cores).")
    seed: int = opt(42, "Training seed.")


# ------------------------------------------------------------------------------------------ export
EXPORT_FORMATS = ("merged", "gguf-f16", "gguf-bf16", "gguf-q8_0", "fp8", "nvfp4", "w4a16", "auto")


@dataclass
class ExportConfig:
    adapter: str = opt("latest", "Adapter to export: `latest` (this run's trained adapter) or a folder.")
    formats: list[str] = opt(
        ["merged", "gguf-q8_0"],
        "What to write: merged (bf16 safetensors), gguf-f16 / gguf-bf16 / gguf-q8_0 (llama.cpp, Ollama), "
        "fp8 (FP8_DYNAMIC), nvfp4, w4a16 (GPTQ), or auto (the quantized format the target GPU runs best).",
    )
    target_gpu: Optional[str] = opt(
        None, "Compute capability the quantized model is for, e.g. `9.0` (H100/H200), `10.0` (B200), `8.9` "
        "(L40S/4090); None: this machine's GPU 0 (CPU machines: W4A16, which runs everywhere).",
    )
    calibration_samples: int = opt(128, "SQL prompts (across complexity classes) for NVFP4 / W4A16 calibration.")
    kv_cache_fp8: bool = opt(False, "Also calibrate FP8 KV-cache scales (for vLLM --kv-cache-dtype fp8).")
    verify: bool = opt(True, "Check every output against its source (logits, top tokens) after writing it.")
    output_dir: Optional[str] = opt(None, "Default: <home>/runs/<run.name>/export.")
    push_repo: Optional[str] = opt(None, "Hub repo id (`user/name`) to upload to; token from HF_TOKEN.")
    private: bool = opt(True, "Create the hub repo private.")


# --------------------------------------------------------------------------------------------- run
@dataclass
class RunConfig:
    name: str = opt("run", "Run name: the folder under <home>/runs and the label in the dashboard.")
    model: ModelConfig = opt(ModelConfig(), "Base model and tokenizer.")
    data: DataConfig = opt(DataConfig(), "Training data.")
    train: TrainConfig = opt(TrainConfig(), "Fine-tuning.")
    export: ExportConfig = opt(ExportConfig(), "Merge, GGUF and quantized exports.")

    def validate(self) -> None:
        """Collect every problem (not the first) and raise one ConfigError."""
        problems = _field_problems(self)
        if not self.data.sources:
            problems.append("data.sources: at least one source is needed")
        for i, s in enumerate(self.data.sources + self.data.eval_sources):
            if not s.path:
                problems.append(f"data source #{i + 1}: path is empty")
        if not 0 <= self.data.eval_fraction < 1:
            problems.append(f"data.eval_fraction: {self.data.eval_fraction} is not in [0, 1)")
        if self.data.max_seq_len < 32:
            problems.append(f"data.max_seq_len: {self.data.max_seq_len} is too small (at least 32)")
        if "{schema}" not in self.data.system_prompt:
            problems.append("data.system_prompt: must contain {schema}, where the table DDL goes")
        t = self.train
        for name in ("batch_size", "grad_accum", "save_steps", "eval_steps", "logging_steps"):
            if getattr(t, name) < 1:
                problems.append(f"train.{name}: {getattr(t, name)} must be >= 1")
        if t.micro_batch_size is not None and (t.micro_batch_size < 1 or t.batch_size % t.micro_batch_size):
            problems.append(
                f"train.micro_batch_size: {t.micro_batch_size} must divide train.batch_size ({t.batch_size})"
            )
        if t.learning_rate <= 0:
            problems.append(f"train.learning_rate: {t.learning_rate} must be > 0")
        if t.max_memory_gib is not None and t.max_memory_gib <= 0:
            problems.append(f"train.max_memory_gib: {t.max_memory_gib} must be > 0 GiB (or left out: 85% of free memory)")
        if not 0 <= t.warmup_ratio < 1:
            problems.append(f"train.warmup_ratio: {t.warmup_ratio} is not in [0, 1)")
        if t.lora.r < 1 or t.lora.alpha < 1:
            problems.append("train.lora: r and alpha must be >= 1")
        if not t.lora.target_modules:
            problems.append("train.lora.target_modules: empty")
        if not self.export.formats:
            problems.append(f"export.formats: empty (choose from {', '.join(EXPORT_FORMATS)})")
        for f in self.export.formats:
            if f not in EXPORT_FORMATS:
                problems.append(f"export.formats: {f!r} is not one of {', '.join(EXPORT_FORMATS)}")
        if not 1 <= self.export.calibration_samples <= 4096:
            problems.append(f"export.calibration_samples: {self.export.calibration_samples} is not in [1, 4096]")
        if problems:
            raise ConfigError(problems, f"config '{self.name}'")

    def data_dir(self) -> Path:
        return Path(self.data.output_dir) if self.data.output_dir else home() / "data" / self.name

    def run_dir(self) -> Path:
        return home() / "runs" / self.name


# ------------------------------------------------------------------------------------- (de)serialise
def _is_optional(tp: Any) -> tuple[bool, Any]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    optional, inner = _is_optional(tp)
    if value is None:
        if optional:
            return None
        problems.append(f"{where}: may not be empty")
        return None
    tp = inner
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping, got {type(value).__name__}")
            return tp()
        return _build(tp, value, where, problems)
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {type(value).__name__}")
            return []
        return [_coerce(v, item, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            problems.append(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        problems.append(f"{where}: expected true/false, got {value!r}")
        return False
    if tp in (int, float):
        if isinstance(value, bool):
            problems.append(f"{where}: expected a number, got {value!r}")
            return tp()
        try:
            out = tp(value)
        except (TypeError, ValueError):
            problems.append(f"{where}: expected {tp.__name__}, got {value!r}")
            return tp()
        if tp is int and isinstance(value, float) and value != out:
            problems.append(f"{where}: expected a whole number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            problems.append(f"{where}: expected text, got {type(value).__name__}")
            return ""
        return str(value)
    return value


def _build(cls: type, data: dict, where: str, problems: list[str]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            problems.append(f"{where + '.' if where else ''}{key}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], f"{where + '.' if where else ''}{f.name}", problems)
    return cls(**kwargs)


def _field_problems(obj: Any) -> list[str]:
    """Re-check types of an object built in code (e.g. by the UI) by round-tripping it."""
    problems: list[str] = []
    _build(type(obj), to_dict(obj), "", problems)
    return problems


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError([f"override {dotted}: {k} is not a section"])
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> dict:
    """`a.b=1 c=[x,y]` -> nested dict; values are parsed as YAML scalars/lists."""
    tree: dict = {}
    bad = []
    for item in items:
        if "=" not in item:
            bad.append(f"override '{item}': expected key=value (e.g. data.max_seq_len=512)")
            continue
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(tree, key.strip(), value)
    if bad:
        raise ConfigError(bad, "command line")
    return tree


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_yaml(text: str, source: str) -> dict:
    """A YAML mapping (empty text -> {}); anything else is one ConfigError naming `source`."""
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"{source}: not valid YAML: {e}"], source) from None
    if not isinstance(tree, dict):
        raise ConfigError([f"{source}: top level must be a mapping"], source)
    return tree


def load(path: str | Path | None = None, overrides: list[str] | None = None, validate: bool = True) -> RunConfig:
    """Defaults <- YAML file <- dotted overrides; raises ConfigError listing every problem."""
    tree: dict = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError([f"{path}: no such file (recipes live in configs/)"], source)
        tree = parse_yaml(path.read_text(encoding="utf-8"), source)
        tree.setdefault("name", path.stem)
    return from_tree(tree, overrides, source, validate)


def loads(text: str, source: str = "config", validate: bool = True) -> RunConfig:
    """The same from YAML text (a job's config, a UI form)."""
    return from_tree(parse_yaml(text, source), None, source, validate)


def build(cls: type, tree: dict, source: str = "config") -> Any:
    """Any config dataclass (RunConfig, serving's ServeConfig) from a tree; every problem in one ConfigError."""
    problems: list[str] = []
    cfg = _build(cls, tree, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def from_tree(tree: dict, overrides: list[str] | None, source: str, validate: bool) -> RunConfig:
    cfg = build(RunConfig, _merge(tree, parse_overrides(overrides or [])), source)
    if validate:
        cfg.validate()
    return cfg


def dump(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, width=110)


def explain(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, help) for every field: the reference for recipes and UI forms."""
    rows = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        _, inner = _is_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            rows += explain(inner, name + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, list) and default and dataclasses.is_dataclass(default[0]):
            default = [to_dict(d) for d in default]
        rows.append((name, repr(default), f.metadata.get("help", "")))
    return rows
