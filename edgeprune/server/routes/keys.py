"""``/api/v1/keys`` (admin): create keys (shown once), list them (never the secret), revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from edgeprune.server.deps import AdminKey, StateDep
from edgeprune.server.keyschemas import KeyCreate, KeyCreated, KeyPublic
from edgeprune.server.models import ApiKey, utcnow
from edgeprune.server.pagination import Cursor, Limit, cursor_int, encode_cursor, page
from edgeprune.server.security import LastAdminKey, create_key, revoke_by_id

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


def key_public(r: ApiKey) -> KeyPublic:
    return KeyPublic(id=r.id, scope=r.scope, label=r.label, created_at=r.created_at, revoked=r.revoked,
                     app_id=r.app_id, expires_at=r.expires_at, last_used_at=r.last_used_at, source=r.source)


@router.post("", response_model=KeyCreated, status_code=201)
def new_key(body: KeyCreate, key: AdminKey, state: StateDep) -> KeyCreated:
    """Create a key; the response is the only place the key ever appears in clear."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        secret, info = create_key(state.db, body.scope, body.label, app_id=body.app_id, expires_at=expires,
                                  created_by=key.id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return KeyCreated(id=info.id, scope=info.scope, label=info.label, app_id=info.app_id,
                      expires_at=info.expires_at, key=secret)


@router.get("", response_model=list[KeyPublic])
def list_keys(request: Request, key: AdminKey, state: StateDep, limit: Limit = 100,
              cursor: Cursor = None) -> JSONResponse:
    """Keys, oldest first, ``limit`` per page (next page in the ``Link`` header)."""
    after = cursor_int(cursor)
    query = select(ApiKey).order_by(ApiKey.id).limit(limit + 1)
    if after is not None:
        query = query.where(ApiKey.id > after)
    with state.db.read() as session:
        rows = session.scalars(query).all()
    return page(request, rows, limit, lambda r: encode_cursor(r.id), key_public)


@router.delete("/{key_id}", status_code=204)
def revoke(key_id: int, key: AdminKey, state: StateDep) -> Response:
    """Revoke a key for good; the last active admin key cannot be revoked (that would lock everyone out)."""
    try:
        found = revoke_by_id(state.db, key_id, key.id)
    except LastAdminKey as exc:
        raise HTTPException(409, str(exc)) from exc
    if not found:
        raise HTTPException(404, f"no key with id {key_id}")
    state.keys.clear()  # this server forgets cached keys at once
    return Response(status_code=204)
