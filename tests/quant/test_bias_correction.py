"""Empirical bias correction: the mean shift int8 adds is moved into the biases, once per layer.

The net is built so int8 shifts the mean on purpose: each output channel of the first convolution has one large
weight, so per-channel int8 (step = max/127) rounds its many small positive weights to zero, and on positive
inputs the output loses their sum on average. A second convolution inherits that shift; correcting it there as
well would count it twice (the first version of the correction did, and made EfficientNet-Lite0 worse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.export import tflite_litert
from edgeprune.export.base import EXPORTERS, ExportRequest
from edgeprune.export.bias_correction import correct_biases
from edgeprune.runtimes import open_session

pytest.importorskip("litert_torch")


def _shifting_net() -> torch.nn.Module:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 6, 3, padding=1)
    with torch.no_grad():
        conv.weight.uniform_(0.05, 0.25)  # below half an int8 step of the outlier below: rounds to 0
        conv.weight[:, 0, 0, 0] = 60.0
        conv.bias.zero_()
    second = torch.nn.Conv2d(6, 6, 1)
    with torch.no_grad():
        second.weight.copy_(torch.eye(6).reshape(6, 6, 1, 1) + 0.05)  # passes the shift on, slightly mixed
    head = torch.nn.Linear(6, 3)
    return torch.nn.Sequential(conv, torch.nn.ReLU(), second, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               head).eval()


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 12, 12, generator=torch.Generator().manual_seed(seed))  # positive, like pixels


def _converted(model: torch.nn.Module, calib: torch.Tensor) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgeprune.export.pt2e_int8 import int8_quantizer

    prepared = prepare_pt2e(torch.export.export(model, (calib[:1],)).module(), int8_quantizer())
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(calib[i : i + 1])
    return convert_pt2e(prepared, fold_quantize=False)


def _run(gm: torch.fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([gm(x[i : i + 1]) for i in range(len(x))])


def test_correction_removes_the_mean_shift_on_held_out_images() -> None:
    model, calib, held_out = _shifting_net(), _images(32, 0), _images(32, 1)
    quantized = _converted(model, calib)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ref = model(held_out)
    shift_before = (_run(quantized, held_out) - ref).mean(0).abs().max().item()
    stats = correct_biases(quantized, calib, chunk=1, rounds=2)
    shift_after = (_run(quantized, held_out) - ref).mean(0).abs().max().item()
    assert stats["layers"] == 3
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, original[k])]
    assert not changed, f"bias correction changed the user's model: {changed}"
    assert stats["max_shift_after"] < 0.05 * stats["max_shift_before"]  # the residual the first round left
    assert shift_before > 0.05, "the net no longer provokes a mean shift; the test proves nothing"
    assert shift_after < 0.25 * shift_before, (shift_before, shift_after)


def test_the_tflite_file_keeps_the_correction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, calib, held_out = _shifting_net(), _images(32, 0), _images(48, 1)
    with torch.no_grad():
        ref = model(held_out).numpy()
    shifts = {}
    for rounds in (0, 2):
        monkeypatch.setattr(tflite_litert, "BIAS_CORRECTION_ROUNDS", rounds)
        req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=tmp_path / str(rounds),
                            name="m", calib_inputs=calib, calib_ids=list(range(len(calib))),
                            io_dtype="float32")  # fmt: skip
        req.out_dir.mkdir()
        path = req.out_dir / EXPORTERS.get("tflite:litert-torch")().export(req).file
        logits = np.asarray(open_session(path, fmt="tflite").run(held_out.numpy()), dtype=np.float32)
        shifts[rounds] = float(np.abs((logits - ref).mean(0)).max())
    assert shifts[2] < 0.25 * shifts[0], shifts
