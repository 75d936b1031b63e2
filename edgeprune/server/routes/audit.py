"""``GET /api/v1/audit`` (admin): the audit log of admin actions, newest first, paginated."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from edgeprune.server.deps import AdminKey, StateDep
from edgeprune.server.keyschemas import AuditOut
from edgeprune.server.models import AuditEvent
from edgeprune.server.pagination import Cursor, Limit, cursor_int, encode_cursor, page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _out(row: AuditEvent) -> AuditOut:
    return AuditOut(id=row.id, at=row.at, key_id=row.key_id, action=row.action, target=row.target,
                    detail=json.loads(row.detail or "{}"))


@router.get("", response_model=list[AuditOut])
def audit_log(request: Request, key: AdminKey, state: StateDep, limit: Limit = 100, cursor: Cursor = None,
              action: Annotated[str | None, Query(max_length=64, description="e.g. key.revoke")] = None,
              ) -> JSONResponse:
    """Admin actions (key.create, key.revoke, bundle.publish, channel.move), newest first."""
    before = cursor_int(cursor)
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if action:
        query = query.where(AuditEvent.action == action)
    with state.db.read() as session:
        rows = session.scalars(query).all()
    return page(request, rows, limit, lambda r: encode_cursor(r.id), _out)
