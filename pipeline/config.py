"""Run configuration of the pipeline stages: typed dataclasses, YAML recipes as override sets.

A recipe (configs/*.yaml) holds only what differs from the defaults below. Loading goes
defaults <- YAML file <- dotted CLI overrides (`data.max_seq_len=512`, `data.sources.0.path=x.parquet`),
and every problem (unknown keys, types, allowed values, ranges, cross-field rules, missing paths) is
reported in one ConfigError before any heavy work starts. The machinery is core/settings.py.

    sqlgenie config -c configs/smollm2-cpu.yaml data.max_seq_len=512     # prints the resolved config
    sqlgenie config --explain                                             # every field, default, meaning
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from core import assets
from core.errors import ConfigError
from core.measured import FIGURES
from core.settings import apply_overrides, build, collect, opt, parse_yaml, read_config
from core.settings import dump as _dump
from core.settings import explain as _explain
from sql.prompt import PROMPT_DEFAULT, PromptContract


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
        "source's own size (1.0 = every row once, 0.5 = half, 2.0 = twice).", ge=0,
    )
    max_rows: Optional[int] = opt(None, "Read at most this many rows of the source (before mixing).", ge=1)
    name: Optional[str] = opt(None, "Label in reports; default: the file name.")


@dataclass
class DataConfig:
    sources: list[SourceConfig] = opt(
        [SourceConfig(path="bundled:train")], "Training sources, mixed by weight."
    )
    eval_sources: list[SourceConfig] = opt(
        [], "Held-out sources for eval loss; if empty, eval_fraction of the mixture is held out."
    )
    eval_fraction: float = opt(0.02, "Share of the mixture held out for eval loss when eval_sources is empty.",
                               ge=0, lt=1)
    num_rows: Optional[int] = opt(None, "Total rows of the mixture (weights become shares); None: see weight.", ge=1)
    system_prompt: str = opt(PROMPT_DEFAULT, "System prompt; {schema} is replaced by the table DDL (+ rows).")
    include_sample_rows: bool = opt(True, "Put the INSERT statements (sample rows) in the prompt too.")
    max_seq_len: int = opt(1024, "Longest prompt+completion in tokens; longer rows are dropped (counted).", ge=32)
    sql_dialect: str = opt("", "sqlglot dialect of the gold SQL ('' = generic; the model card records sqlite then).")
    check_sql: bool = opt(True, "Drop rows whose gold SQL sqlglot cannot parse (or that hold no query).")
    seed: int = opt(42, "Seed for sampling, shuffling and the eval split.")
    output_dir: Optional[str] = opt(None, "Where prepared data goes; default: <home>/data/<run.name>-<fingerprint>.")


# ------------------------------------------------------------------------------------------- train
@dataclass
class LoraConfig:
    r: int = opt(16, "LoRA rank.", ge=1)
    alpha: int = opt(32, "LoRA alpha (scale = alpha / r).", ge=1)
    dropout: float = opt(0.0, "LoRA dropout.", ge=0, lt=1)
    target_modules: list[str] = opt(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Linear layers that get adapters.",
    )


@dataclass
class TrainConfig:
    backend: Literal["auto", "trl", "unsloth"] = opt(
        "auto", "auto: unsloth for 4-bit on CUDA when installed, else TRL SFTTrainer + PEFT."
    )
    precision: Literal["auto", "4bit", "bf16", "fp32", "fp8"] = opt(
        "auto", "auto: 4-bit QLoRA when 16-bit weights would not fit the memory budget, else fp8 on GPUs with FP8 "
                "tensor cores, else bf16 LoRA. fp8: frozen base GEMMs in FP8 (Ada/Hopper/Blackwell; TRL backend; "
                f"{FIGURES['train_fp8_vs_anchor']}).")
    qlora_fp8: bool = opt(True, "4-bit on GPUs with FP8 tensor cores: QLoRA's frozen products (forward, recompute, "
                                "input gradients) run in FP8 from the NF4 weights (" + FIGURES["train_nf4_fp8"] + "); false: "
                                "Unsloth's bf16 products throughout.")
    method: Literal["lora", "full"] = opt(
        "lora", "lora: adapters on train.lora.target_modules, the base frozen (the run's adapter/ folder); full: every "
                "weight trains, in fp32 (bf16 autocast where the device has it), on the trl backend, no 4bit/fp8; the "
                "run's model/ folder is then a whole model, evaluated like an adapter (--adapter RUN).")
    lora: LoraConfig = opt(LoraConfig(), "Adapter shape (train.method lora).")
    batch_size: int = opt(8, "Effective per-device batch before accumulation (rows per micro-step x micro-steps).",
                          ge=1)
    micro_batch_size: Optional[int] = opt(None, "Rows per forward pass; None: chosen to fit memory.", ge=1)
    max_memory_gib: Optional[float] = opt(
        None, "Most GPU memory the plan may use, in GiB (e.g. 13 to leave a 24 GB card room, or to share a GPU); "
              "None: 85% of the free memory.", gt=0)
    grad_accum: int = opt(1, "Gradient accumulation steps (effective batch = batch_size x grad_accum).", ge=1)
    learning_rate: float = opt(2e-4, "Peak learning rate.", gt=0, le=1)
    warmup_ratio: float = opt(0.05, "Share of steps spent warming up.", ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                          "inverse_sqrt"] = opt("linear", "Learning-rate schedule (transformers' names; those that "
                                                          "need no extra arguments).")
    epochs: float = opt(1.0, "Passes over the training mixture.", gt=0)
    max_steps: int = opt(-1, "Stop after this many optimizer steps (-1: epochs decide).", ge=-1)
    save_steps: int = opt(200, "Checkpoint every N optimizer steps.", ge=1)
    eval_steps: int = opt(200, "Holdout eval loss every N optimizer steps.", ge=1)
    logging_steps: int = opt(1, "Metrics line every N optimizer steps.", ge=1)
    packing: bool = opt(True, "Pack rows into max_seq_len without cross-example attention.")
    gradient_checkpointing: Literal["auto", "on", "off"] = opt("auto", "Recompute activations to save memory.")
    liger: bool = opt(True, "Liger fused kernels on CUDA.")
    resume: Optional[str] = opt(None, "Continue a run: `latest` (this config's newest run with a checkpoint), a run "
                                      "id, or a checkpoint folder. The run must have the same config, seed and data.")
    output_dir: Optional[str] = opt(None, "Folder under which this config's runs are created "
                                          "(default: <home>/runs/<name>); each run gets its own subfolder.")
    threads: Optional[int] = opt(None, "CPU threads for torch (None: all cores).", ge=1)
    seed: int = opt(42, "Training seed.")


# ------------------------------------------------------------------------------------------ export
EXPORT_FORMATS = ("merged", "gguf-f16", "gguf-bf16", "gguf-q8_0", "fp8", "nvfp4", "w4a16", "auto")


@dataclass
class ExportConfig:
    adapter: str = opt("latest", "What to export: `latest` (this config's newest trained run), a run id, or an "
                                 "adapter folder.")
    formats: list[str] = opt(
        ["merged", "gguf-q8_0"],
        "What to write: merged (bf16 safetensors), gguf-f16 / gguf-bf16 / gguf-q8_0 (llama.cpp, Ollama), "
        "fp8 (FP8_DYNAMIC), nvfp4, w4a16 (GPTQ), or auto (the quantized format the target GPU runs best).",
    )
    target_gpu: Optional[str] = opt(
        None, "Compute capability the quantized model is for, e.g. `9.0` (H100/H200), `10.0` (B200), `8.9` "
        "(L40S/4090); None: this machine's GPU 0 (CPU machines: W4A16, which runs everywhere).",
    )
    calibration_samples: int = opt(128, "SQL prompts (across complexity classes) for NVFP4 / W4A16 calibration.",
                                   ge=1, le=4096)
    kv_cache_fp8: bool = opt(False, "Also calibrate FP8 KV-cache scales (for vLLM --kv-cache-dtype fp8).")
    verify: bool = opt(True, "Check every output against its source (logits, top tokens) after writing it.")
    draft_head: bool = opt(False, "Also train an EAGLE draft head into merged/draft (needs `merged`; ~2 min for 20k "
                                  "rows on an H200, hours on a CPU: set fewer draft_rows there). The launcher serves "
                                  "it on GPUs: vLLM checks 1 proposed token per decode step (1.09x faster answers at "
                                  "batch 1 on an H200, no loss at 64 clients).")
    draft_rows: int = opt(20000, "Training rows the draft head learns from (the served model reads each once; 100 "
                                 "more are held out to measure it).", ge=16)
    output_dir: Optional[str] = opt(None, "Default: the run's export/ folder.")
    push_repo: Optional[str] = opt(None, "Hub repo id (`user/name`) to upload to; token from HF_TOKEN.")
    private: bool = opt(True, "Create the hub repo private.")


def _known_dialect(name: str) -> bool:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------- run
@dataclass
class RunConfig:
    name: str = opt("run", "Run name: the folder under <home>/runs and the label in the dashboard.")
    model: ModelConfig = opt(ModelConfig(), "Base model and tokenizer.")
    data: DataConfig = opt(DataConfig(), "Training data.")
    train: TrainConfig = opt(TrainConfig(), "Fine-tuning.")
    export: ExportConfig = opt(ExportConfig(), "Merge, GGUF and quantized exports.")

    def problems(self, need_model: bool = False) -> list[tuple[str, str]]:
        """(field, problem) for every cross-field rule and path that does not hold (the model folder too, for the
        stages that load the model: `prepare` needs only the tokenizer)."""
        out: list[tuple[str, str]] = []
        if not self.name.strip() or "/" in self.name:
            out.append(("name", f"name: {self.name!r} must be non-empty and without '/'"))
        if not self.data.sources:
            out.append(("data.sources", "data.sources: at least one source is needed"))
        for kind, sources in (("sources", self.data.sources), ("eval_sources", self.data.eval_sources)):
            for i, s in enumerate(sources):
                where = f"data.{kind}.{i}.path"
                if not s.path:
                    out.append((where, f"{where}: empty (a file, a Spider folder or bundled:train)"))
                elif not s.path.startswith("bundled:") and not Path(s.path).expanduser().exists():
                    out.append((where, f"{where}: {s.path} does not exist"))
        if self.data.sql_dialect and not _known_dialect(self.data.sql_dialect):
            out.append(("data.sql_dialect", f"data.sql_dialect: {self.data.sql_dialect!r} is not a dialect sqlglot "
                        "knows ('' for generic SQL; e.g. sqlite, postgres, mysql, duckdb, bigquery, snowflake, tsql)"))
        if "{schema}" not in self.data.system_prompt:
            out.append(("data.system_prompt", "data.system_prompt: must contain {schema}, where the table DDL goes"))
        m = self.model.name_or_path
        if need_model and not assets.is_embedded(m) and not (Path(m).expanduser() / "config.json").is_file():
            out.append(("model.name_or_path", f"model.name_or_path: {m} is not a folder with config.json (give a local "
                        "model folder or embedded:smollm2-135m-instruct; nothing is downloaded at run time)"))
        t = self.train
        if t.micro_batch_size is not None and t.batch_size % t.micro_batch_size:
            out.append(("train.micro_batch_size", f"train.micro_batch_size: {t.micro_batch_size} must divide "
                        f"train.batch_size ({t.batch_size})"))
        if not t.lora.target_modules:
            out.append(("train.lora.target_modules", "train.lora.target_modules: empty"))
        if t.max_steps == 0:
            out.append(("train.max_steps", "train.max_steps: 0 trains nothing (a positive number, or -1: epochs decide)"))
        if not self.export.formats:
            out.append(("export.formats", f"export.formats: empty (choose from {', '.join(EXPORT_FORMATS)})"))
        for f in self.export.formats:
            if f not in EXPORT_FORMATS:
                out.append(("export.formats", f"export.formats: {f!r} is not one of {', '.join(EXPORT_FORMATS)}"))
        if self.export.draft_head and "merged" not in self.export.formats:
            out.append(("export.draft_head", "export.draft_head: the draft head is trained for and stored in the "
                                             "merged model: add `merged` to export.formats"))
        return out

    def validate(self, need_model: bool = False) -> None:
        """Every problem (not the first) in one ConfigError. Once a config passed (at this level, unchanged since:
        its repr is kept), later stages of the same job do not check it again."""
        seen = self.__dict__.get("_validated")
        if seen and seen[1] == repr(self) and (seen[0] or not need_model):
            return
        problems = [p for _, p in self.problems(need_model)]
        if problems:
            raise ConfigError(problems, f"config '{self.name}'")
        self.__dict__["_validated"] = (need_model, repr(self))

    def contract(self) -> PromptContract:
        """The prompt contract this config trains a model to (written into its model card)."""
        return PromptContract(self.data.system_prompt, self.data.include_sample_rows,
                              self.data.sql_dialect or "sqlite", self.data.max_seq_len)


# ------------------------------------------------------------------------------------- loading
def from_tree(tree: dict, overrides: list[str] | None, source: str, validate: bool = True,
              need_model: bool = False) -> RunConfig:
    """defaults <- tree <- overrides; override, type/range and (with validate) rule/path problems together."""
    full, problems = apply_overrides(RunConfig, tree, overrides)
    cfg, typed = collect(RunConfig, full)
    problems += typed
    if validate:
        reported = {p.split(":", 1)[0].replace("[", ".").replace("]", "") for p in typed}
        problems += [msg for where, msg in cfg.problems(need_model) if not any(r.startswith(where) for r in reported)]
    if problems:
        raise ConfigError(problems, source)
    if validate:
        cfg.__dict__["_validated"] = (need_model, repr(cfg))
    return cfg


def load(path: str | Path | None = None, overrides: list[str] | None = None, validate: bool = True,
         need_model: bool = False) -> RunConfig:
    """Defaults <- YAML file <- dotted overrides; raises ConfigError listing every problem."""
    tree: dict = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        tree = read_config(path)   # UTF-8 (BOM or not), UTF-16/32 with a BOM; else one line naming the file
        tree.setdefault("name", path.stem)
    return from_tree(tree, overrides, source, validate, need_model)


def loads(text: str, source: str = "config", validate: bool = True, need_model: bool = False) -> RunConfig:
    """The same from YAML text (a job's config, a UI form)."""
    return from_tree(parse_yaml(text, source), None, source, validate, need_model)


def dump(cfg: RunConfig) -> str:
    return _dump(cfg)


def explain() -> list[tuple[str, str, str]]:
    return _explain(RunConfig)


__all__ = ["RunConfig", "ModelConfig", "DataConfig", "SourceConfig", "TrainConfig", "LoraConfig", "ExportConfig",
           "EXPORT_FORMATS", "load", "loads", "from_tree", "dump", "explain", "build"]
