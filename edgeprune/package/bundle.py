"""Build a versioned app bundle (directory + zip) from a verified run directory.

Layout (``model.json`` at the root, see :class:`edgeprune.schemas.BundleModelJson`)::

    model.json  labels.txt  manifest.json  <artifact>.tflite ...  golden/<test-index>_<class>.{npy,png}
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune import __version__
from edgeprune.contract import PreprocessContract
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import atomic_path, sha256_file
from edgeprune.package import golden as g
from edgeprune.registry import Registry
from edgeprune.rundir.manifest import Manifest, load_manifest
from edgeprune.rundir.outcomes import ExportedArtifact, VerifiedArtifact
from edgeprune.rundir.paths import MANIFEST
from edgeprune.schemas import BundleArtifact, BundleFile, BundleModelJson, GoldenSample, finite_or_none

APPS: Registry[str] = Registry("app")
APPS.add("android", "android")  # one line per supported app kind

DEFAULT_INTENDED_USE = (
    "Research and demonstration use only. {name} is an experimental image classifier built with edgeprune "
    "from the '{dataset}' dataset. It is not a medical device, has not been clinically validated, and must "
    "not be used for diagnosis, screening, triage or treatment decisions. Its outputs can be wrong, in "
    "particular on images unlike its training data."
)
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # same files -> same zip bytes


@dataclass
class BundleResult:
    dir: Path
    zip: Path
    model_json: BundleModelJson
    into: Path | None = None


@dataclass
class _Chosen:
    record: ExportedArtifact
    verify: VerifiedArtifact  # the verify stage's entry for it (empty if it was never verified)

    @property
    def gate(self) -> str:  # passed | rejected | not-run
        return self.verify.gate_status


def _is_default(rec: ExportedArtifact) -> bool:
    return ((rec.variant or "pruned") == "pruned" and rec.format == "tflite"
            and (rec.quantization == "full-int8" or rec.precision == "fp32"))


def _choose(manifest: Manifest, run_dir: Path, names: list[str], force: bool) -> list[_Chosen]:
    outcomes = manifest.outcomes()
    if not outcomes.exported:
        raise EdgepruneError(f"{run_dir} has no exported artifacts", f"run 'edgeprune build' on {run_dir} first")
    verified = outcomes.verified
    records = {r.name: r for r in outcomes.exported if r.format == "tflite"}
    if names:
        picked = []
        for name in names:
            key = Path(name).name.removesuffix(".tflite")
            if key not in records:
                close = difflib.get_close_matches(key, list(records), n=1, cutoff=0.5)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise EdgepruneError(f"run {run_dir.name} has no .tflite artifact '{name}'",
                                     f"{hint}available: {', '.join(sorted(records))}")
            picked.append(records[key])
    else:
        picked = sorted((r for r in records.values() if _is_default(r)),
                        key=lambda r: (r.quantization != "full-int8", r.name))
        if not picked:
            raise EdgepruneError(f"run {run_dir.name} has no pruned full-int8 or fp32 .tflite artifact",
                                 f"choose one with --artifact NAME (available: {', '.join(sorted(records))})")
    chosen = [_Chosen(r, verified.get(r.name) or VerifiedArtifact()) for r in picked]
    blocked = [c for c in chosen if c.gate != "passed"]
    if blocked and not force:
        if not names and len(blocked) < len(chosen):
            return [c for c in chosen if c.gate == "passed"]  # default set: keep only what passed
        why = "; ".join(f"{c.record.name}: " + ("; ".join(c.verify.gate.reasons if c.verify.gate else []) or c.gate)
                        if c.gate == "rejected" else f"{c.record.name}: gate not run" for c in blocked)
        passed = sorted(n for n, r in records.items()
                        if r not in picked and n in verified and verified[n].gate_status == "passed")
        alt = f"package one that passed (--artifact {' / '.join(passed)}), " if passed else ""
        raise EdgepruneError(f"refusing to package artifacts the accuracy gate did not pass ({why})",
                             f"{alt}improve the model and re-run 'edgeprune build', or pass --force to package them "
                             "marked as rejected in model.json")
    return chosen


def _copy_artifact(run_dir: Path, chosen: _Chosen, root: Path, manifest: Manifest,
                   contract: PreprocessContract) -> BundleArtifact:
    """Copy one artifact into the bundle with edgeprune's metadata (if missing) and the official TFLite Metadata;
    describe it from the copy."""
    from edgeprune.artifacts.tflite import inspect_tflite
    from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
    from edgeprune.export.tflite_metadata import add_official_metadata, embed_tflite_metadata

    rec = chosen.record
    src = run_dir / rec.file
    if not src.is_file():
        raise EdgepruneError(f"{src} is missing", f"re-run 'edgeprune build' on {run_dir}")
    if sha256_file(src) != rec.sha256:
        raise EdgepruneError(f"{src} changed after it was exported and verified (sha256 differs from the manifest)",
                             f"re-run 'edgeprune build' on {run_dir} to export and verify it again")
    dest = root / f"{rec.name}.tflite"
    shutil.copyfile(src, dest)
    if read_tflite_metadata(dest) is None:
        embed_tflite_metadata(dest, {
            "preprocessing": contract.model_dump(mode="json"), "labels": contract.class_names,
            "run": manifest.run_id, "producer": "edgeprune",
            "export": {"format": "tflite", "precision": rec.precision, "io_layout": rec.io_layout or "",
                       "name": rec.name, "edgeprune_version": __version__},
        })
    add_official_metadata(dest, contract, manifest, rec.name)
    info = inspect_tflite(dest)
    artifact = BundleArtifact(
        file=dest.name, format="tflite", precision=rec.precision, quantization=info.quantization,
        sha256=sha256_file(dest), size_bytes=dest.stat().st_size, inputs=info.inputs, outputs=info.outputs,
        gate=chosen.gate,
    )
    return artifact


def _metrics_entry(chosen: _Chosen, class_names: list[str], manifest: Manifest) -> dict[str, Any]:
    rec, v = chosen.record, chosen.verify
    m = v.metrics.summary() if v.metrics else {}
    per_class = {}
    for i, name in enumerate(class_names):
        per_class[name] = {key: (m[src][i] if i < len(m.get(src) or []) else None) for key, src in (
            ("sensitivity", "per_class_sensitivity"), ("specificity", "per_class_specificity"),
            ("precision", "per_class_precision"), ("auroc", "auroc_ovr"), ("support", "support"))}
    return finite_or_none({  # NaN (e.g. AUROC of a class absent from the test set) is not JSON: null
        "artifact": rec.name, "variant": rec.variant, "precision": rec.precision,
        "macs": rec.macs, "params": rec.params,
        "test_set": {"dataset": manifest.data.get("name"), "n": m.get("n"),
                     "source_sha256": manifest.data.get("source_sha256")},
        "test": {k: m.get(k) for k in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auroc")},
        "per_class": per_class, "confusion": m.get("confusion"),
        "vs_torch": v.vs_torch.summary() if v.vs_torch else {}, "vs_dense_float": v.vs_dense_float or {},
        "gate": {"status": chosen.gate, **(v.gate.summary() if v.gate else {})},
    })


def default_version(artifacts: list[ExportedArtifact]) -> str:
    digest = hashlib.sha256("".join(a.sha256 for a in artifacts).encode()).hexdigest()[:8]
    return f"{datetime.now(UTC):%Y.%m.%d}-{digest}"


def write_zip(src: Path, dest: Path) -> Path:
    """Zip ``src`` with model.json at the zip root, reproducibly; .tflite stored uncompressed."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED if path.suffix == ".tflite" else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return dest


