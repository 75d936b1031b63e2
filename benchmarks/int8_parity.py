"""Full-int8 parity: top-1 agreement and logits cosine of full-int8 .tflite files against fp32 PyTorch.

Each model is trained briefly on BreastMNIST (28 px, upsampled to the model's size, grey -> 3 channels), then
exported to full int8 by (a) the PT2E path as it was before issue 14.3 (``pt2e``), (b) AI Edge Quantizer's
``static_wi8_ai8`` recipe on the fp32 .tflite (``aeq``, the lead from the issue) and (c) the export path as it
is now (``export``: what ``tflite:litert-torch`` int8 does). Agreement is measured on the
156 held-out test images (none of them used for training or calibration).

    cd /work/wt-int8 && export PYTHONPATH=$PWD OMP_NUM_THREADS=1
    nice -n 10 /work/main/.venv/bin/python benchmarks/int8_parity.py --models all --methods pt2e,aeq,export

Writes one table row per (model, method) to stdout (markdown) and to ``--out`` as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


def breastmnist(size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The three splits as normalised (N,3,size,size) float tensors and int64 labels."""
    raw = np.load(DATA)
    out = {}
    for split in ("train", "val", "test"):
        x = torch.as_tensor(raw[f"{split}_images"], dtype=torch.float32)[:, None] / 255.0
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = ((x - 0.5) / 0.25).repeat(1, 3, 1, 1)
        out[split] = (x.contiguous(), torch.as_tensor(raw[f"{split}_labels"]).long().reshape(-1))
    return out


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0) -> torch.nn.Module:
    """A few epochs of Adam with class-balanced loss and flips (enough for the logits to mean something)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    weight = 1.0 / torch.bincount(y).float()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i : i + 32]
            xb = x[idx]
            if torch.rand(()) < 0.5:
                xb = xb.flip(3)
            loss = F.cross_entropy(model(xb), y[idx], weight=weight / weight.sum() * len(weight))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def models() -> dict[str, tuple[Callable[[], torch.nn.Module], int, int]]:
    """name -> (factory, input size, epochs)."""
    from monai.networks.nets import DenseNet, DenseNet121

    from edgeprune.models import create_model

    return {
        "densenet_small": (lambda: DenseNet(spatial_dims=2, in_channels=3, out_channels=2, init_features=16,
                                            growth_rate=8, block_config=(2, 2, 2)), 32, 6),
        "monai_densenet121": (lambda: DenseNet121(spatial_dims=2, in_channels=3, out_channels=2), 64, 3),
        "resnet20": (lambda: create_model("resnet20", 2), 32, 6),
        "efficientnet_lite0": (lambda: create_model("efficientnet_lite0", 2, input_size=64), 64, 4),
        "mobilenetv2": (lambda: create_model("mobilenetv2", 2, input_size=64), 64, 4),
    }  # fmt: skip


def export_int8(model: torch.nn.Module, calib: torch.Tensor, method: str, out: Path) -> Path:
    """Full-int8 .tflite (float32 I/O) by ``method``: 'pt2e' (the old path) or 'export' (the exporter now)."""
    from edgeprune.export.base import EXPORTERS, ExportRequest

    if method == "pt2e":
        path = out / "pt2e.tflite"
        path.write_bytes(_old_pt2e(model, calib))
        return path
    if method == "aeq":
        path = out / "aeq.tflite"
        path.write_bytes(_aeq_static_int8(model, calib))
        return path
    req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=out, name=method,
                        calib_inputs=calib, calib_ids=list(range(len(calib))), io_dtype="float32")  # fmt: skip
    rec = EXPORTERS.get("tflite:litert-torch")().export(req)
    return out / rec.file


def _old_pt2e(model: torch.nn.Module, calib: torch.Tensor) -> bytes:
    """The int8 path before issue 14.3: litert-torch's PT2EQuantizer as it is, no batch-norm rewrite."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgeprune.export.tflite_litert import _quiet_converter, set_tflite_io_dtype

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (calib[:1],)).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(calib[i : i + 1])
    quantized = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
    with _quiet_converter():
        data = litert_torch.convert(quantized, (calib[:1],), quant_config=QuantConfig(pt2e_quantizer=quantizer))
    return set_tflite_io_dtype(data.model_content(), "float32")


