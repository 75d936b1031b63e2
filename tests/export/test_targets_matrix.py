"""Every registered export target x precision, found through the registry (a new target needs no test edit).

For each (format:backend, precision): the artifact loads in its runtime (CoreML on Linux: the structural
read-back plus the simulated-weights session), float precisions match PyTorch within FLOAT_TOLERANCE, and
the quantization read back from the file is the one the exporter claims for that precision.

One tiny trained CNN is shared by every case (and by test_coreml.py / test_onnx.py through ``shared_export``);
each artifact is exported once per pytest process.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.export import EXPORTERS, ArtifactRecord, ExportRequest, export_targets
from edgeprune.runtimes import open_session
from edgeprune.runtimes.coreml import reference_models
from tests.export._stripes import stripes

SIZE = 16
LABELS = ["h", "v", "dot"]
META = {
    "preprocessing": {"input_size": [SIZE, SIZE], "mean": [0.5] * 3, "std": [0.5] * 3},
    "labels": LABELS,
    "version": "7",
}
# max |artifact - torch| / max(1, max |torch logits|) for precisions that only round weights/activations
FLOAT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
MIN_QUANTIZED_AGREEMENT = 0.8  # top-1 agreement with PyTorch for every quantized variant of a trained model


class MatrixNet(nn.Module):
    """Conv-BN stem, a 64-channel residual block (weights > 2048 values so CoreML compresses them), GAP, FC."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()

        def cbr(cin: int, cout: int, stride: int, relu: bool = True) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
            return layers + [nn.ReLU()] if relu else layers

        self.stem = nn.Sequential(*cbr(3, 16, 2), *cbr(16, 64, 2))
        self.block = nn.Sequential(*cbr(64, 64, 1), *cbr(64, 64, 1, relu=False))
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(x.mean(dim=(2, 3)))


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return stripes(n, torch.Generator().manual_seed(seed), SIZE)


@cache
def shared_model() -> nn.Module:
    """The trained model every export test uses (trained once per process, ~2 s)."""
    torch.manual_seed(0)
    net = MatrixNet()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is ~8x faster than two on a busy 2-core machine
    try:
        with torch.enable_grad():  # callers may be inside torch.no_grad()
            for step in range(80):
                x, y = synthetic(32, seed=1000 + step)
                loss = nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def parity_inputs(n: int = 64) -> np.ndarray:
    return synthetic(n, seed=2)[0].numpy()


def torch_logits(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return shared_model()(torch.from_numpy(x)).numpy()


_OUT = Path(tempfile.mkdtemp(prefix="edgeprune-export-tests-"))
atexit.register(shutil.rmtree, _OUT, True)


@cache
def shared_export(target: str, precision: str, io_layout: str = "NCHW") -> tuple[ArtifactRecord, Path]:
    """Export the shared model once per (target, precision, layout); returns (record, artifact path)."""
    calib = synthetic(32, seed=3)[0]
    exporter = EXPORTERS.get(target)()
    name = f"{target.replace(':', '_')}_{precision}_{io_layout.lower()}"
    req = ExportRequest(
        model=shared_model(), example_input=calib[:1], precision=precision, out_dir=_OUT, name=name,
        calib_inputs=calib, calib_ids=list(range(len(calib))), io_layout=io_layout, metadata=META,
    )  # fmt: skip
    record = exporter.export(req)
    return record, _OUT / record.file


def _cases() -> list:
    """One case per registered format:backend and precision; unavailable targets skip with the install hint."""
    rows = {row["target"]: row for row in export_targets()}
    cases = []
    for name in sorted(rows):
        row = rows[name]
        marks = []
        if not row["available"]:
            hint = f"install edgeprune[{','.join(row['extras'])}] to test {name}"
            marks.append(pytest.mark.skip(reason=hint))
        cases += [pytest.param(name, p, id=f"{name}-{p}", marks=marks) for p in row["precisions"]]
    return cases


def test_shared_model_learned_the_task():
    x, y = synthetic(128, seed=1)
    with torch.no_grad():
        pred = shared_model()(x).argmax(1)
    # precondition: parity checks on a degenerate (constant-output) model would prove nothing
    assert (pred == y).float().mean() > 0.85 and len(pred.unique()) == 3


def test_every_registered_target_is_in_the_matrix():
    targets = {c.values[0] for c in _cases()}
    assert {"tflite:litert-torch", "onnx:torch-onnx", "coreml:coremltools"} <= targets
    assert targets == {n for n in EXPORTERS.names() if ":" in n}


@pytest.mark.parametrize("target,precision", _cases())
def test_artifact_loads_and_matches(target, precision):
    record, path = shared_export(target, precision)
    exporter = EXPORTERS.get(target)()
    assert path.exists() and record.size_bytes > 0 and len(record.sha256) == 64
    assert record.precision == precision and record.format == exporter.format

    x = parity_inputs()
    ref = torch_logits(x)
    with reference_models({path: shared_model()}):  # CoreML off macOS simulates with the torch model
        session = open_session(path, fmt=record.format, threads=1)
    assert session.inputs == record.inputs and session.outputs == record.outputs
    got = session.run(x)
    assert got.shape == ref.shape and got.dtype == np.float32 and np.isfinite(got).all()

    # the file is what it claims: quantization read back from the final artifact, not from the request
    claimed = exporter.expected.get(precision)
    assert claimed, f"{target} does not declare what {precision} should look like in the file"
    assert record.quantization == claimed, record.notes
    assert exporter.describe(path)[0] == claimed

    scale = max(1.0, float(np.abs(ref).max()))
    drift = float(np.abs(got - ref).max()) / scale
    agreement = float((got.argmax(1) == ref.argmax(1)).mean())
    if precision in FLOAT_TOLERANCE:
        assert drift <= FLOAT_TOLERANCE[precision], f"{target} {precision}: relative drift {drift:.2e}"
    else:
        assert claimed not in ("none", "fp16"), f"{precision} should be a quantized variant"
        assert agreement >= MIN_QUANTIZED_AGREEMENT, f"{target} {precision}: top-1 agreement {agreement:.2f}"
    kind = getattr(session, "verification_kind", "runtime")
    print(f"\n{target} {precision}: {record.size_bytes} B, {record.export_seconds:.2f} s, "
          f"q={record.quantization}, drift={drift:.2e}, agree={agreement:.2f}, {kind}")  # fmt: skip
