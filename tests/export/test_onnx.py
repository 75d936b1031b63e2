"""ONNX export (single file, fp32 / fp16, NCHW / NHWC) and the onnxruntime session, on the shared tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="install edgeprune[onnx]")
pytest.importorskip("onnxruntime", reason="install edgeprune[onnx]")

import onnx  # noqa: E402

from edgeprune.artifacts.onnx import inspect_onnx, read_onnx_metadata  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.export import ExportFailedError, ExportRequest, get_exporter  # noqa: E402
from edgeprune.export.onnx_export import OnnxExporter, embed_onnx_metadata  # noqa: E402
from edgeprune.fsutil import sha256_file  # noqa: E402
from edgeprune.runtimes import open_session  # noqa: E402
from tests._nets import DataDependent
from tests.export.test_targets_matrix import (  # noqa: E402
    LABELS,
    META,
    SIZE,
    parity_inputs,
    shared_export,
    shared_model,
    torch_logits,
)

TARGET = "onnx:torch-onnx"


@pytest.mark.parametrize("precision", OnnxExporter.precisions)
def test_record_matches_single_file(precision):
    rec, path = shared_export(TARGET, precision)
    assert path.is_file() and path.suffix == ".onnx"
    assert not path.with_name(path.name + ".data").exists()  # no external data file
    assert rec.sha256 == sha256_file(path) and rec.size_bytes == path.stat().st_size
    assert rec.inputs[0].shape == [1, 3, SIZE, SIZE] and rec.inputs[0].layout == "NCHW"
    assert rec.inputs[0].dtype == "float32" and rec.outputs[0].dtype == "float32"  # fp16 keeps float32 I/O
    assert rec.outputs[0].shape == [1, len(LABELS)]
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert [n for n in rec.notes if "opset" in n]


def test_fp32_and_fp16_weights_and_parity():
    (r32, p32), (r16, p16) = shared_export(TARGET, "fp32"), shared_export(TARGET, "fp16")
    _, _, _, f32 = inspect_onnx(p32)
    _, _, _, f16 = inspect_onnx(p16)
    assert "float16" not in f32["weight_dtypes"] and "float32" in f32["weight_dtypes"]
    assert "float16" in f16["weight_dtypes"] and "float32" not in f16["weight_dtypes"]
    assert f16["op_histogram"].get("Cast", 0) == 2  # exactly one at the input and one at the output
    assert r16.size_bytes < 0.6 * r32.size_bytes
    x = parity_inputs()
    ref = torch_logits(x)
    got32, got16 = open_session(p32).run(x), open_session(p16).run(x)
    assert np.abs(got32 - ref).max() < 1e-4
    assert 0 < np.abs(got16 - ref).max() < 1e-2 * max(1.0, np.abs(ref).max())  # fp16 really computes in fp16


def test_metadata_round_trip(tmp_path):
    rec, path = shared_export(TARGET, "fp16")
    meta = read_onnx_metadata(path)
    assert meta["labels"] == LABELS and meta["preprocessing"] == META["preprocessing"]
    export = meta["export"]
    assert export["precision"] == "fp16" and export["format"] == "onnx" and export["io_layout"] == "NCHW"
    assert export["onnx_opset"] == inspect_onnx(path)[3]["opset"] >= 17
    assert export["onnx_exporter"] in ("torchscript", "dynamo")
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    embed_onnx_metadata(copy, {"version": "9"})
    props = [p.key for p in onnx.load(str(copy)).metadata_props]
    assert props.count("edgeprune") == 1 and read_onnx_metadata(copy) == {"version": "9"}
    x = parity_inputs(8)
    np.testing.assert_array_equal(open_session(copy).run(x), open_session(path).run(x))


def test_export_is_reproducible(tmp_path):
    rec, _ = shared_export(TARGET, "fp16")
    again = get_exporter("onnx").export(
        ExportRequest(
            shared_model(), torch.zeros(1, 3, SIZE, SIZE), "fp16", tmp_path, rec.name, metadata=META
        )
    )
    assert again.sha256 == rec.sha256


def test_nhwc_input():
    rec, path = shared_export(TARGET, "fp32", "NHWC")
    assert rec.io_layout == "NHWC" and rec.inputs[0].shape == [1, SIZE, SIZE, 3]
    assert rec.inputs[0].layout == "NHWC"
    x = parity_inputs()  # sessions take NCHW and transpose for the model
    assert np.abs(open_session(path).run(x) - torch_logits(x)).max() < 1e-4


def test_session_threads_and_batches():
    _, path = shared_export(TARGET, "fp32")
    session = open_session(path, threads=2)
    assert session.session.get_session_options().intra_op_num_threads == 2
    assert session.session.get_providers() == ["CPUExecutionProvider"]
    x = parity_inputs(5)
    np.testing.assert_allclose(session.run(x), np.concatenate([session.run(x[i : i + 1]) for i in range(5)]))
    with pytest.raises(EdgepruneError, match="do not fit"):
        session.run(np.zeros((1, 3, SIZE + 2, SIZE), np.float32))
    assert session.runtime_id().startswith("onnxruntime ")


def test_broken_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgepruneError, match="onnxruntime cannot load bad.onnx"):
        open_session(bad)


def test_unsupported_precision_and_layout(tmp_path):
    exporter = get_exporter("onnx")
    x = torch.zeros(1, 3, SIZE, SIZE)
    with pytest.raises(EdgepruneError, match="int8.*fp32, fp16"):
        exporter.export(ExportRequest(shared_model(), x, "int8", tmp_path, "m"))
    with pytest.raises(EdgepruneError, match="io_layout"):
        exporter.export(ExportRequest(shared_model(), x, "fp32", tmp_path, "m", io_layout="CHWN"))
    assert list(tmp_path.iterdir()) == []


def test_data_dependent_model_is_refused_not_baked_in(tmp_path):
    req = ExportRequest(DataDependent().eval(), torch.zeros(1, 3, SIZE, SIZE), "fp32", tmp_path, "broken")
    with pytest.raises(ExportFailedError, match="onnx:torch-onnx export of 'broken'"):
        get_exporter("onnx").export(req)
    assert list(tmp_path.iterdir()) == []
