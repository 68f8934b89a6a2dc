"""llm-compressor on a tiny real Llama: FP8_DYNAMIC and W4A16 (GPTQ, calibrated) outputs reload and agree."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fmt", ["fp8", "w4a16"])
def test_quantized_export_reloads(tiny_llama_dir, tmp_path, fmt):
    from pipeline.export.quantize import quantize, verify_quantized

    texts = [f"SELECT name FROM employees WHERE id = {i} ORDER BY name" for i in range(8)]
    out = quantize(tiny_llama_dir, tmp_path / fmt, fmt, texts if fmt == "w4a16" else None, max_seq_len=64)
    qcfg = json.loads((out / "config.json").read_text())["quantization_config"]
    group = qcfg["config_groups"]["group_0"]
    if fmt == "fp8":
        assert group["weights"]["type"] == "float" and group["weights"]["num_bits"] == 8
        assert group["input_activations"]["dynamic"] is True
    else:
        assert group["weights"]["num_bits"] == 4 and group["weights"]["group_size"] == 64  # 64-wide layers
    assert "lm_head" in qcfg["ignore"]
    v = verify_quantized(tiny_llama_dir, out, texts[:2])
    assert v["top1_agreement"] >= 0.7
