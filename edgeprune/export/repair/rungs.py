"""The five rungs of the int8 repair ladder: the full-int8 ones first, then the costlier formats.

1. ``per-channel``        per-channel weights, if the failing file had per-tensor weights
2. ``qat``                quantization-aware training through PT2E (``prepare_qat_pt2e``) on the train split, one
                          full-int8 file per epoch, each judged by ``evaluate`` (validation): the first that passes
                          wins (litert-torch only; at most ``qat_epochs`` epochs)
3. ``calibration``        a larger class-stratified calibration set (``calib_factor`` x, capped at the train split)
4. ``int16-activations``  16-bit activations with int8 weights (onnx2tf when ``[tf]`` is installed, otherwise
                          AI Edge Quantizer ``static_wi8_ai16`` on the litert-torch float model)
5. ``float-layers``       keep the most sensitive layers in float (ranked by :func:`rank_layers`): the top op plus
                          the ops that consume its output (onnx2tf: TFLite denylist; litert-torch: PT2E quantizer
                          config ``None`` for their modules); then the top two.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeprune.export.repair.base import (
    Attempt,
    LadderRun,
    RepairInputs,
    Rung,
    attempt,
    exporter_for,
    request,
    try_variant,
)
from edgeprune.export.repair.ranking import modules_in_tensor_name, rank_layers

QAT_DIVERGENCE = 2.0  # stop the QAT rung once an epoch's loss exceeds this multiple of the first epoch's


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (TensorFlow takes seconds to load)."""
    return importlib.util.find_spec(module) is not None


class PerChannel(Rung):
    step = "per-channel"

    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        cfg = run.config
        if cfg.precision != "int8-per-tensor":
            yield attempt(number, self.step, "skipped",
                          f"weights are already per-channel ({cfg.backend} {cfg.precision})")  # fmt: skip
            return
        cfg.precision = "int8"
        yield run.try_int8(number, self.step, "repair1_per_channel",
                           "per-channel weight scales instead of one scale per tensor")  # fmt: skip


class QuantizationAwareTraining(Rung):
    step = "qat"

    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        import torch

        cfg, inp = run.config, run.inputs
        if cfg.backend != "litert-torch":
            yield attempt(number, self.step, "skipped", f"QAT goes through PT2E (litert-torch), not {cfg.backend}")
            return
        if not installed("torchao") or inp.qat_epochs < 1:
            yield attempt(number, self.step, "unavailable", "needs torchao (edgeprune[tflite]) and qat_epochs >= 1")
            return
        from edgeprune.export.qat import QATSession
        from edgeprune.export.tflite_litert_variants import QATExporter

        trial = replace(cfg, precision="int8")
        n, pool = len(inp.train_y), _qat_pool(inp)
        images = (f"the {n} train images" if len(pool) == n
                  else f"{len(pool)} of the {n} train images (class-stratified)")  # fmt: skip
        try:
            train_x, train_y = torch.as_tensor(inp.train_x)[pool], torch.as_tensor(inp.train_y).reshape(-1)[pool]
            session = QATSession(copy.deepcopy(inp.model).eval(), train_x, train_y,
                                 torch.as_tensor(inp.train_x)[list(cfg.calib_ids)], seed=inp.seed, lr=inp.qat_lr)
        except Exception as exc:  # noqa: BLE001 - a graph PT2E cannot prepare for training is 'unavailable'
            yield attempt(number, self.step, "unavailable", f"PT2E cannot prepare this model for QAT: {exc}"[:300])
            return
        first = 0.0
        for epoch in range(1, inp.qat_epochs + 1):
            loss = session.epoch()
            if epoch == 1:
                first = loss
            diverging = epoch > 1 and loss > QAT_DIVERGENCE * first
            why = (f"quantization-aware training (PT2E fake quantization, distilled from the float model), epoch "
                   f"{epoch} of at most {inp.qat_epochs} on {images} (loss {loss:.3f})")
            if diverging:
                why += f"; the loss grew over {QAT_DIVERGENCE:g}x the first epoch's ({first:.3f}): QAT stops here"
            yield try_variant(run, trial, f"{run.name}_repair_qat{epoch}", number, self.step, why,
                              exporter=QATExporter(session))  # fmt: skip
            if diverging:
                return


