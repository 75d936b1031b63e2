"""Tampering is detected; the gate is enforced; bad requests are one-line errors."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import read_json, sha256_file, write_json_atomic
from edgeprune.package import BundleResult, build_bundle, verify_bundle


@pytest.fixture
def copy(bundle: BundleResult, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(bundle.dir, dst)
    return dst


def _rewrite_listed(root: Path, rel: str) -> None:
    """Update model.json's checksum of ``rel``, as someone who edits both the file and model.json would."""
    m = read_json(root / "model.json")
    for f in m["files"]:
        if f["path"] == rel:
            f["sha256"], f["size_bytes"] = sha256_file(root / rel), (root / rel).stat().st_size
    write_json_atomic(root / "model.json", m)


def test_flipped_byte_in_the_model_is_detected(copy: Path) -> None:
    model = copy / "pruned_tflite_int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    report = verify_bundle(copy)
    assert not report.ok
    assert any("sha256 mismatch for pruned_tflite_int8.tflite" in f for f in report.failures)
    assert all(c.artifact != "pruned_tflite_int8.tflite" for c in report.golden)  # never loaded
    with pytest.raises(EdgepruneError, match="failed verification"):
        report.raise_for_failures()


def test_edited_labels_are_detected(copy: Path) -> None:
    labels = copy / "labels.txt"
    names = labels.read_text().splitlines()
    labels.write_text("\n".join([names[1], names[0], *names[2:]]) + "\n")  # same size, swapped classes
    failures = verify_bundle(copy).failures
    assert any("sha256 mismatch for labels.txt" in f for f in failures)
    assert any("does not match class_names" in f for f in failures)
    _rewrite_listed(copy, "labels.txt")  # fixing the checksum does not hide the swap
    assert verify_bundle(copy).failures == ["labels.txt does not match class_names in model.json"]


def test_changed_golden_input_and_logits_are_detected(copy: Path) -> None:
    m = read_json(copy / "model.json")
    sample = m["golden_samples"][0]
    x = np.load(copy / sample["input_file"])
    x[0, 0, 0, 0] += 0.5
    np.save(copy / sample["input_file"], x)
    _rewrite_listed(copy, sample["input_file"])
    assert any(f.startswith(f"preprocessing {sample['image_file']}") for f in verify_bundle(copy).failures)

    m = read_json(copy / "model.json")
    m["golden_samples"][1]["expected_logits"][0] += 10 * m["golden_samples"][1]["atol"]
    write_json_atomic(copy / "model.json", m)
    failures = verify_bundle(copy).failures
    second = m['golden_samples'][1]['input_file']
    assert any(f.startswith(f"golden sample {second} on pruned_tflite_int8") for f in failures)


def test_extra_missing_and_invalid_content(copy: Path) -> None:
    (copy / "golden" / "extra.txt").write_text("x")
    assert verify_bundle(copy).failures == ["golden/extra.txt is in the bundle but not listed in model.json"]
    (copy / "golden" / "extra.txt").unlink()
    (copy / "manifest.json").unlink()
    assert any("manifest.json is listed in model.json but missing" in f for f in verify_bundle(copy).failures)
    m = read_json(copy / "model.json")
    del m["artifacts"]
    (copy / "model.json").write_text(json.dumps(m))
    assert "does not match the bundle schema" in verify_bundle(copy).failures[0]
    with pytest.raises(EdgepruneError, match="no model.json"):
        verify_bundle(copy / "golden")


