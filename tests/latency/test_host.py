"""Latency-aware pruning on the host lane: the real exporter and ai-edge-litert, a cached table reused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from edgeprune.budget import Budget
from edgeprune.latency.cache import ENV_CACHE, load_table
from edgeprune.latency.pruner import LatencyPruneResult, prune_to_latency
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.types import PruneContext, PruneSettings
from tests.latency._latnet import LatNet

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")


def _prune(reduction: float) -> LatencyPruneResult:
    torch.manual_seed(0)
    ctx = PruneContext(example_input=torch.randn(1, 3, 32, 32), log=lambda _msg: None)
    return prune_to_latency(LatNet(), create_criterion("l1"), Budget("latency", reduction), ctx, PruneSettings(),
                            device="host", runs=20)


@pytest.fixture(scope="module")
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache of this module's own, empty at first: the first prune must measure the lane itself."""
    path = tmp_path_factory.mktemp("host-latency-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_CACHE, str(path))
        yield path


@pytest.fixture(scope="module")
def first(own_cache: Path) -> LatencyPruneResult:
    return _prune(0.35)


def test_measured_latency_drops_and_widths_follow_the_measured_step(first: LatencyPruneResult,
                                                                    own_cache: Path) -> None:
    lat = first.extra["latency"]
    assert lat["timings_taken"] > 0 and Path(lat["table"]).parent == own_cache
    # the prediction meets the target and the whole pruned model, timed once, is really faster
    assert lat["predicted_ms"] <= lat["target_ms"] * 1.02
    assert lat["measured_ms"] < 0.85 * lat["dense_ms"]
    assert first.achieved_reduction == pytest.approx(1 - lat["measured_ms"] / lat["dense_ms"], abs=1e-3)
    step = lat["channel_multiple"]
    evidence = lat["channel_multiple_evidence"]
    assert step in (1, 2, 4, 8, 16) and len(evidence["widths"]) == len(evidence["ms"]) and evidence["why"]
    assert first.widths, "something was pruned"
    for before, after in first.widths.values():
        assert after < before and after % step == 0
    # the table on disk is the lane's: fingerprinted, with the probe and one record per timing
    table = json.loads(Path(lat["table"]).read_text())
    assert table["fingerprint"]["kind"] == "host" and table["fingerprint"]["threads"] == 1
    assert table["probe"]["step"] == step and all(p["ms"] > 0 for p in table["points"])
    summary = first.summary()
    assert summary["budget"]["kind"] == "latency" and summary["latency"]["channel_multiple"] == step


def test_second_prune_reuses_the_cached_table(first: LatencyPruneResult) -> None:
    table_before = load_table(first.extra["latency"]["fingerprint"]).to_json()
    again = _prune(0.3)
    assert again.extra["latency"]["timings_taken"] == 0  # nothing measured: every layer came from the cache
    assert load_table(first.extra["latency"]["fingerprint"]).to_json() == table_before
    assert again.extra["latency"]["measured_ms"] > 0
