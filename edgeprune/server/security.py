"""API keys: random, shown once, stored only as SHA-256, compared in constant time; scopes admin/device.

Keys carry 256 bits of randomness, so a plain SHA-256 is enough to make a stolen database useless
(no slow password hash is needed); an operator-supplied ``EDGEPRUNE_ADMIN_KEY`` must be >= 24 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from edgeprune.server.audit import audit
from edgeprune.server.db import Database
from edgeprune.server.models import ApiKey, utcnow

log = logging.getLogger("edgeprune.server.security")

Scope = Literal["admin", "device"]
SCOPES: tuple[Scope, ...] = ("admin", "device")
# which scopes may call an endpoint that needs ``scope``
_ALLOWED: dict[str, frozenset[str]] = {"admin": frozenset({"admin"}), "device": frozenset({"admin", "device"})}


@dataclass(frozen=True)
class KeyInfo:
    """The authenticated caller; device keys carry the one ``app_id`` they may use."""

    id: int
    scope: str
    label: str
    app_id: str | None = None
    expires_at: datetime | None = None

    def allows(self, needed: str) -> bool:
        return self.scope in _ALLOWED[needed]

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.scope, row.label, row.app_id, row.expires_at)


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


class LastUsed:
    """Writes a key's ``last_used_at`` at most once per ``every`` seconds per key (per server process)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._written: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, key_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._written.get(key_id)
            if last is not None and now - last < self.every:
                return False
            if len(self._written) > 100_000:
                self._written.clear()
            self._written[key_id] = now
            return True

    def write(self, db: Database, key_id: int) -> None:
        """Record a use now (call when :meth:`due`; best effort: a failure never blocks the request)."""
        try:
            with db.write() as session:
                session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
        except Exception:  # pragma: no cover - e.g. the database is briefly unavailable
            log.warning("could not record last use of key %d", key_id, exc_info=True)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key(scope: str) -> str:
    """A new random key; the scope prefix only helps humans tell keys apart."""
    return f"ep_{scope}_{secrets.token_urlsafe(32)}"


def create_key(db: Database, scope: str, label: str = "", *, app_id: str | None = None,
               expires_at: datetime | None = None, created_by: int | None = None,
               source: str = "api") -> tuple[str, KeyInfo]:
    """Store a new key's hash (and an audit record) and return the key itself, the only time it exists in clear.

    A device key must name the one app it may use; an admin key must not.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if scope == "device" and not app_id:
        raise ValueError("a device key needs the app id it may use (--app-id / \"app_id\")")
    if scope == "admin" and app_id:
        raise ValueError("admin keys are not scoped to an app; leave app_id out")
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    key = generate_key(scope)
    digest = hash_key(key)
    with db.write() as session:
        row = ApiKey(lookup=digest[:16], key_hash=digest, scope=scope, label=label[:200], revoked=False,
                     app_id=app_id, expires_at=expires_at, source=source, created_at=utcnow())
        session.add(row)
        session.flush()
        info = _info(row)
        audit(session, "key.create", created_by, f"key/{row.id}",
              {"scope": scope, "app_id": app_id, "label": row.label, "source": source,
               "expires_at": expires_at.isoformat() if expires_at else None})
    return key, info


def revoke_key(session: Session, row: ApiKey, by: int | None, reason: str = "revoked") -> None:
    """Mark ``row`` revoked for good (the hash stays, so re-seeding the same key cannot revive it)."""
    row.revoked = True
    audit(session, "key.revoke", by, f"key/{row.id}", {"scope": row.scope, "label": row.label, "reason": reason})


class LastAdminKey(Exception):
    """Revoking this key would leave no usable admin key."""


def revoke_by_id(db: Database, key_id: int, by: int | None) -> bool:
    """Revoke key ``key_id``; ``False`` if no such key. Raises :class:`LastAdminKey` for the last usable admin."""
    with db.write() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            return False
        if row.revoked:
            return True
        if row.scope == "admin":
            now = utcnow()
            admins = session.scalars(select(ApiKey).where(ApiKey.scope == "admin", ApiKey.revoked.is_(False))).all()
            usable = [a for a in admins if a.expires_at is None or a.expires_at > now]
            if len(usable) <= 1 and row in usable:
                raise LastAdminKey("this is the last active admin key; create another admin key first")
        revoke_key(session, row, by)
    return True


def authenticate(db: Database, presented: str) -> KeyInfo | None:
    """The key's record if ``presented`` is a valid, unrevoked, unexpired key, else ``None``."""
    if not presented or len(presented) > 512:
        return None
    digest = hash_key(presented)
    with db.read() as session:
        rows = session.scalars(select(ApiKey).where(ApiKey.lookup == digest[:16])).all()
    found: KeyInfo | None = None
    for row in rows:  # the lookup prefix is not secret; the full comparison is constant-time
        if hmac.compare_digest(row.key_hash, digest) and not row.revoked:
            info = _info(row)
            found = None if info.expired() else info
    return found


def bootstrap_admin(db: Database, configured: str | None) -> str | None:
    """Seed the operator's admin key, or create one if no admin key exists; return a newly generated key.

    - A configured key seen before keeps its state: once revoked it stays revoked across restarts.
    - A new configured key rotates: earlier keys seeded from the variable are revoked.
    - No configured key: a key is generated only when no usable admin key exists.
    """
    with db.write() as session:
        if configured is not None:
            digest = hash_key(configured)
            row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
            if row is None:
                row = ApiKey(lookup=digest[:16], key_hash=digest, scope="admin", label="EDGEPRUNE_ADMIN_KEY",
                             revoked=False, source="env", created_at=utcnow())
                session.add(row)
                session.flush()
                audit(session, "key.create", None, f"key/{row.id}", {"scope": "admin", "source": "env"})
                older = session.scalars(select(ApiKey).where(
                    ApiKey.source == "env", ApiKey.id != row.id, ApiKey.revoked.is_(False))).all()
                for old in older:
                    revoke_key(session, old, None, "EDGEPRUNE_ADMIN_KEY changed (rotation)")
            elif row.revoked:
                log.warning("EDGEPRUNE_ADMIN_KEY is a revoked key and stays revoked; set a new value to rotate")
            elif row.scope != "admin":
                log.warning("EDGEPRUNE_ADMIN_KEY equals an existing %s key; it is not made an admin key", row.scope)
            return None
        now = utcnow()
        active = session.scalars(
            select(ApiKey).where(ApiKey.scope == "admin", ApiKey.revoked.is_(False))
        ).all()
    if any(r.expires_at is None or r.expires_at > now for r in active):
        return None
    key, _ = create_key(db, "admin", "generated on first start", source="generated")
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
