"""Publisher signatures of bundles: ``signature.json`` at the zip root signs the exact bytes of model.json.

model.json lists the sha256 of every other file, so checking this one signature (and the listed hashes,
which :mod:`edgeprune.server.bundlezip` does) covers the whole bundle. The server checks the signature
when a bundle is published and, when ``EDGEPRUNE_PUBLISHER_KEYS`` is set, accepts only bundles signed by
one of those keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeprune.errors import EdgepruneError
from edgeprune.server.schemas import BundleSignatureOut

if TYPE_CHECKING:
    from edgeprune.server.storage import BundleStore

SIGNATURE_FILE = "signature.json"
SIGNED_FILE = "model.json"
MAX_SIGNATURE_BYTES = 64 * 1024


class SignatureDoc(BaseModel):
    """The content of ``signature.json`` (format 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal[1]
    algorithm: Literal["Ed25519"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    public_key: str = Field(max_length=100)
    signed_file: Literal["model.json"]
    signed_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(max_length=200)


@dataclass(frozen=True)
class BundleSignature:
    """A verified signature, as stored beside the bundle and shown in its JSON description."""

    key_id: str
    algorithm: str
    public_key: str
    signature: str
    signed_sha256: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class SignatureRejected(Exception):
    """The bundle's signature is malformed, does not verify, or is not by a trusted publisher."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def key_id_of(raw_public: bytes) -> str:
    """First 16 hex characters of the sha256 of a raw 32-byte public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _b64(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not base64") from exc
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(raw)}")
    return raw


def _key_from_file(path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        raise ValueError(f"{path} holds a private key; give the server only the public key")
    if len(data) == 32:
        return data
    text = data.decode("ascii", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        key: Any = serialization.load_pem_public_key(data)
    elif text.startswith("ssh-ed25519 "):
        key = serialization.load_ssh_public_key(data)
    else:
        return _raw_key_text(text)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_key_text(text: str) -> bytes:
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return _b64(text, 32, "the public key")


def parse_public_key(entry: str) -> bytes:
    """Raw 32-byte Ed25519 public key from base64/hex text or a key file (PEM, OpenSSH, base64 or raw)."""
    entry = entry.strip()
    try:
        path = Path(entry).expanduser()
        if len(entry) < 4096 and path.is_file():
            return _key_from_file(path)
        if "/" in entry and not entry.endswith("=") and len(entry) != 44:
            raise ValueError(f"key file {entry} does not exist")
        return _raw_key_text(entry)
    except (ValueError, OSError) as exc:
        raise EdgepruneError(f"publisher key {entry[:60]!r} is not usable: {exc}",
                             "give base64 raw Ed25519 public keys or public key files (.pub.pem), comma-separated"
                             ) from exc


def trusted_keys(entries: list[str]) -> dict[str, bytes]:
    """``{key_id: raw key}`` for the publisher keys of the settings."""
    return {key_id_of(raw): raw for raw in (parse_public_key(e) for e in entries)}


def check_signature(signature_json: bytes, model_json: bytes) -> BundleSignature:
    """Verify ``signature.json`` against the exact bytes of model.json; raise :class:`SignatureRejected`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        doc = SignatureDoc.model_validate(json.loads(signature_json.decode("utf-8")))
        raw_public = _b64(doc.public_key, 32, "public_key")
        raw_signature = _b64(doc.signature, 64, "signature")
    except (UnicodeDecodeError, ValueError, ValidationError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else None
        why = f"{'.'.join(str(p) for p in detail['loc']) or '(root)'}: {detail['msg']}" if detail else str(exc)
        raise SignatureRejected(422, f"{SIGNATURE_FILE} is malformed: {why}") from exc
    if doc.key_id != key_id_of(raw_public):
        raise SignatureRejected(422, f"{SIGNATURE_FILE}: key_id {doc.key_id} does not belong to its public_key")
    if doc.signed_sha256 != hashlib.sha256(model_json).hexdigest():
        raise SignatureRejected(422, f"{SIGNATURE_FILE} signs another model.json (signed_sha256 differs): "
                                     "model.json was changed after signing")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw_public).verify(raw_signature, model_json)
    except InvalidSignature as exc:
        raise SignatureRejected(422, f"the Ed25519 signature in {SIGNATURE_FILE} does not verify over "
                                     "model.json (tampered or wrongly signed)") from exc
    return BundleSignature(key_id=doc.key_id, algorithm=doc.algorithm, public_key=doc.public_key,
                           signature=doc.signature, signed_sha256=doc.signed_sha256)


def enforce_publishers(signature: BundleSignature | None, trusted: dict[str, bytes]) -> None:
    """With trusted publisher keys configured, only bundles signed by one of them are accepted."""
    if not trusted:
        return
    if signature is None:
        raise SignatureRejected(422, "the bundle is not signed (no signature.json) and this server accepts only "
                                     "bundles signed by its publisher keys (EDGEPRUNE_PUBLISHER_KEYS)")
    raw = trusted.get(signature.key_id)
    if raw is None or raw != base64.b64decode(signature.public_key):
        raise SignatureRejected(403, f"the bundle is signed by key {signature.key_id}, which is not one of this "
                                     "server's publisher keys (EDGEPRUNE_PUBLISHER_KEYS)")


def stored_signature(store: BundleStore, sha256: str) -> BundleSignatureOut | None:
    """The signature verified when the bundle was stored, from its sidecar (``None``: unsigned)."""
    signature = store.metadata(sha256).get("signature")
    try:
        return BundleSignatureOut.model_validate(signature) if isinstance(signature, dict) else None
    except ValidationError:
        return None
