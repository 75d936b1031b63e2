"""Checks on a bundle zip before it is accepted (shared by the server and ``edgeprune publish``).

A bundle is a zip with ``model.json`` (:class:`edgeprune.schemas.BundleModelJson`) at its root; every file
it lists (``files`` and ``artifacts``) must be in the zip with the listed sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeprune.schemas import BundleModelJson

MODEL_JSON = "model.json"
_DRIVE = re.compile(r"^[A-Za-z]:")


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


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` could escape the bundle directory when extracted (``None`` if it is a safe path)."""
    if not name or "\x00" in name:
        return "empty name or NUL byte"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "'..', '.' or empty path component"
    return None


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest, total = hashlib.sha256(), 0
    with zf.open(info) as fh:
        while block := fh.read(1 << 20):
            total += len(block)
            if total > info.file_size:
                raise BundleRejected(400, f"zip entry {info.filename!r} is larger than its header says")
            digest.update(block)
    return digest.hexdigest()


def _check_entries(zf: zipfile.ZipFile, max_uncompressed: int) -> dict[str, zipfile.ZipInfo]:
    entries: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        reason = unsafe_reason(info.filename)
        if reason:
            raise BundleRejected(400, f"unsafe zip entry name {info.filename!r}: {reason}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleRejected(400, f"zip entry {info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise BundleRejected(400, f"zip entry {info.filename!r} is encrypted")
        if info.filename in entries:
            raise BundleRejected(400, f"zip entry {info.filename!r} appears twice")
        total += info.file_size
        if total > max_uncompressed:
            raise BundleRejected(413, f"bundle contents exceed {max_uncompressed} bytes uncompressed")
        entries[info.filename] = info
    return entries


def _read_model_json(zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]) -> BundleInfo:
    info = entries.get(MODEL_JSON)
    if info is None:
        raise BundleRejected(422, "the bundle has no model.json at its root")
    if info.file_size > 16 * 1024 * 1024:
        raise BundleRejected(422, "model.json is larger than 16 MB")
    try:
        raw = json.loads(zf.read(info).decode("utf-8"))
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


def inspect_bundle(path: Path, max_uncompressed: int) -> BundleInfo:
    """Validate the bundle zip at ``path``; raise :class:`BundleRejected` with a clear message."""
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _check_entries(zf, max_uncompressed)
            bundle = _read_model_json(zf, entries)
            listed = [(f.path, f.sha256, f.size_bytes) for f in bundle.model.files]
            listed += [(a.file, a.sha256, a.size_bytes) for a in bundle.model.artifacts]
            for name, sha, size in listed:
                reason = unsafe_reason(name)
                if reason:
                    raise BundleRejected(422, f"model.json lists an unsafe path {name!r}: {reason}")
                member = entries.get(name)
                if member is None:
                    raise BundleRejected(422, f"model.json lists {name!r} but the zip does not contain it")
                if member.file_size != size:
                    raise BundleRejected(
                        422, f"{name!r} is {member.file_size} bytes but model.json says {size} bytes"
                    )
                actual = _hash_member(zf, member)
                if actual != sha.lower():
                    raise BundleRejected(
                        422, f"{name!r} has sha256 {actual} but model.json says {sha}: the bundle is inconsistent"
                    )
    except BundleRejected:
        raise
    except zipfile.BadZipFile as exc:
        raise BundleRejected(400, f"the upload is not a valid zip file: {exc}") from exc
    except (RuntimeError, NotImplementedError, OSError, EOFError) as exc:
        raise BundleRejected(400, f"the zip file could not be read: {exc}") from exc
    except Exception as exc:  # zlib.error and friends from damaged archives
        raise BundleRejected(400, f"the zip file is damaged: {exc}") from exc
    return bundle
