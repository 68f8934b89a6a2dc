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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (function-local imports too: a `# heavy:` import is
    still an arrow). `from a.b import c` points at a.b.c when that is a module, else at a.b."""
    names = {_module_name(path) for _, path in _modules()}
    graph: dict[str, set[str]] = {}
    for _, path in _modules():
        edges = graph.setdefault(_module_name(path), set())
        for node, _, _ in _project_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in names)
            else:
                for a in node.names:
                    target = f"{node.module}.{a.name}"
                    edges.add(target if target in names else node.module)
        edges.discard(_module_name(path))
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    """No two project modules import each other, directly or around a loop (function-local imports count: the
    kernels' old nf4_blocks <-> nf4_fp8 <-> nf4_kernel circle hid behind one)."""
    assert _circles(_import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


# ------------------------------------------------------------------------------------ the UI's one door
VIEW_DOOR = {"app.facade", "app.ui", "app.forms", "app.state"}    # what a dashboard page may import of the project


def _imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The project modules one import statement names: `from app import facade, ui` -> app.facade, app.ui (a
    name of a package may be a module); a relative import is resolved against `package` (the importer's)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in LAYERS]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    if base.split(".")[0] not in LAYERS:
        return []
    return [f"{base}.{a.name}" for a in node.names] if base == "app" else [base]


def _outside_the_door(source: str, package: str = "app.views") -> list[tuple[int, str]]:
    """(line, module) for every import of project code, relative ones included, that is neither app/facade.py
    nor an app helper (a name imported from one of them is fine: `from app.facade import Run`)."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _imported_modules(node, package):
                if not any(name == ok or name.startswith(ok + ".") for ok in VIEW_DOOR):
                    bad.append((node.lineno, name))
    return sorted(bad)


def test_dashboard_pages_import_the_project_only_through_the_facade():
    """app/views/*.py reach jobs, runs, deployments, configs and plans through app/facade.py (and the app
    helpers): no page imports pipeline, serving, sql or core, nor app.actions, itself."""
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in sorted((ROOT / "app" / "views").glob("*.py"))
           for line, name in _outside_the_door(path.read_text())]
    assert not bad, "dashboard pages importing around app/facade.py:\n" + "\n".join(bad)


def test_the_door_rule_catches_a_page_that_goes_around_the_facade():
    source = ("import json\nimport streamlit as st\nfrom app import facade as F\nfrom app import forms, state, ui\n"
              "from app.facade import Run, Status\nfrom pipeline import runs\nimport serving.launch\n"
              "from core.errors import SqlgenieError\nfrom app import actions\nfrom app.actions import try_run\n"
              "from ..actions import try_run\nfrom .. import facade\nfrom sql.prompt import PromptContract\n"
              "def f():\n    from pipeline.jobs import Status  # heavy: nothing\n")
    assert _outside_the_door(source) == [(6, "pipeline"), (7, "serving.launch"), (8, "core.errors"),
                                         (9, "app.actions"), (10, "app.actions"), (11, "app.actions"),
                                         (13, "sql.prompt"), (15, "pipeline.jobs")]


def _bench_problems(source: str) -> list[str]:
    """What a bench must not do to the product: import a private name, read or set a product module's private
    attribute, assign to a product module's attribute (patching it), or edit sys.path."""
    tree = ast.parse(source)
    product = set()                                   # names bound to product modules or objects
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] in LAYERS:
            for a in node.names:
                if a.name.startswith("_"):
                    out.append(f"{node.lineno}: imports the private {node.module}.{a.name}")
                product.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LAYERS:
                    product.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in product and node.attr.startswith("_") and not node.attr.startswith("__"):
                out.append(f"{node.lineno}: reads the private {node.value.id}.{node.attr}")
            if node.value.id in product and isinstance(node.ctx, ast.Store):
                out.append(f"{node.lineno}: patches {node.value.id}.{node.attr}")
            if node.value.id == "sys" and node.attr == "path":
                out.append(f"{node.lineno}: edits sys.path")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in product):
            out.append(f"{node.lineno}: patches {node.args[0].id} with setattr")
    return out


def test_benches_use_only_the_product_s_public_names():
    bad = [f"bench/{p.name}:{line}" for p in sorted((ROOT / "bench").glob("*.py"))
           for line in _bench_problems(p.read_text())]
    assert not bad, "benches reaching into the product:\n" + "\n".join(bad)


def test_the_bench_rule_catches_private_names_patches_and_path_edits():
    src = ("import sys\nfrom pipeline.train import kernels\nfrom pipeline.data.loaders import _rows\n"
           "sys.path.insert(0, '.')\nkernels.apply = None\nkernels._cache.clear()\nsetattr(kernels, 'x', 1)\n")
    found = _bench_problems(src)
    kinds = sorted(f.split(": ", 1)[1] for f in found)
    assert kinds == sorted(["imports the private pipeline.data.loaders._rows", "edits sys.path",
                            "patches kernels.apply", "reads the private kernels._cache",
                            "patches kernels with setattr"]), found