def _check_into(into: Path) -> None:
    if into.exists() and (not into.is_dir() or (any(into.iterdir()) and not (into / "model.json").is_file())):
        raise EdgepruneError(f"refusing to replace {into}: it exists and is not a bundle directory",
                             "pass an empty or bundle directory to --into, "
                             "e.g. apps/android/app/src/main/assets/bundle")


def copy_into(src: Path, into: Path) -> Path:
    """Replace ``into`` (e.g. the app's assets/bundle) with a copy of the bundle directory ``src``."""
    _check_into(into)
    with atomic_path(into) as tmp:
        shutil.copytree(src, tmp)
    return into


def build_bundle(
    run_dir: str | Path, *, app: str = "android", artifacts: list[str] | None = None, version: str | None = None,
    name: str | None = None, out: str | Path | None = None, into: str | Path | None = None,
    golden_per_class: int = 2, intended_use: str | None = None, threshold: float | None = None,
    positive_class: str | None = None, data: str | None = None, force: bool = False,
    signing_key: str | Path | None = None,
) -> BundleResult:
    """Package a verified run for ``app``; returns the bundle directory, zip and model.json.

    With ``signing_key`` (an Ed25519 private key PEM) the bundle gets a ``signature.json`` over model.json."""
    from edgeprune.package import signing
    from edgeprune.package.verify import verify_bundle

    APPS.get(app)
    key = signing.load_private_key(signing_key) if signing_key is not None else None
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    if golden_per_class < 1:
        raise EdgepruneError(f"--golden must be at least 1, got {golden_per_class}", "use e.g. --golden 2")
    if version is not None and not _VERSION_RE.match(version):
        raise EdgepruneError(f"invalid bundle version '{version}'", "use letters, digits and . _ + - (e.g. 1.2.0)")
    contract = PreprocessContract.model_validate(manifest.preprocessing)
    class_names = list(contract.class_names)
    thresholds = decision_thresholds(class_names, threshold, positive_class)
    if into is not None:
        _check_into(Path(into))
    chosen = _choose(manifest, run_dir, list(artifacts or []), force)
    images, labels = g.run_test_images(manifest, data)
    picks = g.pick_golden(labels, golden_per_class, int(manifest.config.get("seed", 0)))
    name = g.safe_stem(name or manifest.config.get("name") or manifest.run_id)
    version = version or default_version([c.record for c in chosen])
    final = Path(out) if out else run_dir / "bundles"
    final = final / f"{name}-{version}"
    with atomic_path(final) as root:
        root.mkdir()
        model = _write_bundle(root, run_dir, manifest, contract, chosen, images, labels, picks, name, version,
                              thresholds, intended_use, app)
        if key is not None:
            signing.sign_bundle(root, key)
        report = verify_bundle(root)
        if not report.ok:
            raise EdgepruneError(f"the new bundle failed its own check: {report.failures[0]}",
                                 "report this as an edgeprune bug")
        zip_path = write_zip(root, final.parent / f"{final.name}.zip")
    result = BundleResult(dir=final, zip=zip_path, model_json=model)
    if into is not None:
        result.into = copy_into(final, Path(into))
    return result


