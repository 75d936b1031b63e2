"""The int8 repair ladder on a real failing case.

The model (``outlier_case`` from tests/export/test_onnx2tf.py, shared so its onnx2tf run is reused) has one
activation channel that is a constant 30 next to informative channels 100x smaller: its full-int8 files lose
two of three classes, so a strict gate rejects them. Per-channel weights and a 4x larger calibration set cannot
help (the problem is activation range), 16-bit activations and keeping the offending layer in float can. The
gate is the real one (paired bootstrap against the float model on 240 test images).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.errors import EdgepruneError
from edgeprune.export import get_exporter
from edgeprune.export.repair import RUNGS, RepairInputs, is_repairable, modules_in_tensor_name, repair_int8
from edgeprune.gate import evaluate_gate
from edgeprune.metrics import classification_metrics, paired_bootstrap_delta
from edgeprune.runtimes import open_session
from tests.export.test_onnx2tf import CLASSES, HAVE_TF, TF_HINT, OutlierNet, outlier_case, request

needs_tf = pytest.mark.skipif(not HAVE_TF, reason=TF_HINT)


def evaluate(path: Path) -> dict:
    """What verification does per artifact: run it, compare with the float model, apply a strict gate."""
    case = outlier_case()
    logits = open_session(path, threads=1).run(case["test_x"])
    delta = paired_bootstrap_delta(
        case["test_y"], case["ref"].argmax(1), logits.argmax(1), 3, n_boot=200, seed=0
    )
    verdict = evaluate_gate(delta, CLASSES, max_bal_acc_drop=2.0, max_class_sensitivity_drop=5.0)
    return {
        "gate": verdict.model_dump(),
        "metrics": classification_metrics(logits, case["test_y"], 3).to_dict(),
    }


def inputs(out_dir: Path) -> RepairInputs:
    case = outlier_case()
    return RepairInputs(model=case["model"], example_input=case["train_x"][:1], train_x=case["train_x"],
                        train_y=case["train_y"], calib_ids=case["calib_ids"], out_dir=out_dir,
                        metadata={"labels": CLASSES})  # fmt: skip


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    """Full-int8 files of the outlier model that the gate rejects: litert-torch PT2E (and onnx2tf per-tensor)."""
    out = tmp_path_factory.mktemp("repair")
    case = outlier_case()
    arts = {
        "litert-torch": get_exporter("tflite:litert-torch")
        .export(request(case, "int8", out, "pt2e_int8"))
        .model_dump()
    }
    if HAVE_TF:
        rec = get_exporter("tflite:onnx2tf").export(request(case, "int8-per-tensor", out, "o2t_int8_pt"))
        arts["onnx2tf"] = rec.model_dump()
    for art in arts.values():
        verdict = evaluate(out / art["file"])["gate"]
        assert not verdict["passed"] and is_repairable(art), verdict  # precondition: a real failure
    return out, arts


def _check_attempts(attempts: list[dict], out: Path) -> None:
    for a in attempts:
        assert {"rung", "step", "status", "reason"} <= set(a)
        if a["status"] in ("passed", "failed"):
            assert Path(a["path"]).is_file() and Path(a["path"]).parent == out
            assert a["artifact"]["sha256"] and a["gate"]["passed"] is (a["status"] == "passed")
            assert 0.0 <= a["metrics"]["balanced_accuracy"] <= 1.0
    assert [a["status"] for a in attempts].count("passed") <= 1


def test_ladder_on_litert_int8(failing):
    out, arts = failing
    no_qat = tuple(r for r in RUNGS if r != "qat")  # the post-training rungs (QAT: tests/quant/test_qat_rung.py)
    attempts = repair_int8(inputs(out), arts["litert-torch"], evaluate, rungs=no_qat)
    _check_attempts(attempts, out)
    steps = [(a["rung"], a["step"], a["status"]) for a in attempts]
    assert steps == [
        (1, "per-channel", "skipped"),
        (3, "calibration", "failed"),
        (4, "int16-activations", "passed"),
    ]
    assert "already per-channel" in attempts[0]["reason"]
    assert attempts[1]["config"]["calib_size"] == 4 * len(outlier_case()["calib_ids"])
    assert (
        attempts[1]["artifact"]["calibration_ids"] and attempts[1]["artifact"]["quantization"] == "full-int8"
    )
    fixed = attempts[-1]
    meta = read_tflite_metadata(fixed["path"])
    assert meta["repair"]["of"] == "pt2e_int8" and meta["repair"]["step"] == "int16-activations"
    assert meta["labels"] == CLASSES
    assert fixed["artifact"]["quantization"] == "int16x8" == inspect_tflite(fixed["path"]).quantization
    assert fixed["config"]["backend"] == ("onnx2tf" if HAVE_TF else "litert-torch")
    assert fixed["metrics"]["balanced_accuracy"] > attempts[1]["metrics"]["balanced_accuracy"] + 0.3


def test_float_layers_rung_on_litert(failing):
    """Rung 5 alone: the ranking finds the outlier conv; PT2E leaves its modules (and its reader) in float."""
    out, arts = failing
    attempts = repair_int8(inputs(out), arts["litert-torch"], evaluate, rungs=("float-layers",))
    _check_attempts(attempts, out)
    first = attempts[0]
    assert first["status"] == "passed", first.get("gate")
    top = first["ranking"][0]
    assert top["op"] == "CONV_2D" and top["drop_db"] > 20 and "stem" in top["name"]
    assert {"stem.0", "body.0"} <= set(first["config"]["float_layers"])
    info = inspect_tflite(first["path"])
    assert info.quantization == "partial-int8" and "float32" in info.activation_dtypes


@needs_tf
def test_ladder_on_onnx2tf_per_tensor(failing):
    out, arts = failing
    attempts = repair_int8(inputs(out), arts["onnx2tf"], evaluate)
    _check_attempts(attempts, out)
    steps = [(a["step"], a["status"]) for a in attempts]
    assert steps == [("per-channel", "failed"), ("qat", "skipped"), ("calibration", "failed"),
                     ("int16-activations", "passed")]
    assert attempts[0]["artifact"]["precision"] == "int8"  # per-channel weights from then on
    assert attempts[2]["artifact"]["precision"] == "int8"


@needs_tf
def test_float_layers_rung_on_onnx2tf(failing):
    out, arts = failing
    attempts = repair_int8(inputs(out), arts["onnx2tf"], evaluate, rungs=("float-layers",))
    _check_attempts(attempts, out)
    assert attempts[0]["status"] == "passed", attempts[0].get("gate")
    kept = attempts[0]["config"]["float_layers"]
    assert kept == attempts[0]["ranking"][0]["keep_float"] and len(kept) == 2  # the conv and its reader
    assert inspect_tflite(attempts[0]["path"]).quantization == "partial-int8"


def test_bad_requests(failing):
    out, arts = failing
    fp32 = dict(arts["litert-torch"], precision="fp32", quantization="none")
    with pytest.raises(EdgepruneError, match="not a full-int8"):
        repair_int8(inputs(out), fp32, evaluate)
    with pytest.raises(EdgepruneError, match="unknown repair rung"):
        repair_int8(inputs(out), arts["litert-torch"], evaluate, rungs=("magic",))


def test_calibration_rung_skips_when_train_split_is_used(failing):
    out, arts = failing
    inp = inputs(out)
    inp.calib_ids = list(range(len(outlier_case()["train_y"])))
    art = dict(arts["litert-torch"], calibration_ids=inp.calib_ids)
    attempts = repair_int8(inp, art, evaluate, rungs=("calibration",))
    assert [a["status"] for a in attempts] == ["skipped"] and "256 of 256" in attempts[0]["reason"]


def test_module_names_from_litert_tensor_names():
    import torch.nn as nn

    net = OutlierNet()
    net.conv_a = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())  # an attribute name with an underscore
    name = ("model.OutlierNet/torch.nn.modules.container.Sequential_conv_a/torch.nn.modules.activation.ReLU_1;;"
            "litert.Wrapper/model.OutlierNet_wrapped/torch.nn.modules.container.Sequential_body/"
            "torch.nn.modules.conv.Conv2d_0;1")  # fmt: skip
    assert modules_in_tensor_name(name, net) == ["conv_a.1", "body.0"]
    assert modules_in_tensor_name("serving_default_output_0_output", net) == []


def test_int16_rung_without_tf_uses_ai_edge_quantizer(failing, monkeypatch):
    """Without [tf] the 16-bit rung falls back to AI Edge Quantizer on the litert-torch float model."""
    from edgeprune.export.repair import rungs

    monkeypatch.setattr(rungs, "installed", lambda module: module not in ("onnx2tf", "tensorflow"))
    out, arts = failing
    attempts = repair_int8(inputs(out), arts["litert-torch"], evaluate, rungs=("int16-activations",))
    _check_attempts(attempts, out)
    assert [a["status"] for a in attempts] == ["passed"], attempts[0].get("gate")
    rec = attempts[0]["artifact"]
    assert attempts[0]["config"]["backend"] == "litert-torch" and rec["quantization"] == "int16x8"
    assert rec["inputs"][0]["dtype"] == "int16" and rec["inputs"][0]["quant_scale"] > 0
