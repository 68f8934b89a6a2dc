"""Typed settings machinery shared by every layer: dataclasses are the single source of truth.

A config class is a dataclass whose fields are made with `opt(default, help, ge=.., le=.., ...)`. Loading
goes defaults <- YAML <- dotted overrides (`a.b=1`, `data.sources.0.path=x`, `c=[x,y]`), and `build()`
checks every field in one pass: unknown keys, types, allowed values and numeric ranges; every problem is
collected into one ConfigError. `explain()` and `form_fields()` describe the fields for `--explain` and
the dashboard's forms.

    from core.settings import opt, build, load_tree
    cfg = build(MyConfig, load_tree("x.yaml", ["a.b=2"], MyConfig))

Config files are read with read_config(): UTF-8 (a byte-order mark is dropped), UTF-16/32 with a byte-order
mark; anything else (UTF-16 without a mark, a binary file, bytes that are not UTF-8) is one ConfigError line
that names the file and how to fix it. decode_text() is the same decoding for data files.

Also home(): where sqlgenie keeps models, prepared data, runs, deployments and the job store.
"""
from __future__ import annotations

import codecs
import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from core import envs
from core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
_RANGE_KEYS = ("gt", "ge", "lt", "le")


def home() -> Path:
    """Where sqlgenie keeps models, prepared data, runs, deployments and the job store (git-ignored)."""
    return Path(envs.text("SQLGENIE_HOME") or REPO_ROOT / ".sqlgenie").resolve()


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its documentation and bounds attached (gt/ge/lt/le for numbers, checked by
    build(); shown by `config --explain` and the UI forms)."""
    meta = {"help": help, **kw}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


# ------------------------------------------------------------------------------------ type helpers
def is_optional(tp: Any) -> tuple[bool, Any]:
    """(True, T) for Optional[T], else (False, tp)."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _range_problem(value: Any, meta: dict, where: str) -> str | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    words = {"gt": ("> ", lambda v, b: v > b), "ge": (">= ", lambda v, b: v >= b),
             "lt": ("< ", lambda v, b: v < b), "le": ("<= ", lambda v, b: v <= b)}
    failed = [k for k in _RANGE_KEYS if k in meta and not words[k][1](value, meta[k])]
    if not failed:
        return None
    bounds = " and ".join(words[k][0] + f"{meta[k]:g}" for k in _RANGE_KEYS if k in meta)
    return f"{where}: {value!r} must be {bounds}"


def _coerce(value: Any, tp: Any, where: str, problems: list[str], meta: dict | None = None) -> Any:
    optional, inner = is_optional(tp)
    if value is None:
        if not optional:
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
        if isinstance(value, bool) and {"on", "off"} <= set(allowed):   # YAML reads on/off as true/false
            value = "on" if value else "off"
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
            problems.append(f"{where}: expected {'a whole number' if tp is int else 'a number'}, got {value!r}")
            return tp()
        if tp is int and isinstance(value, float) and value != out:
            problems.append(f"{where}: expected a whole number, got {value!r}")
        bad = _range_problem(out, meta or {}, where)
        if bad:
            problems.append(bad)
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            problems.append(f"{where}: expected text, got {type(value).__name__}")
            return ""
        return str(value)
    return value


