"""Writes the fixtures the Android app's JVM tests read, all produced by the Python side of edgeprune.

Layout of ``OUT``::

    bundle/            a bundle directory: model.json (validated by edgeprune.schemas.BundleModelJson),
                       labels.txt, manifest.json, model.tflite (opaque fixture bytes), golden/*.npy + *.png
    linear_w.npy, linear_b.npy   the tiny linear "model" whose outputs are the golden expected_logits
    expect.json        facts about the bundle the Java parser must report
    stats_cases.json   samples + edgeprune.profile.latency_stats results
    preprocess_cases.json  contracts + uint8 images + PreprocessContract.apply outputs (in the contract layout)
    npy/*.npy + npy_expect.json  numpy-written arrays (v1/v2 headers, float32/float64/uint8, big endian)

Run: ``python tests/android/make_fixture_bundle.py OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.contract import PreprocessContract
from edgeprune.fsutil import sha256_file, write_json_atomic
from edgeprune.profile.stats import latency_stats
from edgeprune.schemas import BundleArtifact, BundleFile, BundleModelJson, GoldenSample, TensorInfo

CLASS_NAMES = ["normal", "benign", "malignant"]
INPUT_HW = (8, 8)
GOLDEN_ATOL = 1e-4


def _contract() -> PreprocessContract:
    return PreprocessContract(
        input_size=INPUT_HW,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        class_names=CLASS_NAMES,
    )


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def _write_bundle(root: Path, out: Path, rng: np.random.Generator) -> dict[str, Any]:
    """A bundle whose golden logits come from a linear model W x + b on the preprocessed input."""
    contract = _contract()
    bundle = root
    (bundle / "golden").mkdir(parents=True, exist_ok=True)
    dim = contract.in_channels * INPUT_HW[0] * INPUT_HW[1]
    w = rng.normal(0, 0.05, size=(len(CLASS_NAMES), dim)).astype(np.float32)
    b = rng.normal(0, 0.1, size=(len(CLASS_NAMES),)).astype(np.float32)
    np.save(out / "linear_w.npy", w)
    np.save(out / "linear_b.npy", b)

    model = bundle / "model.tflite"
    model.write_bytes(b"TFL3" + rng.integers(0, 256, size=2048, dtype=np.uint8).tobytes())
    (bundle / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    write_json_atomic(
        bundle / "manifest.json", {"fixture": True, "made_by": "tests/android/make_fixture_bundle.py"}
    )

    golden: list[GoldenSample] = []
    for i in range(3):
        image = rng.integers(0, 256, size=(11, 13, 3), dtype=np.uint8)
        x = contract.apply(image[None])  # (1, 3, 8, 8) float32, NCHW = the fixture model's layout
        logits = (w.astype(np.float64) @ x.reshape(-1).astype(np.float64) + b).astype(np.float32)
        np.save(bundle / "golden" / f"sample_{i}.npy", x)
        _write_png(bundle / "golden" / f"sample_{i}.png", image)
        golden.append(
            GoldenSample(
                input_file=f"golden/sample_{i}.npy",
                image_file=f"golden/sample_{i}.png",
                label=i % len(CLASS_NAMES),
                expected_logits=[float(v) for v in logits],
                expected_class=int(np.argmax(logits)),
                atol=GOLDEN_ATOL,
            )
        )

    artifact = BundleArtifact(
        file="model.tflite",
        format="tflite",
        precision="fp32",
        quantization="none",
        sha256=sha256_file(model),
        size_bytes=model.stat().st_size,
        inputs=[TensorInfo(name="input", shape=[1, 3, *INPUT_HW], dtype="float32", layout="NCHW")],
        outputs=[TensorInfo(name="logits", shape=[1, len(CLASS_NAMES)], dtype="float32")],
        gate="passed",
    )
    files = [
        BundleFile(path=p.relative_to(bundle).as_posix(), sha256=sha256_file(p), size_bytes=p.stat().st_size)
        for p in sorted(bundle.rglob("*"))
        if p.is_file() and p.name != "model.json"
    ]
    meta = BundleModelJson(
        name="fixture-classifier",
        version="1.2.3",
        created_at="2026-01-02T03:04:05+00:00",
        artifacts=[artifact],
        preprocessing=contract.model_dump(mode="json"),
        class_names=CLASS_NAMES,
        decision_thresholds={"malignant": 0.3},
        intended_use="Fixture bundle for the JVM tests; not a medical device.",
        metrics={"model.tflite": {"top1": 0.9}},
        golden_samples=golden,
        files=files,
    )
    # round-trip through the schema so the file is exactly what the Python side accepts
    text = meta.model_dump_json(indent=2)
    BundleModelJson.model_validate_json(text)
    (bundle / "model.json").write_text(text + "\n", encoding="utf-8")
    return {
        "name": meta.name,
        "version": meta.version,
        "class_names": meta.class_names,
        "input_size": list(INPUT_HW),
        "layout": contract.layout,
        "in_channels": contract.in_channels,
        "mean": contract.mean,
        "std": contract.std,
        "n_golden": len(golden),
        "artifact_file": artifact.file,
        "artifact_sha256": artifact.sha256,
        "artifact_size": artifact.size_bytes,
        "files": [f.path for f in files],
        "intended_use": meta.intended_use,
        "decision_thresholds": meta.decision_thresholds,
        "golden_atol": GOLDEN_ATOL,
    }


def _stats_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    arrays = [
        ([3.5], 0.1),
        ([2.0, 1.0], 0.1),
        ([5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 1000], 0.1),
        ([4.0, 4.0, 4.0, 1.0, 9.0, 4.0, 4.0], 0.1),
        (rng.lognormal(1.0, 0.4, size=50).tolist(), 0.1),
        (rng.gamma(2.0, 3.0, size=333).tolist(), 0.1),
        (rng.uniform(0.1, 0.2, size=97).tolist(), 0.25),
        (rng.exponential(5.0, size=20).tolist(), 0.0),
    ]
    return [{"samples": s, "trim": t, "expected": latency_stats(s, trim=t).model_dump()} for s, t in arrays]


def _preprocess_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    specs: list[tuple[dict[str, Any], tuple[int, ...]]] = [
        ({"input_size": (8, 8), "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, (10, 7, 3)),
        ({"input_size": (6, 6), "source_channels": 1, "gray_to_rgb": True, "layout": "NHWC"}, (9, 11)),
        (
            {"input_size": (12, 9), "channel_order": "BGR", "layout": "NHWC", "resize_align_corners": True},
            (5, 6, 3),
        ),
        ({"input_size": (14, 10), "resize": "nearest"}, (7, 5, 3)),
        (
            {"input_size": (4, 3), "resize": "nearest", "mean": [0.1, 0.2, 0.3], "std": [0.9, 0.8, 0.7]},
            (7, 5, 3),
        ),
        (
            {"input_size": (4, 4), "in_channels": 1, "channel_order": "GRAY", "mean": [0.5], "std": [0.25]},
            (6, 6, 3),
        ),
        (
            {
                "input_size": (8, 8),
                "in_channels": 1,
                "source_channels": 1,
                "channel_order": "GRAY",
                "mean": [0.1],
                "std": [0.3],
            },
            (8, 8),
        ),
        (
            {"input_size": (5, 5), "resize": "none", "scale": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]},
            (5, 5, 3),
        ),
        ({"input_size": (28, 28)}, (64, 48, 3)),
    ]
    cases = []
    for kwargs, shape in specs:
        contract = PreprocessContract(class_names=["a", "b"], **kwargs)
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        y = contract.apply(image[None])[0]  # (C, H, W)
        if contract.layout == "NHWC":
            y = np.transpose(y, (1, 2, 0))
        cases.append(
            {
                "contract": contract.model_dump(mode="json"),
                "height": shape[0],
                "width": shape[1],
                "channels": shape[2] if len(shape) == 3 else 1,
                "pixels": image.reshape(-1).tolist(),
                "expected": np.ascontiguousarray(y).reshape(-1).astype(float).tolist(),
            }
        )
    return cases


def _npy_cases(out: Path, rng: np.random.Generator) -> dict[str, Any]:
    d = out / "npy"
    d.mkdir(parents=True, exist_ok=True)
    arrays = {
        "f32.npy": rng.normal(size=(2, 3, 4)).astype(np.float32),
        "f64.npy": rng.normal(size=(5,)).astype(np.float64),
        "u8.npy": rng.integers(0, 256, size=(2, 2), dtype=np.uint8),
        "f32_big_endian.npy": rng.normal(size=(3, 2)).astype(">f4"),
        "scalar_row.npy": np.array([[1.5, -2.25, 1e-7]], dtype=np.float32),
    }
    expect: dict[str, Any] = {}
    for name, arr in arrays.items():
        np.save(d / name, arr)
        expect[name] = {
            "shape": list(arr.shape),
            "values": arr.astype(np.float32).reshape(-1).astype(float).tolist(),
        }
    v2 = rng.normal(size=(4, 1)).astype(np.float32)
    with open(d / "f32_v2.npy", "wb") as f:
        np.lib.format.write_array(f, v2, version=(2, 0))
    expect["f32_v2.npy"] = {"shape": [4, 1], "values": v2.reshape(-1).astype(float).tolist()}
    return expect


def make_fixture(out: str | Path, seed: int = 7) -> Path:
    """Writes every fixture under ``out`` and returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    expect = _write_bundle(out / "bundle", out, rng)
    write_json_atomic(out / "expect.json", expect)
    (out / "stats_cases.json").write_text(json.dumps(_stats_cases(rng)), encoding="utf-8")
    (out / "preprocess_cases.json").write_text(json.dumps(_preprocess_cases(rng)), encoding="utf-8")
    write_json_atomic(out / "npy_expect.json", _npy_cases(out, rng))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/android/make_fixture_bundle.py OUT_DIR")
    print(make_fixture(sys.argv[1]))
