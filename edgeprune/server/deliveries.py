"""Which app/channel/ABI asked for a model: buffered and written in batches, off the hot path.

A ``current`` request only appends to memory; the buffer is written in one transaction when it holds
``max_items`` events or is ``max_age`` seconds old (checked on the next request), when the dashboard
reads it, and at shutdown. A crash loses at most the unwritten batch of these statistics, never data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edgeprune.server.db import Database
from edgeprune.server.models import DeliveryEvent, utcnow

log = logging.getLogger("edgeprune.server.deliveries")


class DeliveryLog:
    def __init__(self, db: Database, max_items: int = 200, max_age: float = 2.0,
                 after_write: Callable[[], None] | None = None) -> None:
        self.db = db
        self.after_write = after_write  # e.g. retention pruning, run after a batch is written
        self.max_items = max_items
        self.max_age = max_age
        self._items: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()

    def record(self, app_id: str, channel: str, abi: str, bundle_sha256: str, not_modified: bool,
               key_id: int | None) -> None:
        with self._lock:
            if not self._items:
                self._oldest = time.monotonic()
            self._items.append({"app_id": app_id, "channel": channel, "abi": abi, "bundle_sha256": bundle_sha256,
                                "not_modified": not_modified, "key_id": key_id, "requested_at": utcnow()})
            due = len(self._items) >= self.max_items or time.monotonic() - self._oldest >= self.max_age
        if due:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered so far (best effort: a failure is logged, delivery is never blocked)."""
        with self._lock:
            batch, self._items = self._items, []
        if not batch:
            return
        try:
            with self.db.write() as session:
                session.add_all([DeliveryEvent(**item) for item in batch])
        except Exception:
            log.exception("could not record %d delivery events", len(batch))
            return
        if self.after_write is not None:
            self.after_write()
