"""int8 repair ladder: when a full-int8 artifact fails the gate, try cheaper-to-costlier fixes until one passes.

Rungs, in order, each building on the configuration the previous ones settled on:

1. ``per-channel``        per-channel weights, if the failing file had per-tensor weights
2. ``calibration``        a larger class-stratified calibration set (``calib_factor`` x, capped at the train split)
3. ``int16-activations``  16-bit activations with int8 weights (onnx2tf when ``[tf]`` is installed, otherwise
                          AI Edge Quantizer ``static_wi8_ai16`` on the litert-torch float model)
4. ``float-layers``       keep the most sensitive layers in float. Layers are ranked by running the float and the
                          int8 .tflite with every intermediate tensor kept, pairing the compute ops, and measuring
                          how much signal-to-noise (median over channels) each op loses between its input and its
                          output. The top op, plus the ops that consume its output, stay in float (onnx2tf: TFLite
                          denylist; litert-torch: PT2E quantizer config ``None`` for their modules); then the top two.

The ladder stops at the first variant that passes; every attempt is returned (what, file, metrics, verdict):
``{"rung", "step", "status": passed|failed|skipped|unavailable|error, "reason", "config", "artifact" (the
ArtifactRecord), "path", "gate", "metrics", "evaluation" (all ``evaluate`` returned), "seconds"}``; rung 4
attempts also carry the layer ``ranking``. Files of failed attempts are kept so the manifest can point at them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import EdgepruneError
from edgeprune.export.base import EXPORTERS, ArtifactRecord, Exporter, ExportRequest
from edgeprune.export.tflite_inspect import COMPUTE_OPS
from edgeprune.export.tflite_litert import LiteRTTorchExporter

RUNGS = ("per-channel", "calibration", "int16-activations", "float-layers")


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (TensorFlow takes seconds to load)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None
INT8_PRECISIONS = ("int8", "int8-per-tensor")


@dataclass
class RepairInputs:
    """What the ladder needs besides the failing artifact (``from_build_context`` builds it from a run)."""

    model: Any  # the float torch module the artifact was exported from (eval mode)
    example_input: Any  # (1,C,H,W) normalised tensor
    train_x: Any  # (N,C,H,W) normalised tensor: the pool calibration sets are drawn from
    train_y: Any  # (N,) labels
    calib_ids: list[int]
    out_dir: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    calib_factor: int = 4
    max_float_groups: int = 2
    rank_samples: int = 16
    log: Callable[[str], None] = lambda _msg: None

    @classmethod
    def from_build_context(cls, ctx: Any, artifact: dict[str, Any]) -> RepairInputs:
        """Inputs for one artifact of an ``edgeprune build`` run (``ctx`` is a BuildContext)."""
        from edgeprune.export.tflite_metadata import read_tflite_metadata
        from edgeprune.pipeline.checkpoints import load_checkpoint

        model, _ = load_checkpoint(ctx.path(artifact["checkpoint"]), ctx.fresh_model(), ctx.example_input)
        path = ctx.path(artifact["file"])
        meta = {k: v for k, v in (read_tflite_metadata(path) or {}).items() if k != "export"}
        return cls(
            model=model, example_input=ctx.example_input, train_x=ctx.data.train.x, train_y=ctx.data.train.y,
            calib_ids=list(artifact.get("calibration_ids") or ctx.data.calib_ids), out_dir=path.parent,
            metadata=meta, seed=ctx.cfg.seed, log=lambda msg: ctx.console.print(f"  [dim]{msg}[/dim]"),
        )  # fmt: skip


def is_repairable(artifact: dict[str, Any]) -> bool:
    """True for full-int8 TFLite artifacts (the ladder's subject)."""
    return (
        artifact.get("format") == "tflite"
        and artifact.get("precision") in INT8_PRECISIONS
        and artifact.get("quantization") == "full-int8"
    )


@dataclass
class _Config:
    backend: str
    precision: str
    calib_ids: list[int]
    io_dtype: str
    io_layout: str
    float_nodes: tuple[str, ...] = ()


def _request(
    inp: RepairInputs, cfg: _Config, name: str, out_dir: Path | None = None, note: dict | None = None
) -> ExportRequest:
    import torch

    ids = list(cfg.calib_ids)
    req = ExportRequest(
        model=inp.model, example_input=inp.example_input, precision=cfg.precision, out_dir=Path(out_dir or inp.out_dir),
        name=name, calib_inputs=torch.as_tensor(inp.train_x)[ids], calib_ids=ids, io_layout=cfg.io_layout,
        metadata={**inp.metadata, "repair": note} if note else inp.metadata,
    )  # fmt: skip
    req.io_dtype = cfg.io_dtype  # type: ignore[attr-defined]  # an ExportRequest field once base.py has it
    return req


def _exporter(cfg: _Config, float_modules: tuple[str, ...] = ()) -> Exporter:
    if cfg.precision == "int16x8" and cfg.backend == "litert-torch":
        return _AEQInt16Exporter()
    if cfg.backend == "onnx2tf":
        from edgeprune.export.tflite_onnx2tf import Onnx2tfExporter

        return Onnx2tfExporter(float_nodes=cfg.float_nodes)
    if float_modules:
        return _PT2EFloatLayersExporter(float_modules)
    return EXPORTERS.get(f"tflite:{cfg.backend}")()


def repair_int8(
    ctx_like: Any,
    failing_artifact: dict[str, Any],
    evaluate: Callable[[Path], dict[str, Any]],
    rungs: tuple[str, ...] = RUNGS,
) -> list[dict[str, Any]]:
    """Run the ladder for one rejected full-int8 artifact; the last attempt has status 'passed' on success.

    ``ctx_like`` is a ``RepairInputs`` or a BuildContext; ``evaluate(path)`` returns at least
    ``{"gate": {"passed": bool, ...}, "metrics": ...}`` for the file at ``path``.
    """
    inp = (
        ctx_like
        if isinstance(ctx_like, RepairInputs)
        else RepairInputs.from_build_context(ctx_like, failing_artifact)
    )
    art = failing_artifact
    if not is_repairable(art):
        raise EdgepruneError(
            f"artifact '{art.get('name')}' is not a full-int8 TFLite file",
            "only full-int8 artifacts can be repaired",
        )
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise EdgepruneError(f"unknown repair rung(s) {unknown}", f"use some of: {', '.join(RUNGS)}")
    io = str(art["inputs"][0]["dtype"]) if art.get("inputs") else "int8"
    cfg = _Config(
        backend=art["backend"], precision=art["precision"], calib_ids=list(art.get("calibration_ids") or inp.calib_ids),
        io_dtype=io if io in ("int8", "uint8", "float32") else "int8", io_layout=art.get("io_layout", "NCHW"),
    )  # fmt: skip
    state = {"int8_file": Path(inp.out_dir) / Path(art["file"]).name}
    attempts: list[dict[str, Any]] = []
    steps = {"per-channel": _rung_per_channel, "calibration": _rung_calibration,
             "int16-activations": _rung_int16, "float-layers": _rung_float_layers}  # fmt: skip
    for number, rung in enumerate(RUNGS, start=1):
        if rung not in rungs:
            continue
        for attempt in steps[rung](inp, art, cfg, state, evaluate, number):
            attempts.append(attempt)
            inp.log(
                f"repair {art['name']} rung {number} {rung}: {attempt['status']} {attempt.get('reason', '')}"
            )
            if attempt["status"] == "passed":
                return attempts
    return attempts


def _attempt(number: int, rung: str, status: str, reason: str, cfg: _Config | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rung": number, "step": rung, "status": status, "reason": reason}
    if cfg is not None:
        out["config"] = {"backend": cfg.backend, "precision": cfg.precision, "calib_size": len(cfg.calib_ids),
                         "io_dtype": cfg.io_dtype, "io_layout": cfg.io_layout}  # fmt: skip
    return out


def _try(inp: RepairInputs, cfg: _Config, name: str, evaluate: Callable[[Path], dict[str, Any]], number: int,
         rung: str, reason: str, float_modules: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """Export one variant and put it through ``evaluate``; conversion errors become an 'error' attempt."""
    out = _attempt(number, rung, "error", reason, cfg)
    start = time.perf_counter()
    note = {"of": name.split("_repair")[0], "rung": number, "step": rung, "reason": reason}
    try:
        record: ArtifactRecord = _exporter(cfg, float_modules).export(_request(inp, cfg, name, note=note))
        path = Path(inp.out_dir) / record.file
        result = evaluate(path)
    except EdgepruneError as exc:
        out["reason"] = f"{reason}; failed: {exc}"
        out["seconds"] = round(time.perf_counter() - start, 2)
        return out
    passed = bool(result.get("gate", {}).get("passed"))
    out.update(status="passed" if passed else "failed", artifact=record.model_dump(), path=str(path),
               gate=result.get("gate"), metrics=result.get("metrics"), evaluation=result,
               seconds=round(time.perf_counter() - start, 2))  # fmt: skip
    if cfg.float_nodes or float_modules:
        out["config"]["float_layers"] = list(float_modules or cfg.float_nodes)
    return out


def _rung_per_channel(inp, art, cfg, state, evaluate, number):
    if cfg.precision != "int8-per-tensor":
        yield _attempt(
            number,
            "per-channel",
            "skipped",
            f"weights are already per-channel ({cfg.backend} {cfg.precision})",
        )
        return
    cfg.precision = "int8"
    att = _try(inp, cfg, f"{art['name']}_repair1_per_channel", evaluate, number, "per-channel",
               "per-channel weight scales instead of one scale per tensor")  # fmt: skip
    state["int8_file"] = Path(att.get("path", state["int8_file"]))
    yield att


def _rung_calibration(inp, art, cfg, state, evaluate, number):
    from edgeprune.data import stratified_sample

    labels = np.asarray(inp.train_y)
    size = min(inp.calib_factor * len(cfg.calib_ids), labels.size)
    if size <= len(cfg.calib_ids):
        yield _attempt(
            number,
            "calibration",
            "skipped",
            f"calibration already uses {len(cfg.calib_ids)} of {labels.size} train images",
        )
        return
    cfg.calib_ids = [int(i) for i in stratified_sample(labels, size, inp.seed)]
    att = _try(inp, cfg, f"{art['name']}_repair2_calib{size}", evaluate, number, "calibration",
               f"class-stratified calibration set of {size} train images")  # fmt: skip
    state["int8_file"] = Path(att.get("path", state["int8_file"]))
    yield att


def _rung_int16(inp, art, cfg, state, evaluate, number):
    if _installed("onnx2tf") and _installed("tensorflow"):
        backend, how = "onnx2tf", "onnx2tf 16-bit activations"
    elif _installed("ai_edge_quantizer"):
        backend, how = "litert-torch", "AI Edge Quantizer static_wi8_ai16 on the litert-torch float model"
    else:
        yield _attempt(
            number, "int16-activations", "unavailable", "needs edgeprune[tf] (onnx2tf) or ai-edge-quantizer"
        )
        return
    trial = replace(
        cfg, backend=backend, precision="int16x8", io_dtype="float32" if backend == "onnx2tf" else "int16"
    )
    yield _try(inp, trial, f"{art['name']}_repair3_int16x8", evaluate, number, "int16-activations",
               f"int16 activations, int8 weights ({how})")  # fmt: skip


def _rung_float_layers(inp, art, cfg, state, evaluate, number):
    import tempfile

    import torch

    cfg.precision = "int8"
    with tempfile.TemporaryDirectory() as tmp:
        ref_cfg = replace(cfg, precision="fp32", io_dtype="float32", float_nodes=())
        ref = _exporter(ref_cfg).export(_request(inp, ref_cfg, "float_reference", Path(tmp)))
        samples = torch.as_tensor(inp.train_x)[cfg.calib_ids[: inp.rank_samples]].numpy()
        ranking = rank_layers(Path(tmp) / ref.file, state["int8_file"], samples)
    if not ranking:
        yield _attempt(number, "float-layers", "unavailable", "could not pair the float and int8 compute ops")
        return
    state["ranking"] = ranking
    for k in range(1, min(inp.max_float_groups, len(ranking)) + 1):
        top = ranking[:k]
        nodes = tuple(dict.fromkeys(n for r in top for n in r["keep_float"]))
        trial = replace(cfg, float_nodes=nodes if cfg.backend == "onnx2tf" else ())
        modules: tuple[str, ...] = ()
        if cfg.backend != "onnx2tf":
            modules = tuple(dict.fromkeys(m for n in nodes for m in modules_in_tensor_name(n, inp.model)))
            if not modules:
                yield _attempt(
                    number, "float-layers", "unavailable", f"no torch module found for {nodes[0]}", cfg
                )
                return
        why = ", ".join(f"{r['op']} #{r['index']} loses {r['drop_db']:.1f} dB" for r in top)
        att = _try(inp, trial, f"{art['name']}_repair4_float{k}", evaluate, number, "float-layers",
                   f"keep in float: {why}", modules)  # fmt: skip
        att["ranking"] = ranking[: max(5, k)]
        yield att


# -- layer ranking ---------------------------------------------------------------------------------------------
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
    from edgeprune.runtimes.base import QUANTIZED_DTYPES, quantize
    from edgeprune.schemas import TensorInfo

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


# -- repair-only exporters ---------------------------------------------------------------------------------
class _PT2EFloatLayersExporter(LiteRTTorchExporter):
    """litert-torch PT2E int8 with some modules left unquantized (quantizer config None for their names)."""

    def __init__(self, float_modules: tuple[str, ...]) -> None:
        self.float_modules = tuple(float_modules)

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"]["float_modules"] = list(self.float_modules)
        return meta

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

        from edgeprune.export.tflite_litert import (
            _convert_int8,
            _layout_wrap,
            _quiet_converter,
            resolve_io_dtype,
            set_tflite_io_dtype,
        )

        module, example, calib = _layout_wrap(req)
        quantizer = _skip_modules_quantizer(PT2EQuantizer, self.float_modules)
        quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
        with _quiet_converter():
            data = _convert_int8(module, example, calib, quantizer)
        tmp_path.write_bytes(set_tflite_io_dtype(data, resolve_io_dtype(self, req)))


def _skip_modules_quantizer(base: type, skip: tuple[str, ...]) -> Any:
    """A PT2EQuantizer that leaves every node created inside the modules named ``skip`` unannotated (float).

    ``set_module_name(name, None)`` would say the same, but litert-torch 0.10 refuses a None config and its
    name filter expects the older ``L__self___`` key spelling of ``nn_module_stack``, so the filter here reads
    the fully qualified module names stored as the stack's values instead.
    """
    wanted = set(skip)

    def outside(node: Any) -> bool:
        stack = node.meta.get("nn_module_stack", {}) or {}
        names = {str(v[0]).removeprefix("L['self'].") for v in stack.values()}
        return not any(n == w or n.endswith("." + w) for n in names for w in wanted)  # also under a wrapper

    class SkipModules(base):  # type: ignore[misc, valid-type]
        def _annotate_for_static_quantization_config(self, model: Any) -> Any:
            return self._annotate_all_static_patterns(model, self.global_config, outside)

    return SkipModules()


class _AEQInt16Exporter(LiteRTTorchExporter):
    """int16 activations / int8 weights with AI Edge Quantizer on the litert-torch fp32 model (no TF needed)."""

    precisions = ("int16x8",)
    calibrated = frozenset({"int16x8"})
    expected = {"int16x8": "int16x8"}
    io_dtypes = {"int16x8": ("int16",)}  # AEQ keeps int16 inputs and outputs

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        from ai_edge_quantizer import quantizer as aeq
        from ai_edge_quantizer import recipe

        from edgeprune.export.tflite_litert import _convert_float, _layout_wrap, _model_key, _quiet_converter

        module, example, calib = _layout_wrap(req)
        with _quiet_converter():
            float_model = _convert_float(module, example, _model_key(req))
        q = aeq.Quantizer(float_model, recipe.static_wi8_ai16())
        name = _signature_input(float_model)
        stats = q.calibrate(
            {"serving_default": [{name: calib[i : i + 1].numpy()} for i in range(len(calib))]}
        )
        result = q.quantize(stats, enable_progress_bar=False, enable_progress_report=False).quantized_model
        tmp_path.write_bytes(bytes(result))


def _signature_input(model: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model).get_signature_runner()
    return next(iter(runner.get_input_details()))