def _qat_pool(inp: RepairInputs) -> list[int]:
    """Indices of the train images QAT passes over: all of them, or a class-stratified ``qat_max_images``."""
    from edgeprune.data import stratified_sample

    n = len(inp.train_y)
    if n <= inp.qat_max_images:
        return list(range(n))
    return [int(i) for i in stratified_sample(np.asarray(inp.train_y).reshape(-1), inp.qat_max_images, inp.seed)]


class Calibration(Rung):
    step = "calibration"

    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        from edgeprune.data import stratified_sample

        cfg, inp = run.config, run.inputs
        labels = np.asarray(inp.train_y)
        size = min(inp.calib_factor * len(cfg.calib_ids), labels.size)
        if size <= len(cfg.calib_ids):
            yield attempt(number, self.step, "skipped",
                          f"calibration already uses {len(cfg.calib_ids)} of {labels.size} train images")  # fmt: skip
            return
        cfg.calib_ids = [int(i) for i in stratified_sample(labels, size, inp.seed)]
        yield run.try_int8(number, self.step, f"repair2_calib{size}",
                           f"class-stratified calibration set of {size} train images")  # fmt: skip


class Int16Activations(Rung):
    step = "int16-activations"

    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        if installed("onnx2tf") and installed("tensorflow"):
            backend, how = "onnx2tf", "onnx2tf 16-bit activations"
        elif installed("ai_edge_quantizer"):
            backend, how = "litert-torch", "AI Edge Quantizer static_wi8_ai16 on the litert-torch float model"
        else:
            yield attempt(number, self.step, "unavailable", "needs edgeprune[tf] (onnx2tf) or ai-edge-quantizer")
            return
        io = "float32" if backend == "onnx2tf" else "int16"
        trial = replace(run.config, backend=backend, precision="int16x8", io_dtype=io)
        yield try_variant(run, trial, f"{run.name}_repair3_int16x8", number, self.step,
                          f"int16 activations, int8 weights ({how})")  # fmt: skip


class FloatLayers(Rung):
    step = "float-layers"

    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        import tempfile

        import torch

        cfg, inp = run.config, run.inputs
        cfg.precision = "int8"
        with tempfile.TemporaryDirectory() as tmp:
            ref_cfg = replace(cfg, precision="fp32", io_dtype="float32", float_nodes=())
            ref = exporter_for(ref_cfg).export(request(inp, ref_cfg, "float_reference", Path(tmp)))
            samples = torch.as_tensor(inp.train_x)[cfg.calib_ids[: inp.rank_samples]].numpy()
            ranking = rank_layers(Path(tmp) / ref.file, run.int8_file, samples)
        if not ranking:
            yield attempt(number, self.step, "unavailable", "could not pair the float and int8 compute ops")
            return
        run.ranking = ranking
        for k in range(1, min(inp.max_float_groups, len(ranking)) + 1):
            top = ranking[:k]
            nodes = tuple(dict.fromkeys(n for r in top for n in r["keep_float"]))
            trial = replace(cfg, float_nodes=nodes if cfg.backend == "onnx2tf" else ())
            modules: tuple[str, ...] = ()
            if cfg.backend != "onnx2tf":
                modules = tuple(dict.fromkeys(m for n in nodes for m in modules_in_tensor_name(n, inp.model)))
                if not modules:
                    yield attempt(number, self.step, "unavailable", f"no torch module found for {nodes[0]}", cfg)
                    return
            why = ", ".join(f"{r['op']} #{r['index']} loses {r['drop_db']:.1f} dB" for r in top)
            att = try_variant(run, trial, f"{run.name}_repair4_float{k}", number, self.step,
                              f"keep in float: {why}", modules)  # fmt: skip
            att["ranking"] = ranking[: max(5, k)]
            yield att


LADDER: tuple[Rung, ...] = (
    PerChannel(), QuantizationAwareTraining(), Calibration(), Int16Activations(), FloatLayers()
)
RUNGS = tuple(r.step for r in LADDER)
