"""API keys: random, shown once, stored only as SHA-256, compared in constant time; scopes admin/device.

Keys carry 256 bits of randomness, so a plain SHA-256 is enough to make a stolen database useless
(no slow password hash is needed); an operator-supplied ``EDGEPRUNE_ADMIN_KEY`` must be >= 24 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from edgeprune.server.db import Database
from edgeprune.server.models import ApiKey

Scope = Literal["admin", "device"]
SCOPES: tuple[Scope, ...] = ("admin", "device")
# which scopes may call an endpoint that needs ``scope``
_ALLOWED: dict[str, frozenset[str]] = {"admin": frozenset({"admin"}), "device": frozenset({"admin", "device"})}


@dataclass(frozen=True)
class KeyInfo:
    """The authenticated caller."""

    id: int
    scope: str
    label: str

    def allows(self, needed: str) -> bool:
        return self.scope in _ALLOWED[needed]


class KeyCache:
    """Recently verified keys (by hash) for ``ttl`` seconds, so most requests skip the database lookup.

    Revoking through this server clears it at once; other servers sharing the database notice a
    revocation within ``ttl`` seconds. ``ttl=0`` disables caching.
    """

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: dict[str, tuple[KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> KeyInfo | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            hit = self._items.get(digest)
            if hit is None or hit[1] < time.monotonic():
                self._items.pop(digest, None)
                return None
            return hit[0]

    def put(self, digest: str, info: KeyInfo) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.clear()
            self._items[digest] = (info, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key(scope: str) -> str:
    """A new random key; the scope prefix only helps humans tell keys apart."""
    return f"ep_{scope}_{secrets.token_urlsafe(32)}"


def create_key(db: Database, scope: str, label: str = "") -> tuple[str, KeyInfo]:
    """Store a new key's hash and return the key itself (the only time it exists in clear)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    key = generate_key(scope)
    digest = hash_key(key)
    with db.write() as session:
        row = ApiKey(lookup=digest[:16], key_hash=digest, scope=scope, label=label[:200], revoked=False)
        session.add(row)
        session.flush()
        info = KeyInfo(row.id, row.scope, row.label)
    return key, info


def authenticate(db: Database, presented: str) -> KeyInfo | None:
    """The key's record if ``presented`` is a valid, unrevoked key, else ``None``."""
    if not presented or len(presented) > 512:
        return None
    digest = hash_key(presented)
    with db.read() as session:
        rows = session.scalars(select(ApiKey).where(ApiKey.lookup == digest[:16])).all()
    found: KeyInfo | None = None
    for row in rows:  # the lookup prefix is not secret; the full comparison is constant-time
        if hmac.compare_digest(row.key_hash, digest) and not row.revoked:
            found = KeyInfo(row.id, row.scope, row.label)
    return found


def bootstrap_admin(db: Database, configured: str | None) -> str | None:
    """Seed the operator's admin key (hashed), or create one if no admin key exists; return a new key."""
    with db.write() as session:
        if configured is not None:
            digest = hash_key(configured)
            row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
            if row is None:
                session.add(
                    ApiKey(
                        lookup=digest[:16],
                        key_hash=digest,
                        scope="admin",
                        label="EDGEPRUNE_ADMIN_KEY",
                        revoked=False,
                    )
                )
            elif row.revoked or row.scope != "admin":
                row.revoked, row.scope = False, "admin"
            return None
        active = session.scalar(
            select(ApiKey.id).where(ApiKey.scope == "admin", ApiKey.revoked.is_(False)).limit(1)
        )
    if active is not None:
        return None
    key, _ = create_key(db, "admin", "generated on first start")
    return key


def parse_authorization(header: str | None, allow_basic: bool = False) -> str | None:
    """The key from ``Bearer <key>`` (or, for browser pages, Basic auth with the key as password)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if allow_basic and scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return password or None
    return None
