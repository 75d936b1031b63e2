"""Retention: delete delivery records and measurements older than their configured age.

Runs once at start-up and then at most every ``retention_interval_minutes``, triggered by writes (a
delivery batch or a measurement), so an idle server does no work. The audit log is never pruned.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from edgeprune.server.db import Database
from edgeprune.server.models import DeliveryEvent, MeasurementRow, utcnow

log = logging.getLogger("edgeprune.server.retention")


@dataclass
class Pruned:
    deliveries: int = 0
    measurements: int = 0


class Retention:
    def __init__(self, db: Database, delivery_days: float, measurement_days: float, interval_minutes: float) -> None:
        self.db = db
        self.delivery_days = delivery_days
        self.measurement_days = measurement_days
        self.interval = interval_minutes * 60.0
        self._last: float | None = None
        self._lock = threading.Lock()

    def prune(self, now: datetime | None = None) -> Pruned:
        """Delete what is older than the limits now (0 days = keep forever)."""
        now = now or utcnow()
        done = Pruned()
        with self.db.write() as session:
            if self.delivery_days > 0:
                cutoff = now - timedelta(days=self.delivery_days)
                result = session.execute(delete(DeliveryEvent).where(DeliveryEvent.requested_at < cutoff))
                done.deliveries = int(getattr(result, "rowcount", 0) or 0)
            if self.measurement_days > 0:
                cutoff = now - timedelta(days=self.measurement_days)
                result = session.execute(delete(MeasurementRow).where(MeasurementRow.received_at < cutoff))
                done.measurements = int(getattr(result, "rowcount", 0) or 0)
        if done.deliveries or done.measurements:
            log.info("retention: deleted %d delivery records and %d measurements", done.deliveries, done.measurements)
        self._last = time.monotonic()
        return done

    def maybe_prune(self) -> None:
        """Prune if the interval has passed since the last run (best effort, never raises)."""
        if self._last is not None and time.monotonic() - self._last < self.interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is pruning
        try:
            self.prune()
        except Exception:
            log.warning("retention pruning failed; will retry later", exc_info=True)
            self._last = time.monotonic()
        finally:
            self._lock.release()
