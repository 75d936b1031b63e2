"""``/api/v1/keys`` (admin): create keys (shown once), list them (never the secret), revoke."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import func, select

from edgeprune.server.deps import AdminKey, StateDep
from edgeprune.server.models import ApiKey
from edgeprune.server.schemas import KeyCreate, KeyCreated, KeyPublic
from edgeprune.server.security import create_key

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.post("", response_model=KeyCreated, status_code=201)
def new_key(body: KeyCreate, key: AdminKey, state: StateDep) -> KeyCreated:
    """Create a key; the response is the only place the key ever appears in clear."""
    secret, info = create_key(state.db, body.scope, body.label)
    return KeyCreated(id=info.id, scope=info.scope, label=info.label, key=secret)


@router.get("", response_model=list[KeyPublic])
def list_keys(key: AdminKey, state: StateDep) -> list[KeyPublic]:
    with state.db.read() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
    return [KeyPublic(id=r.id, scope=r.scope, label=r.label, created_at=r.created_at, revoked=r.revoked)
            for r in rows]


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: int, key: AdminKey, state: StateDep) -> Response:
    """Revoke a key; the last active admin key cannot be revoked (that would lock everyone out)."""
    with state.db.write() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise HTTPException(404, f"no key with id {key_id}")
        if row.scope == "admin" and not row.revoked:
            admins = session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.scope == "admin", ApiKey.revoked.is_(False))
            )
            if admins == 1:
                raise HTTPException(409, "this is the last active admin key; create another admin key first")
        row.revoked = True
    state.keys.clear()  # this server forgets cached keys at once
    return Response(status_code=204)
