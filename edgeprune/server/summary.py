"""Aggregate bundles and measurements into per-build, per-device numbers for the dashboard."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select

from edgeprune.server.db import Database
from edgeprune.server.jsonsafe import loads_tolerant
from edgeprune.server.models import Bundle, BundleArtifactRow, Channel, DeliveryEvent, MeasurementRow

ACCURACY_KEYS = ("balanced_accuracy", "bal_acc", "balanced_acc")


@dataclass
class DeviceStats:
    n: int = 0
    p50_ms: float | None = None
    memory_mb: float | None = None
    emulated_only: bool = False


@dataclass
class BuildRow:
    """One artifact of one bundle: the unit the dashboard compares."""

    label: str
    bundle_sha256: str
    artifact_sha256: str
    precision: str
    fmt: str
    size_bytes: int
    balanced_accuracy: float | None
    channels: list[str]
    devices: dict[str, DeviceStats] = field(default_factory=dict)


@dataclass
class Summary:
    builds: list[BuildRow]
    devices: list[str]
    recent: list[dict[str, Any]]
    deliveries: list[tuple[str, str, str, int]]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _body(text: str) -> dict[str, Any]:
    """A stored measurement with any non-finite number as None (damaged rows read as empty)."""
    value, _ = loads_tolerant(text, "a stored measurement")
    return value if isinstance(value, dict) else {}


def _find_accuracy(obj: Any, depth: int = 0) -> float | None:
    if not isinstance(obj, dict) or depth > 3:
        return None
    for key in ACCURACY_KEYS:
        if (value := _number(obj.get(key))) is not None:
            return value
    for value in obj.values():
        if (found := _find_accuracy(value, depth + 1)) is not None:
            return found
    return None


def balanced_accuracy(metrics: dict[str, Any], file: str, precision: str, sha256: str) -> float | None:
    """Look the artifact up in ``model.json`` metrics (by file, name, precision or sha), then top level."""
    path = PurePosixPath(file)
    for key in (file, path.name, path.stem, precision, sha256):
        if isinstance(metrics.get(key), dict) and (value := _find_accuracy(metrics[key])) is not None:
            return value
    for key in ACCURACY_KEYS:
        if (value := _number(metrics.get(key))) is not None:
            return value
    return None


def _device_label(body: dict[str, Any]) -> str:
    dev = body.get("device", {})
    return f"{dev.get('kind', '?')}:{dev.get('model') or dev.get('id', '?')}"


def _stats(bodies: list[dict[str, Any]]) -> DeviceStats:
    timed = [p50 for b in bodies if isinstance(b.get("latency"), dict) and b.get("timing_meaningful", True)
             and (p50 := _number(b["latency"].get("p50_ms"))) is not None]
    memory = [m for b in bodies if (m := _number(b.get("peak_rss_mb")) or _number(b.get("pss_mb"))) is not None]
    return DeviceStats(
        n=len(bodies),
        p50_ms=statistics.median(timed) if timed else None,
        memory_mb=statistics.median(memory) if memory else None,
        emulated_only=bool(bodies) and not timed,
    )


def summarize(db: Database, max_bundles: int = 30, max_measurements: int = 5000) -> Summary:
    """Everything the dashboard shows, from a handful of queries."""
    with db.read() as s:
        bundles = s.scalars(select(Bundle).order_by(Bundle.created_at.desc()).limit(max_bundles)).all()
        shas = [b.sha256 for b in bundles]
        arts = s.scalars(select(BundleArtifactRow).where(BundleArtifactRow.bundle_sha256.in_(shas))).all()
        chans = s.scalars(select(Channel).where(Channel.bundle_sha256.in_(shas))).all()
        wanted = {a.artifact_sha256 for a in arts} | set(shas)
        rows = s.scalars(
            select(MeasurementRow.body).where(MeasurementRow.artifact_sha256.in_(wanted))
            .order_by(MeasurementRow.received_at.desc()).limit(max_measurements)
        ).all()
        recent = s.scalars(select(MeasurementRow.body).order_by(MeasurementRow.received_at.desc()).limit(25)).all()
        deliveries = s.execute(
            select(DeliveryEvent.app_id, DeliveryEvent.channel, DeliveryEvent.abi, func.count())
            .group_by(DeliveryEvent.app_id, DeliveryEvent.channel, DeliveryEvent.abi)
            .order_by(DeliveryEvent.app_id, DeliveryEvent.channel, DeliveryEvent.abi)
        ).all()

    by_artifact: dict[str, list[dict[str, Any]]] = {}
    for raw in rows:
        body = _body(raw)
        by_artifact.setdefault(str(body.get("artifact_sha256", "")).lower(), []).append(body)

    builds: list[BuildRow] = []
    devices: set[str] = set()
    for b in bundles:
        metrics = (loads_tolerant(b.model_json, f"bundle {b.sha256}")[0] or {}).get("metrics", {}) or {}
        own = [a for a in arts if a.bundle_sha256 == b.sha256]
        for i, a in enumerate(own):
            bodies = list(by_artifact.get(a.artifact_sha256, []))
            if i == 0:  # measurements that name the bundle itself count for its first artifact
                bodies += by_artifact.get(b.sha256, [])
            per_device: dict[str, list[dict[str, Any]]] = {}
            for body in bodies:
                per_device.setdefault(_device_label(body), []).append(body)
            devices.update(per_device)
            builds.append(BuildRow(
                label=f"{b.name} {b.version} {a.precision}", bundle_sha256=b.sha256,
                artifact_sha256=a.artifact_sha256, precision=a.precision, fmt=a.format, size_bytes=a.size_bytes,
                balanced_accuracy=balanced_accuracy(metrics, a.file, a.precision, a.artifact_sha256),
                channels=sorted(f"{c.app_id}/{c.name}" for c in chans if c.bundle_sha256 == b.sha256),
                devices={d: _stats(v) for d, v in per_device.items()}))
    return Summary(builds=builds, devices=sorted(devices), recent=[_body(r) for r in recent],
                   deliveries=[(str(a), str(c), str(abi), int(n)) for a, c, abi, n in deliveries])
