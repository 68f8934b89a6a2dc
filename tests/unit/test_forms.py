"""Generated forms (app/forms.py): a preset or YAML loaded into a form is checked against the config first."""
import pytest
import streamlit as st

from app import forms
from core.errors import ConfigError
from serving.config import ServeConfig


def test_yaml_with_a_wrong_type_is_refused_and_the_form_keeps_its_values():
    # a checkbox would read `sometimes` as true: the value must never reach the widgets
    t = forms.tree("serve-test", ServeConfig, {"name": "kept"})
    with pytest.raises(ConfigError, match="(?s)the YAML view has 1 problem.*gpu_full_graphs: expected true/false, got 'sometimes'"):
        forms.replace("serve-test", ServeConfig, {"name": "new", "gpu_full_graphs": "sometimes"}, "the YAML view")
    assert st.session_state["tree:serve-test"] is t and t["name"] == "kept"
    forms.replace("serve-test", ServeConfig, {"name": "new", "gpu_full_graphs": True}, "the YAML view")
    got = st.session_state["tree:serve-test"]
    assert got["name"] == "new" and got["gpu_full_graphs"] is True
