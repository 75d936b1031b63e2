"""TFLite export through litert-torch + the LiteRT runtime, on one tiny trained CNN (BN + residual add).

All conversions happen once in a module-scoped fixture; the tests then check the files themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.errors import EdgepruneError, MissingExtraError
from edgeprune.export import EXPORTERS, ExportFailedError, ExportRequest, get_exporter
from edgeprune.export.tflite_litert import LiteRTTorchExporter
from edgeprune.export.tflite_metadata import embed_tflite_metadata
from edgeprune.fsutil import sha256_file
from edgeprune.runtimes import dequantize, open_session, quantize
from edgeprune.schemas import TensorInfo
from tests._nets import DataDependent
from tests.export._stripes import stripes

SIZE = 16
PRECISIONS = LiteRTTorchExporter.precisions
META = {
    "preprocessing": {"input_size": [SIZE, SIZE], "mean": [0.5] * 3, "std": [0.5] * 3},
    "labels": ["h", "v", "dot"],
}


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
        )  # fmt: skip
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(x.mean(dim=(2, 3)))


def synthetic(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return stripes(n, gen, SIZE)


def parity_inputs(n: int = 64, seed: int = 2) -> np.ndarray:
    return synthetic(n, torch.Generator().manual_seed(seed))[0].numpy()


@pytest.fixture(scope="module")
def model() -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = TinyNet()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(100):
        x, y = synthetic(32, gen)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x, y = synthetic(128, torch.Generator().manual_seed(1))
    with torch.no_grad():
        pred = net(x).argmax(1)
    # precondition: a model that learned something, so parity checks are meaningful (pitfall 17)
    assert (pred == y).float().mean() > 0.8 and len(pred.unique()) == 3
    return net


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    calib = synthetic(64, torch.Generator().manual_seed(3))[0]
    example = calib[:1]
    exporter = get_exporter("tflite")
    records = {}
    for precision, layout in [(p, "NCHW") for p in PRECISIONS] + [("fp32", "NHWC")]:
        req = ExportRequest(
            model=model, example_input=example, precision=precision, out_dir=out,
            name=f"tiny_{precision}_{layout.lower()}", calib_inputs=calib, calib_ids=list(range(100, 164)),
            io_layout=layout, metadata=META,
        )  # fmt: skip
        records[(precision, layout)] = exporter.export(req)
    print("\nexport seconds / bytes:")
    for (p, lay), r in records.items():
        print(
            f"  {p:>12} {lay}: {r.export_seconds:6.2f} s  {r.size_bytes:7d} B  quantization={r.quantization}"
        )
    return out, records


def torch_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_artifact_record_matches_file(exported, precision):
    out, records = exported
    rec = records[(precision, "NCHW")]
    path = out / rec.file
    assert path.is_file() and rec.file == f"tiny_{precision}_nchw.tflite"
    assert rec.sha256 == sha256_file(path) and rec.size_bytes == path.stat().st_size > 0
    assert rec.format == "tflite" and rec.backend == "litert-torch" and rec.precision == precision
    assert rec.quantization == LiteRTTorchExporter.expected[precision], rec.notes
    assert rec.inputs[0].shape == [1, 3, SIZE, SIZE] and rec.inputs[0].layout == "NCHW"
    assert rec.outputs[0].shape == [1, 3]
    assert rec.calibration_ids == (list(range(100, 164)) if precision == "int8" else None)
    session = open_session(path, threads=1)
    assert session.inputs == rec.inputs and session.outputs == rec.outputs
    assert session.run(parity_inputs(4)).shape == (4, 3)
    # no temporary files are left next to the artifacts
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_fp32_matches_torch(model, exported):
    out, records = exported
    x = parity_inputs()
    got = open_session(out / records[("fp32", "NCHW")].file).run(x)
    assert got.dtype == np.float32 and got.shape == (64, 3)
    assert np.abs(got - torch_logits(model, x)).max() < 1e-4


@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != "fp32"])
def test_quantized_top1_agreement(model, exported, precision):
    out, records = exported
    x = parity_inputs()
    ref = torch_logits(model, x)
    got = open_session(out / records[(precision, "NCHW")].file, threads=2).run(x)
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    assert agree >= 0.9, f"{precision}: top-1 agreement {agree:.3f}"
    assert not np.array_equal(got, ref)  # really a different (quantized) computation


def test_int8_has_int8_activations(exported):
    out, records = exported
    rec = records[("int8", "NCHW")]
    info = inspect_tflite(out / rec.file)
    assert info.quantization == "full-int8"
    assert info.activation_dtypes == ["int8"] and "int8" in info.weight_dtypes
    assert info.op_histogram.get("CONV_2D", 0) == 3 and info.op_histogram.get("FULLY_CONNECTED", 0) == 1
    # litert-torch PT2E gives int8 I/O; the record must say so with usable quantization parameters
    for t in rec.inputs + rec.outputs:
        assert t.dtype == "int8" and t.quant_scale and t.quant_scale > 0 and t.quant_zero_point is not None
    assert any("int8" in n for n in rec.notes)


def test_dynamic_and_fp16_are_not_full_int8(exported):
    out, records = exported
    dyn = inspect_tflite(out / records[("dynamic-int8", "NCHW")].file)
    assert dyn.quantization == "dynamic-int8"
    assert dyn.activation_dtypes == ["float32"] and dyn.weight_dtypes == ["int8"]
    assert records[("dynamic-int8", "NCHW")].inputs[0].dtype == "float32"
    fp16 = inspect_tflite(out / records[("fp16", "NCHW")].file)
    assert fp16.quantization == "fp16-weights" and fp16.weight_dtypes == ["float16"]
    assert fp16.n_dequantize >= 4  # one per conv / linear weight
    fp32 = inspect_tflite(out / records[("fp32", "NCHW")].file)
    assert fp32.quantization == "none" and fp32.n_dequantize == 0 and fp32.n_quantize == 0


def test_nhwc_export(model, exported):
    out, records = exported
    rec = records[("fp32", "NHWC")]
    assert rec.io_layout == "NHWC"
    assert rec.inputs[0].shape == [1, SIZE, SIZE, 3] and rec.inputs[0].layout == "NHWC"
    assert (
        inspect_tflite(out / rec.file).n_transpose
        < inspect_tflite(out / records[("fp32", "NCHW")].file).n_transpose
    )
    x = parity_inputs()  # NCHW data; the session transposes
    got = open_session(out / rec.file).run(x)
    assert np.abs(got - torch_logits(model, x)).max() < 1e-4


def test_metadata_round_trip(exported, tmp_path):
    out, records = exported
    rec = records[("int8", "NCHW")]
    meta = read_tflite_metadata(out / rec.file)
    assert meta["labels"] == META["labels"] and meta["preprocessing"] == META["preprocessing"]
    assert meta["export"]["precision"] == "int8" and meta["export"]["io_layout"] == "NCHW"
    assert meta["export"]["backend"] == "litert-torch"
    # re-embedding replaces the entry, keeps the converter's own entries, and the model still runs the same
    copy = tmp_path / "copy.tflite"
    copy.write_bytes((out / rec.file).read_bytes())
    embed_tflite_metadata(copy, {"version": "2", "export": meta["export"]})
    names = inspect_tflite(copy).metadata_names
    assert names.count("edgeprune") == 1 and "min_runtime_version" in names
    assert read_tflite_metadata(copy) == {"version": "2", "export": meta["export"]}
    x = parity_inputs(8)
    np.testing.assert_array_equal(open_session(copy).run(x), open_session(out / rec.file).run(x))


def test_buffers_stay_aligned_after_embedding(exported):
    from ai_edge_litert import schema_py_generated as schema

    out, records = exported
    data = (out / records[("fp32", "NCHW")].file).read_bytes()
    base = np.frombuffer(data, dtype=np.uint8)
    model = schema.Model.GetRootAs(data, 0)
    checked = 0
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength():
            arr = buf.DataAsNumpy()
            offset = arr.__array_interface__["data"][0] - base.__array_interface__["data"][0]
            assert offset % 16 == 0, f"buffer {i} at offset {offset}"
            checked += 1
    assert checked >= 5
    assert read_tflite_metadata(out / records[("fp32", "NCHW")].file) is not None


def test_unknown_precision_is_rejected(model, tmp_path):
    req = ExportRequest(
        model=model, example_input=torch.zeros(1, 3, SIZE, SIZE), precision="int3", out_dir=tmp_path, name="m"
    )
    with pytest.raises(EdgepruneError, match="int3.*fp32, fp16, dynamic-int8, int8"):
        get_exporter("tflite").export(req)
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_rejected(model, tmp_path):
    exporter = get_exporter("tflite", backend="litert-torch")
    x = torch.zeros(1, 3, SIZE, SIZE)
    with pytest.raises(EdgepruneError, match="calibration"):
        exporter.export(
            ExportRequest(model=model, example_input=x, precision="int8", out_dir=tmp_path, name="m")
        )
    with pytest.raises(EdgepruneError, match="one id per calibration image"):
        exporter.export(
            ExportRequest(model, x, "int8", tmp_path, "m", calib_inputs=x.repeat(4, 1, 1, 1), calib_ids=[1])
        )
    with pytest.raises(EdgepruneError, match="io_layout"):
        exporter.export(ExportRequest(model, x, "fp32", tmp_path, "m", io_layout="CHWN"))
    with pytest.raises(EdgepruneError, match="training mode"):
        exporter.export(ExportRequest(TinyNet().train(), x, "fp32", tmp_path, "m"))
    assert list(tmp_path.iterdir()) == []


def test_failed_conversion_leaves_no_file(tmp_path):
    req = ExportRequest(DataDependent().eval(), torch.zeros(1, 3, SIZE, SIZE), "fp32", tmp_path, "broken")
    with pytest.raises(ExportFailedError, match="tflite:litert-torch export of 'broken'"):
        get_exporter("tflite").export(req)
    assert list(tmp_path.iterdir()) == []


def test_missing_dependency_is_reported(model, tmp_path):
    class NeedsMissing(LiteRTTorchExporter):
        requires = {"edgeprune_no_such_module": "nosuch"}

    req = ExportRequest(model, torch.zeros(1, 3, SIZE, SIZE), "fp32", tmp_path, "m")
    with pytest.raises(MissingExtraError, match=r"edgeprune\[nosuch\]"):
        NeedsMissing().export(req)
    assert list(tmp_path.iterdir()) == []


def test_registry_names():
    assert type(get_exporter("tflite")) is type(get_exporter("tflite:litert-torch")) is LiteRTTorchExporter
    assert type(get_exporter("tflite", backend="litert-torch")) is LiteRTTorchExporter
    assert {"tflite", "tflite:litert-torch"} <= set(EXPORTERS.names())
    with pytest.raises(EdgepruneError, match="did you mean 'tflite'"):
        get_exporter("tflit")


def test_session_rejects_bad_input(exported, tmp_path):
    out, records = exported
    session = open_session(out / records[("fp32", "NCHW")].file)
    with pytest.raises(EdgepruneError, match="do not fit"):
        session.run(np.zeros((2, 3, SIZE + 1, SIZE), np.float32))
    with pytest.raises(EdgepruneError, match=r"\(N,C,H,W\)"):
        session.run(np.zeros((3, SIZE, SIZE), np.float32))
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(EdgepruneError, match="no runtime"):
        open_session(odd)
    with pytest.raises(EdgepruneError, match="not found"):
        open_session(tmp_path / "missing.tflite")


@pytest.mark.parametrize("dtype,scale,zero", [("int8", 0.05, -3), ("uint8", 0.02, 128), ("int16", 0.001, 0)])
def test_quantize_dequantize_round_trip(dtype, scale, zero):
    info = TensorInfo(name="t", shape=[5], dtype=dtype, quant_scale=scale, quant_zero_point=zero)
    lim = np.iinfo(dtype)
    lo, hi = (lim.min - zero) * scale, (lim.max - zero) * scale
    x = np.linspace(lo, hi, 101, dtype=np.float32)
    q = quantize(x, info)
    assert q.dtype == np.dtype(dtype)
    tol = scale / 2 + 4 * np.finfo(np.float32).eps * np.abs(x).max()  # float32 rounding at large |x|
    assert np.abs(dequantize(q, info) - x).max() <= tol
    sat = quantize(np.array([hi + 10, lo - 10], np.float32), info)  # out of range saturates
    assert sat.tolist() == [lim.max, lim.min]


class FixedBatch(nn.Module):
    """Hard-codes batch 1, so calibration must fall back to one image at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).reshape(1, -1)


