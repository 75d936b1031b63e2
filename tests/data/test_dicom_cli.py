"""`edgeprune build --data <DICOM folder>` through the real CLI: a tiny build whose manifest, report and bundle
record the DICOM decoding, and bad DICOM input refused in one line before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from tests.data._dicom import class_folder
from tests.data.test_dicom import BAD, _bad_folder

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", "test_tinycnn", "--epochs", "1", "--finetune-epochs", "1", "--precisions", "fp32",
        "--flops-reduction", "0.3", "--calib-size", "8", "--runs", "3", "--threads", "1", "--no-gate"]


def test_dicom_folder_builds_and_records_the_contract(tmp_path: Path) -> None:
    data = class_folder(tmp_path / "ct", per_class=20, size=16)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["build", "--data", str(data), "--dicom-window", "450,900", *TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    contract = json.loads((out / "manifest.json").read_text())["preprocessing"]
    dicom = contract["dicom"]
    assert (dicom["window_source"], dicom["window_center"], dicom["window_width"]) == ("user", 450.0, 900.0)
    assert dicom["modality"] == "CT" and dicom["photometric_interpretations"] == ["MONOCHROME2"]
    assert dicom["pixel_spacing_mm"] == [0.5, 0.5] and dicom["pixel_spacing_source"] == "PixelSpacing"
    assert contract["gray_to_rgb"] is True and contract["source_channels"] == 1
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["dicom"] == dicom and report["data"]["class_names"] == ["bright", "dark"]

    pkg = CliRunner().invoke(app, ["package", str(out), "--artifact", "pruned_tflite_fp32", "--golden", "1",
                                   "--version", "1.0.0", "--out", str(tmp_path / "bundles")])
    assert pkg.exit_code == 0, pkg.output
    model_json = next((tmp_path / "bundles").glob("*/model.json"))
    assert json.loads(model_json.read_text())["preprocessing"]["dicom"] == dicom


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "edgeprune", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


@pytest.mark.parametrize("kind", ["jpegls", "jpeg2000", "mixed", "nopixels", "notdicom", "csv", "window"])
def test_bad_dicom_exits_2_in_one_line_writing_nothing(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        data = class_folder(tmp_path / "csvdata", per_class=2) / "labels.csv"
        data.write_text("path,label\ndark/img0.dcm,dark\ndark/gone.dcm,dark\n")
        problem, flags = "line 3 points at 'dark/gone.dcm', which does not exist", []
    elif kind == "window":
        data = class_folder(tmp_path / "win", per_class=2)
        problem, flags = "--dicom-window '400' is not CENTER,WIDTH", ["--dicom-window", "400"]
    else:
        data, (problem, _), flags = _bad_folder(tmp_path, kind), BAD[kind], []
    out = tmp_path / "run"
    args = ["build", "--data", str(data), *flags, "--model", "test_tinycnn", "--out", str(out)]
    if kind in ("mixed", "csv"):  # the real process: stderr holds the one line, no traceback
        proc = _cli(args, tmp_path)
        code, text = proc.returncode, proc.stderr
    else:  # the same CLI in-process (a fresh interpreter per case costs seconds of torch import)
        res = CliRunner().invoke(app, args)
        code, text = res.exit_code, res.output
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and problem in lines[0], text
    assert "Traceback" not in text and not out.exists() and not (tmp_path / "runs").exists()
