"""The gate rejects a deliberately broken artifact (one class's logit suppressed) and passes a healthy one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeprune.cli._common import _gate_cell
from edgeprune.config import load_config
from edgeprune.export import ExportRequest, get_exporter
from edgeprune.gate import GATE_DISABLED, evaluate_gate, gate_power, power_warnings, split_power
from edgeprune.metrics import classification_metrics, paired_bootstrap_delta
from edgeprune.models import create_model
from edgeprune.pipeline.context import prepare_data
from edgeprune.rundir.artifacts import artifact_row
from edgeprune.rundir.outcomes import ExportedArtifact, GateResult, VerifiedArtifact
from edgeprune.runtimes import open_session
from edgeprune.train import TrainSettings, predict_logits, train_model


class SuppressClass(nn.Module):
    """Wraps a model and pushes one class's logit far down: that class is never predicted."""

    def __init__(self, model: nn.Module, cls: int) -> None:
        super().__init__()
        self.model = model
        mask = torch.zeros(model.classifier.out_features)
        mask[cls] = -50.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.mask


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    cfg = load_config(None, {"data.max_train": 400})
    data = prepare_data(cfg)
    data.test = data.test.read("test of the gate itself")
    torch.manual_seed(0)
    model = create_model("test_resblock", num_classes=5)
    model = train_model(model, data.train, data.val, 5, TrainSettings(epochs=4, lr=1e-2)).model.eval()
    return data, model, tmp_path_factory.mktemp("gate")


def _run(model: nn.Module, data, out: Path, name: str) -> np.ndarray:
    exporter = get_exporter("tflite")
    rec = exporter.export(ExportRequest(model=model.eval(), example_input=data.test.x[:1], precision="fp32",
                                        out_dir=out, name=name))
    return open_session(out / Path(rec.file).name, threads=1).run(data.test.x.numpy())


def test_gate_passes_healthy_and_rejects_suppressed_class(trained) -> None:
    data, model, out = trained
    y = data.test.y.numpy()
    ref = predict_logits(model, data.test.x).argmax(1)
    # the class to break: the one the healthy model recognises best, so the drop is unmistakable
    sens = [float((ref[y == c] == c).mean()) for c in range(5)]
    victim = int(np.argmax(sens))
    healthy = _run(model, data, out, "healthy").argmax(1)
    broken = _run(SuppressClass(model, victim), data, out, "broken").argmax(1)
    assert not (broken == victim).any()
    names = data.contract.class_names
    ok = evaluate_gate(paired_bootstrap_delta(y, ref, healthy, 5), names, 1.0, 3.0)
    assert ok.passed, ok.reasons
    bad = evaluate_gate(paired_bootstrap_delta(y, ref, broken, 5), names, 1.0, 3.0)
    assert not bad.passed
    assert bad.worst_class == names[victim]
    assert bad.worst_class_drop_ub_pp >= 100 * sens[victim] - 1e-6
    assert any(f"'{names[victim]}'" in r for r in bad.reasons)


# --- no images of a class, a disabled gate, and the gate's power -------------------------------------------------

NAMES = ["healthy", "mild", "severe"]


def test_a_class_without_test_images_gets_a_clear_rejection_not_a_type_error() -> None:
    labels = np.array([0] * 30 + [1] * 20)  # no 'severe' image at all
    ref = labels.copy()
    new = labels.copy()
    new[:2] = 2
    metrics = classification_metrics(np.eye(3)[new] * 5.0, labels, 3)
    assert metrics.support == [30, 20, 0] and metrics.per_class_sensitivity[2] == 0.0
    assert metrics.balanced_accuracy == pytest.approx((28 / 30 + 1.0) / 2)  # averaged over present classes
    delta = paired_bootstrap_delta(labels, ref, new, 3, n_boot=200)
    assert delta["per_class_sensitivity"][2]["lo"] is None
    verdict = evaluate_gate(delta, NAMES, 50.0, 50.0)
    assert verdict.passed is False and verdict.status == "rejected"
    assert verdict.unchecked_classes == ["severe"]
    assert any("'severe' has no images" in r and "add images" in r for r in verdict.reasons), verdict.reasons
    assert verdict.worst_class == "healthy"  # the checked classes are still judged


