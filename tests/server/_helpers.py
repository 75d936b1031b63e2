"""Test data for the server suite: bundle zips built from a BundleModelJson dict, and measurements."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from typing import Any

from edgeprune.schemas import BundleModelJson


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_json(name: str, version: str, files: dict[str, bytes], artifact: str = "model.tflite",
               accuracy: float | None = 0.8, precision: str = "int8") -> dict[str, Any]:
    """A dict that validates as BundleModelJson, listing ``files`` (one of them is the artifact)."""
    art = files[artifact]
    doc = {
        "name": name,
        "version": version,
        "created_at": "2025-01-01T00:00:00+00:00",
        "artifacts": [{"file": artifact, "format": "tflite", "precision": precision, "sha256": sha(art),
                       "size_bytes": len(art), "gate": "passed"}],
        "preprocessing": {"input_size": [28, 28], "layout": "NHWC", "mean": [0.5], "std": [0.5]},
        "class_names": ["benign", "malignant"],
        "metrics": {artifact: {"balanced_accuracy": accuracy}} if accuracy is not None else {},
        "files": [{"path": p, "sha256": sha(b), "size_bytes": len(b)} for p, b in files.items() if p != artifact],
    }
    BundleModelJson.model_validate(doc)  # the test data itself must be a valid bundle description
    return doc


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def make_bundle(name: str = "demo", version: str = "1.0.0", model_bytes: bytes | None = None,
                accuracy: float | None = 0.8, **overrides: Any) -> tuple[bytes, dict[str, Any]]:
    """A valid bundle zip (fake model bytes, labels.txt, model.json) and its model.json dict."""
    model = model_bytes if model_bytes is not None else f"TFL3 fake model {name} {version}".encode() * 8
    files = {"model.tflite": model, "labels.txt": b"benign\nmalignant\n"}
    doc = model_json(name, version, files, accuracy=accuracy)
    doc.update(overrides)
    return make_zip({**files, "model.json": json.dumps(doc).encode()}), doc


def measurement(artifact_sha256: str, device_id: str = "pixel-8", p50: float = 5.0, mid: str | None = None,
                kind: str = "android-app", **extra: Any) -> dict[str, Any]:
    """A Measurement body as the app would post it."""
    body: dict[str, Any] = {
        "id": mid or uuid.uuid4().hex,
        "created_at": "2025-01-02T03:04:05+00:00",
        "artifact_name": "model.tflite",
        "artifact_sha256": artifact_sha256,
        "device": {"kind": kind, "id": device_id, "model": device_id, "abi": "arm64-v8a"},
        "runtime": "litert 2.3.0",
        "threads": 4,
        "warmup": 5,
        "runs": 50,
        "latency": {"n": 50, "mean_ms": p50 * 1.1, "std_ms": 0.2, "min_ms": p50 * 0.9, "max_ms": p50 * 2,
                    "p50_ms": p50, "p90_ms": p50 * 1.3, "p99_ms": p50 * 1.8, "trimmed_mean_ms": p50},
        "peak_rss_mb": 42.5,
    }
    body.update(extra)
    return body
