"""Per-application state (settings, database, bundle store), created by ``create_app``, never at import."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from edgeprune.errors import EdgepruneError
from edgeprune.server.db import Database
from edgeprune.server.deliveries import DeliveryLog
from edgeprune.server.ratelimit import TokenBuckets
from edgeprune.server.retention import Retention
from edgeprune.server.security import KeyCache, LastUsed, bootstrap_admin
from edgeprune.server.settings import ServerSettings
from edgeprune.server.storage import FileBundleStore, make_store

log = logging.getLogger("edgeprune.server")


@dataclass
class ServerState:
    settings: ServerSettings
    db: Database
    store: FileBundleStore
    keys: KeyCache = field(default_factory=lambda: KeyCache(10.0))
    deliveries: DeliveryLog = field(init=False)
    retention: Retention = field(init=False)
    key_rates: TokenBuckets = field(init=False)
    auth_failures: TokenBuckets = field(init=False)
    last_used: LastUsed = field(default_factory=LastUsed)
    started: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.retention = Retention(self.db, s.delivery_retention_days, s.measurement_retention_days,
                                   s.retention_interval_minutes)
        self.deliveries = DeliveryLog(self.db, after_write=self.retention.maybe_prune)
        self.key_rates = TokenBuckets(s.rate_limit_per_minute, s.rate_limit_burst)
        self.auth_failures = TokenBuckets(s.auth_failures_per_minute, s.auth_failure_burst)

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ServerState:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(settings=settings, db=Database(settings.resolved_database_url, settings.db_pool_size),
                   store=make_store(settings), keys=KeyCache(settings.auth_cache_seconds))

    def startup(self) -> str | None:
        """Migrate, seed the admin key and prune old rows; return a newly generated admin key (once), else None."""
        with self._lock:
            if self.started:
                return None
            try:
                revision = self.db.migrate()
                admin = self.settings.admin_key.get_secret_value() if self.settings.admin_key else None
                try:
                    generated = bootstrap_admin(self.db, admin)
                except IntegrityError:  # another replica seeded the same key at the same moment
                    generated = bootstrap_admin(self.db, admin)
            except SQLAlchemyError as exc:
                raise EdgepruneError(
                    f"cannot prepare the database {self.settings.database_label}: {exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0]}",
                    "check EDGEPRUNE_DATABASE_URL / --database-url and that the database server is running",
                ) from exc
            log.info("database %s at schema revision %s", self.settings.database_label, revision)
            self.retention.maybe_prune()
            self.started = True
            return generated

    def shutdown(self) -> None:
        if self.started:
            self.deliveries.flush()
        self.db.dispose()
