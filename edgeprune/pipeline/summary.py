"""One row per artifact, joined from the export, verify and profile stages (table, report.json)."""

from __future__ import annotations

from typing import Any


def artifact_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    verify = results.get("verify", {}).get("artifacts", {})
    measurements = results.get("profile", {}).get("measurements", [])
    rows = []
    for art in results.get("export", {}).get("artifacts", []):
        v = verify.get(art["name"], {})
        m = v.get("metrics", {})
        lat = {}
        rss = None
        for meas in measurements:
            if meas["artifact_sha256"] == art["sha256"] and meas.get("latency") and meas.get("timing_meaningful", True):
                lat[f"{meas['device']['kind']}:{meas['threads']}t"] = meas["latency"]["p50_ms"]
                rss = max(rss or 0.0, meas.get("peak_rss_mb") or 0.0)
        rows.append({
            "name": art["name"], "variant": art.get("variant"), "format": art["format"], "backend": art.get("backend"),
            "precision": art["precision"], "quantization": art.get("quantization"), "file": art["file"],
            "sha256": art["sha256"], "size_bytes": art["size_bytes"], "macs": art.get("macs"), "params": art.get("params"),
            "accuracy": m.get("accuracy"), "balanced_accuracy": m.get("balanced_accuracy"),
            "macro_f1": m.get("macro_f1"), "per_class_sensitivity": m.get("per_class_sensitivity"),
            "top1_agreement": v.get("vs_torch", {}).get("top1_agreement"),
            "max_abs_logit_error": v.get("vs_torch", {}).get("max_abs"),
            "gate_passed": v.get("gate", {}).get("passed"), "gate_reasons": v.get("gate", {}).get("reasons", []),
            "latency_p50_ms": lat, "peak_rss_mb": rss,
        })
    return rows
