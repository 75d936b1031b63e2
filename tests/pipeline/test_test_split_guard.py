"""The test split is read once, for the final verdict: the guard, and the verify stage with a real int8 repair.

The repair case is the outlier model of tests/export/test_onnx2tf.py: its full-int8 file loses two of three
classes, so the ladder has to run (per-channel skipped, quantization-aware training fails its first epoch
and passes its second). Every choice of that ladder must be made on the validation split; the test split
must be read exactly once, after it, for the verdict of the exported and the chosen repaired artifacts.
"""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

from edgeprune.config import load_config
from edgeprune.contract import PreprocessContract
from edgeprune.export import get_exporter
from edgeprune.models.user import register_module
from edgeprune.pipeline.checkpoints import save_checkpoint
from edgeprune.pipeline.context import BuildContext, PreparedData, TestSplit, TestSplitAccessError
from edgeprune.pipeline.verification import verify_artifacts
from edgeprune.report.json_report import repair_summaries
from edgeprune.report.schema import RepairSummary
from edgeprune.rundir.outcomes import VerifyOutcome
from edgeprune.train import TensorData
from tests.export.test_onnx2tf import CLASSES, SIZE, outlier_case, request, synthetic


def _split(n: int, seed: int) -> TensorData:
    x, y = synthetic(n, seed)
    return TensorData(x, y)


def test_the_guard_records_reads_and_refuses_any_other_access() -> None:
    test = TestSplit(_split(30, 1))
    assert len(test) == 30 and sum(test.class_counts(3)) == 30  # sizes are free to ask
    for name in ("x", "y"):
        with pytest.raises(TestSplitAccessError, match=r"use \.read\(purpose\)"):
            getattr(test, name)
    with pytest.raises(TestSplitAccessError, match="purpose"):
        test.read(" ")
    with test.sealed("a search"), pytest.raises(TestSplitAccessError, match="during a search"):
        test.read("peek at a trial")
    assert test.reads == []
    got = test.read("final verdict")
    assert got.x.shape == (30, 3, SIZE, SIZE) and test.reads == ["final verdict"]
    with test.sealed("outer"), test.sealed("inner"), pytest.raises(TestSplitAccessError, match="during inner"):
        test.read("again")
    test.read("report")  # unsealed again after the blocks
    assert test.reads == ["final verdict", "report"]


@pytest.fixture(scope="module")
def outlier_run(tmp_path_factory: pytest.TempPathFactory) -> BuildContext:
    """A run directory holding the outlier model as the dense checkpoint and its fp32 and full-int8 files."""
    case = outlier_case()
    run_dir = tmp_path_factory.mktemp("guard") / "run"
    cfg = load_config(None, {"model.name": register_module(case["model"]), "seed": 0, "verify.bootstrap": 200,
                             "verify.max_bal_acc_drop": 2.0, "verify.max_class_sensitivity_drop": 5.0})
    ctx = BuildContext(cfg=cfg, run_dir=run_dir, console=Console(quiet=True))
    contract = PreprocessContract(input_size=(SIZE, SIZE), class_names=CLASSES)
    train = TensorData(case["train_x"], torch.as_tensor(case["train_y"]))
    test = TensorData(torch.as_tensor(case["test_x"]), torch.as_tensor(case["test_y"]))
    ctx.data = PreparedData(contract, train, _split(180, 8), TestSplit(test), case["calib_ids"], {})
    save_checkpoint(ctx.path("models/dense.pt"), case["model"])
    out = ctx.path("artifacts")
    ctx.artifacts = []  # type: ignore[attr-defined]
    for precision in ("fp32", "int8"):
        rec = get_exporter("tflite:litert-torch").export(request(case, precision, out, f"dense_tflite_{precision}"))
        ctx.artifacts.append({**rec.model_dump(), "file": f"artifacts/{rec.file}",  # type: ignore[attr-defined]
                              "checkpoint": "models/dense.pt", "variant": "dense"})
    return ctx


