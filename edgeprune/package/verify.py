"""Re-check a bundle directory or zip: schema, every sha256, preprocessing and golden samples in ai-edge-litert.

A changed byte anywhere (model, labels, golden input, manifest) makes a check fail. Artifacts whose checksum
does not match are never loaded into the runtime.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import ValidationError

from edgeprune.contract import PreprocessContract
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.package import golden as g
from edgeprune.package.signing import SIGNATURE_FILE
from edgeprune.schemas import BundleArtifact, BundleModelJson
from edgeprune.zipsafe import ZipLimits, ZipProblem, scan_zip

PREPROCESS_ATOL = 1e-5  # PNG -> contract.apply must reproduce the stored golden input


@dataclass
class GoldenCheck:
    artifact: str
    input_file: str
    max_abs_diff: float
    atol: float

    @property
    def passed(self) -> bool:
        return bool(self.max_abs_diff <= self.atol)


@dataclass
class VerifyReport:
    path: Path
    model: BundleModelJson | None = None
    checked_files: list[str] = field(default_factory=list)
    golden: list[GoldenCheck] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    signed: bool = False
    key_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            raise EdgepruneError(f"bundle {self.path} failed verification: {self.failures[0]}{more}",
                                 "re-create it with 'edgeprune package' (a file was changed or damaged)")


def _unsafe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return not rel or "\\" in rel or p.is_absolute() or ":" in rel or any(s in ("", ".", "..") for s in rel.split("/"))


@contextmanager
def _bundle_dir(path: Path) -> Iterator[Path]:
    """The bundle root of a directory, or of a zip extracted to a temporary directory.

    Every zip entry is checked while it is inflated (names, real sizes, ratio, CRC: see edgeprune.zipsafe);
    what is extracted is exactly what was checked."""
    if path.is_dir():
        yield path
        return
    if not zipfile.is_zipfile(path):
        raise EdgepruneError(f"{path} is neither a bundle directory nor a zip", "pass the bundle directory or .zip")
    with tempfile.TemporaryDirectory(prefix="edgeprune-bundle-") as tmp:
        try:
            scan_zip(path, ZipLimits(), extract_to=Path(tmp))
        except ZipProblem as exc:
            what = "holds an unsafe entry" if exc.kind == "unsafe" else "is not a safe bundle zip"
            raise EdgepruneError(f"{path} {what}: {exc.message}",
                                 "do not use this zip; re-create it with 'edgeprune package'") from exc
        yield Path(tmp)


def verify_bundle(path: str | Path, *, golden: bool = True, public_key: bytes | None = None) -> VerifyReport:
    """Check a bundle; raises EdgepruneError only if ``path`` is not a bundle at all, else lists failures.

    signature.json is checked when present; with ``public_key`` (raw Ed25519) the bundle must be signed by it."""
    from edgeprune.package.signing import check_signature

    path = Path(path)
    if not path.exists():
        raise EdgepruneError(f"{path} does not exist", "pass a bundle directory or .zip written by 'edgeprune package'")
    report = VerifyReport(path=path)
    with _bundle_dir(path) as root:
        if not (root / "model.json").is_file():
            raise EdgepruneError(
                f"{path} has no model.json at its root", "pass a bundle written by 'edgeprune package'"
            )
        try:
            report.model = BundleModelJson.model_validate_json((root / "model.json").read_bytes())
        except ValidationError as exc:
            report.failures.append(f"model.json does not match the bundle schema: {exc.errors()[0]['msg']} "
                                   f"at {'.'.join(str(p) for p in exc.errors()[0]['loc'])}")
            return report
        sig = check_signature(root, public_key)
        report.signed, report.key_id = sig.signed, sig.key_id
        report.failures += sig.failures or []
        bad = _check_files(root, report.model, report)
        _check_content(root, report.model, report)
        if golden:
            _check_golden(root, report.model, bad, report)
    return report


def _check_files(root: Path, model: BundleModelJson, report: VerifyReport) -> set[str]:
    """sha256 and size of every listed file; returns the paths that failed."""
    expected: dict[str, tuple[str, int]] = {}
    for rel, sha, size in [(f.path, f.sha256, f.size_bytes) for f in model.files] + [
            (a.file, a.sha256, a.size_bytes) for a in model.artifacts]:
        if rel in expected and expected[rel] != (sha.lower(), size):
            report.failures.append(f"model.json lists two different checksums for {rel}")
        expected[rel] = (sha.lower(), size)
    bad: set[str] = set()
    for rel, (sha, size) in expected.items():
        if _unsafe(rel) or rel == "model.json":
            report.failures.append(f"model.json lists an unsafe or self-referencing path {rel!r}")
            bad.add(rel)
            continue
        p = root / rel
        if not p.is_file():
            report.failures.append(f"{rel} is listed in model.json but missing")
        elif p.stat().st_size != size:
            report.failures.append(f"{rel} has {p.stat().st_size} bytes, model.json says {size} (truncated or changed)")
        elif sha256_file(p) != sha:
            report.failures.append(f"sha256 mismatch for {rel} (the file was changed or damaged)")
        else:
            report.checked_files.append(rel)
            continue
        bad.add(rel)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for rel in sorted(present - set(expected) - {"model.json", SIGNATURE_FILE}):
        report.failures.append(f"{rel} is in the bundle but not listed in model.json")
    for rel in (model.labels_file, model.manifest_file):
        if rel not in expected:
            report.failures.append(f"{rel} is not listed with a checksum in model.json")
    return bad


def _check_content(root: Path, model: BundleModelJson, report: VerifyReport) -> None:
    """labels, contract and artifact descriptions agree with each other and with the files."""
    from edgeprune.artifacts.tflite import inspect_tflite

    labels = root / model.labels_file
    if labels.is_file():
        lines = [s.strip() for s in labels.read_text(encoding="utf-8").splitlines() if s.strip()]
        if lines != model.class_names:
            report.failures.append(f"{model.labels_file} does not match class_names in model.json")
    try:
        contract = PreprocessContract.model_validate(model.preprocessing)
        if list(contract.class_names) != model.class_names:
            report.failures.append("preprocessing.class_names differ from class_names")
    except ValidationError as exc:
        report.failures.append(f"preprocessing is not a valid contract: {exc.errors()[0]['msg']}")
    manifest = root / model.manifest_file
    try:
        json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report.failures.append(f"{model.manifest_file} is missing or not JSON")
    for art in model.artifacts:
        if art.format != "tflite" or art.file not in report.checked_files:
            continue
        info = inspect_tflite(root / art.file)
        if info.inputs != art.inputs or info.outputs != art.outputs:
            report.failures.append(f"{art.file}: tensors in the file differ from model.json")
        if info.edgeprune_metadata is None:
            report.failures.append(f"{art.file} has no embedded edgeprune metadata")


def _run(root: Path, art: BundleArtifact, layout: str, x: np.ndarray) -> np.ndarray:
    from edgeprune.runtimes import open_session

    return np.asarray(open_session(root / art.file, fmt="tflite", threads=1).run(g.to_nchw(x, layout)), np.float32)


def _load_input(root: Path, rel: str, art: BundleArtifact, report: VerifyReport) -> np.ndarray | None:
    try:
        x = np.load(root / rel, allow_pickle=False)
    except (OSError, ValueError) as exc:
        report.failures.append(f"golden input {rel} cannot be read: {exc}")
        return None
    if x.dtype != np.float32 or list(x.shape) != list(art.inputs[0].shape):
        report.failures.append(f"golden input {rel} is {x.dtype}{list(x.shape)}, {art.file} expects "
                               f"float32{art.inputs[0].shape}")
        return None
    return x


def _check_golden(root: Path, model: BundleModelJson, bad: set[str], report: VerifyReport) -> None:
    """Golden samples reproduce in ai-edge-litert within their atol; PNGs reproduce the stored inputs."""
    try:
        contract = PreprocessContract.model_validate(model.preprocessing)
    except ValidationError:
        return
    if not model.golden_samples:
        report.failures.append("the bundle has no golden samples")
        return
    primary = model.artifacts[g.primary_index(model.artifacts)]
    layout = g.input_layout(primary.inputs[0], contract) if primary.inputs else "NCHW"
    cache: dict[str, np.ndarray] = {}
    for s in model.golden_samples:
        if s.input_file in bad or (s.image_file and s.image_file in bad):
            continue
        x = _load_input(root, s.input_file, primary, report)
        if x is None:
            continue
        cache[s.input_file] = x
        if s.expected_class != int(np.argmax(s.expected_logits)) or not 0 <= s.label < len(model.class_names):
            report.failures.append(f"golden sample {s.input_file}: expected_class or label is inconsistent")
        if s.image_file:
            again = g.to_layout(contract.apply(g.load_png(root / s.image_file)[None]), layout)
            diff = float(np.max(np.abs(again - x)))
            if diff > PREPROCESS_ATOL:
                report.failures.append(f"preprocessing {s.image_file} gives {s.input_file} only within {diff:.2e}")
    targets = []
    for art in model.artifacts:  # each artifact against its own expected outputs and tolerances
        own = g.samples_for(model.golden_samples, art.file, primary.file)
        extra = (model.metrics.get(art.file) or {}).get("golden")
        if own:
            targets.append((art, [s.input_file for s in own], np.array([s.expected_logits for s in own], np.float32),
                            [s.atol for s in own]))
        elif extra:  # bundles written before golden samples were kept per artifact
            targets.append((art, list(extra["inputs"]), np.array(extra["expected_logits"], np.float32),
                            [float(extra["atol"])] * len(extra["inputs"])))
    for art, files, expected, atols in targets:
        if art.file in bad or art.file not in report.checked_files or any(f not in cache for f in files):
            continue  # never load a model whose checksum failed; missing inputs were reported above
        logits = _run(root, art, layout, np.concatenate([cache[f] for f in files]))
        if logits.shape != expected.shape:
            report.failures.append(f"{art.file} gives logits of shape {list(logits.shape)}, "
                                   f"expected {list(expected.shape)}")
            continue
        for f, got, want, atol in zip(files, logits, expected, atols, strict=True):
            check = GoldenCheck(art.file, f, float(np.max(np.abs(got - want))), atol)
            report.golden.append(check)
            if not check.passed:
                report.failures.append(f"golden sample {f} on {art.file}: max |diff| {check.max_abs_diff:.3g} "
                                       f"> atol {atol:.3g}")
