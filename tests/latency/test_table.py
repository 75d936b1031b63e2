"""The table's maths, the step rule and the cache file, without any device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprune.latency.cache import ENV_CACHE, fingerprint_key, load_table, save_table, table_path
from edgeprune.latency.measure import candidate_widths, detect_step
from edgeprune.latency.table import LatencyTable, LayerShape, Point, interpolate

FP = {"kind": "host", "model": "Test CPU", "abi": "x86_64", "runtime": "ai-edge-litert 0", "threads": 1,
      "precision": "fp32"}


def test_shape_key_round_trips() -> None:
    shape = LayerShape("conv", 16, 32, 3, 2, 1, 32, 32)
    assert LayerShape.from_key(shape.key()) == shape


def test_interpolation_and_prediction() -> None:
    assert interpolate({16: 1.0, 32: 3.0}, 24) == pytest.approx(2.0)
    assert interpolate({16: 1.0, 32: 3.0}, 8) == pytest.approx(0.5)  # below the smallest: towards 0 at 0
    assert interpolate({16: 1.0, 32: 3.0}, 40) == pytest.approx(3.0)
    shape = LayerShape("conv", 32, 32, 3, 1, 1, 8, 8)
    table = LatencyTable(FP, [Point(shape.key(), "out", 32, 4.0), Point(shape.key(), "out", 16, 2.0),
                              Point(shape.key(), "in", 16, 3.0)])
    assert table.predict(shape, 32, 32) == pytest.approx(4.0)
    assert table.predict(shape, 16, 16) == pytest.approx(4.0 * 0.5 * 0.75)  # full x r_out x r_in


def test_candidate_widths_follow_the_step() -> None:
    assert candidate_widths(64, 16) == [64, 48, 32, 16]
    assert candidate_widths(32, 16) == [32, 16]
    assert candidate_widths(16, 16) == [16]  # no narrower multiple: the axis is not measured
    assert candidate_widths(20, 1) == [20, 15, 10, 5]


def test_step_detection() -> None:
    widths = [32, 33, 36, 40, 48]
    assert detect_step(widths, [1.0, 2.0, 2.0, 2.0, 2.01])["step"] == 16
    assert detect_step(widths, [1.0, 1.5, 1.5, 1.5, 2.0])["step"] == 8
    assert detect_step(widths, [1.0, 1.2, 1.2, 1.4, 1.8])["step"] == 4
    assert detect_step(widths, [1.0, 1.01, 1.1, 1.2, 1.5])["step"] == 1  # smooth: no jump after 32


def test_cache_round_trip_and_fingerprint_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CACHE, str(tmp_path))
    table = LatencyTable(dict(FP), [Point("conv:1x2:k1s1p0:4x4", "out", 2, 0.1, runs=5)],
                         {"step": 8, "why": "test"})
    path = save_table(table)
    assert path == table_path(FP) and path.parent == tmp_path and fingerprint_key(FP).startswith("host-Test-CPU-")
    assert json.loads(path.read_text())["schema"] == "edgeprune-latency-table/1"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic: no temporary file left
    again = load_table(dict(FP))
    assert again.points == table.points and again.probe == table.probe
    assert load_table({**FP, "threads": 2}).points == []  # another thread count is another table
    path.write_text("{not json")
    assert load_table(dict(FP)).points == []  # a damaged file is re-measured, not an error
