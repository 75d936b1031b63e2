"""``/api/v1/measurements``: idempotent upload of :class:`edgeprune.schemas.Measurement` and filtered reads."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from edgeprune.schemas import Measurement
from edgeprune.server.deps import DeviceKey, StateDep
from edgeprune.server.jsonsafe import dumps_strict, loads_tolerant, repaired_headers
from edgeprune.server.models import BundleArtifactRow, MeasurementRow
from edgeprune.server.quota import check_quota

log = logging.getLogger("edgeprune.server.measurements")
router = APIRouter(prefix="/api/v1/measurements", tags=["measurements"])
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# column widths: longer values are rejected with a clear 422 instead of a database error
_MAX_LEN = {("artifact_sha256",): 128, ("artifact_name",): 500, ("device", "kind"): 64, ("device", "id"): 200,
            ("device", "model"): 200}


def _check_limits(m: Measurement) -> None:
    errors: list[dict[str, Any]] = []
    if not ID_RE.match(m.id):
        errors.append({"type": "value_error", "loc": ("body", "id"), "input": m.id[:200],
                       "msg": "id must be 1-128 characters from A-Z a-z 0-9 . _ : -"})
    for path, limit in _MAX_LEN.items():
        value: Any = m
        for part in path:
            value = getattr(value, part)
        if len(value) > limit:
            errors.append({"type": "string_too_long", "loc": ("body", *path), "input": value[:200],
                           "msg": f"must be at most {limit} characters"})
    if errors:
        raise RequestValidationError(errors)


def _matches(stored: dict[str, Any], new: Measurement) -> bool:
    """A retry matches when every field the client sent equals the stored value (defaults may differ)."""
    sent = new.model_dump(mode="json", include=set(new.model_fields_set))
    return all(stored.get(name) == value for name, value in sent.items())


@router.post("", response_model=Measurement, status_code=201,
             responses={200: {"description": "retry of an already stored measurement"},
                        409: {"description": "same id, different body"}})
def post_measurement(measurement: Measurement, key: DeviceKey, state: StateDep) -> JSONResponse:
    """Store one measurement; retries with the same ``id`` and body return the stored record (200)."""
    _check_limits(measurement)
    body = measurement.model_dump(mode="json")
    text = dumps_strict(body)
    row = MeasurementRow(
        id=measurement.id, artifact_sha256=measurement.artifact_sha256.lower(),
        artifact_name=measurement.artifact_name, device_kind=measurement.device.kind,
        device_id=measurement.device.id, device_model=measurement.device.model,
        p50_ms=measurement.latency.p50_ms if measurement.latency else None,
        timing_meaningful=measurement.timing_meaningful, body=text, key_id=key.id, app_id=key.app_id,
        body_bytes=len(text.encode("utf-8")))
    try:
        with state.db.write() as session:
            known = session.scalar(select(MeasurementRow.id).where(MeasurementRow.id == measurement.id))
            if known is None:  # a retry is never refused by the quota (it then fails the insert below)
                check_quota(session, state.settings, key, row.body_bytes)
            session.add(row)
        state.retention.maybe_prune()
        return JSONResponse(body, status_code=201)
    except IntegrityError:
        pass
    with state.db.read() as session:
        existing = session.get(MeasurementRow, measurement.id)
    if existing is None:  # pragma: no cover - integrity error for another reason
        raise HTTPException(500, "could not store the measurement")
    if not key.is_admin and existing.key_id != key.id:
        raise HTTPException(409, f"id {measurement.id!r} is already used by another client; use a new id")
    stored, _ = loads_tolerant(existing.body, f"measurement {measurement.id!r}")
    if stored is None or not _matches(stored, measurement):
        raise HTTPException(409, f"a different measurement with id {measurement.id!r} is already stored; "
                                 "use a new id for a new result")
    return JSONResponse(stored, status_code=200)


@router.get("", response_model=list[Measurement])
def list_measurements(
    key: DeviceKey,
    state: StateDep,
    artifact_sha256: Annotated[str | None, Query(max_length=128)] = None,
    device_kind: Annotated[str | None, Query(max_length=64)] = None,
    bundle_sha256: Annotated[str | None, Query(max_length=64, description="artifacts of this bundle")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Measurements, newest first, optionally filtered; a device key sees only what it posted itself."""
    query = select(MeasurementRow.id, MeasurementRow.body)
    if not key.is_admin:
        query = query.where(MeasurementRow.key_id == key.id)
    if artifact_sha256:
        query = query.where(MeasurementRow.artifact_sha256 == artifact_sha256.lower())
    if device_kind:
        query = query.where(MeasurementRow.device_kind == device_kind)
    if bundle_sha256:
        arts = select(BundleArtifactRow.artifact_sha256).where(BundleArtifactRow.bundle_sha256 == bundle_sha256)
        query = query.where(or_(MeasurementRow.artifact_sha256.in_(arts),
                                MeasurementRow.artifact_sha256 == bundle_sha256))
    query = query.order_by(MeasurementRow.received_at.desc(), MeasurementRow.id).limit(limit).offset(offset)
    with state.db.read() as session:
        rows = session.execute(query).all()
    out, repaired = [], []
    for row_id, text in rows:
        body, fixed = loads_tolerant(text, f"measurement {row_id!r}")
        if body is not None:
            out.append(body)
        if fixed:
            repaired.append(str(row_id))
    return JSONResponse(out, headers=repaired_headers(repaired))


@router.get("/{measurement_id}", response_model=Measurement)
def get_measurement(measurement_id: str, key: DeviceKey, state: StateDep) -> JSONResponse:
    with state.db.read() as session:
        row = session.get(MeasurementRow, measurement_id)
    if row is None or (not key.is_admin and row.key_id != key.id):
        raise HTTPException(404, f"no measurement with id {measurement_id!r}")
    body, fixed = loads_tolerant(row.body, f"measurement {measurement_id!r}")
    if body is None:
        raise HTTPException(500, f"measurement {measurement_id!r} is stored damaged (not JSON); delete it")
    return JSONResponse(body, headers=repaired_headers([measurement_id] if fixed else []))
