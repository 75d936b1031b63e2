"""Full int8 never collapses: every zoo model (and a MONAI DenseNet) keeps >= 99 % top-1 agreement with fp32.

Each model is trained briefly on the synthetic stripes task at a small size, exported to full int8 by the
primary TFLite exporter (calibrated on 64 train images, float32 I/O), run in LiteRT on 300 held-out images and
compared with its PyTorch logits. The op report must show no op computing in float inside the graph. The zoo
part is parametrized over the registry, so a model added to ``edgeprune.models.MODELS`` is covered with no
edit here; models above 100k parameters are slow-marked (``EDGEPRUNE_SLOW=1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.export.base import EXPORTERS, ExportRequest
from edgeprune.export.op_report import op_report
from edgeprune.metrics import agreement
from edgeprune.models import MODELS, create_model
from edgeprune.runtimes import open_session
from tests.export._stripes import stripes

pytest.importorskip("litert_torch")

CHEAP_PARAMS = 100_000


def _size(entry_size: int) -> int:
    return 32 if entry_size <= 32 else 64


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i : i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def check_int8_parity(model: torch.nn.Module, size: int, tmp_path: Path) -> dict:
    """Train, export full int8 (float I/O), and assert agreement >= 99 % and a fully integer graph."""
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = stripes(384, gen, size)
    x_test, _ = stripes(300, gen, size)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _train(model, x_train, y_train)
        with torch.no_grad():
            ref = model(x_test).numpy()
        req = ExportRequest(model=model, example_input=x_train[:1], precision="int8", out_dir=tmp_path, name="m",
                            calib_inputs=x_train[:64], calib_ids=list(range(64)), io_dtype="float32")  # fmt: skip
        rec = EXPORTERS.get("tflite:litert-torch")().export(req)
    finally:
        torch.set_num_threads(before)
    path = tmp_path / rec.file
    logits = np.asarray(open_session(path, fmt="tflite").run(x_test.numpy()), dtype=np.float32)
    agree = agreement(logits, ref)
    report = op_report(path)
    assert rec.quantization == "full-int8"
    assert report["float_ops"] == {}, f"ops left in float: {report['float_ops']}"
    assert agree["top1_agreement"] >= 0.99, agree
    return agree


def _zoo_params() -> list:
    params = []
    for name, entry in MODELS.items():
        size = _size(entry.default_input_size)
        n_params = sum(p.numel() for p in create_model(name, 3).parameters())
        marks = [pytest.mark.slow] if n_params > CHEAP_PARAMS else []
        params.append(pytest.param(name, size, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name,size", _zoo_params())
def test_zoo_model_full_int8_agrees_with_fp32(name: str, size: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    check_int8_parity(create_model(name, 3), size, tmp_path)


def _monai_densenet(kind: str) -> torch.nn.Module:
    monai = pytest.importorskip("monai.networks.nets")
    if kind == "small":
        return monai.DenseNet(spatial_dims=2, in_channels=3, out_channels=3, init_features=16, growth_rate=8,
                              block_config=(2, 2, 2))  # fmt: skip
    return monai.DenseNet121(spatial_dims=2, in_channels=3, out_channels=3)


def test_densenet_concatenations_stay_int8_and_agree(tmp_path: Path) -> None:
    """Dense blocks joined by concatenation and pre-activation batch norms: the graph that used to collapse."""
    torch.manual_seed(0)
    agree = check_int8_parity(_monai_densenet("small"), 32, tmp_path)
    assert agree["cosine"] > 0.98


@pytest.mark.slow
def test_monai_densenet121_full_int8(tmp_path: Path) -> None:
    torch.manual_seed(0)
    check_int8_parity(_monai_densenet("121"), 64, tmp_path)
