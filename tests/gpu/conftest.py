"""The gpu tier: skipped with the reason on a machine without CUDA (every test here is marked `gpu`).

    python -m pytest -m gpu tests/gpu -q      # on the GPU machine (bench/device.sh sets up what was carried)
"""
from __future__ import annotations

import pytest


def _cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device here: the gpu tier runs on the GPU machine (bash bench/device.sh run python3 -m pytest -m gpu tests/gpu)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = None
    checked = False
    for item in items:
        if "tests/gpu/" not in str(item.fspath).replace("\\", "/"):
            continue
        if not checked:
            reason, checked = _cuda_reason(), True
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def needs(module: str, why: str):
    """Skip (naming what is missing) when `module` cannot be imported here."""
    import importlib.util

    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} is not installed: {why}")


def fp8_gpu() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 9)
