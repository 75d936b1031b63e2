"""Golden samples: real test images of a run, preprocessed for the artifact, with the logits LiteRT gives.

The raw images are re-read from the run's dataset with the same seed and split settings as the build, so
the golden inputs are test images the artifact was verified on, not synthetic ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeprune.contract import PreprocessContract
from edgeprune.errors import EdgepruneError
from edgeprune.rundir.config import config_from_manifest
from edgeprune.rundir.manifest import Manifest
from edgeprune.schemas import BundleArtifact, GoldenSample, TensorInfo

FLOAT_ATOL_FLOOR = 1e-4
FLOAT_ATOL_FACTOR = 10.0
QUANT_STEP_SLACK = 1.001  # one output step, plus room for float rounding of the dequantized values
GOLDEN_DIR = "golden"


def run_test_images(manifest: Manifest, data_source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of the run's test split, exactly the ones the verify stage used."""
    from edgeprune.data import load_dataset, stratified_sample

    cfg = config_from_manifest(manifest)
    source = data_source or cfg.data.source
    if source != "embedded" and not Path(source).expanduser().exists():
        raise EdgepruneError(f"the run's dataset '{source}' is not found (golden samples are real test images)",
                             "pass --data PATH pointing at the same dataset file or folder")
    d = cfg.data
    ds = load_dataset(source, seed=cfg.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                      dicom_window=d.dicom_window)
    expected_sha = manifest.data.get("source_sha256")
    if expected_sha and ds.source_sha256 != expected_sha:
        raise EdgepruneError(f"dataset '{source}' differs from the one the run was built on (sha256 mismatch)",
                             "pass --data with the original dataset")
    images, labels = ds.splits["test"]
    if cfg.verify.max_samples is not None and cfg.verify.max_samples < len(labels):
        keep = stratified_sample(labels, cfg.verify.max_samples, cfg.seed)
        images, labels = images[keep], labels[keep]
    expected_n = manifest.data.get("sizes", {}).get("test")
    if expected_n is not None and int(expected_n) != len(labels):
        raise EdgepruneError(f"rebuilt test split has {len(labels)} images, the run verified {expected_n}",
                             "package with the edgeprune version and dataset that built the run")
    return images, labels.astype(np.int64)


def pick_golden(labels: np.ndarray, per_class: int, seed: int) -> list[int]:
    """Up to ``per_class`` test indices of every class, chosen with ``seed``; sorted by class then index."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for cls in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == cls)
        order = rng.permutation(members.size)
        picked += sorted(int(i) for i in members[order[:per_class]])
    return picked


def safe_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"


def to_layout(x_nchw: np.ndarray, layout: str) -> np.ndarray:
    """(N,C,H,W) -> the artifact's layout (NHWC or unchanged NCHW), contiguous float32."""
    if layout == "NHWC":
        x_nchw = x_nchw.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x_nchw, dtype=np.float32)


def to_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NHWC" else x, dtype=np.float32)


def input_layout(info: TensorInfo, contract: PreprocessContract) -> str:
    """NCHW / NHWC of an artifact input: as read back from the file, else from its shape and the contract."""
    if info.layout in ("NCHW", "NHWC"):
        return info.layout
    c = contract.in_channels
    return "NHWC" if len(info.shape) == 4 and info.shape[3] == c and info.shape[1] != c else "NCHW"


def save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return np.array(im, dtype=np.uint8)


def litert_logits(model: Path, x_nchw: np.ndarray) -> tuple[np.ndarray, float]:
    """Logits of every sample in ai-edge-litert (1 thread) and the largest run-to-run difference seen.

    The run-to-run difference compares a repeated run and a 2-thread session with the first run.
    """
    from edgeprune.runtimes import open_session

    first = open_session(model, fmt="tflite", threads=1)
    logits = np.asarray(first.run(x_nchw), dtype=np.float32)
    again = np.asarray(first.run(x_nchw), dtype=np.float32)
    other = np.asarray(open_session(model, fmt="tflite", threads=2).run(x_nchw), dtype=np.float32)
    observed = float(max(np.max(np.abs(again - logits)), np.max(np.abs(other - logits))))
    return logits, observed


def tolerance(output: TensorInfo, observed: float) -> float:
    """atol of the golden logits: one output quantization step for integer outputs, else a float floor;
    never below ten times the run-to-run difference observed on the host."""
    if output.dtype in ("int8", "uint8", "int16") and output.quant_scale:
        base = float(output.quant_scale) * QUANT_STEP_SLACK
    else:
        base = FLOAT_ATOL_FLOOR
    return float(max(base, FLOAT_ATOL_FACTOR * observed))


def golden_samples(artifact: str, inputs: list[tuple[str, str]], labels: list[int], logits: np.ndarray,
                   atol: float) -> list[GoldenSample]:
    """One golden sample per input for ``artifact``: its own expected logits and its own tolerance.

    Every artifact of a bundle gets its own samples, so an app self-testing the int8 file compares it with
    what the int8 file gave on the host, not with the float model."""
    return [GoldenSample(artifact=artifact, input_file=npy, image_file=png, label=label,
                         expected_logits=[float(v) for v in logits[row]], expected_class=int(logits[row].argmax()),
                         atol=atol)
            for row, ((npy, png), label) in enumerate(zip(inputs, labels, strict=True))]


def samples_for(samples: list[GoldenSample], artifact: str, primary: str) -> list[GoldenSample]:
    """The samples of ``artifact`` (samples without an artifact name belong to the primary artifact)."""
    return [s for s in samples if (s.artifact or primary) == artifact]


def primary_index(artifacts: list[BundleArtifact]) -> int:
    """The artifact the app runs (and self-tests): the first the gate did not reject, else the first."""
    return next((i for i, a in enumerate(artifacts) if a.gate != "rejected"), 0)