def decision_thresholds(class_names: list[str], threshold: float | None, positive: str | None) -> dict[str, float]:
    if threshold is None:
        if positive is not None:
            raise EdgepruneError("--positive-class needs --threshold", "add e.g. --threshold 0.3")
        return {}  # empty: the app predicts the argmax class
    if len(class_names) != 2:
        raise EdgepruneError(f"--threshold is for binary models, this one has {len(class_names)} classes",
                             "drop --threshold (the app uses the most probable class)")
    if not 0.0 < threshold < 1.0:
        raise EdgepruneError(f"--threshold must be a probability in (0, 1), got {threshold}", "use e.g. 0.3")
    if positive is None:
        raise EdgepruneError("--threshold needs --positive-class (the class whose probability it applies to)",
                             f"add --positive-class with one of: {', '.join(class_names)}")
    if positive not in class_names:
        raise EdgepruneError(f"unknown --positive-class '{positive}'", f"use one of: {', '.join(class_names)}")
    return {positive: float(threshold)}


def _write_bundle(root: Path, run_dir: Path, manifest: Manifest, contract: PreprocessContract,
                  chosen: list[_Chosen], images: np.ndarray, labels: np.ndarray, picks: list[int], name: str,
                  version: str, thresholds: dict[str, float], intended_use: str | None, app: str) -> BundleModelJson:
    class_names = list(contract.class_names)
    copied = [_copy_artifact(run_dir, c, root, manifest, contract) for c in chosen]
    arts = copied
    primary = arts[g.primary_index(arts)]
    layout = g.input_layout(primary.inputs[0], contract)
    other = [a.file for a in arts if g.input_layout(a.inputs[0], contract) != layout]
    if other:
        raise EdgepruneError(f"{', '.join(other)} take a different input layout than {primary.file}",
                             "package artifacts of one input layout per bundle (use --artifact)")
    contract = contract.model_copy(update={"layout": layout})  # what the app must feed, as read back
    x = contract.apply(images[picks])  # (N, C, H, W) float32
    if list(g.to_layout(x[:1], layout).shape) != list(primary.inputs[0].shape):
        raise EdgepruneError(f"preprocessed test images {list(x.shape[1:])} do not fit {primary.file} input "
                             f"{primary.inputs[0].shape}", "re-run the build: the contract and artifact disagree")
    (root / g.GOLDEN_DIR).mkdir()
    inputs: list[tuple[str, str]] = []
    for row, idx in enumerate(picks):
        stem = f"{g.GOLDEN_DIR}/test{idx:05d}_{g.safe_stem(class_names[int(labels[idx])])}"
        np.save(root / f"{stem}.npy", g.to_layout(x[row : row + 1], layout), allow_pickle=False)
        g.save_png(root / f"{stem}.png", images[idx])
        inputs.append((f"{stem}.npy", f"{stem}.png"))
    metrics: dict[str, Any] = {}
    golden: list[GoldenSample] = []
    for c, art in zip(chosen, copied, strict=True):
        logits, observed = g.litert_logits(root / art.file, x)
        original, _ = g.litert_logits(run_dir / c.record.file, x)  # metadata must not change what the model computes
        if not np.array_equal(original, logits):
            raise EdgepruneError(f"embedding metadata changed the outputs of {art.file}",
                                 "report this as an edgeprune bug")
        atol = g.tolerance(art.outputs[0], observed)
        entry = _metrics_entry(c, class_names, manifest)
        entry["golden"] = {"inputs": [i for i, _ in inputs], "expected_logits": logits.tolist(),
                           "expected_class": logits.argmax(1).tolist(), "atol": atol,
                           "observed_run_to_run": observed, "runtime": _litert_id()}
        metrics[art.file] = entry
        samples = g.golden_samples(art.file, inputs, [int(labels[i]) for i in picks], logits, atol)
        golden = samples + golden if art is primary else golden + samples  # the primary artifact's come first
    (root / "labels.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    shutil.copyfile(run_dir / MANIFEST, root / MANIFEST)
    files = [BundleFile(path=p.relative_to(root).as_posix(), sha256=sha256_file(p), size_bytes=p.stat().st_size)
             for p in sorted(root.rglob("*")) if p.is_file()]
    text = intended_use if intended_use is not None else DEFAULT_INTENDED_USE.format(
        name=name, dataset=manifest.data.get("name", "unknown"))
    model = BundleModelJson(
        name=name, version=version, created_at=datetime.now(UTC).isoformat(timespec="seconds"), app=app,
        artifacts=arts, preprocessing=contract.model_dump(mode="json"), labels_file="labels.txt",
        class_names=class_names, decision_thresholds=thresholds, intended_use=text.strip(), metrics=metrics,
        golden_samples=golden, manifest_file=MANIFEST, files=files,
    )
    (root / "model.json").write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return model


def _litert_id() -> str:
    from edgeprune.runtimes.litert import LiteRTSession

    return LiteRTSession.runtime_id()