def test_a_disabled_gate_is_not_checked_never_passed() -> None:
    labels = np.array([0] * 40 + [1] * 40 + [2] * 40)
    new = labels.copy()
    new[40:70] = 0  # a big loss on 'mild'
    delta = paired_bootstrap_delta(labels, labels, new, 3, n_boot=200)
    off = evaluate_gate(delta, NAMES, 5.0, 15.0, enabled=False)
    assert off.passed is None and off.status == "not-checked" and off.reasons == [GATE_DISABLED]
    assert off.worst_class == "mild" and off.worst_class_drop_ub_pp > 15  # the bounds are still reported
    result = GateResult.model_validate(off.model_dump())
    assert result.status == "not-checked" and result.verdict is None
    legacy = GateResult.model_validate({"passed": True, "reasons": ["gate disabled"]})  # written by older runs
    assert legacy.status == "not-checked" and legacy.verdict is None
    art = ExportedArtifact(name="a", file="a.tflite", format="tflite", precision="fp32", sha256="0", size_bytes=1)
    for gate in (result, legacy):
        row = artifact_row(art, VerifiedArtifact(gate=gate), [])
        assert row["gate_passed"] is None and row["gate_status"] == "not-checked"
    assert "pass" not in _gate_cell(row) and "not checked" in _gate_cell(row)


def test_power_matches_the_gate_on_a_one_flip_candidate() -> None:
    counts = [200, 20, 0]
    power = split_power("test", counts, NAMES, max_class_sensitivity_drop=15.0, max_bal_acc_drop=5.0, n_boot=500)
    big, rare, empty = power.classes
    assert (big.n, rare.n, empty.n) == (200, 20, 0)
    assert big.certifiable and big.one_flip_ub_pp < 3.0
    assert not rare.certifiable and rare.one_flip_ub_pp > 15.0  # 20 images: one lost prediction is too many
    assert rare.two_flip_ub_pp > rare.one_flip_ub_pp
    assert not empty.certifiable and empty.one_flip_ub_pp is None
    assert [c.name for c in power.uncertifiable()] == ["mild", "severe"]
    # the definition: the gate's own statistic on a candidate that loses one correct prediction of 'mild'
    labels = np.repeat(np.arange(3), counts)
    new = labels.copy()
    new[np.flatnonzero(labels == 1)[0]] = 0
    verdict = evaluate_gate(paired_bootstrap_delta(labels, labels, new, 3, n_boot=500), NAMES[:2] + ["x"], 5, 15)
    assert verdict.worst_class == "mild" and verdict.worst_class_drop_ub_pp == pytest.approx(rare.one_flip_ub_pp)
    assert not verdict.passed  # the gate indeed rejects it


def test_power_for_val_and_test_and_the_warnings() -> None:
    power = gate_power({"val": [60, 20, 300], "test": [120, 80, 600]}, NAMES, 15.0, 5.0, n_boot=300)
    assert set(power["splits"]) == {"val", "test"} and "one correct prediction" in power["definition"]
    assert power["limits"] == {"max_bal_acc_drop": 5.0, "max_class_sensitivity_drop": 15.0}
    val, test = power["splits"]["val"], power["splits"]["test"]
    assert [c["certifiable"] for c in val["classes"]] == [True, False, True]
    assert all(c["certifiable"] for c in test["classes"])
    lines = power_warnings(power)
    assert len(lines) == 3, lines  # the rare class on val, val's balanced accuracy, and the fix
    assert "val has 20 'mild' images" in lines[0] and "cannot be certified" in lines[0]
    assert "balanced-accuracy" in lines[1] and "loosen the limits" in lines[2]
    loose = gate_power({"val": [60, 20, 300]}, NAMES, 30.0, 30.0, n_boot=300)
    assert power_warnings(loose) == []


def test_the_build_says_plainly_when_the_test_split_is_too_small_for_any_pruned_model() -> None:
    from edgeprune.gate import gate_power, why_no_pruned_model_passes

    names = ["common", "rare"]
    power = gate_power({"test": [300, 10]}, names, max_class_sensitivity_drop=15.0, max_bal_acc_drop=5.0, n_boot=300)

    def row(variant: str, passed: bool, worst: str) -> dict:
        return {"variant": variant, "gate_passed": passed, "gate": {"worst_class": worst}}

    note = why_no_pruned_model_passes([row("pruned", False, "rare"), row("dense", True, "rare")], power)
    assert note is not None and "10 'rare' images" in note and "--max-class-sensitivity-drop" in note
    bound = power["splits"]["test"]["classes"][1]["one_flip_ub_pp"]
    assert bound > 15 and f"{bound:.1f} pp" in note
    # a pruned artifact that passed, or a rejection on a class the split can certify, needs no such note
    assert why_no_pruned_model_passes([row("pruned", False, "rare"), row("pruned", True, "common")], power) is None
    assert why_no_pruned_model_passes([row("pruned", False, "common")], power) is None
