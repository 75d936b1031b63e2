"""In-memory token buckets (per server process): per-key request rates and wrong-key attempts per address."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class TokenBuckets:
    """``rate_per_minute`` tokens refill continuously up to ``burst``; each request takes one.

    ``take`` answers 0 when allowed, else the seconds until a token is available (for Retry-After).
    ``rate_per_minute == 0`` disables the limit. At most ``max_entries`` buckets are kept (least recently
    used ones are dropped, which only ever resets a bucket to full).
    """

    def __init__(self, rate_per_minute: float, burst: int, max_entries: int = 50_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.max_entries = max_entries
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()  # name -> (tokens, stamp)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _level(self, name: object, now: float) -> float:
        tokens, stamp = self._buckets.get(name, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def wait_time(self, name: object) -> int:
        """Whole seconds until ``name`` may act again (0 = now), without taking a token."""
        if not self.enabled:
            return 0
        with self._lock:
            level = self._level(name, time.monotonic())
        return 0 if level >= 1 else max(1, math.ceil((1 - level) / self.rate))

    def take(self, name: object) -> int:
        """Take a token for ``name``; 0 when allowed, else whole seconds to wait (nothing is taken)."""
        if not self.enabled:
            return 0
        now = time.monotonic()
        with self._lock:
            level = self._level(name, now)
            if level < 1:
                return max(1, math.ceil((1 - level) / self.rate))
            self._buckets[name] = (level - 1, now)
            self._buckets.move_to_end(name)
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
            return 0
