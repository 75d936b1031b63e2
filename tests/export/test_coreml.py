"""Core ML export (.mlpackage directories, every precision) and its Linux verification: structural read-back
of the MIL program plus the simulated-weights session. On macOS the real model is also run."""

from __future__ import annotations

import copy
import hashlib
import platform
from functools import cache

import numpy as np
import pytest
import torch

pytest.importorskip("coremltools", reason="install edgeprune[coreml]")
pytest.importorskip("sklearn", reason="install edgeprune[coreml]")

from edgeprune.artifacts.coreml import inspect_mlpackage, load_spec, read_coreml_metadata  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.export import ExportRequest, get_exporter  # noqa: E402
from edgeprune.export.coreml_export import CoreMLExporter  # noqa: E402
from edgeprune.export.coreml_package import embed_coreml_metadata  # noqa: E402
from edgeprune.fsutil import sha256_file  # noqa: E402
from edgeprune.runtimes import open_session  # noqa: E402
from edgeprune.runtimes.coreml import (  # noqa: E402
    SIMULATED,
    CoreMLSession,
    decompressed_layers,
    reference_models,
)
from tests.export.test_targets_matrix import (  # noqa: E402
    LABELS,
    META,
    SIZE,
    MatrixNet,
    parity_inputs,
    shared_export,
    shared_model,
    torch_logits,
)

TARGET = "coreml:coremltools"
PRECISIONS = CoreMLExporter.precisions
# what each precision must leave in the MIL program of the shared model: (compression op, weight storage)
COMPRESSION = {
    "fp32": (None, "fp32"),
    "fp16": (None, "fp16"),
    "int8": ("constexpr_affine_dequantize", "int8"),
    "pal6": ("constexpr_lut_to_dense", "lut6"),
    "pal4": ("constexpr_lut_to_dense", "lut4"),
    "int8-block": ("constexpr_blockwise_shift_scale", "int8"),
    "int4-block": ("constexpr_blockwise_shift_scale", "int4"),
}