def test_calibration_export_batches_when_possible(model):
    from edgeprune.export.tflite_litert import _export_for_calibration

    calib = torch.zeros(5, 3, SIZE, SIZE)
    graph, chunk = _export_for_calibration(model, calib[:1], calib)
    assert chunk > 1 and graph(calib).shape == (5, 3)
    graph, chunk = _export_for_calibration(FixedBatch().eval(), calib[:1], calib)
    assert chunk == 1 and graph(calib[:1]).shape == (1, 4 * (SIZE - 2) ** 2)


def test_float_cache_key_follows_weights(model, tmp_path):
    """fp16 / dynamic exports reuse the fp32 conversion only while the model is unchanged."""
    import copy

    twin = copy.deepcopy(model)
    req = ExportRequest(twin, torch.zeros(1, 3, SIZE, SIZE), "fp16", tmp_path, "m")
    key = req.model_key()
    assert req.model_key() == key
    with torch.no_grad():
        twin.head.bias[0] += 1.0  # in-place edit, as pruning or fine-tuning would do
    assert req.model_key() != key
    assert (
        ExportRequest(twin, torch.zeros(1, 3, SIZE, SIZE), "fp16", tmp_path, "m", io_layout="NHWC").model_key()
        != req.model_key()
    )
    assert req.model_key(True, "iOS16") != req.model_key(False, "iOS16")  # extra parts (Core ML) count too