def _build(cls: type, data: dict, where: str, problems: list[str]) -> Any:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = where + "." if where else ""
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {prefix}{near[0]}? " if near else ""
            problems.append(f"{prefix}{key}: unknown field ({hint}known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name, problems, dict(f.metadata))
        elif f.default is not dataclasses.MISSING:
            bad = _range_problem(f.default, dict(f.metadata), prefix + name)
            if bad:  # a default that breaks its own bound is a bug, but say it like any other problem
                problems.append(bad)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


# ------------------------------------------------------------------------------------ trees
def _parse_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def apply_override(tree: dict, dotted: str, value: Any) -> str | None:
    """Set `a.b.0.c` in a nested dict/list tree (list items by index); a problem line, or None."""
    keys = dotted.split(".")
    node: Any = tree

    def no_item(i: int) -> str:
        where, n = ".".join(keys[:i]) or "the list", len(node)
        return (f"override {dotted}: {where} has {n} item(s) (0..{n - 1}); no item {keys[i]} (to add items, give "
                f"the whole list: {where}=[...])" if n else f"override {dotted}: {where} is empty; no item {keys[i]}")

    for i, k in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                return no_item(i)
            node = node[int(k)]
            if not isinstance(node, (dict, list)):
                return f"override {dotted}: {'.'.join(keys[:i + 1])} is not a section"
            continue
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, (dict, list)):
            return f"override {dotted}: {'.'.join(keys[:i + 1])} is not a section"
        node = nxt
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            return no_item(len(keys) - 1)
        node[int(last)] = value
    else:
        node[last] = value
    return None


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _yaml_problem(e: yaml.YAMLError, source: str) -> str:
    """One line for a YAML error: the file, line and column, what is wrong, and the fix where it is known."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    what = " ".join(what.split())
    if "'\\t'" in what:
        return f"{source}: not valid YAML{where}: a tab; YAML indents with spaces only (replace the tabs with spaces)"
    return f"{source}: not valid YAML{where}: {what}"


def parse_yaml(text: str, source: str) -> dict:
    """A YAML mapping (empty text -> {}); anything else is one ConfigError naming `source`."""
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([_yaml_problem(e, source)], source) from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        kind = {list: "a list", str: "plain text"}.get(type(tree), f"a {type(tree).__name__}")
        raise ConfigError([f"{source}: the top level is {kind}; a config is a mapping of settings "
                           "(`section:` lines with indented `key: value` lines under them)"], source)
    return tree


# ------------------------------------------------------------------------------------ files
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _utf16_without_bom(data: bytes) -> bool:
    """Mostly-ASCII text saved as UTF-16 without a byte-order mark: every other byte is a NUL."""
    head = data[:4096]
    if len(head) < 4:
        return False
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) > 0.4 * (len(head) // 2) and min(even, odd) < 0.05 * (len(head) // 2)


def decode_text(data: bytes, source: str, lenient: bool = False) -> str:
    """The text of a file's bytes: UTF-8 (a byte-order mark is dropped), or UTF-16 / UTF-32 when a byte-order mark
    says so. Raises ValueError with one line naming `source` and the fix when the bytes are not such text:
    UTF-16 without a mark, a binary file, or (unless `lenient`) bytes that are not UTF-8. With `lenient`,
    invalid UTF-8 bytes become lone surrogates (U+DC80..U+DCFF), for data files that count bad rows one by one."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as e:
                name = codec.replace("-sig", "").upper()
                raise ValueError(f"{source} starts with a {name} byte-order mark but byte {e.start} is not {name}: "
                                 "save it as UTF-8") from None
    if _utf16_without_bom(data):
        raise ValueError(f"{source} is UTF-16 (without a byte-order mark): save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if lenient:
            return data.decode("utf-8", errors="surrogateescape")
        text = None
        bad = e.start
    else:
        bad = text.find("\x00")
        if bad < 0 or lenient:
            return text
    line = (data[:bad].count(b"\n") if text is None else text[:bad].count("\n")) + 1
    if text is not None or b"\x00" in data[:65536] or sum(b < 9 or 13 < b < 32 for b in data[:4096]) > 0.02 * min(
            len(data), 4096):
        raise ValueError(f"{source} is not a text file (binary data at line {line}): save it as UTF-8 text")
    raise ValueError(f"{source}: line {line} has a byte that is not UTF-8 (0x{data[bad]:02x}): save the file as UTF-8")


def read_config(path: str | Path) -> dict:
    """A YAML config file as a mapping: one ConfigError naming the file when it is missing, empty, not UTF-8
    text (UTF-16 / UTF-32 with a byte-order mark are read), not YAML, or not a mapping."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError([f"{path}: no such file (recipes live in configs/)"], source)
    try:
        text = decode_text(path.read_bytes(), source)
    except ValueError as e:
        raise ConfigError([str(e)], source) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot be read: {e.strerror or e}"], source) from None
    if not text.strip():
        raise ConfigError([f"{path} is empty: write the settings that differ from the defaults (at least "
                           f"`name: {path.stem}`), or leave out the config file to use the defaults"], source)
    return parse_yaml(text, source)


def apply_overrides(cls: type, tree: dict, overrides: list[str] | None) -> tuple[dict, list[str]]:
    """(defaults <- tree <- `key=value` overrides, the problem of each override that could not be applied): every
    override is tried, so its problems can join the field checks of the same command."""
    full = merge(to_dict(cls()), tree)
    problems = []
    for item in overrides or []:
        if "=" not in item:
            problems.append(f"override '{item}': expected key=value (e.g. data.max_seq_len=512)")
            continue
        key, raw = item.split("=", 1)
        bad = apply_override(full, key.strip(), _parse_scalar(raw))
        if bad:
            problems.append(bad)
    return full, problems


def with_overrides(cls: type, tree: dict, overrides: list[str] | None, source: str) -> dict:
    """defaults <- tree <- `key=value` overrides (list items addressable by index); bad overrides are one
    ConfigError (apply_overrides() returns them instead, to report them with the field checks)."""
    full, problems = apply_overrides(cls, tree, overrides)
    if problems:
        raise ConfigError(problems, source)
    return full


def collect(cls: type, tree: dict) -> tuple[Any, list[str]]:
    """(object, problems): the object is built even when some fields are wrong (they keep a neutral value),
    so rule checks can run in the same pass."""
    problems: list[str] = []
    return _build(cls, tree, "", problems), problems


def build(cls: type, tree: dict, source: str = "config", extra_problems: list[str] | None = None) -> Any:
    """A config dataclass from a tree; every problem (plus `extra_problems`) in one ConfigError."""
    problems: list[str] = list(extra_problems or [])
    cfg = _build(cls, tree, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def dump(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False, width=110)


# ------------------------------------------------------------------------------------ reference
@dataclass
class FieldInfo:
    """One leaf field, for `--explain` and generated forms."""
    name: str            # dotted
    type: str            # bool | int | float | str | choice | list | list[dict]
    default: Any
    help: str
    choices: tuple = ()
    optional: bool = False
    bounds: dict = dataclasses.field(default_factory=dict)


def form_fields(cls: type, prefix: str = "") -> list[FieldInfo]:
    """Every leaf field of a config class (nested dataclasses flattened to dotted names)."""
    out = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        optional, inner = is_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            out += form_fields(inner, name + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        origin = get_origin(inner)
        if origin is Literal:
            kind, choices = "choice", get_args(inner)
        elif origin is list:
            item = get_args(inner)[0]
            kind, choices = ("list[dict]" if dataclasses.is_dataclass(item) else "list"), ()
            if default and dataclasses.is_dataclass(default[0]):
                default = [to_dict(d) for d in default]
        else:
            kind, choices = getattr(inner, "__name__", str(inner)), ()
        out.append(FieldInfo(name, kind, default, f.metadata.get("help", ""), choices, optional,
                             {k: f.metadata[k] for k in _RANGE_KEYS if k in f.metadata}))
    return out


def explain(cls: type) -> list[tuple[str, str, str]]:
    """(dotted name, default, help) for every field: the reference for recipes and UI forms."""
    return [(f.name, repr(f.default), f.help) for f in form_fields(cls)]
