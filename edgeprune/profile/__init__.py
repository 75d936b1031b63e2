"""Profiling maths shared by every device (host, adb, qemu, ssh, the Android app)."""

from edgeprune.profile.stats import latency_stats, trimmed_mean

__all__ = ["latency_stats", "trimmed_mean"]
