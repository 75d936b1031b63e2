"""Every bundled .tflite carries the official TFLite Metadata (read back with tflite-support's
MetadataDisplayer), keeps the project's own entry, and still loads and runs in ai-edge-litert unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.contract import PreprocessContract
from edgeprune.package import BundleResult
from edgeprune.package import golden as g

md = pytest.importorskip("tensorflow_lite_support.metadata.python.metadata",
                         reason="pip install --no-deps tflite-support==0.4.4 (the official metadata reader)")


def test_official_metadata_reads_back(bundle: BundleResult, built_run) -> None:
    m = bundle.model_json
    contract = PreprocessContract.model_validate(m.preprocessing)
    for art in m.artifacts:
        path = bundle.dir / art.file
        shown = md.MetadataDisplayer.with_model_file(str(path))
        meta = json.loads(shown.get_metadata_json())
        assert meta["name"].startswith(art.file.removesuffix(".tflite"))
        assert meta["version"].startswith("edgeprune ") and "not a medical device" in meta["description"]
        tin = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
        norm = tin["process_units"][0]
        assert norm["options_type"] == "NormalizationOptions"
        # (p - mean') / std' on 0-255 pixels equals the contract's (p * scale - mean) / std
        pixels = np.array([0.0, 37.0, 255.0])
        for c in range(len(contract.mean)):
            ours = (pixels * contract.scale - contract.mean[c]) / contract.std[c]
            theirs = (pixels - norm["options"]["mean"][c]) / norm["options"]["std"][c]
            np.testing.assert_allclose(theirs, ours, rtol=1e-6, atol=1e-6)
        out = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]
        assert out["associated_files"] == [{"name": "labels.txt", "type": "TENSOR_AXIS_LABELS",
                                            "description": "Class names, one per line, in output order."}]
        assert shown.get_packed_associated_file_list() == ["labels.txt"]
        assert shown.get_associated_file_buffer("labels.txt").decode().splitlines() == m.class_names
        assert read_tflite_metadata(path)["export"]["name"] == art.file.removesuffix(".tflite")  # ours is kept
        # the model with metadata computes exactly what the exported file computes
        source = built_run / "artifacts" / art.file
        x = np.random.default_rng(0).standard_normal([2, *art.inputs[0].shape[1:]]).astype(np.float32)
        x = g.to_nchw(x, g.input_layout(art.inputs[0], contract))
        np.testing.assert_array_equal(g.litert_logits(path, x)[0], g.litert_logits(source, x)[0])


def test_golden_samples_exist_per_artifact(bundle: BundleResult) -> None:
    m = bundle.model_json
    files = [a.file for a in m.artifacts]
    assert len(files) == 2
    by_art = {f: g.samples_for(m.golden_samples, f, files[0]) for f in files}
    assert [s.artifact for s in m.golden_samples[: len(by_art[files[0]])]] == [files[0]] * len(by_art[files[0]])
    assert len(by_art[files[0]]) == len(by_art[files[1]]) == 2 * len(m.class_names)
    int8, fp32 = by_art[files[0]], by_art[files[1]]
    assert [s.input_file for s in int8] == [s.input_file for s in fp32]
    assert int8[0].atol != fp32[0].atol  # each artifact keeps its own tolerance (a quant step vs a float floor)
    assert int8[0].expected_logits != fp32[0].expected_logits
    assert m.metrics[files[1]]["golden"]["expected_logits"][0] == fp32[0].expected_logits