def _aeq_static_int8(model: torch.nn.Module, calib: torch.Tensor) -> bytes:
    """The lead from the issue: AI Edge Quantizer static_wi8_ai8 on the fp32 .tflite, calibrated on ``calib``."""
    from ai_edge_quantizer import quantizer as aeq
    from ai_edge_quantizer import recipe

    from edgeprune.export.tflite_litert import _convert_float, _quiet_converter
    from edgeprune.export.tflite_litert_variants import _signature_input

    with _quiet_converter():
        float_model = _convert_float(model, calib[:1])
    q = aeq.Quantizer(float_model, recipe.static_wi8_ai8())
    name = _signature_input(float_model)
    stats = q.calibrate({"serving_default": [{name: calib[i : i + 1].numpy()} for i in range(len(calib))]})
    return bytes(q.quantize(stats, enable_progress_bar=False, enable_progress_report=False).quantized_model)


def run_tflite(path: Path, x: torch.Tensor) -> np.ndarray:
    from edgeprune.runtimes import open_session

    return np.asarray(open_session(path, fmt="tflite").run(x.numpy()), dtype=np.float32)


def integer_ops(path: Path) -> list[str]:
    """The ops that still compute in float inside the graph (empty = fully integer apart from float I/O)."""
    from edgeprune.export.op_report import float_ops

    return [f"{op} x{n}" for op, n in sorted(float_ops(path).items())]


def measure(name: str, methods: list[str], calib_n: int, seed: int) -> list[dict]:
    from edgeprune.metrics import agreement, classification_metrics

    factory, size, epochs = models()[name]
    data = breastmnist(size)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model = train(factory(), *data["train"], epochs=epochs, seed=seed)
    train_s = time.perf_counter() - t0
    xt, yt = data["test"]
    with torch.no_grad():
        ref = model(xt).numpy()
    gen = torch.Generator().manual_seed(seed)
    calib = data["train"][0][torch.randperm(len(data["train"][0]), generator=gen)[:calib_n]]
    fp32_bal = classification_metrics(ref, yt.numpy(), 2).to_dict()["balanced_accuracy"]
    rows = []
    for method in methods:
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            path = export_int8(model, calib, method, Path(tmp))
            export_s = time.perf_counter() - t1
            logits = run_tflite(path, xt)
            agree = agreement(logits, ref)
            bal = classification_metrics(logits, yt.numpy(), 2).to_dict()["balanced_accuracy"]
            rows.append({"model": name, "size": size, "epochs": epochs, "method": method,
                         "top1_agreement": round(agree["top1_agreement"], 4), "cosine": round(agree["cosine"], 4),
                         "fp32_bal_acc": round(fp32_bal, 4), "int8_bal_acc": round(bal, 4),
                         "float_activations": integer_ops(path), "train_s": round(train_s, 1),
                         "export_s": round(export_s, 1)})  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="all")
    ap.add_argument("--methods", default="pt2e,aeq,export")
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = list(models()) if args.models == "all" else args.models.split(",")
    rows = [r for n in names for r in measure(n, args.methods.split(","), args.calib, args.seed)]
    print("| model | px | method | top-1 agreement | logits cosine | bal. acc fp32 -> int8 | ops left in float |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['size']} | {r['method']} | {100 * r['top1_agreement']:.1f} % | {r['cosine']:.3f} "
              f"| {r['fp32_bal_acc']:.3f} -> {r['int8_bal_acc']:.3f} | {', '.join(r['float_activations']) or 'none'} |")
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
