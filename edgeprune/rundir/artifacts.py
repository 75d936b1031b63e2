"""One row per exported artifact, joined from the export, verify and profile outcomes.

The rows are report.json's ``artifacts`` (schema: ``edgeprune.report.schema.ArtifactRow``), the CLI's summary
table and the JUnit test cases.
"""

from __future__ import annotations

from typing import Any

from edgeprune.rundir.outcomes import ExportedArtifact, StageOutcomes, VerifiedArtifact


def _latency(art: ExportedArtifact, measurements: list[dict[str, Any]]) -> tuple[dict[str, float], float | None]:
    """'<device kind>:<threads>t' -> p50 ms of the meaningful timings of ``art``, and its peak RSS."""
    lat: dict[str, float] = {}
    rss = None
    for meas in measurements:
        if meas["artifact_sha256"] == art.sha256 and meas.get("latency") and meas.get("timing_meaningful", True):
            lat[f"{meas['device']['kind']}:{meas['threads']}t"] = meas["latency"]["p50_ms"]
            rss = max(rss or 0.0, meas.get("peak_rss_mb") or 0.0)
    return lat, rss


def _memory_and_parity(art: ExportedArtifact,
                       measurements: list[dict[str, Any]]) -> tuple[float | None, dict[str, Any] | None]:
    """The largest model-attributable peak of ``art`` and the first emulated-lane parity check of it."""
    mine = [m for m in measurements if m["artifact_sha256"] == art.sha256]
    peaks = [m["model_peak_mb"] for m in mine if m.get("model_peak_mb") is not None]
    checks = [{"device": m["device"]["kind"], **m["parity"]} for m in mine if m.get("parity")]
    return (max(peaks) if peaks else None), (checks[0] if checks else None)


def _vs_dense(v: VerifiedArtifact | None) -> dict[str, Any] | None:
    delta = v.vs_dense_float if v is not None else None
    if not delta:
        return None
    return {key: delta.get(key) for key in ("balanced_accuracy", "accuracy", "per_class_sensitivity", "confidence")}


def artifact_row(art: ExportedArtifact, v: VerifiedArtifact | None,
                 measurements: list[dict[str, Any]]) -> dict[str, Any]:
    m = v.metrics if v is not None and v.metrics is not None else None
    drift = v.vs_torch if v is not None else None
    gate = v.gate if v is not None else None
    lat, rss = _latency(art, measurements)
    model_mb, parity = _memory_and_parity(art, measurements)
    return {
        "name": art.name, "variant": art.variant, "format": art.format, "backend": art.backend,
        "precision": art.precision, "quantization": art.quantization, "file": art.file,
        "sha256": art.sha256, "size_bytes": art.size_bytes, "macs": art.macs, "params": art.params,
        "accuracy": m.accuracy if m else None, "balanced_accuracy": m.balanced_accuracy if m else None,
        "macro_f1": m.macro_f1 if m else None,
        "per_class_sensitivity": m.per_class_sensitivity if m else None,
        "top1_agreement": drift.top1_agreement if drift else None,
        "max_abs_logit_error": drift.max_abs if drift else None,
        "gate_passed": gate.verdict if gate else None, "gate_reasons": list(gate.reasons) if gate else [],
        "gate_status": gate.status if gate else "not-run",
        "latency_p50_ms": lat, "peak_rss_mb": rss, "model_peak_mb": model_mb, "emulated_parity": parity,
        "verification_kind": v.verification_kind if v is not None else None,
        "gate": gate.summary() if gate else None,
        "drift": drift.summary() if drift else None,
        "vs_dense_float": _vs_dense(v),
        "notes": list(art.notes) + (list(v.notes) if v is not None else []),
    }


def artifact_rows(outcomes: StageOutcomes) -> list[dict[str, Any]]:
    """Every exported artifact with its verification and timings (unverified/unprofiled fields are null)."""
    verified, measurements = outcomes.verified, outcomes.measurements
    return [artifact_row(art, verified.get(art.name), measurements) for art in outcomes.exported]
