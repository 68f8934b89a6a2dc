"""Environment variables: declared once (core/envs.py) with default and meaning, read only through it, bad
values named in one line, listed by `sqlgenie config --explain` (secrets never shown)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app import cli
from core import envs

ROOT = Path(__file__).resolve().parents[2]
PASS_THROUGH = {"PYTHONPATH"}      # not ours: extended for a child process, never interpreted


def _env_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, NAME) of os.environ.get("NAME"), os.getenv("NAME"), os.environ["NAME"] and "NAME" in os.environ."""
    out = []
    for node in ast.walk(tree):
        target, arg = None, None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            f = node.func
            if f.attr == "get" and isinstance(f.value, ast.Attribute) and f.value.attr == "environ":
                target, arg = f, node.args[0]
            elif f.attr == "getenv":
                target, arg = f, node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and \
                isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            target, arg = node, node.slice
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and isinstance(node.comparators[0], ast.Attribute) and node.comparators[0].attr == "environ":
            target, arg = node, node.left
        if target is not None:
            out.append((node.lineno, arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg)))
    return out


def test_the_product_reads_environment_variables_only_through_core_envs():
    stray = []
    for folder in ("app", "core", "pipeline", "serving", "sql"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "core" / "envs.py" or "vllm_plugins" in path.parts:
                continue
            for line, name in _env_reads(ast.parse(path.read_text(encoding="utf-8"))):
                if name not in PASS_THROUGH:
                    stray.append(f"{path.relative_to(ROOT)}:{line} reads {name}")
    assert not stray, "declare these in core/envs.py and read them with envs.text/port/integer:\n" + "\n".join(stray)


def test_unset_or_empty_gives_the_default_and_a_bad_port_is_named(monkeypatch):
    monkeypatch.delenv("DASHBOARD_PORT", raising=False)
    assert envs.port("DASHBOARD_PORT") == 8501
    monkeypatch.setenv("SQLGENIE_HOST", "")
    assert envs.text("SQLGENIE_HOST") == "127.0.0.1"
    monkeypatch.setenv("PLAYGROUND_PORT", "seventy")
    with pytest.raises(envs.EnvError, match=r"PLAYGROUND_PORT='seventy' is not a whole number"):
        envs.port("PLAYGROUND_PORT")
    monkeypatch.setenv("PLAYGROUND_PORT", "70000")
    with pytest.raises(envs.EnvError, match=r"PLAYGROUND_PORT=70000 is not a port"):
        envs.port("PLAYGROUND_PORT")
    with pytest.raises(KeyError):
        envs.text("SQLGENIE_NOT_DECLARED")


def test_config_explain_lists_every_variable_and_hides_secrets(monkeypatch, capsys):
    monkeypatch.setenv("SQLGENIE_TOKEN", "s3cret-value")
    assert cli.main(["config", "--explain"]) in (0, None)
    out = capsys.readouterr().out
    for name in envs.VARS:
        assert f"\n{name} = " in out
    assert "s3cret-value" not in out and "now (set)" in out
