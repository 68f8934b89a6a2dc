"""The layers import one way only: app -> pipeline -> serving -> sql -> core (DESIGN.md).

Every module's imports are read from its source (AST, nothing is imported): an import of a project package
above the module's own layer fails the test, naming the file and line. Project modules are imported at the
top of a file; a function-local one must say why on its line (`# heavy: <what it pulls in>`).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"core": 0, "sql": 1, "serving": 2, "pipeline": 3, "app": 4}


def _modules():
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield pkg, path


def _project_imports(tree: ast.AST):
    """(node, imported top-level package, inside a function?) for every import of a project package."""
    def walk(node, in_func):
        for child in ast.iter_child_nodes(node):
            func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    top = a.name.split(".")[0]
                    if top in LAYERS:
                        yield child, top, func
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                top = child.module.split(".")[0]
                if top in LAYERS:
                    yield child, top, func
            yield from walk(child, func)
    yield from walk(tree, False)


def test_imports_point_down_only():
    bad = []
    for pkg, path in _modules():
        for node, top, _ in _project_imports(ast.parse(path.read_text())):
            if LAYERS[top] > LAYERS[pkg]:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} ({pkg}) imports {top}")
    assert not bad, "imports pointing up a layer:\n" + "\n".join(bad)


def test_function_local_project_imports_say_why():
    bad = []
    for _, path in _modules():
        lines = path.read_text().splitlines()
        for node, top, in_func in _project_imports(ast.parse(path.read_text())):
            if in_func and "# heavy:" not in lines[node.lineno - 1] and "# heavy:" not in lines[node.end_lineno - 1]:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bad, "function-local project imports without a `# heavy:` reason:\n" + "\n".join(bad)


@pytest.mark.parametrize("upper,lower", [("pipeline", "serving"), ("pipeline", "sql"), ("serving", "core")])
def test_the_rule_catches_an_upward_import(tmp_path, upper, lower):
    """The checker itself: a lower-layer module that imports an upper one is reported."""
    tree = ast.parse(f"import os\nfrom {upper}.x import y\n")
    found = [(top, LAYERS[top] > LAYERS[lower]) for _, top, _ in _project_imports(tree)]
    assert found == [(upper, True)]
