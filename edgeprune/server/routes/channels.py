"""``/api/v1/apps/{app_id}/channels/{channel}``: point/re-point (admin), current model (device), history."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edgeprune.server.audit import audit
from edgeprune.server.deps import AdminKey, DeviceKey, StateDep, check_app
from edgeprune.server.jsonsafe import loads_tolerant, repaired_headers
from edgeprune.server.models import Bundle, BundleApp, Channel, ChannelEvent, utcnow
from edgeprune.server.pagination import Cursor, Limit, cursor_int, encode_cursor, page
from edgeprune.server.routes._common import download_url, etag_matches
from edgeprune.server.schemas import NAME_PATTERN, ChannelEventOut, ChannelPointer, ChannelState, CurrentModel
from edgeprune.server.security import KeyInfo
from edgeprune.server.signatures import stored_signature
from edgeprune.server.state import ServerState

log = logging.getLogger("edgeprune.server.channels")
router = APIRouter(prefix="/api/v1/apps/{app_id}/channels", tags=["channels"])
AppId = Annotated[str, Path(pattern=NAME_PATTERN, description="application id, e.g. org.example.app")]
ChannelName = Annotated[str, Path(pattern=NAME_PATTERN, description="release channel, e.g. stable")]


def link_bundle(session: Session, sha256: str, app_id: str) -> None:
    """Let devices of ``app_id`` read bundle ``sha256`` (idempotent)."""
    if session.get(BundleApp, (sha256, app_id)) is None:
        session.add(BundleApp(bundle_sha256=sha256, app_id=app_id))
        session.flush()


def link_bundle_to_app(state: ServerState, sha256: str, app_id: str) -> None:
    """:func:`link_bundle` in its own transaction; a concurrent identical link is not an error."""
    try:
        with state.db.write() as session:
            link_bundle(session, sha256, app_id)
    except IntegrityError:
        pass


def point_channel(state: ServerState, app_id: str, channel: str, sha256: str, key: KeyInfo) -> ChannelState:
    """Point ``(app_id, channel)`` at a stored bundle and record the change (404 if the bundle is unknown)."""
    for _attempt in range(3):  # two first-time PUTs racing on the unique (app_id, name) retry once
        try:
            with state.db.write() as session:
                if session.get(Bundle, sha256) is None:
                    raise HTTPException(404, f"no bundle with sha256 {sha256}; publish it first")
                row = session.scalar(select(Channel).where(Channel.app_id == app_id, Channel.name == channel))
                previous = row.bundle_sha256 if row is not None else None
                now = utcnow()
                if row is None:
                    row = Channel(app_id=app_id, name=channel, bundle_sha256=sha256, updated_at=now)
                    session.add(row)
                elif previous != sha256:
                    row.bundle_sha256, row.updated_at = sha256, now
                if previous != sha256:
                    session.add(ChannelEvent(app_id=app_id, channel=channel, bundle_sha256=sha256,
                                             previous_sha256=previous, changed_at=now, changed_by=key.id))
                    audit(session, "channel.move", key.id, f"{app_id}/{channel}",
                          {"bundle_sha256": sha256, "previous_sha256": previous})
                    log.info("channel %s/%s -> %s (was %s)", app_id, channel, sha256, previous)
                link_bundle(session, sha256, app_id)
                session.flush()
                return ChannelState(app_id=app_id, channel=channel, bundle_sha256=sha256,
                                    previous_sha256=previous, updated_at=row.updated_at)
        except IntegrityError:
            continue
    raise HTTPException(409, "the channel was changed concurrently; retry")


@router.put("/{channel}", response_model=ChannelState)
def put_channel(app_id: AppId, channel: ChannelName, body: ChannelPointer, key: AdminKey,
                state: StateDep) -> ChannelState:
    """Point a channel at a bundle; pointing it back at an older bundle is a rollback."""
    return point_channel(state, app_id, channel, body.bundle_sha256, key)


@router.get("/{channel}/current", response_model=CurrentModel,
            responses={304: {"description": "If-None-Match matched"}, 404: {"description": "unknown channel"}})
def current_model(app_id: AppId, channel: ChannelName, request: Request, key: DeviceKey, state: StateDep,
                  abi: Annotated[str, Query(max_length=64, description="device ABI, e.g. arm64-v8a")] = "",
                  ) -> Response:
    """What a device on this channel should run now (ETag = bundle sha256; 304 when unchanged)."""
    check_app(key, app_id)
    with state.db.read() as session:
        row = session.scalar(select(Channel).where(Channel.app_id == app_id, Channel.name == channel))
        if row is None:
            raise HTTPException(404, f"app {app_id!r} has no channel {channel!r}")
        bundle = session.get(Bundle, row.bundle_sha256)
        if bundle is None:  # pragma: no cover - prevented by the foreign key
            raise HTTPException(404, "the channel points at a missing bundle")
    sha = bundle.sha256
    not_modified = etag_matches(request.headers.get("if-none-match"), sha)
    state.deliveries.record(app_id, channel, abi, sha, not_modified, key.id)
    headers = {"ETag": f'"{sha}"', "Cache-Control": "no-cache"}
    if not_modified:
        return Response(status_code=304, headers=headers)
    model_json, repaired = loads_tolerant(bundle.model_json, f"model.json of bundle {sha}")
    body = CurrentModel(bundle_sha256=sha, name=bundle.name, version=bundle.version, size_bytes=bundle.size_bytes,
                        download_url=download_url(sha), model_json=model_json or {},
                        signature=stored_signature(state.store, sha))
    return JSONResponse(body.model_dump(), headers={**headers, **repaired_headers([sha] if repaired else [])})


@router.get("/{channel}/history", response_model=list[ChannelEventOut])
def channel_history(app_id: AppId, channel: ChannelName, request: Request, key: AdminKey, state: StateDep,
                    limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
    """Every pointing of this channel, newest first, ``limit`` per page (next page in the ``Link`` header)."""
    before = cursor_int(cursor)
    query = (select(ChannelEvent).where(ChannelEvent.app_id == app_id, ChannelEvent.channel == channel)
             .order_by(ChannelEvent.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(ChannelEvent.id < before)
    with state.db.read() as session:
        rows = session.scalars(query).all()
    if not rows and before is None:
        raise HTTPException(404, f"app {app_id!r} has no channel {channel!r}")
    return page(request, rows, limit, lambda r: encode_cursor(r.id),
                lambda r: ChannelEventOut(bundle_sha256=r.bundle_sha256, previous_sha256=r.previous_sha256,
                                          changed_at=r.changed_at))
