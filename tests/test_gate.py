"""The gate rejects a deliberately broken artifact (one class's logit suppressed) and passes a healthy one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeprune.config import load_config
from edgeprune.export import ExportRequest, get_exporter
from edgeprune.gate import evaluate_gate
from edgeprune.metrics import paired_bootstrap_delta
from edgeprune.models import create_model
from edgeprune.pipeline.context import prepare_data
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
