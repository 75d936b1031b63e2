"""The audit log: one row per admin action, written in the same transaction as the action itself."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from edgeprune.server.models import AuditEvent, utcnow

ACTIONS = ("key.create", "key.revoke", "bundle.publish", "channel.move")


def audit(session: Session, action: str, key_id: int | None, target: str, detail: dict[str, Any] | None = None) -> None:
    """Add an audit record to ``session`` (committed, or rolled back, with the action it describes)."""
    session.add(AuditEvent(at=utcnow(), key_id=key_id, action=action[:64], target=target[:300],
                           detail=json.dumps(detail or {}, sort_keys=True, default=str)))