def directory_digest(path) -> str:
    """sha256 over sorted (relative path, file sha256) pairs, computed independently of the exporter."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


@cache
def simulated(precision: str, layout: str = "NCHW") -> CoreMLSession:
    _, path = shared_export(TARGET, precision, layout)
    return CoreMLSession(path, reference=shared_model(), simulate=True)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_package_record_and_structure(precision):
    rec, path = shared_export(TARGET, precision)
    assert path.is_dir() and path.name.endswith(".mlpackage") and (path / "Manifest.json").is_file()
    assert rec.sha256 == directory_digest(path)
    assert rec.size_bytes == sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert rec.inputs[0].shape == [1, 3, SIZE, SIZE] and rec.inputs[0].dtype == "float32"
    assert rec.inputs[0].layout == "NCHW" and rec.outputs[0].shape == [1, len(LABELS)]

    info = inspect_mlpackage(path)
    assert info.deployment_target == ("iOS18" if precision.endswith("-block") else "iOS16")
    # BN is folded into the convs and nothing unexpected appears in the program
    assert info.op_histogram["conv"] == 4 and info.op_histogram["linear"] == 1
    assert "batch_norm" not in info.op_histogram
    op, storage = COMPRESSION[precision]
    compressed = [w for w in info.weights if w.compression]
    if op is None:
        assert info.compression_ops == {} and info.weight_dtypes == [storage]
        assert info.op_histogram.get("cast", 0) == (
            2 if precision == "fp16" else 0
        )  # fp16: casts at the I/O only
    else:
        assert set(info.compression_ops) == {op} and {w.storage for w in compressed} == {storage}
        big = [w for w in info.weights if w.size > 2048]  # coremltools leaves smaller tensors in fp16
        assert {w.name for w in compressed} <= {w.name for w in big}
        assert info.compressed_fraction > (0.8 if precision.endswith("-block") else 0.9)
    if precision.endswith("-block"):
        # the 16-channel-input conv cannot split into blocks of 32; the 64-channel ones use 2 blocks each
        assert {w.granularity for w in compressed} == {"per-block32"} and len(compressed) == 2
    elif op == "constexpr_affine_dequantize":
        assert {w.granularity for w in compressed} == {"per-channel"} and len(compressed) == 3


def test_sizes_shrink_with_precision():
    size = {p: shared_export(TARGET, p)[0].size_bytes for p in PRECISIONS}
    assert size["fp32"] > 1.8 * size["fp16"]
    assert size["fp16"] > size["int8"] > size["pal6"] > size["pal4"]
    assert size["int8-block"] > size["int4-block"]


def test_simulated_parity_orders_the_compression_error():
    x = parity_inputs()
    ref = torch_logits(x)
    err, weight_err = {}, {}
    for precision in PRECISIONS:
        session = simulated(precision)
        assert session.verification_kind == SIMULATED
        err[precision] = float(np.abs(session.run(x) - ref).max())
        weight_err[precision] = max(session.weight_errors)
    assert err["fp32"] < 1e-4  # confirms the program-order weight mapping and the BN folding
    assert weight_err["fp32"] < 1e-6 and 0 < weight_err["fp16"] < 1e-3
    assert weight_err["int8"] < weight_err["pal6"] < weight_err["pal4"] < 0.5
    assert weight_err["int8-block"] < weight_err["int4-block"] < 0.5
    assert max(err.values()) > err["fp32"]  # the compressed variants really differ


@pytest.mark.parametrize("precision", ["pal4", "int4-block"])
def test_fast_decompression_equals_public_decompress_weights(precision):
    _, path = shared_export(TARGET, precision)
    fast, public = decompressed_layers(path), decompressed_layers(path, public_api=True)
    assert [(t, w.shape) for t, _, w, _ in fast] == [(t, w.shape) for t, _, w, _ in public]
    for (_, _, w1, b1), (_, _, w2, b2) in zip(fast, public, strict=True):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    # 4 bits: at most 16 distinct values per palette (pal4: per tensor; int4-block: per channel and block)
    big = [w for _, _, w, _ in fast if w.size > 2048 and (precision == "pal4" or w.shape[1] % 32 == 0)]
    assert big
    for w in big:
        groups = (
            [w]
            if precision == "pal4"
            else [w[o, b : b + 32] for o in range(w.shape[0]) for b in range(0, w.shape[1], 32)]
        )
        assert max(np.unique(g).size for g in groups) <= 16


def test_open_session_uses_the_reference_resolver():
    _, path = shared_export(TARGET, "int8")
    with pytest.raises(EdgepruneError, match="needs macOS|PyTorch model"):
        CoreMLSession(path, simulate=True)
    with reference_models({path: shared_model()}):
        session = open_session(path, threads=2)  # format from the .mlpackage suffix
    expected = "macos-predict" if platform.system() == "Darwin" else SIMULATED
    assert session.verification_kind == expected
    assert session.run(parity_inputs(3)).shape == (3, len(LABELS))
    with pytest.raises(EdgepruneError, match="do not fit"):
        session.run(np.zeros((1, 3, SIZE + 4, SIZE), np.float32))


def test_wrong_reference_model_is_detected():
    _, path = shared_export(TARGET, "fp16")
    retrained = copy.deepcopy(shared_model())
    with torch.no_grad():
        for p in retrained.parameters():
            p.copy_(torch.randn_like(p))
    with pytest.raises(EdgepruneError, match="do not line up"):
        CoreMLSession(path, reference=retrained, simulate=True)
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    with pytest.raises(EdgepruneError, match="conv/linear ops"):
        CoreMLSession(path, reference=other, simulate=True)


def test_metadata_in_spec(tmp_path):
    rec, path = shared_export(TARGET, "pal6")
    meta = read_coreml_metadata(path)
    assert meta["labels"] == LABELS and meta["preprocessing"] == META["preprocessing"]
    assert meta["export"]["precision"] == "pal6" and meta["export"]["deployment_target"] == "iOS16"
    spec = load_spec(path)
    user = spec.description.metadata.userDefined
    assert user["labels"] == '["h", "v", "dot"]' and user["version"] == "7"  # nested values as JSON
    assert any(k.startswith("com.github.apple.coremltools") for k in user)  # converter's keys kept
    assert "3 classes: h, v, dot" in spec.description.metadata.shortDescription
    assert spec.description.metadata.author == "edgeprune" and spec.description.metadata.versionString == "7"
    # re-embedding replaces the entry and leaves weights (and so the simulation) untouched
    copy_path = tmp_path / "copy.mlpackage"
    import shutil

    shutil.copytree(path, copy_path)
    embed_coreml_metadata(copy_path, {"labels": ["a", "b", "c"], "export": meta["export"]})
    assert read_coreml_metadata(copy_path)["labels"] == ["a", "b", "c"]
    user = load_spec(copy_path).description.metadata.userDefined
    assert "version" not in user and "preprocessing" not in user  # stale flattened keys are gone
    assert any(k.startswith("com.github.apple.coremltools") for k in user)
    x = parity_inputs(8)
    a = CoreMLSession(copy_path, reference=shared_model(), simulate=True).run(x)
    np.testing.assert_array_equal(a, simulated("pal6").run(x))


def test_nhwc_package():
    rec, path = shared_export(TARGET, "fp16", "NHWC")
    assert (
        rec.io_layout == "NHWC"
        and rec.inputs[0].shape == [1, SIZE, SIZE, 3]
        and rec.inputs[0].layout == "NHWC"
    )
    info = inspect_mlpackage(path)
    assert info.op_histogram.get("transpose", 0) == 1 and info.op_histogram["conv"] == 4
    x = parity_inputs()
    assert np.abs(simulated("fp16", "NHWC").run(x) - torch_logits(x)).max() < 1e-2


def test_export_is_reproducible(tmp_path):
    rec, _ = shared_export(TARGET, "pal6")
    again = get_exporter("coreml").export(
        ExportRequest(
            shared_model(), torch.from_numpy(parity_inputs(1)), "pal6", tmp_path, rec.name, metadata=META
        )
    )
    # same weights and spec bytes (k-means is deterministic) and stable ids in Manifest.json
    assert again.sha256 == rec.sha256 and again.size_bytes == rec.size_bytes


def test_weight_threshold_option(tmp_path):
    calib = torch.from_numpy(parity_inputs(1))
    req = ExportRequest(shared_model(), calib, "pal4", tmp_path, "all", metadata=META)
    rec = CoreMLExporter(weight_threshold=0).export(req)
    info = inspect_mlpackage(tmp_path / rec.file)
    assert info.compressed_fraction == 1.0 and len(info.compression_ops) == 1
    assert info.compression_ops["constexpr_lut_to_dense"] == len(info.weights) == 5


def test_bad_requests(tmp_path):
    exporter = get_exporter("coreml")
    x = torch.zeros(1, 3, SIZE, SIZE)
    with pytest.raises(EdgepruneError, match="int3.*fp32, fp16, int8, pal6, pal4, int8-block, int4-block"):
        exporter.export(ExportRequest(shared_model(), x, "int3", tmp_path, "m"))
    with pytest.raises(EdgepruneError, match="training mode"):
        exporter.export(ExportRequest(MatrixNet().train(), x, "fp16", tmp_path, "m"))
    assert list(tmp_path.iterdir()) == []
    not_a_package = tmp_path / "m.mlpackage"
    not_a_package.write_text("x")
    with pytest.raises(EdgepruneError, match="not a .mlpackage directory"):
        CoreMLSession(not_a_package, reference=shared_model())


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction needs macOS")
@pytest.mark.parametrize("precision", ["fp16", "int8", "pal6"])
def test_macos_prediction_matches_simulation(precision):
    _, path = shared_export(TARGET, precision)
    real = CoreMLSession(path, simulate=False)
    assert real.verification_kind == "macos-predict"
    x = parity_inputs(16)
    got, sim = real.run(x), simulated(precision).run(x)
    assert np.abs(got - sim).max() < 5e-2 * max(1.0, np.abs(sim).max())  # fp16 activations on top
