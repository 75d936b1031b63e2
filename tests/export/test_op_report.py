"""op_report on real LiteRT files: layout TRANSPOSEs, QUANTIZE/DEQUANTIZE at the edges, XNNPACK coverage.

One small conv + depthwise-conv model is converted once with litert-torch (fp32, NCHW input); AI Edge Quantizer
then makes the dynamic-range, full-int8 and int16-activation variants from it (about a second each).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.export.op_report import op_report
from edgeprune.export.tflite_litert import _convert_float, _quiet_converter, set_tflite_io_dtype

SIZE = 16


class DepthwiseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
            nn.Conv2d(16, 32, 1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer as aeq
    from ai_edge_quantizer import recipe

    out = tmp_path_factory.mktemp("op_report")
    torch.manual_seed(0)
    model = DepthwiseNet().eval()
    with _quiet_converter():
        fp32 = _convert_float(model, torch.zeros(1, 3, SIZE, SIZE))
    paths = {"fp32": out / "fp32.tflite"}
    paths["fp32"].write_bytes(fp32)
    name = next(iter(Interpreter(model_content=fp32).get_signature_runner().get_input_details()))
    calib = [
        {name: torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(i)).numpy()}
        for i in range(8)
    ]
    for key, make in (
        ("dyn", recipe.dynamic_wi8_afp32),
        ("int8", recipe.static_wi8_ai8),
        ("int16", recipe.static_wi8_ai16),
    ):
        q = aeq.Quantizer(fp32, make())
        stats = None if key == "dyn" else q.calibrate({"serving_default": calib})
        data = bytes(
            q.quantize(stats, enable_progress_bar=False, enable_progress_report=False).quantized_model
        )
        paths[key] = out / f"{key}.tflite"
        paths[key].write_bytes(data)
    paths["int8_float_io"] = out / "int8_float_io.tflite"
    paths["int8_float_io"].write_bytes(set_tflite_io_dtype(paths["int8"].read_bytes(), "float32"))
    return paths


def _consistent(r: dict) -> None:
    assert sum(r["op_histogram"].values()) == r["ops_total"]
    assert r["delegated_nodes"] + r["not_delegated_nodes"] == r["ops_total"]
    assert sum(r["not_delegated_ops"].values()) == r["not_delegated_nodes"]
    for op, n in r["not_delegated_ops"].items():
        assert r["op_histogram"][op] >= n


def test_fp32_fully_delegated_with_input_transpose(files):
    r = op_report(files["fp32"])
    _consistent(r)
    assert r["quantization"] == "none" and r["delegate"] == "XNNPACK"
    assert r["op_histogram"]["DEPTHWISE_CONV_2D"] == 1 and r["op_histogram"]["CONV_2D"] == 2
    assert r["transpose"] >= 1 and r["quantize"] == r["dequantize"] == 0
    assert r["not_delegated_nodes"] == 0 and r["delegate_partitions"] == 1
    assert any("TRANSPOSE" in h for h in r["hints"])
    assert r["float_ops"].get("CONV_2D") == 2  # every op of a float file computes in float


def test_dynamic_range_depthwise_falls_out_of_xnnpack(files):
    r = op_report(files["dyn"])
    _consistent(r)
    assert r["quantization"] == "dynamic-int8"
    assert r["not_delegated_ops"].get("DEPTHWISE_CONV_2D") == 1
    assert r["delegate_partitions"] >= 2  # the graph is split around the rejected op
    assert r["float_ops"]  # dynamic range: float activations between the int8-weight ops
    assert any("outside XNNPACK" in h and "DEPTHWISE_CONV_2D" in h for h in r["hints"])


def test_float_io_adds_one_quantize_and_one_dequantize(files):
    native, float_io = op_report(files["int8"]), op_report(files["int8_float_io"])
    for r in (native, float_io):
        _consistent(r)
        assert r["quantization"] == "full-int8" and r["not_delegated_nodes"] == 0
        assert r["float_ops"] == {}  # float I/O edges (QUANTIZE in, DEQUANTIZE out) are not float compute
    assert float_io["quantize"] == native["quantize"] + 1
    assert float_io["dequantize"] == native["dequantize"] + 1
    assert float_io["ops_total"] == native["ops_total"] + 2
    assert any("QUANTIZE/DEQUANTIZE" in h for h in float_io["hints"])


def test_int16_activations_get_no_xnnpack(files):
    r = op_report(files["int16"])
    _consistent(r)
    assert r["quantization"] == "int16x8"
    assert r["delegated_nodes"] == 0 and r["delegate_partitions"] == 0
    assert any("no op runs in XNNPACK" in h for h in r["hints"])


def test_missing_file(tmp_path):
    with pytest.raises(EdgepruneError, match="not found"):
        op_report(tmp_path / "nope.tflite")
