"""Latency summary statistics: the one place where timings from every device become numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgeprune.errors import EdgepruneError
from edgeprune.schemas import LatencyStats


def trimmed_mean(samples_ms: Sequence[float], trim: float = 0.1) -> float:
    """Mean after dropping ``floor(trim * n)`` samples from each end of the sorted samples."""
    x = np.sort(np.asarray(samples_ms, dtype=np.float64))
    cut = int(math.floor(trim * x.size))
    return float(x[cut : x.size - cut].mean())


def latency_stats(samples_ms: Sequence[float], trim: float = 0.1) -> LatencyStats:
    """Summarise repeated timings (ms): percentiles by linear interpolation, trimmed mean, population std."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise EdgepruneError("no latency samples to summarise", "run the benchmark with runs >= 1")
    if not np.all(np.isfinite(x)) or x.min() < 0:
        raise EdgepruneError("latency samples must be finite and non-negative", "check the timing source")
    if not 0.0 <= trim < 0.5:
        raise EdgepruneError(
            f"trim must be in [0, 0.5), got {trim}", "use e.g. trim=0.1 (10% cut from each end)"
        )
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return LatencyStats(
        n=int(x.size),
        mean_ms=float(x.mean()),
        std_ms=float(x.std()),
        min_ms=float(x.min()),
        max_ms=float(x.max()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        trimmed_mean_ms=trimmed_mean(x, trim),
    )
