"""Checks on a bundle zip before it is accepted (shared by the server and ``edgeprune publish``).

A bundle is a zip with ``model.json`` (:class:`edgeprune.schemas.BundleModelJson`) at its root; every file
it lists (``files`` and ``artifacts``) must be in the zip with the listed size and sha256, and the zip may
hold nothing else except an optional ``signature.json`` (checked by :mod:`edgeprune.server.signatures`).
Every entry is inflated and checked by :func:`edgeprune.zipsafe.scan_zip`, listed or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeprune.schemas import BundleModelJson
from edgeprune.server.signatures import (
    MAX_SIGNATURE_BYTES,
    SIGNATURE_FILE,
    BundleSignature,
    SignatureRejected,
    check_signature,
    enforce_publishers,
)
from edgeprune.zipsafe import ZipLimits, ZipProblem, scan_zip, unsafe_reason

MODEL_JSON = "model.json"
MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024
_STATUS = {"malformed": 400, "unsafe": 400, "too-large": 413, "bomb": 422}

__all__ = ["MODEL_JSON", "BundleInfo", "BundleRejected", "inspect_bundle", "unsafe_reason"]


class BundleRejected(Exception):
    """The zip is not an acceptable bundle; ``status`` is the HTTP code the server answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BundleInfo:
    model: BundleModelJson
    model_json: dict[str, Any]
    signature: BundleSignature | None = None


def _parse_model_json(data: bytes) -> BundleInfo:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleRejected(422, f"model.json is not valid JSON: {exc}") from exc
    try:
        model = BundleModelJson.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise BundleRejected(422, f"model.json does not match the bundle schema: {problems}") from exc
    return BundleInfo(model=model, model_json=raw)


def _listed(model: BundleModelJson) -> dict[str, tuple[str, int]]:
    listed: dict[str, tuple[str, int]] = {}
    pairs = [(f.path, f.sha256, f.size_bytes) for f in model.files]
    pairs += [(a.file, a.sha256, a.size_bytes) for a in model.artifacts]
    for name, sha, size in pairs:
        reason = unsafe_reason(name)
        if reason or name in (MODEL_JSON, SIGNATURE_FILE) or name.endswith("/"):
            raise BundleRejected(422, f"model.json lists an unsafe path {name!r}: {reason or 'reserved name'}")
        if listed.get(name, (sha.lower(), size)) != (sha.lower(), size):
            raise BundleRejected(422, f"model.json lists {name!r} twice with different checksums")
        listed[name] = (sha.lower(), size)
    return listed


def inspect_bundle(path: Path, max_uncompressed: int, *, limits: ZipLimits | None = None,
                   publisher_keys: dict[str, bytes] | None = None) -> BundleInfo:
    """Validate the bundle zip at ``path``; raise :class:`BundleRejected` with a clear message.

    ``publisher_keys`` (``{key_id: raw key}``): when not empty, only bundles signed by one of them pass."""
    limits = limits or ZipLimits(max_total=max_uncompressed, max_entry=max_uncompressed)
    kept = {MODEL_JSON: MAX_MODEL_JSON_BYTES, SIGNATURE_FILE: MAX_SIGNATURE_BYTES}
    try:
        entries = scan_zip(path, limits, keep=kept)
    except ZipProblem as exc:
        raise BundleRejected(_STATUS[exc.kind], exc.message) from exc
    if MODEL_JSON not in entries:
        raise BundleRejected(422, "the bundle has no model.json at its root")
    model_bytes = entries[MODEL_JSON].data or b""
    info = _parse_model_json(model_bytes)
    listed = _listed(info.model)
    for name, (sha, size) in listed.items():
        member = entries.get(name)
        if member is None:
            raise BundleRejected(422, f"model.json lists {name!r} but the zip does not contain it")
        if member.size_bytes != size:
            raise BundleRejected(422, f"{name!r} is {member.size_bytes} bytes but model.json says {size} bytes")
        if member.sha256 != sha:
            raise BundleRejected(
                422, f"{name!r} has sha256 {member.sha256} but model.json says {sha}: the bundle is inconsistent")
    parents = {"/".join(n.split("/")[:i]) + "/" for n in listed for i in range(1, n.count("/") + 1)}
    for name, member in entries.items():
        allowed = name in listed or name in kept or (member.is_dir and name in parents)
        if not allowed:
            raise BundleRejected(422, f"the zip holds {name!r}, which model.json does not list: only listed files "
                                      f"(and {SIGNATURE_FILE}) may be in a bundle")
    signature = None
    try:
        if SIGNATURE_FILE in entries:
            signature = check_signature(entries[SIGNATURE_FILE].data or b"", model_bytes)
        enforce_publishers(signature, publisher_keys or {})
    except SignatureRejected as exc:
        raise BundleRejected(exc.status, exc.message) from exc
    return BundleInfo(model=info.model, model_json=info.model_json, signature=signature)
