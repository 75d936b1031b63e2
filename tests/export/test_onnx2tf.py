"""The onnx2tf TFLite backend (extra [tf]) on one small trained CNN with a planted activation outlier.

One onnx2tf run (module-wide, cached by the exporter) serves every precision; two more variants come from
TFLiteConverter on the same SavedModel. The model is shared with tests/pipeline/test_repair.py through
``outlier_case()``, so the whole area pays for a single onnx2tf conversion.

The outlier: one channel of the first conv outputs a constant 30 while the informative channels are scaled down
100x (and the next conv scaled up to match, so the float model is unchanged, ReLU being positively
homogeneous). With 8-bit activations the informative channels fall below one quantization step; 16-bit
activations keep them.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.data import stratified_sample
from edgeprune.errors import EdgepruneError, MissingExtraError
from edgeprune.export import EXPORTERS, ExportFailedError, ExportRequest, export_targets, get_exporter
from edgeprune.export.tflite_onnx2tf import SAMPLE_FILE, Onnx2tfExporter, _run_worker, _write_sample_file
from edgeprune.runtimes import open_session
from tests.export._stripes import stripes

HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("onnx2tf", "tensorflow", "onnx"))
TF_HINT = (
    "needs the [tf] extra: bash scripts/install_tf_extra.sh (tensorflow-cpu + onnx2tf, see toolchain.md)"
)
needs_tf = pytest.mark.skipif(not HAVE_TF, reason=TF_HINT)

SIZE = 16
CLASSES = ["h", "v", "dot"]
META = {"preprocessing": {"input_size": [SIZE, SIZE], "mean": [0.5] * 3, "std": [0.5] * 3}, "labels": CLASSES}


class OutlierNet(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean(dim=(2, 3)))


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return stripes(n, torch.Generator().manual_seed(seed), SIZE)


@functools.lru_cache(maxsize=1)
def outlier_case() -> dict[str, Any]:
    """Trained OutlierNet, a train pool with a stratified calibration subset, a test set and torch logits."""
    torch.manual_seed(0)
    net = OutlierNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(40):
        x, y = synthetic(32, 100 + step)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        c = net.stem[0].out_channels - 1  # channel c becomes a constant 30; nothing downstream reads it
        net.stem[0].weight[c] = 0.0
        net.stem[0].bias[c] = 30.0
        net.body[0].weight[:, c] = 0.0
        net.stem[0].weight[:c] *= 0.01
        net.stem[0].bias[:c] *= 0.01
        net.body[0].weight[:, :c] *= 100.0
    train_x, train_y = synthetic(256, 11)
    test_x, test_y = synthetic(240, 7)
    with torch.no_grad():
        ref = net(test_x).numpy()
    # precondition: the float model learned the task, so accuracy and parity checks mean something
    assert (ref.argmax(1) == test_y.numpy()).mean() > 0.9
    calib_ids = [int(i) for i in stratified_sample(train_y.numpy(), 32, 0)]
    return {"model": net, "train_x": train_x, "train_y": train_y.numpy(), "calib_ids": calib_ids,
            "test_x": test_x.numpy(), "test_y": test_y.numpy(), "ref": ref}  # fmt: skip


def request(case: dict[str, Any], precision: str, out_dir, name: str, io_dtype: str | None = None,
            layout: str = "NHWC") -> ExportRequest:  # fmt: skip
    ids = case["calib_ids"]
    req = ExportRequest(
        model=case["model"], example_input=case["train_x"][:1], precision=precision, out_dir=out_dir, name=name,
        calib_inputs=case["train_x"][ids], calib_ids=ids, io_layout=layout, metadata=META,
    )  # fmt: skip
    if io_dtype is not None:
        req.io_dtype = io_dtype  # an ExportRequest field once base.py has it
    return req


VARIANTS = [  # (precision, io_dtype); the first one triggers the onnx2tf run, the last two TFLiteConverter runs
    ("int8", "int8"), ("fp32", None), ("fp16", None), ("dynamic-int8", None), ("int8", "float32"),
    ("int16x8", None), ("int8", "uint8"), ("int8-per-tensor", None),
]  # fmt: skip


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not HAVE_TF:
        pytest.skip(TF_HINT)
    case = outlier_case()
    out = tmp_path_factory.mktemp("onnx2tf")
    exporter = get_exporter("tflite", backend="onnx2tf")
    saved = {k: os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    os.environ.update({k: "http://127.0.0.1:9" for k in saved})  # any download attempt would fail the run
    records, seconds = {}, {}
    try:
        for precision, io in VARIANTS:
            start = time.perf_counter()
            records[(precision, io)] = exporter.export(
                request(case, precision, out, f"m_{precision}_{io}", io)
            )
            seconds[(precision, io)] = time.perf_counter() - start
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    print("\nonnx2tf export seconds / bytes:")
    for key, rec in records.items():
        print(
            f"  {key[0]:>15} io={key[1]!s:8} {seconds[key]:6.1f} s {rec.size_bytes:7d} B {rec.quantization}"
        )
    return out, records


def run(out, rec, x):
    return open_session(out / rec.file, threads=1).run(x)


@needs_tf
@pytest.mark.parametrize("precision,io", VARIANTS)
def test_record_describes_the_file(converted, precision, io):
    out, records = converted
    rec = records[(precision, io)]
    info = inspect_tflite(out / rec.file)
    assert rec.backend == "onnx2tf" and rec.format == "tflite" and rec.precision == precision
    assert rec.quantization == info.quantization == Onnx2tfExporter.expected[precision], rec.notes
    want_io = io or Onnx2tfExporter.io_dtypes_for(precision)[0]
    assert [t.dtype for t in rec.inputs + rec.outputs] == [want_io, want_io]
    assert rec.inputs[0].shape == [1, SIZE, SIZE, 3] and rec.inputs[0].layout == "NHWC" == rec.io_layout
    assert rec.outputs[0].shape == [1, 3]
    assert any("NHWC input" in n for n in rec.notes)
    meta = read_tflite_metadata(out / rec.file)
    assert meta["labels"] == CLASSES and meta["export"]["backend"] == "onnx2tf"
    assert meta["export"]["io_dtype"] == want_io
    assert [t["dtype"] for t in meta["export"]["io"]["inputs"]] == [want_io]  # read back from the file
    assert meta["export"]["io"]["inputs"][0]["layout"] == "NHWC"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@needs_tf
def test_float_variants_match_torch(converted):
    out, records = converted
    case = outlier_case()
    x, ref = case["test_x"][:48], case["ref"][:48]
    fp32 = run(out, records[("fp32", None)], x)
    assert np.abs(fp32 - ref).max() < 1e-4
    fp16 = run(out, records[("fp16", None)], x)
    assert np.abs(fp16 - ref).max() < 2e-2 * np.abs(ref).max()
    assert inspect_tflite(out / records[("fp16", None)].file).weight_dtypes == ["float16"]
    dyn = inspect_tflite(out / records[("dynamic-int8", None)].file)
    assert dyn.activation_dtypes == ["float32"] and "int8" in dyn.weight_dtypes


@needs_tf
def test_io_dtype_variants_compute_the_same(converted):
    """int8, uint8 and float32 I/O only differ at the edges: same logits (up to one output step)."""
    out, records = converted
    x = outlier_case()["test_x"][:32]
    i8, u8, f32 = (records[("int8", io)] for io in ("int8", "uint8", "float32"))
    step = i8.outputs[0].quant_scale
    assert u8.inputs[0].quant_scale == pytest.approx(i8.inputs[0].quant_scale)
    assert u8.inputs[0].quant_zero_point == i8.inputs[0].quant_zero_point + 128
    a, b, c = run(out, i8, x), run(out, u8, x), run(out, f32, x)
    assert np.abs(a - b).max() <= step * 1.01 and np.abs(a - c).max() <= step * 1.01
    assert any("TFLiteConverter" in n for n in u8.notes) and any("made by onnx2tf" in n for n in i8.notes)


def _weight_scale_counts(path) -> list[int]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    counts = []
    for d in it.get_tensor_details():
        scales = d["quantization_parameters"]["scales"]
        if d["dtype"] == np.int8 and len(d["shape"]) == 4 and d["shape"][0] > 1 and len(scales):
            counts.append(len(scales))
    return counts


@needs_tf
def test_per_tensor_weights(converted):
    out, records = converted
    per_tensor = _weight_scale_counts(out / records[("int8-per-tensor", None)].file)
    per_channel = _weight_scale_counts(out / records[("int8", "int8")].file)
    assert per_tensor and set(per_tensor) == {1}
    assert per_channel and min(per_channel) > 1


@needs_tf
def test_int16_activations_survive_the_outlier(converted):
    """The planted outlier breaks 8-bit activations but not 16-bit ones (test_repair.py relies on this)."""
    out, records = converted
    case = outlier_case()
    x, ref = case["test_x"], case["ref"]
    int8 = run(out, records[("int8", "int8")], x)
    int16 = run(out, records[("int16x8", None)], x)
    agree8 = (int8.argmax(1) == ref.argmax(1)).mean()
    agree16 = (int16.argmax(1) == ref.argmax(1)).mean()
    assert agree16 >= 0.97 and agree8 < 0.8, (agree8, agree16)
    assert np.abs(int16 - ref).mean() < np.abs(int8 - ref).mean() / 10
    assert inspect_tflite(out / records[("int16x8", None)].file).activation_dtypes == ["int16"]


def test_sample_file_is_deterministic(tmp_path):
    _write_sample_file(tmp_path)
    data = np.load(tmp_path / SAMPLE_FILE)
    assert data.shape == (20, 128, 128, 3) and data.dtype == np.float32
    assert 0.0 <= data.min() and data.max() <= 1.0 and data.std() > 0.2
    (tmp_path / "b").mkdir()
    _write_sample_file(tmp_path / "b")
    assert np.array_equal(np.load(tmp_path / "b" / SAMPLE_FILE), data)


def test_bad_io_dtype_is_rejected(tmp_path):
    case = outlier_case()
    exporter = Onnx2tfExporter()
    with pytest.raises(EdgepruneError, match="io_dtype 'uint8'.*fp32.*float32"):
        exporter.export(request(case, "fp32", tmp_path, "m", io_dtype="uint8"))
    with pytest.raises(EdgepruneError, match="io_dtype 'int4'.*int8, uint8, float32"):
        exporter.export(request(case, "int8", tmp_path, "m", io_dtype="int4"))
    with pytest.raises(EdgepruneError, match="precision 'int3'"):
        exporter.export(request(case, "int3", tmp_path, "m"))
    assert list(tmp_path.iterdir()) == []


def test_registry_and_extra_hint(tmp_path):
    assert type(get_exporter("tflite:onnx2tf")) is Onnx2tfExporter
    assert EXPORTERS.get("tflite") is not Onnx2tfExporter  # litert-torch stays the primary TFLite backend
    row = next(r for r in export_targets() if r["target"] == "tflite:onnx2tf")
    assert row["available"] is HAVE_TF and "int16x8" in row["precisions"] and row["layouts"][0] == "NHWC"

    class NeedsMissing(Onnx2tfExporter):
        requires = {"edgeprune_no_such_module": "tf"}

    class NoTensorFlow(Onnx2tfExporter):  # the worker's modules are looked up, not imported, in this process
        WORKER_MODULES = ("edgeprune_no_such_tf",)

    for exporter in (NeedsMissing(), NoTensorFlow()):
        with pytest.raises(MissingExtraError, match=r"edgeprune\[tf\]"):
            exporter.export(request(outlier_case(), "fp32", tmp_path, "m"))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def own_worker(monkeypatch):
    """A separate worker process for tests that make it fail, so the shared one (TF loaded) survives."""
    from edgeprune.export import tflite_onnx2tf

    monkeypatch.setattr(tflite_onnx2tf, "_WORKER", [])


@needs_tf
def test_timeout_leaves_no_file(tmp_path, monkeypatch, own_worker):
    monkeypatch.setenv("EDGEPRUNE_ONNX2TF_TIMEOUT", "0.5")
    fresh = OutlierNet().eval()  # a model no cached run knows
    req = ExportRequest(fresh, torch.zeros(1, 3, SIZE, SIZE), "fp32", tmp_path, "slow", io_layout="NHWC")
    with pytest.raises(ExportFailedError, match="did not finish within 0.5 s"):
        get_exporter("tflite:onnx2tf").export(req)
    assert list(tmp_path.iterdir()) == []


def test_worker_failure_is_reported_with_its_log(tmp_path, own_worker):
    job = {
        "quantize": {
            "calib": str(tmp_path / "missing.npy"),
            "saved_model": "",
            "calibrated": "",
            "variants": [],
        }
    }
    with pytest.raises(ExportFailedError, match=r"TFLiteConverter failed: .*missing\.npy") as err:
        _run_worker(job, tmp_path, "TFLiteConverter")
    assert "Traceback" in err.value.log


@needs_tf
@pytest.mark.slow
def test_nchw_input_is_kept(tmp_path):
    """-kt keeps the ONNX NCHW input (one TRANSPOSE); a separate onnx2tf run, so only in the slow suite."""
    case = outlier_case()
    rec = get_exporter("tflite:onnx2tf").export(request(case, "fp32", tmp_path, "m_nchw", layout="NCHW"))
    assert rec.inputs[0].shape == [1, 3, SIZE, SIZE] and rec.inputs[0].layout == "NCHW"
    assert inspect_tflite(tmp_path / rec.file).n_transpose >= 1
    got = open_session(tmp_path / rec.file).run(case["test_x"][:16])
    assert np.abs(got - case["ref"][:16]).max() < 1e-4
