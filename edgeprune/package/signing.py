"""Ed25519 signatures of app bundles: ``signature.json`` at the bundle root signs the exact bytes of model.json.

model.json lists the sha256 of every other file, so one signature over model.json covers the whole bundle.
The publisher keeps the private key (PEM, mode 0600); apps and servers pin the public key.

``signature.json``::

    {"format": 1, "algorithm": "Ed25519", "key_id": "<16 hex>", "public_key": "<base64 raw 32 bytes>",
     "signed_file": "model.json", "signed_sha256": "<hex>", "signature": "<base64 64 bytes>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import atomic_path

SIGNATURE_FILE = "signature.json"
SIGNED_FILE = "model.json"
FORMAT = 1
ALGORITHM = "Ed25519"
_FIELDS = ("format", "algorithm", "key_id", "public_key", "signed_file", "signed_sha256", "signature")


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - cryptography is a core dependency
        raise EdgepruneError("bundle signing needs the 'cryptography' package",
                             "pip install cryptography (it is a dependency of edgeprune)") from exc
    return serialization, ed25519


def key_id(raw_public: bytes) -> str:
    """First 16 hex characters of sha256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _raw_public(public_key: Any) -> bytes:
    serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_path_for(private_path: Path) -> Path:
    """Where ``signing-key create`` puts the public key: KEY.pem -> KEY.pub.pem."""
    name = private_path.name.removesuffix(".pem")
    return private_path.with_name(f"{name}.pub.pem")


def create_key(path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path, str]:
    """Write a new Ed25519 private key (PKCS8 PEM, mode 0600) and its public key next to it.

    Returns (private path, public path, key id)."""
    serialization, ed25519 = _crypto()
    path = Path(path)
    pub_path = public_path_for(path)
    for p in (path, pub_path):
        if p.exists() and not overwrite:
            raise EdgepruneError(f"{p} already exists", "choose another path or pass --force to replace the key pair")
    if not path.parent.is_dir():
        raise EdgepruneError(f"directory {path.parent} does not exist", "create it first or choose another path")
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pub_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(tmp, 0o600)
    with atomic_path(pub_path) as tmp:
        tmp.write_bytes(pub_pem)
    return path, pub_path, key_id(_raw_public(private.public_key()))


def load_private_key(path: str | Path) -> Any:
    """An Ed25519 private key from a PEM file; refuses other key types and group/world-readable files."""
    serialization, ed25519 = _crypto()
    path = Path(path)
    if not path.is_file():
        raise EdgepruneError(f"signing key {path} does not exist",
                             f"create one with 'edgeprune signing-key create {path}'")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise EdgepruneError(f"signing key {path} is readable by other users (mode {path.stat().st_mode & 0o777:o})",
                             f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise EdgepruneError(f"{path} is not an unencrypted PEM private key ({exc})",
                             "pass the private key written by 'edgeprune signing-key create'") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EdgepruneError(f"{path} is not an Ed25519 key", "create one with 'edgeprune signing-key create'")
    return key


def load_public_key_raw(source: str | Path) -> bytes:
    """Raw 32-byte Ed25519 public key from a PEM file, or from base64 / hex text of the raw key."""
    serialization, ed25519 = _crypto()
    text = str(source).strip()
    p = Path(text)
    if p.is_file():
        data = p.read_bytes()
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise EdgepruneError(f"{p} is not a PEM public key", "pass the .pub.pem written with the signing key") \
                from exc
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise EdgepruneError(f"{p} is not an Ed25519 public key", "pass the .pub.pem of the publisher's key")
        return _raw_public(key)
    for decode in (bytes.fromhex, lambda s: base64.b64decode(s, validate=True)):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    raise EdgepruneError(f"'{text[:40]}' is neither a public key file nor a raw Ed25519 key (base64 or hex)",
                         "pass the .pub.pem file written by 'edgeprune signing-key create'")


def sign_bundle(root: str | Path, private_key: Any) -> dict[str, Any]:
    """Write ``root/signature.json`` signing the exact bytes of ``root/model.json``; returns its content."""
    root = Path(root)
    data = (root / SIGNED_FILE).read_bytes()
    raw_pub = _raw_public(private_key.public_key())
    sig = {
        "format": FORMAT, "algorithm": ALGORITHM, "key_id": key_id(raw_pub),
        "public_key": base64.b64encode(raw_pub).decode("ascii"), "signed_file": SIGNED_FILE,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(private_key.sign(data)).decode("ascii"),
    }
    (root / SIGNATURE_FILE).write_text(json.dumps(sig, indent=2) + "\n", encoding="utf-8")
    return sig


@dataclass
class SignatureCheck:
    """Outcome of checking signature.json: ``signed`` when present, ``failures`` empty when it verifies."""

    signed: bool
    key_id: str = ""
    failures: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def check_signature(root: str | Path, pinned_public_key: bytes | None = None) -> SignatureCheck:
    """Verify ``root/signature.json`` against model.json (and against ``pinned_public_key`` when given).

    An unsigned bundle is only a failure when a key is pinned."""
    _, ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    root = Path(root)
    path = root / SIGNATURE_FILE
    if not path.is_file():
        return SignatureCheck(False, failures=["the bundle is not signed (no signature.json) but a public key is "
                                               "pinned"] if pinned_public_key else [])
    fail: list[str] = []
    try:
        sig = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(sig, dict) or set(sig) != set(_FIELDS):
            raise ValueError(f"fields must be exactly {', '.join(_FIELDS)}")
        raw_pub = base64.b64decode(sig["public_key"], validate=True)
        signature = base64.b64decode(sig["signature"], validate=True)
        if len(raw_pub) != 32 or len(signature) != 64:
            raise ValueError("public_key must be 32 bytes and signature 64 bytes")
    except (OSError, ValueError, TypeError, binascii.Error) as exc:
        return SignatureCheck(True, failures=[f"{SIGNATURE_FILE} is malformed: {exc}"])
    if sig["format"] != FORMAT or sig["algorithm"] != ALGORITHM or sig["signed_file"] != SIGNED_FILE:
        fail.append(f"{SIGNATURE_FILE} has an unsupported format/algorithm/signed_file")
    if sig["key_id"] != key_id(raw_pub):
        fail.append(f"{SIGNATURE_FILE} key_id does not match its public_key")
    if pinned_public_key is not None and raw_pub != pinned_public_key:
        fail.append(f"the bundle is signed by key {sig['key_id']}, not by the pinned key {key_id(pinned_public_key)}")
    data = (root / SIGNED_FILE).read_bytes()
    if sig["signed_sha256"] != hashlib.sha256(data).hexdigest():
        fail.append("model.json does not match the signed sha256 (it was changed after signing)")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw_pub).verify(signature, data)
    except InvalidSignature:
        fail.append("the Ed25519 signature over model.json does not verify")
    return SignatureCheck(True, key_id=str(sig["key_id"]), failures=fail)
