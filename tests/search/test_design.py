"""The search's deterministic start leaves room for the sampler and spreads its levels."""

from __future__ import annotations

import pytest

from edgeprune.config import BuildConfig
from edgeprune.search.study import initial_design


@pytest.mark.parametrize("trials", [1, 2, 4, 6, 12, 30])
def test_design_covers_the_range_and_leaves_trials_to_the_sampler(trials: int) -> None:
    cfg = BuildConfig.model_validate({"search": {"trials": trials}})
    s = cfg.search
    design = initial_design(cfg)
    levels = [d["level"] for d in design]
    assert 1 <= len(design) <= trials
    assert len(set(levels)) == len(levels), "every design trial cuts to its own level"
    assert all(s.min_level <= v <= s.max_level for v in levels)
    if trials >= len(s.criteria):
        assert {d["criterion"] for d in design} == set(s.criteria)
    if trials >= 2 * len(s.criteria):
        assert len(design) <= trials // 2, "the sampler gets at least half of a larger budget"
    if len(design) >= 3:  # a gentle and a deep cut are both tried
        assert min(levels) < 0.4 and max(levels) > 0.6