def test_repair_choices_read_validation_and_the_test_split_is_read_once(outlier_run: BuildContext) -> None:
    ctx = outlier_run
    out = verify_artifacts(ctx, ctx.artifacts)  # type: ignore[attr-defined]
    VerifyOutcome.model_validate(out)
    # exactly one read of the test split, for the final verdict, and it is what the outcome records
    assert len(ctx.data.test.reads) == 1 and ctx.data.test.reads[0].startswith("final verdict of 3 artifact(s)")
    assert out["test_reads"] == ctx.data.test.reads and out["selection_split"] == "val"
    repair = out["repairs"]["dense_tflite_int8"]
    assert repair["selection_split"] == "val" and repair["validation_gate"]["passed"] is False
    steps = [(a["step"], a["status"], a["split"]) for a in repair["attempts"]]
    # quantization-aware training wins on validation (epoch 1 still fails the strict gate there, epoch 2 passes)
    assert steps == [("per-channel", "skipped", "val"), ("qat", "failed", "val"), ("qat", "passed", "val")]
    [summary] = [RepairSummary.model_validate(r) for r in repair_summaries(out["repairs"])]  # report.json's view
    assert summary.won is not None and summary.won.step == "qat" and summary.won.quantization == "full-int8"
    assert summary.why.startswith("rung 2 (qat) passed the gate on validation: quantization-aware training")
    for attempt in repair["attempts"][1:]:
        assert attempt["metrics"]["n"] == len(ctx.data.val) == 180  # judged on validation, not on test
    chosen = repair["repaired"]
    assert chosen["repair_of"] == "dense_tflite_int8" and ctx.path(chosen["file"]).is_file()
    # the final verdict: originals and the chosen variant, all on the 240 test images
    assert set(out["artifacts"]) == {"dense_tflite_fp32", "dense_tflite_int8", chosen["name"]}
    for name, result in out["artifacts"].items():
        assert result["split"] == "test" and result["metrics"]["n"] == 240, name
    assert out["artifacts"]["dense_tflite_int8"]["gate"]["passed"] is False
    assert out["artifacts"][chosen["name"]]["gate"]["passed"] is True
    assert "chosen on the validation split" in out["artifacts"][chosen["name"]]["notes"][-1]
    power = out["gate_power"]["splits"]
    assert power["val"]["n"] == 180 and power["test"]["n"] == 240


def test_a_test_read_inside_the_ladder_fails_the_build(outlier_run: BuildContext, monkeypatch) -> None:
    """If a repair step read the test split, verify would stop with the guard's error."""
    import edgeprune.export.repair as repair

    ctx = outlier_run
    real = repair.repair_int8

    def peeking(inputs, art, evaluate, *args, **kwargs):  # a ladder that looks at the test labels
        ctx.data.test.read("which variant is best on test?")
        return real(inputs, art, evaluate, *args, **kwargs)

    monkeypatch.setattr(repair, "repair_int8", peeking)
    with pytest.raises(TestSplitAccessError, match="int8 repair ladder"):
        verify_artifacts(ctx, ctx.artifacts)  # type: ignore[attr-defined]
    assert not any("which variant" in r for r in ctx.data.test.reads)


def test_dense_comparison_files_of_a_pruned_build_are_not_repaired(outlier_run: BuildContext) -> None:
    """The ladder repairs what the build ships: with pruned files present, a failing dense int8 file is reported
    as failing and skipped (at 224 px one dense ladder cost a build 36 minutes), unless asked for."""
    ctx = outlier_run
    fp32 = next(a for a in ctx.artifacts if a["precision"] == "fp32")  # type: ignore[attr-defined]
    pruned = {**fp32, "name": "pruned_tflite_fp32", "variant": "pruned"}  # a passing pruned file
    assert ctx.cfg.verify.repair_comparisons is False
    out = verify_artifacts(ctx, [*ctx.artifacts, pruned])  # type: ignore[attr-defined]
    record = out["repairs"]["dense_tflite_int8"]
    assert record["validation_gate"]["passed"] is False  # it does fail: the skip is not a pass
    assert record["attempts"] == [] and record["repaired"] is None
    assert "comparison" in record["skipped"] and "verify.repair_comparisons" in record["skipped"]
    [summary] = [RepairSummary.model_validate(r) for r in repair_summaries(out["repairs"])]
    assert summary.won is None
    assert set(out["artifacts"]) == {"dense_tflite_fp32", "dense_tflite_int8", "pruned_tflite_fp32"}
    assert out["artifacts"]["dense_tflite_int8"]["gate"]["passed"] is False
