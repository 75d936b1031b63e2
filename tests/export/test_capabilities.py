"""Declared exporter and runtime capabilities match what the classes really accept (cheap: ``check`` only).

``precisions``, ``layouts``, ``io_dtypes`` and ``needs_calibration`` are read by ``edgeprune list targets`` and
the pre-flight check, so a declaration that ``check`` disagrees with would let a bad run start.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgeprune.cli import app
from edgeprune.errors import EdgepruneError
from edgeprune.export import EXPORTERS, ExportRequest, export_targets, get_exporter
from edgeprune.runtimes import RUNTIMES, format_for_path

TARGETS = [name for name in EXPORTERS.names() if ":" in name]
X = torch.zeros(1, 3, 8, 8)


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()


def _request(precision: str, calib: bool = True, **kw) -> ExportRequest:
    extra = {"calib_inputs": torch.zeros(4, 3, 8, 8), "calib_ids": [0, 1, 2, 3]} if calib else {}
    return ExportRequest(model=_model(), example_input=X, precision=precision, out_dir=".", name="m", **extra, **kw)


@pytest.mark.parametrize("target", TARGETS)
def test_every_declared_precision_layout_and_io_dtype_passes_check(target: str) -> None:
    exporter = get_exporter(target)
    for precision in exporter.precisions:
        for layout in exporter.layouts:
            for io in exporter.io_dtypes_for(precision):
                exporter.check(_request(precision, io_layout=layout, io_dtype=io))
    assert set(exporter.io_dtypes) == {d for p in exporter.precisions for d in exporter.io_dtypes_for(p)}
    assert exporter.needs_calibration <= set(exporter.precisions)


@pytest.mark.parametrize("target", TARGETS)
def test_undeclared_values_are_refused(target: str) -> None:
    exporter = get_exporter(target)
    with pytest.raises(EdgepruneError, match="precision 'int3'"):
        exporter.check(_request("int3"))
    for layout in {"NCHW", "NHWC"} - set(exporter.layouts):
        with pytest.raises(EdgepruneError, match="io_layout"):
            exporter.check(_request(exporter.precisions[0], io_layout=layout))
    for precision in exporter.precisions:
        for io in {"float32", "int8", "uint8", "int16"} - set(exporter.io_dtypes_for(precision)):
            with pytest.raises(EdgepruneError, match=f"io_dtype '{io}'"):
                exporter.check(_request(precision, io_dtype=io))


@pytest.mark.parametrize("target", TARGETS)
def test_calibrated_precisions_need_calibration_images_and_others_do_not(target: str) -> None:
    exporter = get_exporter(target)
    for precision in exporter.precisions:
        if precision in exporter.needs_calibration:
            with pytest.raises(EdgepruneError, match="needs calibration images"):
                exporter.check(_request(precision, calib=False))
        else:
            exporter.check(_request(precision, calib=False))


def test_capability_table_and_cli_show_the_declarations() -> None:
    rows = {r["target"]: r for r in export_targets()}
    assert set(rows) == set(TARGETS)
    for name, row in rows.items():
        cls = EXPORTERS.get(name)
        assert row["io_dtypes"] == list(cls.io_dtypes) and row["needs_calibration"] == sorted(cls.needs_calibration)
    res = CliRunner().invoke(app, ["list", "targets"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "io dtypes" in res.output and "needs calibration" in res.output
    litert = next(line for line in res.output.splitlines() if "tflite:litert-torch" in line)
    assert "uint8" in litert and "int8" in litert


@pytest.mark.parametrize("fmt", RUNTIMES.names())
def test_every_runtime_runs_an_exported_format_and_owns_its_suffixes(fmt: str) -> None:
    session = RUNTIMES.get(fmt)
    assert fmt in session.formats
    assert all(format_for_path(f"model{s}") == fmt for s in session.suffixes)
    assert any(EXPORTERS.get(t).format in session.formats for t in TARGETS)


def test_every_export_format_has_a_runtime() -> None:
    runnable = {f for name in RUNTIMES.names() for f in RUNTIMES.get(name).formats}
    assert {EXPORTERS.get(t).format for t in TARGETS} <= runnable
