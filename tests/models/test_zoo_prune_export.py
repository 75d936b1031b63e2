"""Every zoo model prunes to a 30 % MAC budget and converts to a fp32 .tflite that agrees with torch.

Parametrized over the registry: a new model is covered with no test edits. Models are built small (32 px; the
ImageNet-style ones still run, ending in a 1x1 map) so the suite stays cheap; the 224 px builds are in
test_zoo_builds.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.budget import Budget, count
from edgeprune.models import MODELS, create_model
from edgeprune.prune import PruneContext, prune_model
from edgeprune.prune.criteria import create_criterion

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 32
# Pruning the largest graphs takes tens of seconds on the shared test machine: slow-marked.
HEAVY = {"densenet121", "resnet50"}
# A conversion takes 20-40 s here (litert-torch's time grows with the op count), so the default suite converts
# the channel-shuffle net (the one whose pruned structure is unusual); every model converts in the slow suite.
CONVERT_BY_DEFAULT = {"shufflenetv2"}


def _marked(names: list[str], fast: set[str] | None = None, slow: set[str] | None = None) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.slow)
            if (slow is not None and n in slow) or (fast is not None and n not in fast) else n for n in names]


def _pruned(name: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model(name, 3, input_size=SIZE).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    ctx = PruneContext(example_input=x, log=lambda _: None)
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.3, tolerance=0.05), ctx)
    return model, result.model.eval(), x


@pytest.mark.parametrize("name", _marked(MODELS.names(), slow=HEAVY))
def test_prunes_to_budget_and_runs(name: str) -> None:
    start = time.perf_counter()
    model, pruned, x = _pruned(name)
    dense_macs, pruned_macs = count(model, x)[0], count(pruned, x)[0]
    assert pruned_macs < 0.8 * dense_macs, (name, dense_macs, pruned_macs)
    with torch.no_grad():
        out = pruned(torch.randn(2, 3, SIZE, SIZE))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    print(f"{name}: prune {time.perf_counter() - start:.1f} s")


@pytest.mark.parametrize("name", _marked(MODELS.names(), fast=CONVERT_BY_DEFAULT))
def test_pruned_fp32_tflite_agrees_with_torch(name: str, tmp_path: Path) -> None:
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    _, pruned, x = _pruned(name)
    path = tmp_path / f"{name}.tflite"
    litert_torch.convert(pruned, (x,)).export(str(path))
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    for image in batch:
        interpreter.set_tensor(inp["index"], image[None].numpy())
        interpreter.invoke()
        got = interpreter.get_tensor(out["index"])
        with torch.no_grad():
            want = pruned(image[None]).numpy()
        scale = float(np.abs(want).max()) + 1e-6
        assert np.abs(got - want).max() <= 1e-3 * max(1.0, scale), name
