"""Real model files for the profiler's tests, written with the project's own TFLite exporter."""

from __future__ import annotations

from pathlib import Path

import pytest


def export_fp32(net, size: int, out_dir: Path, name: str) -> Path:  # noqa: ANN001 - a torch module
    """``net`` (eval mode, RGB inputs of ``size`` px) as an fp32 .tflite through edgeprune's exporter."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("litert_torch")
    from edgeprune.export import ExportRequest, get_exporter

    example = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    record = get_exporter("tflite").export(ExportRequest(model=net.eval(), example_input=example, precision="fp32",
                                                         out_dir=out_dir, name=name))  # fmt: skip
    return out_dir / record.file


def wide_net(hidden: int):  # noqa: ANN201 - a torch module
    """conv 3->8 on 16x16, then a hidden x 2048 fully connected layer: the weights grow linearly with ``hidden``
    (8 KiB of fp32 weights per unit) while the activations stay tiny."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(8 * 16 * 16, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3),
    )  # fmt: skip


def small_conv_net():  # noqa: ANN201 - a torch module
    """Four 3x3 convolutions (32-64-128-128 channels) and a linear head: about 1 ms per 64 px image on one core,
    long enough that fixed per-call overheads (Python, the timer) are a small part of a sample."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    widths = [3, 32, 64, 128, 128]
    layers: list = []
    for i in range(4):
        layers += [torch.nn.Conv2d(widths[i], widths[i + 1], 3, stride=2 if i else 1, padding=1), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, 3))
