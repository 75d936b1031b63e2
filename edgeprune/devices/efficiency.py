"""The "pruned but not faster" check: did removing MACs actually remove latency on this device?

Definitions, for a dense and a pruned artifact measured on the same device with the same threads, delegate
and runtime (p50 latencies ``L_dense``, ``L_pruned``; MAC counts ``M_dense``, ``M_pruned``)::

    mac_ratio     = M_pruned / M_dense            (e.g. 0.5: half the multiply-accumulates are gone)
    latency_ratio = L_pruned / L_dense            (e.g. 0.8: the pruned model takes 80 % of the time)
    efficiency    = (1 - latency_ratio) / (1 - mac_ratio)

i.e. the fraction of the MAC reduction that showed up as a latency reduction ("the MAC speedup achieved
fraction", measured on the time saved). 1.0 = latency fell exactly in proportion to MACs; 0 = not faster at
all; negative = the pruned model is slower; above 1 = faster than MACs predict (e.g. it now fits in cache).
Example: half the MACs removed, latency down 20 % -> efficiency 0.4 -> flagged (threshold 0.7).

The check is only judged when at least ``min_mac_reduction`` (default 5 %) of the MACs were removed: below
that, timing noise dominates the ratio. Emulated measurements (``timing_meaningful=False``) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.schemas import Measurement

THRESHOLD = 0.7
MIN_MAC_REDUCTION = 0.05


def speedup_efficiency(dense_ms: float, pruned_ms: float, dense_macs: float, pruned_macs: float) -> float | None:
    """``(1 - L_p/L_d) / (1 - M_p/M_d)``; None when no MACs were removed (the ratio is undefined)."""
    if dense_ms <= 0 or pruned_ms <= 0 or dense_macs <= 0 or pruned_macs < 0:
        raise EdgepruneError("latencies and MAC counts must be positive", "check the measurements and MAC counts")
    mac_ratio = pruned_macs / dense_macs
    if mac_ratio >= 1.0:
        return None
    return (1.0 - pruned_ms / dense_ms) / (1.0 - mac_ratio)


@dataclass
class EfficiencyResult:
    dense: str
    pruned: str
    device: str
    threads: int
    delegate: str
    mac_ratio: float
    latency_ratio: float
    efficiency: float | None
    judged: bool
    flagged: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(m: Measurement) -> tuple[str, str, int, str, str]:
    return (m.device.kind, m.device.id, m.threads, m.delegate, m.runtime)


def check_pruning_efficiency(measurements: Iterable[Measurement], macs: Mapping[str, float],
                             pairs: Iterable[tuple[str, str]], threshold: float = THRESHOLD,
                             min_mac_reduction: float = MIN_MAC_REDUCTION) -> list[EfficiencyResult]:  # fmt: skip
    """One result per (dense, pruned) artifact-name pair and per matching device configuration.

    ``macs`` maps artifact names to MAC counts; ``pairs`` lists (dense_name, pruned_name), e.g.
    ``[("dense_fp32", "pruned_fp32"), ("dense_int8", "pruned_int8")]`` so precision never mixes with pruning.
    """
    p50: dict[str, dict[tuple[str, str, int, str, str], float]] = {}
    for m in measurements:
        if m.latency is not None and m.timing_meaningful:
            p50.setdefault(m.artifact_name, {})[_key(m)] = m.latency.p50_ms
    results = []
    for dense, pruned in pairs:
        for name in (dense, pruned):
            if name not in macs:
                raise EdgepruneError(f"no MAC count for artifact '{name}'", "pass macs={artifact_name: MACs}")
        for key, dense_ms in sorted(p50.get(dense, {}).items()):
            pruned_ms = p50.get(pruned, {}).get(key)
            if pruned_ms is None:
                continue
            mac_ratio, lat_ratio = macs[pruned] / macs[dense], pruned_ms / dense_ms
            eff = speedup_efficiency(dense_ms, pruned_ms, macs[dense], macs[pruned])
            judged = eff is not None and (1.0 - mac_ratio) >= min_mac_reduction
            flagged = judged and eff is not None and eff < threshold
            where = f"{key[0]}:{key[1]} threads={key[2]} {key[3]}"
            if not judged:
                msg = f"{pruned}: only {100 * (1 - mac_ratio):.1f}% of the MACs removed, too little to judge on {where}"
            else:
                flag_note = " < " + str(threshold) + ": pruned but not faster" if flagged else ""
                msg = (f"{pruned}: {100 * (1 - mac_ratio):.0f}% fewer MACs but {100 * (1 - lat_ratio):.0f}% lower p50 "
                       f"latency on {where} (efficiency {eff:.2f}{flag_note})")  # fmt: skip
            results.append(EfficiencyResult(dense, pruned, f"{key[0]}:{key[1]}", key[2], key[3], mac_ratio, lat_ratio,
                                            eff, judged, flagged, msg))  # fmt: skip
    return results
