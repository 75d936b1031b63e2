"""Which lane a latency budget is measured on, and whether that lane's timings can be trusted (no torch here)."""

from __future__ import annotations

from typing import Any

from edgeprune.errors import EdgepruneError


def latency_source(cfg: Any) -> str:
    """The lane of a build config: prune.latency_device, else the first profile device, else host."""
    return cfg.prune.latency_device or (cfg.profile.devices or ["host"])[0]


def refuse_untimed(device: Any, spec: str) -> None:
    """An emulated lane's timings mean nothing: refuse it as a latency source, naming the way out."""
    if not getattr(type(device), "can_time", True):
        raise EdgepruneError(
            f"'{spec}' cannot be a latency source: {device.kind} timings are emulated and not meaningful",
            "measure on a real lane: --latency-device host, adb[:SERIAL] or ssh:user@board")


def check_latency_source(spec: str) -> None:
    """The lane opens (its spec parses) and can time."""
    from edgeprune.devices import open_device

    refuse_untimed(open_device(spec), spec)
