"""The "pruned but not faster" check on Measurements (latency ratio vs MAC ratio)."""

from __future__ import annotations

import pytest

from edgeprune.devices.efficiency import check_pruning_efficiency, speedup_efficiency
from edgeprune.errors import EdgepruneError
from edgeprune.profile.stats import latency_stats
from edgeprune.schemas import DeviceFingerprint, Measurement


def _m(name: str, p50: float, threads: int = 1, kind: str = "host", meaningful: bool = True) -> Measurement:
    samples = [p50 * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    return Measurement(artifact_name=name, artifact_sha256="0" * 64, device=DeviceFingerprint(kind=kind, id="box"),
                       runtime="ai-edge-litert 2.3.0", threads=threads, delegate="xnnpack", warmup=1, runs=5,
                       latency=latency_stats(samples), timing_meaningful=meaningful)  # fmt: skip


def test_definition() -> None:
    assert speedup_efficiency(10.0, 5.0, 100, 50) == pytest.approx(1.0)  # proportional
    assert speedup_efficiency(10.0, 8.0, 100, 50) == pytest.approx(0.4)  # half the MACs, 20 % faster
    assert speedup_efficiency(10.0, 10.0, 100, 50) == pytest.approx(0.0)  # not faster at all
    assert speedup_efficiency(10.0, 11.0, 100, 50) == pytest.approx(-0.2)  # slower
    assert speedup_efficiency(10.0, 5.0, 100, 100) is None  # nothing pruned
    with pytest.raises(EdgepruneError):
        speedup_efficiency(0.0, 5.0, 100, 50)


def test_flags_pruned_but_not_faster_per_device_configuration() -> None:
    ms = [_m("dense", 10.0), _m("pruned", 8.0), _m("dense", 6.0, threads=2), _m("pruned", 3.3, threads=2),
          _m("dense", 99.0, kind="qemu-arm64", meaningful=False),
          _m("pruned", 99.0, kind="qemu-arm64", meaningful=False)]  # fmt: skip
    results = check_pruning_efficiency(ms, {"dense": 2_000_000, "pruned": 1_000_000}, [("dense", "pruned")])
    assert [(r.threads, r.device) for r in results] == [(1, "host:box"), (2, "host:box")]  # qemu ignored
    one, two = results
    assert one.flagged and one.efficiency == pytest.approx(0.4) and "pruned but not faster" in one.message
    assert not two.flagged and two.efficiency == pytest.approx(0.9) and two.latency_ratio == pytest.approx(0.55)
    assert one.as_dict()["mac_ratio"] == pytest.approx(0.5)


def test_tiny_mac_reduction_is_not_judged_and_missing_macs_raise() -> None:
    ms = [_m("dense", 10.0), _m("pruned", 10.5)]
    (r,) = check_pruning_efficiency(ms, {"dense": 1000, "pruned": 980}, [("dense", "pruned")])
    assert not r.judged and not r.flagged and "too little to judge" in r.message
    with pytest.raises(EdgepruneError, match="no MAC count for artifact 'pruned'"):
        check_pruning_efficiency(ms, {"dense": 1000}, [("dense", "pruned")])