def test_tampered_zip_member_is_detected(bundle: BundleResult, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle.zip) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "pruned_tflite_fp32.tflite":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            dst.writestr(info, data)
    failures = verify_bundle(bad).failures
    assert failures == ["sha256 mismatch for pruned_tflite_fp32.tflite (the file was changed or damaged)"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../model.json", "{}")
    with pytest.raises(EdgepruneError, match="unsafe entry"):
        verify_bundle(evil)


def test_gate_rejected_artifacts_need_force(rejected_run: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgepruneError, match="refusing to package.*--force") as exc:
        build_bundle(rejected_run, out=tmp_path)
    assert "balanced accuracy may drop" in str(exc.value)
    assert not any(tmp_path.iterdir())  # nothing half-written
    forced = build_bundle(rejected_run, out=tmp_path, version="0.0.1-rejected", force=True,
                          artifacts=["pruned_tflite_fp32"], golden_per_class=1)
    m = forced.model_json
    assert [(a.file, a.gate) for a in m.artifacts] == [("pruned_tflite_fp32.tflite", "rejected")]
    assert m.metrics["pruned_tflite_fp32.tflite"]["gate"]["status"] == "rejected"
    assert len(m.golden_samples) == len(m.class_names)
    assert verify_bundle(forced.zip).ok


def test_bad_requests_are_one_line_errors(built_run: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgepruneError, match="did you mean 'pruned_tflite_int8'"):
        build_bundle(built_run, artifacts=["pruned_tflite_int9"], out=tmp_path)
    with pytest.raises(EdgepruneError, match="unknown app 'ios'"):
        build_bundle(built_run, app="ios", out=tmp_path)
    with pytest.raises(EdgepruneError, match="binary models"):
        build_bundle(built_run, threshold=0.3, out=tmp_path)
    with pytest.raises(EdgepruneError, match="invalid bundle version"):
        build_bundle(built_run, version="../x", out=tmp_path)
    with pytest.raises(EdgepruneError, match="does not exist"):
        build_bundle(tmp_path / "nope", out=tmp_path)
    not_a_bundle = tmp_path / "assets"
    not_a_bundle.mkdir()
    (not_a_bundle / "keep.txt").write_text("user file")
    with pytest.raises(EdgepruneError, match="refusing to replace"):
        build_bundle(built_run, out=tmp_path / "b", into=not_a_bundle, artifacts=["pruned_tflite_fp32"])
    assert (not_a_bundle / "keep.txt").read_text() == "user file"


def test_metadata_is_embedded_when_the_artifact_has_none(built_run: Path, tmp_path: Path) -> None:
    from ai_edge_litert.tools import flatbuffer_utils

    from edgeprune.artifacts.tflite_metadata import read_tflite_metadata

    run = tmp_path / "run"
    shutil.copytree(built_run, run, ignore=shutil.ignore_patterns("bundles"))
    art = run / "artifacts" / "pruned_tflite_fp32.tflite"
    model = flatbuffer_utils.read_model(str(art))
    model.metadata = None
    flatbuffer_utils.write_model(model, str(art))
    assert read_tflite_metadata(art) is None
    manifest = read_json(run / "manifest.json")
    for stage in manifest["stages"]:
        for rec in stage["summary"].get("artifacts", []) if stage["name"] == "export" else []:
            if rec["name"] == "pruned_tflite_fp32":
                rec["sha256"], rec["size_bytes"] = sha256_file(art), art.stat().st_size
    write_json_atomic(run / "manifest.json", manifest)
    result = build_bundle(run, out=tmp_path / "out", version="1", artifacts=["pruned_tflite_fp32"],
                          golden_per_class=1)
    packaged = result.dir / "pruned_tflite_fp32.tflite"
    meta = read_tflite_metadata(packaged)
    assert meta is not None and meta["export"]["name"] == "pruned_tflite_fp32"
    assert result.model_json.artifacts[0].sha256 == sha256_file(packaged) != sha256_file(art)
    assert verify_bundle(result.dir).ok


def test_binary_decision_threshold_rules() -> None:
    from edgeprune.package.bundle import decision_thresholds

    assert decision_thresholds(["malignant", "benign"], None, None) == {}
    assert decision_thresholds(["malignant", "benign"], 0.3, "malignant") == {"malignant": 0.3}
    with pytest.raises(EdgepruneError, match="needs --positive-class"):
        decision_thresholds(["malignant", "benign"], 0.3, None)
    with pytest.raises(EdgepruneError, match="unknown --positive-class 'tumour'"):
        decision_thresholds(["malignant", "benign"], 0.3, "tumour")
    with pytest.raises(EdgepruneError, match="probability in"):
        decision_thresholds(["malignant", "benign"], 1.5, "benign")
    with pytest.raises(EdgepruneError, match="binary models"):
        decision_thresholds(["a", "b", "c"], 0.5, "a")
