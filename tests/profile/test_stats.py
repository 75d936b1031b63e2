"""latency_stats against numpy (and scipy's trimmed mean when installed)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.profile import latency_stats, trimmed_mean


@pytest.mark.parametrize("n", [1, 2, 7, 50, 333])
def test_matches_numpy(n: int) -> None:
    x = np.random.default_rng(n).gamma(2.0, 3.0, size=n)
    s = latency_stats(x.tolist())
    assert s.n == n
    assert [s.p50_ms, s.p90_ms, s.p99_ms] == pytest.approx(np.percentile(x, [50, 90, 99]).tolist())
    assert s.mean_ms == pytest.approx(x.mean()) and s.std_ms == pytest.approx(x.std(ddof=0))
    assert s.min_ms == x.min() and s.max_ms == x.max()
    assert s.p50_ms <= s.p90_ms <= s.p99_ms


def test_trimmed_mean_by_hand() -> None:
    samples = [5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 1000]  # 11 samples, 10% -> drop one from each end
    assert latency_stats(samples).trimmed_mean_ms == pytest.approx(6.0)
    assert latency_stats(samples, trim=0.0).trimmed_mean_ms == pytest.approx(np.mean(samples))
    assert trimmed_mean(samples, trim=0.2) == pytest.approx(np.mean([3, 4, 5, 6, 7, 8, 9]))


@pytest.mark.parametrize("trim", [0.05, 0.1, 0.25, 0.49])
def test_trimmed_mean_matches_scipy(trim: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(1).lognormal(size=97)
    assert latency_stats(x, trim=trim).trimmed_mean_ms == pytest.approx(stats.trim_mean(x, trim))


@pytest.mark.parametrize(
    ("samples", "trim"), [([], 0.1), ([1.0, float("nan")], 0.1), ([1.0, -2.0], 0.1), ([1.0], 0.5)]
)
def test_bad_input(samples: list[float], trim: float) -> None:
    with pytest.raises(EdgepruneError):
        latency_stats(samples, trim=trim)
