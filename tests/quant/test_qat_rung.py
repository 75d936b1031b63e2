"""The QAT rung: post-training int8 breaks the contract, quantization-aware training through PT2E restores it.

The case is the outlier model of tests/export/test_onnx2tf.py: one stem channel is a constant 30 next to
informative channels 100x smaller, so one per-tensor activation scale leaves the informative channels two or
three int8 levels and the post-training file loses two of three classes (a real, not a staged, failure: the
calibration rung cannot fix it either, see tests/export/test_repair.py). Training with fake quantization lets
the weights move the informative channels up to where int8 resolves them. The judge is a strict gate on a
held-out split, as verification's validation split would be.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.export import get_exporter
from edgeprune.export.op_report import float_ops
from edgeprune.export.repair import RUNGS, RepairInputs, repair_int8
from tests.export.test_onnx2tf import CLASSES, outlier_case, request
from tests.export.test_repair import evaluate

pytest.importorskip("litert_torch")


@pytest.fixture(scope="module")
def ptq_failure(tmp_path_factory):
    out = tmp_path_factory.mktemp("qat")
    art = get_exporter("tflite:litert-torch").export(request(outlier_case(), "int8", out, "ptq_int8")).model_dump()
    verdict = evaluate(out / art["file"])
    assert not verdict["gate"]["passed"], verdict["gate"]  # precondition: post-training int8 breaks the contract
    return out, art, verdict


def _inputs(out: Path, epochs: int = 3) -> RepairInputs:
    case = outlier_case()
    return RepairInputs(model=case["model"], example_input=case["train_x"][:1], train_x=case["train_x"],
                        train_y=case["train_y"], calib_ids=case["calib_ids"], out_dir=out,
                        metadata={"labels": CLASSES}, qat_epochs=epochs)  # fmt: skip


def test_qat_restores_the_contract_ptq_broke(ptq_failure):
    out, art, before = ptq_failure
    attempts = repair_int8(_inputs(out), art, evaluate)
    steps = [(a["rung"], a["step"], a["status"]) for a in attempts]
    assert steps[0] == (1, "per-channel", "skipped")
    assert steps[-1] == (2, "qat", "passed") and {s[1] for s in steps[1:]} == {"qat"}, steps  # won before rung 3
    won = attempts[-1]
    assert "quantization-aware training" in won["reason"] and "train images" in won["reason"]
    assert won["artifact"]["quantization"] == "full-int8" and won["config"]["precision"] == "int8"
    assert float_ops(won["path"]) == {}  # every op integer: QAT did not buy parity with float islands
    assert won["metrics"]["balanced_accuracy"] > before["metrics"]["balanced_accuracy"] + 0.3
    meta = read_tflite_metadata(won["path"])
    assert meta["repair"]["step"] == "qat" and meta["export"]["qat_epochs"] == len(attempts) - 1
    assert won["artifact"]["inputs"][0]["dtype"] == art["inputs"][0]["dtype"]  # same I/O as the failing file


def test_qat_rung_reports_every_epoch_until_it_stops(ptq_failure):
    """With one epoch allowed, the rung yields exactly one judged file, and the ladder then moves on."""
    out, art, _ = ptq_failure
    attempts = repair_int8(_inputs(out, epochs=1), art, evaluate, rungs=("qat",))
    assert len(attempts) == 1 and attempts[0]["step"] == "qat"
    assert attempts[0]["status"] in ("passed", "failed") and "epoch 1 of at most 1" in attempts[0]["reason"]
    assert "qat" in RUNGS and RUNGS.index("qat") < RUNGS.index("calibration")


def test_qat_is_skipped_for_onnx2tf_files(ptq_failure):
    out, art, _ = ptq_failure
    attempts = repair_int8(_inputs(out), dict(art, backend="onnx2tf"), evaluate, rungs=("qat",))
    assert [a["status"] for a in attempts] == ["skipped"] and "PT2E" in attempts[0]["reason"]


def test_qat_passes_over_a_class_stratified_cap(ptq_failure):
    """Large train splits are capped (QAT at 224 px is slow): a class-stratified subset, named in the reason."""
    import numpy as np

    from edgeprune.export.repair.rungs import _qat_pool

    out, art, _ = ptq_failure
    inp = replace(_inputs(out, epochs=1), qat_max_images=24)
    y = np.asarray(inp.train_y).reshape(-1)
    assert len(y) > 24, "the case must be larger than the cap to prove anything"
    pool = _qat_pool(inp)
    assert len(pool) == 24 == len(set(pool))
    share, sub = np.bincount(y) / len(y), np.bincount(y[pool], minlength=y.max() + 1) / 24
    assert np.abs(share - sub).max() < 0.1, (share, sub)  # every class keeps its share
    attempts = repair_int8(inp, art, evaluate, rungs=("qat",))
    assert f"24 of the {len(y)} train images (class-stratified)" in attempts[0]["reason"], attempts[0]["reason"]
    assert _qat_pool(replace(inp, qat_max_images=len(y))) == list(range(len(y)))


def test_a_diverging_qat_stops_early(ptq_failure):
    """A learning rate far too high makes the loss explode: the rung stops instead of spending every epoch."""
    out, art, _ = ptq_failure
    inp = replace(_inputs(out, epochs=6), qat_lr=5.0)
    attempts = repair_int8(inp, art, evaluate, rungs=("qat",))
    assert 2 <= len(attempts) < 6, [a["reason"] for a in attempts]
    assert "QAT stops here" in attempts[-1]["reason"] and attempts[-1]["status"] == "failed"
    assert all("QAT stops here" not in a["reason"] for a in attempts[:-1])
