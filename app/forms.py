"""Forms generated from the config dataclasses (core.settings.form_fields): one widget per field, typed and
bounded as the dataclass says, backed by one config tree per form in the session.

    tree = forms.tree("train", RunConfig, preset_tree)       # the form's state (a full config tree)
    forms.field(tree, "train", RunConfig, "train.lora.r")      # one widget; its value goes back into the tree
    forms.replace(tree_key, new_tree)                          # a preset or applied YAML: every widget follows
    forms.minimal(tree, RunConfig)                             # only what differs from the defaults (job YAML)
"""
from __future__ import annotations

import copy

import streamlit as st
import yaml

from core.settings import FieldInfo, build, form_fields, merge, to_dict


def _infos(cls: type) -> dict[str, FieldInfo]:
    return {f.name: f for f in form_fields(cls)}


def get(tree: dict, dotted: str):
    node = tree
    for k in dotted.split("."):
        node = node.get(k) if isinstance(node, dict) else None
    return node


def put(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def tree(form: str, cls: type, initial: dict | None = None) -> dict:
    """The form's config tree (defaults <- initial), kept in the session across reruns."""
    key = f"tree:{form}"
    if key not in st.session_state:
        st.session_state[key] = merge(to_dict(cls()), copy.deepcopy(initial or {}))
    return st.session_state[key]


def replace(form: str, cls: type, new: dict, source: str = "the form") -> None:
    """Load a preset / YAML into the form: the tree is replaced and every widget re-reads it. A value of the wrong
    type is a ConfigError naming it, and the form keeps what it had: a widget would otherwise coerce it (a checkbox
    reads `sometimes` as true)."""
    full = merge(to_dict(cls()), copy.deepcopy(new))
    build(cls, full, source)
    st.session_state[f"tree:{form}"] = full
    for k in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"w:{form}:")]:
        del st.session_state[k]


def minimal(t: dict, cls: type) -> dict:
    """Only the values that differ from the defaults (what a recipe holds)."""
    def diff(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            out = {k: diff(v, b.get(k)) for k, v in a.items() if v != b.get(k)}
            return {k: v for k, v in out.items() if v != {}}
        return a
    return diff(t, to_dict(cls()))


def to_yaml(t: dict, cls: type) -> str:
    return yaml.safe_dump(minimal(t, cls), sort_keys=False, width=110) or "{}\n"


def _number(raw: str, kind: str):
    raw = (raw or "").strip()
    if raw == "":
        return None
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        return raw  # kept as typed: the config check names it


def field(t: dict, form: str, cls: type, name: str, label: str | None = None, options: list | None = None,
          container=st, help_extra: str = "") -> None:
    """One widget for the dotted field `name`; its value is written back into the tree."""
    info = _infos(cls)[name]
    key = f"w:{form}:{name}"
    value = get(t, name)
    label = label or name.split(".")[-1].replace("_", " ")
    help_ = info.help + (f" {help_extra}" if help_extra else "")
    if info.type == "bool":
        st.session_state.setdefault(key, bool(value))
        new = container.checkbox(label, key=key, help=help_)
    elif info.type == "choice":
        choices = list(info.choices)
        st.session_state.setdefault(key, value if value in choices else choices[0])
        new = container.selectbox(label, choices, key=key, help=help_)
    elif options is not None and info.type == "list":
        st.session_state.setdefault(key, [v for v in (value or []) if v in options])
        new = container.multiselect(label, options, key=key, help=help_)
    elif options is not None:
        opts = list(dict.fromkeys(([value] if value not in options and value is not None else []) + options))
        st.session_state.setdefault(key, value if value in opts else opts[0])
        new = container.selectbox(label, opts, key=key, help=help_)
    elif info.type in ("int", "float") and not info.optional:
        # No min_value/max_value: with one, a number typed out of range shows red in the browser but is never
        # sent, so the form would submit the last valid value while showing the typed one. Every value goes
        # through, and the config check below the form names the field and its range (Submit stays off).
        st.session_state.setdefault(key, value if isinstance(value, (int, float)) else 0)
        if info.type == "int":
            new = container.number_input(label, step=1, key=key, help=help_)
        else:
            new = container.number_input(label, format="%g", key=key, help=help_)
    elif info.type in ("int", "float"):
        st.session_state.setdefault(key, "" if value is None else str(value))
        new = _number(container.text_input(label, key=key, help=help_ + " (empty: not set)"), info.type)
    elif info.type == "list":
        st.session_state.setdefault(key, ", ".join(map(str, value or [])))
        new = [x.strip() for x in container.text_input(label + " (comma-separated)", key=key, help=help_).split(",")
               if x.strip()]
    else:
        st.session_state.setdefault(key, "" if value is None else str(value))
        raw = container.text_input(label, key=key, help=help_)
        new = None if (info.optional and raw.strip() == "") else raw
    put(t, name, new)


def sources(t: dict, form: str, name: str, container=st, help_: str = "") -> None:
    """A table editor for a list of data sources (path, weight, format, max_rows)."""
    import pandas as pd

    key = f"w:{form}:{name}"
    rows = get(t, name) or []
    frame = pd.DataFrame([{"path": r.get("path", ""), "weight": r.get("weight", 1.0), "format": r.get("format", "auto"),
                           "max_rows": r.get("max_rows")} for r in rows],
                         columns=["path", "weight", "format", "max_rows"])
    edited = container.data_editor(
        frame, key=key, num_rows="dynamic", width="stretch",
        column_config={"path": st.column_config.TextColumn("path", help="a file, a Spider folder, or bundled:train"),
                       "weight": st.column_config.NumberColumn("weight", min_value=0.0, format="%g"),
                       "format": st.column_config.SelectboxColumn(
                           "format", options=["auto", "gretel", "spider", "messages", "prompt_completion"]),
                       "max_rows": st.column_config.NumberColumn("max rows", min_value=1, step=1)})
    out = []
    for r in edited.to_dict("records"):
        if not str(r.get("path") or "").strip():
            continue
        item = {"path": str(r["path"]).strip(), "weight": float(r["weight"]) if r.get("weight") == r.get("weight")
                and r.get("weight") is not None else 1.0, "format": r.get("format") or "auto"}
        if r.get("max_rows") == r.get("max_rows") and r.get("max_rows") is not None:
            item["max_rows"] = int(r["max_rows"])
        out.append(item)
    put(t, name, out)
