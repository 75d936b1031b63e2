"""``/api/v1/bundles``: publish (admin), list, and download with ETag + Range (device/admin)."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import UploadFile

from edgeprune.server.audit import audit
from edgeprune.server.bundlezip import BundleInfo, BundleRejected, inspect_bundle
from edgeprune.server.deps import AdminKey, DeviceKey, StateDep
from edgeprune.server.jsonsafe import dumps_strict
from edgeprune.server.models import Bundle, BundleApp, BundleArtifactRow, Channel
from edgeprune.server.pagination import Cursor, Limit, decode_cursor, encode_cursor, page
from edgeprune.server.ranges import RangedFileResponse
from edgeprune.server.routes._common import check_name, download_url, etag_matches
from edgeprune.server.routes.channels import link_bundle_to_app, point_channel
from edgeprune.server.schemas import (
    SHA256_PATTERN,
    ArtifactSummary,
    BundleSignatureOut,
    BundleSummary,
    BundleUploaded,
)
from edgeprune.server.security import KeyInfo
from edgeprune.server.signatures import stored_signature, trusted_keys
from edgeprune.server.state import ServerState
from edgeprune.server.storage import BundleCorrupt, BundleMissing, UploadTooLarge

log = logging.getLogger("edgeprune.server.bundles")
router = APIRouter(prefix="/api/v1/bundles", tags=["bundles"])
ShaPath = Annotated[str, Path(pattern=SHA256_PATTERN, description="sha256 of the bundle zip (lower-case hex)")]

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "sha256"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the bundle .zip"},
                        "sha256": {"type": "string", "description": "sha256 of the zip as computed by the client"},
                        "app_id": {"type": "string", "description": "needed when channel is given"},
                        "channel": {"type": "string", "description": "point this channel at the bundle"},
                    },
                }
            }
        },
    }
}


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return str(value).strip() or None


@router.post("", response_model=BundleUploaded, status_code=201, openapi_extra=_UPLOAD_FORM,
             responses={200: {"description": "already stored (idempotent re-upload)"}})
async def upload_bundle(request: Request, key: AdminKey, state: StateDep) -> JSONResponse:
    """Upload a bundle zip (multipart ``file`` + ``sha256``; optional ``app_id`` + ``channel``)."""
    form = await request.form(max_files=1, max_fields=8)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "missing multipart field 'file' (the bundle .zip)")
        client_sha = (_form_text(form, "sha256") or "").lower()
        if not re.match(SHA256_PATTERN, client_sha):
            raise HTTPException(422, "missing or malformed field 'sha256' (64 hex digits of the zip's sha256)")
        app_id, channel = _form_text(form, "app_id"), _form_text(form, "channel")
        if channel is not None and app_id is None:
            raise HTTPException(422, "field 'channel' needs field 'app_id' too")
        if app_id is not None:
            check_name("app_id", app_id)
        if channel is not None:
            check_name("channel", channel)
        created, body = await run_in_threadpool(
            _ingest, state, upload.file, client_sha, app_id, channel, key
        )
    finally:
        await form.close()
    return JSONResponse(body, status_code=201 if created else 200)


def _ingest(
    state: ServerState, src: BinaryIO, client_sha: str, app_id: str | None, channel: str | None, key: KeyInfo
) -> tuple[bool, dict[str, Any]]:
    settings = state.settings
    try:
        staged = state.store.receive(src, settings.max_bundle_bytes)
    except UploadTooLarge as exc:
        raise HTTPException(413, f"bundle is larger than the limit of {settings.max_bundle_mb:g} MB") from exc
    try:
        if staged.sha256 != client_sha:
            raise HTTPException(
                400, f"sha256 mismatch: the form says {client_sha} but the uploaded file hashes to "
                f"{staged.sha256} (corrupted upload or wrong file)")
        try:
            info = inspect_bundle(staged.path, 4 * settings.max_bundle_bytes,
                                  publisher_keys=trusted_keys(settings.publisher_keys))
        except BundleRejected as exc:
            raise HTTPException(exc.status, exc.message) from exc
    except BaseException:
        state.store.discard(staged)
        raise
    signature = info.signature.to_dict() if info.signature else None
    state.store.commit(staged, {"signature": signature})
    created = _record(state, staged.sha256, staged.size_bytes, info, key)
    if app_id is not None and channel is not None:
        point_channel(state, app_id, channel, staged.sha256, key)
    elif app_id is not None:
        link_bundle_to_app(state, staged.sha256, app_id)  # the app's devices may read it
    model = info.model
    log.info("bundle %s (%s %s, %d bytes) %s", staged.sha256, model.name, model.version, staged.size_bytes,
             "stored" if created else "already stored")
    body = BundleUploaded(bundle_sha256=staged.sha256, name=model.name, version=model.version,
                          size_bytes=staged.size_bytes,
                          signature=BundleSignatureOut.model_validate(signature) if signature else None)
    return created, body.model_dump()


def _record(state: ServerState, sha: str, size: int, info: BundleInfo, key: KeyInfo) -> bool:
    """Insert the bundle row once; a concurrent or repeated upload of the same zip is not an error."""
    try:
        with state.db.write() as session:
            if session.get(Bundle, sha) is not None:
                return False
            model = info.model
            session.add(Bundle(sha256=sha, name=model.name, version=model.version, size_bytes=size,
                               model_json=dumps_strict(info.model_json), uploaded_by=key.id))
            session.flush()
            for art in model.artifacts:
                session.add(BundleArtifactRow(
                    bundle_sha256=sha, artifact_sha256=art.sha256.lower(), file=art.file, format=art.format,
                    precision=art.precision, size_bytes=art.size_bytes))
            audit(session, "bundle.publish", key.id, f"bundle/{sha}",
                  {"name": model.name, "version": model.version, "size_bytes": size})
        return True
    except IntegrityError:
        return False


@router.get("", response_model=list[BundleSummary])
def list_bundles(request: Request, key: DeviceKey, state: StateDep, limit: Limit = 100,
                 cursor: Cursor = None) -> JSONResponse:
    """Stored bundles, newest first, ``limit`` per page (next page in the ``Link`` header).

    A device key sees only the bundles of its app (uploaded for it or pointed at by one of its channels).
    """
    after = decode_cursor(cursor, 2)
    query = select(Bundle).order_by(Bundle.created_at.desc(), Bundle.sha256.desc()).limit(limit + 1)
    if after is not None:
        try:
            at = datetime.fromisoformat(after[0])
        except ValueError:
            raise HTTPException(422, "malformed cursor: use the URL from the previous page's Link header") from None
        query = query.where(or_(Bundle.created_at < at, and_(Bundle.created_at == at, Bundle.sha256 < after[1])))
    if not key.is_admin:
        query = query.where(Bundle.sha256.in_(select(BundleApp.bundle_sha256).where(BundleApp.app_id == key.app_id)))
    with state.db.read() as session:
        bundles = session.scalars(query).all()
        shas = [b.sha256 for b in bundles[:limit]]
        arts = session.scalars(select(BundleArtifactRow).where(BundleArtifactRow.bundle_sha256.in_(shas))).all()
        chans = session.scalars(select(Channel).where(Channel.bundle_sha256.in_(shas))).all()

    def summary(b: Bundle) -> BundleSummary:
        return BundleSummary(
            bundle_sha256=b.sha256, name=b.name, version=b.version, size_bytes=b.size_bytes,
            created_at=b.created_at, download_url=download_url(b.sha256),
            signature=stored_signature(state.store, b.sha256),
            artifacts=[ArtifactSummary(file=a.file, format=a.format, precision=a.precision,
                                       sha256=a.artifact_sha256, size_bytes=a.size_bytes)
                       for a in arts if a.bundle_sha256 == b.sha256],
            channels=sorted(f"{c.app_id}/{c.name}" for c in chans if c.bundle_sha256 == b.sha256
                            and (key.is_admin or c.app_id == key.app_id)))

    return page(request, bundles, limit, lambda b: encode_cursor(b.created_at.isoformat(), b.sha256), summary)


def readable_by(state: ServerState, sha256: str, key: KeyInfo) -> bool:
    """Admin keys read every bundle; a device key only those linked to its app."""
    if key.is_admin:
        return True
    with state.db.read() as session:
        return session.get(BundleApp, (sha256, key.app_id or "")) is not None


@router.get("/{sha256}/download", response_class=FileResponse,
            responses={206: {"description": "partial content (Range)"}, 304: {"description": "not modified"}})
def download_bundle(sha256: ShaPath, request: Request, key: DeviceKey, state: StateDep) -> Response:
    """The bundle zip; supports ``If-None-Match`` (304) and ``Range`` (206, resumable downloads)."""
    if not readable_by(state, sha256, key):
        raise HTTPException(404, f"no bundle with sha256 {sha256} for app {key.app_id!r}")
    with state.db.read() as session:
        bundle = session.get(Bundle, sha256)
        if bundle is None:
            raise HTTPException(404, f"no bundle with sha256 {sha256}")
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"{bundle.name}-{bundle.version}.zip")
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable", "X-Bundle-SHA256": sha256}
    if etag_matches(request.headers.get("if-none-match"), sha256):
        return Response(status_code=304, headers=headers)
    try:
        path = state.store.verified_path(sha256)
    except BundleMissing as exc:
        log.error("bundle %s is in the database but its file is missing from the store", sha256)
        raise HTTPException(500, f"bundle {sha256} is missing from the server's store; re-upload it") from exc
    except BundleCorrupt as exc:
        raise HTTPException(500, f"bundle {sha256} failed its sha256 check on the server; re-upload it") from exc
    return RangedFileResponse(path, media_type="application/zip", filename=filename, headers=headers)


router.add_api_route("/{sha256}/download", download_bundle, methods=["HEAD"], operation_id="head_bundle_download",
                     response_class=FileResponse, summary="Size and ETag of a bundle (HEAD)")
