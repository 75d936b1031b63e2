"""Model-attributable memory: grows with the model's weights while the runtime-only baseline stays put."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.devices import BenchSpec, HostDevice
from tests.profile._models import export_fp32, wide_net

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("memory")
    return {hidden: export_fp32(wide_net(hidden), 16, out, f"wide{hidden}") for hidden in (16, 1024, 4096)}


def test_model_memory_follows_the_weights(models: dict[int, Path]) -> None:
    spec = BenchSpec(threads=[1], warmup=1, runs=3)
    got = {h: HostDevice().benchmark(p, spec, p.stem, "0" * 64)[0] for h, p in models.items()}
    size_mb = {h: p.stat().st_size / 2**20 for h, p in models.items()}
    for m in got.values():
        assert m.model_peak_mb is not None and m.baseline_rss_mb is not None and m.peak_rss_mb is not None
        assert 0 < m.model_peak_mb < m.peak_rss_mb and m.extra["memory_method"] == "vmhwm-window"
        # the baseline (python + numpy + the runtime imported, no model) and the model's part make up the peak
        assert m.baseline_rss_mb + m.model_peak_mb == pytest.approx(m.peak_rss_mb, abs=1.0)
    base = [m.baseline_rss_mb for m in got.values()]
    assert max(base) - min(base) < 3.0, base  # same process before any model: the same few tens of MB
    # what each bigger model adds over the 0.1 MB one: about 1-3 bytes resident per byte of fp32 weights (the
    # mapped file plus XNNPACK's packed copy), the same factor at 32 MB as at 8 MB
    added = {h: got[h].model_peak_mb - got[16].model_peak_mb for h in (1024, 4096)}
    factors = {h: added[h] / (size_mb[h] - size_mb[16]) for h in added}
    assert all(1.0 <= f <= 3.0 for f in factors.values()), (factors, size_mb)
    assert added[4096] / added[1024] == pytest.approx(size_mb[4096] / size_mb[1024], rel=0.2)
    # the process peak hides the difference (the runtime dominates it), the model's part shows it: here about
    # 20x between the two extremes against about 2.3x for the whole process
    model_ratio = got[4096].model_peak_mb / got[16].model_peak_mb
    assert model_ratio > 2 * got[4096].peak_rss_mb / got[16].peak_rss_mb
    print(f"\nmodel MB {[round(m.model_peak_mb, 1) for m in got.values()]}, baseline MB {[round(b, 1) for b in base]}, "
          f"file MB {[round(s, 1) for s in size_mb.values()]}, bytes per weight byte {factors}")


def test_records_without_the_memory_and_parity_fields_stay_valid() -> None:
    """A measurement written before these fields existed (or by the Android app) still parses; they are null."""
    from edgeprune.schemas import Measurement

    old = {"schema_version": 1, "artifact_name": "m", "artifact_sha256": "0" * 64, "runtime": "ai-edge-litert 2.3.0",
           "device": {"kind": "host", "id": "box"}, "threads": 1, "warmup": 1, "runs": 3, "peak_rss_mb": 49.0,
           "load_delta_mb": 3.1, "extra": {"rss_before_mb": 39.4}}  # fmt: skip
    m = Measurement.model_validate(old)
    assert m.model_peak_mb is None and m.baseline_rss_mb is None and m.parity is None and m.peak_rss_mb == 49.0
    with pytest.raises(ValueError, match="finite"):
        Measurement.model_validate({**old, "model_peak_mb": float("inf")})
