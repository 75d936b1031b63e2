"""Latency-aware pruning: per-layer latency tables measured on a device lane, cached per device fingerprint.

``table`` (the record format), ``measure`` (export + time single layers, the channel-step probe), ``cache``
(JSON files per fingerprint), ``allocate`` (the HALP-like greedy), ``pruner`` (``prune_to_latency``), ``source``
(which lane, and refusing emulated ones). Nothing is imported here, so the pre-flight can use ``source`` cheaply.
See docs/latency-model.md.
"""
