"""Per-device-key daily measurement quota (count and bytes per UTC day), checked inside the write."""

from __future__ import annotations

from datetime import timedelta

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgeprune.server.models import MeasurementRow, utcnow
from edgeprune.server.security import KeyInfo
from edgeprune.server.settings import ServerSettings


def check_quota(session: Session, settings: ServerSettings, key: KeyInfo, new_bytes: int) -> None:
    """429 (with Retry-After until the next UTC midnight) when ``key`` would exceed today's quota.

    Admin keys have no quota. On SQLite the write lock makes the check exact; on PostgreSQL concurrent
    posts of one key may overshoot by the number of requests in flight.
    """
    max_count, max_bytes = settings.measurement_quota_per_day, int(settings.measurement_quota_mb_per_day * 1024 ** 2)
    if key.is_admin or (max_count <= 0 and max_bytes <= 0):
        return
    now = utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    count, used = session.execute(
        select(func.count(), func.coalesce(func.sum(MeasurementRow.body_bytes), 0))
        .where(MeasurementRow.key_id == key.id, MeasurementRow.received_at >= day)
    ).one()
    retry = {"Retry-After": str(max(1, int((day + timedelta(days=1) - now).total_seconds())))}
    if max_count > 0 and count + 1 > max_count:
        raise HTTPException(429, f"daily measurement quota of this key reached ({max_count} per UTC day); "
                                 "retry after midnight UTC or ask for a higher EDGEPRUNE_MEASUREMENT_QUOTA_PER_DAY",
                            headers=retry)
    if max_bytes > 0 and int(used) + new_bytes > max_bytes:
        raise HTTPException(429, f"daily measurement quota of this key reached "
                                 f"({settings.measurement_quota_mb_per_day:g} MB per UTC day); retry after "
                                 "midnight UTC or ask for a higher EDGEPRUNE_MEASUREMENT_QUOTA_MB_PER_DAY",
                            headers=retry)
