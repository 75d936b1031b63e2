"""Rank the compute ops of an int8 .tflite by how much signal-to-noise they lose against the float file.

Both files run in LiteRT with every intermediate tensor kept; compute ops are paired by output tensor name (or
by position when the op sequences agree), and each op's SNR drop between its input and its output is the median
over channels. Also maps litert-torch tensor names back to torch module names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.artifacts.quant import QUANTIZED_DTYPES, quantize
from edgeprune.artifacts.tflite import COMPUTE_OPS
from edgeprune.schemas import TensorInfo


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )  # fmt: skip
    it.allocate_tensors()
    return it


def _compute_ops(it: Any) -> list[dict[str, Any]]:
    ops = []
    for op in it._get_ops_details():
        if op["op_name"] in COMPUTE_OPS and len(op["outputs"]) and len(op["inputs"]):
            name = it._interpreter.TensorName(int(op["outputs"][0]), 0)
            ops.append({"op": op["op_name"], "index": int(op["index"]), "in": int(op["inputs"][0]),
                        "out": int(op["outputs"][0]), "name": name})  # fmt: skip
    return ops


def _pair_ops(f_ops: list[dict], q_ops: list[dict]) -> list[tuple[dict, dict]]:
    """Pair compute ops by output tensor name, else by position when the op sequences agree."""
    by_name = {o["name"]: o for o in q_ops}
    if all(o["name"] in by_name for o in f_ops):
        return [(o, by_name[o["name"]]) for o in f_ops]
    if [o["op"] for o in f_ops] == [o["op"] for o in q_ops]:
        return list(zip(f_ops, q_ops, strict=True))
    return []


def _value(it: Any, index: int) -> np.ndarray:
    """A tensor as float32 (dequantized with its own scale / zero point when it is integer)."""
    data = it.get_tensor(index)
    scale, zero = it._get_tensor_details(index, 0)["quantization"]
    if scale:
        return (data.astype(np.float32) - zero) * np.float32(scale)
    return data.astype(np.float32)


def _feed(it: Any, x: np.ndarray) -> None:
    d = it.get_input_details()[0]
    if tuple(d["shape"][1:]) != tuple(x.shape[1:]):
        x = x.transpose(0, 2, 3, 1)
    dtype = np.dtype(d["dtype"]).name
    if dtype in QUANTIZED_DTYPES:
        scale, zero = d["quantization"]
        x = quantize(
            x,
            TensorInfo(name="in", shape=list(x.shape), dtype=dtype, quant_scale=scale, quant_zero_point=zero),
        )
    it.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]))


def _snr_db(power: np.ndarray, noise: np.ndarray) -> float:
    """Median over channels of 10*log10(signal/noise), ignoring channels with no signal; capped at 100 dB."""
    keep = power > 1e-10 * max(float(power.max()), 1e-30)
    if not keep.any():
        return 100.0
    snr = 10 * np.log10(power[keep] / np.maximum(noise[keep], power[keep] * 1e-10))
    return float(min(np.median(snr), 100.0))


def rank_layers(float_path: Path, quant_path: Path, samples: np.ndarray) -> list[dict[str, Any]]:
    """Compute ops of ``float_path`` ranked by the SNR they lose in ``quant_path`` (worst first).

    ``samples`` are normalised NCHW images. Each row: op, index, name (float model's output tensor), snr_in_db,
    snr_out_db, drop_db and keep_float (the op's output name plus those of the ops that read it up to the
    next compute ops, i.e. what must stay float so the sensitive tensor is never quantized).
    """
    f_it, q_it = _interpreter(Path(float_path)), _interpreter(Path(quant_path))
    pairs = _pair_ops(_compute_ops(f_it), _compute_ops(q_it))
    if not pairs:
        return []
    sums: dict[int, list[np.ndarray]] = {}
    for i in range(len(samples)):
        for it in (f_it, q_it):
            _feed(it, samples[i : i + 1])
            it.invoke()
        for k, (fo, qo) in enumerate(pairs):
            for j, (a, b) in enumerate(((fo["in"], qo["in"]), (fo["out"], qo["out"]))):
                f, q = _value(f_it, a), _value(q_it, b)
                if f.shape != q.shape:
                    continue
                f2, d2 = f.reshape(-1, f.shape[-1]), (q - f).reshape(-1, f.shape[-1])
                acc = sums.setdefault(2 * k + j, [np.zeros(f.shape[-1]), np.zeros(f.shape[-1])])
                acc[0] += (f2.astype(np.float64) ** 2).sum(0)
                acc[1] += (d2.astype(np.float64) ** 2).sum(0)
    consumers = _consumers(f_it)
    rows = []
    for k, (fo, _qo) in enumerate(pairs):
        if 2 * k + 1 not in sums:
            continue
        snr_out = _snr_db(*sums[2 * k + 1])
        snr_in = _snr_db(*sums[2 * k]) if 2 * k in sums else 100.0
        rows.append({"op": fo["op"], "index": fo["index"], "name": fo["name"], "snr_in_db": round(snr_in, 2),
                     "snr_out_db": round(snr_out, 2), "drop_db": round(snr_in - snr_out, 2),
                     "keep_float": [fo["name"], *consumers.get(fo["out"], [])]})  # fmt: skip
    return sorted(rows, key=lambda r: -r["drop_db"])


def _consumers(it: Any) -> dict[int, list[str]]:
    """For each tensor: output names of the ops reading it, following non-compute ops to the next compute ops."""
    ops = it._get_ops_details()
    readers: dict[int, list[dict]] = {}
    for op in ops:
        for t in op["inputs"]:
            readers.setdefault(int(t), []).append(op)
    out: dict[int, list[str]] = {}
    for op in ops:
        for t in op["outputs"]:
            names, todo, seen = [], [int(t)], set()
            while todo:
                cur = todo.pop()
                for r in readers.get(cur, []):
                    if r["index"] in seen:
                        continue
                    seen.add(r["index"])
                    names += [it._interpreter.TensorName(int(o), 0) for o in r["outputs"]]
                    if r["op_name"] not in COMPUTE_OPS:
                        todo += [int(o) for o in r["outputs"]]
            out[int(t)] = names
    return out


def modules_in_tensor_name(name: str, model: Any) -> list[str]:
    """torch module names recorded in a litert-torch tensor name ('pkg.Net/torch...Sequential_stem/...Conv2d_0;...').

    Each ';'-separated location is a path of 'qualified.Class_attr' parts below the root module; the parts are
    matched against ``model.named_modules()`` so attribute names with underscores are handled, and leading
    parts that are not in ``model`` (a layout wrapper around it) are skipped.
    """
    known = {n for n, _ in model.named_modules() if n}
    found: list[str] = []
    for location in name.split(";"):
        parts = [p.rsplit(".", 1)[-1] for p in location.split("/")[1:]]
        prefix = ""
        for part in parts:
            hit = None
            for i, ch in enumerate(part):
                if ch == "_":
                    cand = f"{prefix}.{part[i + 1 :]}" if prefix else part[i + 1 :]
                    if cand in known:
                        hit = cand
                        break
            if hit is None:
                if prefix:  # a wrapper (e.g. the NHWC one) may sit above the model: skip leading parts only
                    break
                continue
            prefix = hit
        if prefix and prefix not in found:
            found.append(prefix)
    return found
