"""TFLite through ONNX -> onnx2tf -> TFLiteConverter (tensorflow-cpu): the second TFLite backend, extra ``[tf]``.

Precisions (what the file is / where it comes from):

* ``fp32``            onnx2tf ``*_float32.tflite``
* ``fp16``            onnx2tf ``*_float16.tflite``: float16 weights + DEQUANTIZE, float32 compute
* ``dynamic-int8``    onnx2tf ``*_dynamic_range_quant.tflite``: int8 weights, float activations (TFLite keeps
                      weights with fewer than 1024 elements in float, so a very small model may stay float)
* ``int8``            full integer, per-channel weights; ``io_dtype`` int8 (default) | uint8 | float32
* ``int8-per-tensor`` full integer with one scale per weight tensor (what some NPUs want; the baseline the
                      repair ladder's per-channel rung fixes)
* ``int16x8``         16-bit activations, int8 weights (onnx2tf ``*_integer_quant_with_int16_act``);
                      ``io_dtype`` float32 (default) | int16

Layout: onnx2tf rewrites the graph channel-last, so the input is NHWC with no TRANSPOSE in front; NCHW keeps
the ONNX layout with ``-kt`` and costs one TRANSPOSE. The record and the embedded metadata carry what the file
really has.

How it runs: the model goes to ONNX in this process (the onnx target's
``write_onnx``), then a worker subprocess (started once, TensorFlow imported once, a timeout per job, logs captured
and shown on failure) runs onnx2tf offline: its working directory holds the
``calibration_image_sample_data_20x128x128x3_float32.npy`` file it would otherwise download, and the
calibration set is ours (``-cind``: class-stratified, already normalised with the contract's mean/std, so the
mean/std given to onnx2tf are 0/1). Variants onnx2tf does not write itself (uint8 I/O when the run made int8
I/O, per-tensor weights, a new calibration set, layers kept in float) come from TFLiteConverter on the same
SavedModel in another subprocess. Runs are cached per (model weights, layout, calibration set) for this process,
so the precisions of one model cost one onnx2tf run.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import MissingExtraError
from edgeprune.export.base import Exporter, ExportFailedError, ExportRequest, register_exporter
from edgeprune.export.onnx_export import write_onnx
from edgeprune.export.tflite_litert import LiteRTTorchExporter
from edgeprune.schemas import TensorInfo

INPUT_NAME = "input"
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
TIMEOUT_ENV = "EDGEPRUNE_ONNX2TF_TIMEOUT"
DEFAULT_TIMEOUT = 1800.0
FLOAT_PRECISIONS = ("fp32", "fp16", "dynamic-int8")
_NATIVE = {  # variant name -> file onnx2tf writes (int8 I/O names are filled in per run)
    "fp32": "model_float32.tflite", "fp16": "model_float16.tflite",
    "dynamic-int8": "model_dynamic_range_quant.tflite", "int8/float32/pc": "model_integer_quant.tflite",
    "int16x8/float32/pc": "model_integer_quant_with_int16_act.tflite",
    "int16x8/int16/pc": "model_full_integer_quant_with_int16_act.tflite",
}  # fmt: skip


@dataclass
class _Run:
    """One onnx2tf conversion (or a re-calibration of its SavedModel) and the files made from it."""

    dir: Path
    model_key: str
    calib_hash: str | None
    saved_model: Path
    files: dict[str, Path] = field(default_factory=dict)
    made_by: dict[str, str] = field(default_factory=dict)
    log: str = ""


_RUNS: list[_Run] = []
_ROOT: list[Path] = []


def _cache_dir() -> Path:
    if not _ROOT:
        root = Path(tempfile.mkdtemp(prefix="edgeprune-onnx2tf-"))
        atexit.register(shutil.rmtree, root, True)
        _ROOT.append(root)
    path = Path(tempfile.mkdtemp(dir=_ROOT[0]))
    return path


def _remember(run: _Run) -> _Run:
    """Keep the runs of the two most recent models; older ones are deleted."""
    _RUNS.append(run)
    keys = list(dict.fromkeys(r.model_key for r in reversed(_RUNS)))[:2]
    for old in [r for r in _RUNS if r.model_key not in keys]:
        _RUNS.remove(old)
        if not any(r.dir == old.dir for r in _RUNS):
            shutil.rmtree(old.dir, ignore_errors=True)
    return run


def _variant(precision: str, io: str, float_nodes: tuple[str, ...]) -> str:
    """Cache name of a file: 'fp32', 'int8/uint8/pc', 'int8/float32/pt', 'int8/float32/pc/float-<hash>'."""
    if precision in FLOAT_PRECISIONS:
        return precision
    kind = "int16x8" if precision == "int16x8" else "int8"
    name = f"{kind}/{io}/{'pt' if precision == 'int8-per-tensor' else 'pc'}"
    if float_nodes:
        name += "/float-" + hashlib.sha256("\n".join(sorted(float_nodes)).encode()).hexdigest()[:12]
    return name


class _Worker:
    """One long-lived subprocess that imports TensorFlow once; jobs go in as JSON lines on its stdin.

    Its stdout and stderr (onnx2tf's and TF's logs) are read by a thread; each job ends with a marker line.
    A job that fails or times out ends the process, so the next job starts from a clean interpreter.
    """

    def __init__(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONWARNINGS="ignore")
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # onnxsim CLI
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", "from edgeprune.export.tflite_onnx2tf import worker_loop; worker_loop()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            env=env,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()


_WORKER: list[_Worker] = []
_DONE = "@@edgeprune-onnx2tf-done"


def _stop_worker() -> None:
    while _WORKER:
        _WORKER.pop().stop()


def _run_worker(job: dict[str, Any], workdir: Path, what: str) -> str:
    """Run one job in the worker process (timeout per job); returns its log, raises ExportFailedError."""
    if not _WORKER or not _WORKER[0].alive():
        if not _WORKER:
            atexit.register(_stop_worker)
        _stop_worker()
        _WORKER.append(_Worker())
    worker = _WORKER[0]
    timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    job_id = hashlib.sha256(f"{workdir}{time.time_ns()}".encode()).hexdigest()[:12]
    assert worker.proc.stdin is not None
    worker.proc.stdin.write(json.dumps({**job, "cwd": str(workdir), "id": job_id}) + "\n")
    worker.proc.stdin.flush()
    deadline, log, status = time.monotonic() + timeout, [], "died"
    while True:
        try:
            line = worker.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            _stop_worker()
            raise ExportFailedError(
                f"{what} did not finish within {timeout:g} s",
                f"raise {TIMEOUT_ENV} or use the litert-torch backend",
            ) from None
        if line is None or line.startswith(f"{_DONE} {job_id} "):
            status = "died" if line is None else line.split()[-1]
            break
        log.append(line)
    text = "".join(log)
    if status != "ok":
        _stop_worker()
        tail = [ln.strip() for ln in text.splitlines() if ln.strip()][-6:]
        err = ExportFailedError(
            f"{what} failed: {' | '.join(tail)[-600:]}",
            "check that the model uses standard CNN ops, or use the litert-torch backend",
        )
        err.log = text  # type: ignore[attr-defined]
        raise err
    return text


def _calib_array(req: ExportRequest) -> np.ndarray | None:
    if req.calib_inputs is None or len(req.calib_inputs) == 0:
        return None
    x = np.asarray(
        req.calib_inputs.detach().cpu().numpy() if hasattr(req.calib_inputs, "detach") else req.calib_inputs
    )
    x = x.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if req.io_layout == "NHWC" else x)


def _onnx2tf_run(req: ExportRequest, key: str, calib: np.ndarray | None, int_io: str) -> _Run:
    work = _cache_dir()
    write_onnx(req.model, req.example_input, work / "model.onnx")  # input named INPUT_NAME, batch 1
    job: dict[str, Any] = {"onnx2tf": {
        "onnx": str(work / "model.onnx"), "out": str(work / "out"), "input": INPUT_NAME,
        "nchw": req.io_layout == "NCHW", "calib": None, "int_io": int_io,
    }}  # fmt: skip
    chash = None
    if calib is not None:
        np.save(work / "calib.npy", calib)
        job["onnx2tf"]["calib"] = str(work / "calib.npy")
        chash = hashlib.sha256(calib.tobytes()).hexdigest()
    try:
        log = _run_worker(job, work, "onnx2tf")
    except ExportFailedError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    run = _Run(dir=work, model_key=key, calib_hash=chash, saved_model=work / "out", log=log)
    native = dict(_NATIVE, **{f"int8/{int_io}/pc": "model_full_integer_quant.tflite"})
    if calib is None:
        native = {k: v for k, v in native.items() if k in FLOAT_PRECISIONS}
    run.files = {k: work / "out" / v for k, v in native.items() if (work / "out" / v).is_file()}
    run.made_by = dict.fromkeys(run.files, "onnx2tf")
    return _remember(run)


def _recalibrated_run(base: _Run, calib: np.ndarray) -> _Run:
    """A run for a new calibration set that reuses ``base``'s SavedModel (built with -oiqt, see pitfall 9)."""
    work = _cache_dir()
    np.save(work / "calib.npy", calib)
    run = _Run(dir=work, model_key=base.model_key, calib_hash=hashlib.sha256(calib.tobytes()).hexdigest(),
               saved_model=base.saved_model)  # fmt: skip
    return _remember(run)


def _quantize(run: _Run, variant: str, float_nodes: tuple[str, ...]) -> Path:
    """Make one integer variant with TFLiteConverter from the run's SavedModel and calibration set."""
    kind, io, gran = variant.split("/")[:3]
    dest = run.dir / (variant.replace("/", "_") + ".tflite")
    calib = run.dir / "calib.npy"  # every calibrated run keeps its calibration set
    job = {"quantize": {
        "saved_model": str(run.saved_model), "calib": str(calib), "calibrated": str(run.dir / "calibrated.tflite"),
        "variants": [{"kind": kind, "io": io, "per_channel": gran == "pc", "float_nodes": list(float_nodes),
                      "dest": str(dest)}],
    }}  # fmt: skip
    run.log += _run_worker(job, run.dir, "TFLiteConverter on the onnx2tf SavedModel")
    run.files[variant] = dest
    run.made_by[variant] = "TFLiteConverter on the onnx2tf SavedModel"
    return dest


def _locate(req: ExportRequest, variant: str, float_nodes: tuple[str, ...]) -> tuple[Path, str]:
    """(file, how it was made) for ``variant``, converting only what no cached run already has."""
    key = req.model_key()
    mine = [r for r in _RUNS if r.model_key == key]
    if variant in FLOAT_PRECISIONS:
        hit = next((r.files[variant] for r in mine if variant in r.files), None)
        if hit is None:
            run = _onnx2tf_run(req, key, _calib_array(req), "int8")
            hit = run.files.get(variant)
        if hit is None:
            raise ExportFailedError(f"onnx2tf wrote no {variant} model", "see the onnx2tf log")
        return hit, "onnx2tf"
    calib = _calib_array(req)
    if calib is None:  # check() already refuses this; kept for direct callers
        raise ExportFailedError(f"{variant} needs calibration images", "pass calib_inputs")
    chash = hashlib.sha256(calib.tobytes()).hexdigest()
    run = next((r for r in mine if r.calib_hash == chash), None)
    if run is None:
        base = next((r for r in mine if r.calib_hash is not None), None)
        io = variant.split("/")[1]
        run = (
            _recalibrated_run(base, calib)
            if base
            else _onnx2tf_run(req, key, calib, io if io == "uint8" else "int8")
        )
    if variant not in run.files:
        _quantize(run, variant, float_nodes)
    return run.files[variant], run.made_by[variant]


@register_exporter()
class Onnx2tfExporter(Exporter):
    """PyTorch -> ONNX -> onnx2tf -> .tflite; ``float_nodes`` keeps the named TFLite tensors' ops in float."""

    format = "tflite"
    backend = "onnx2tf"
    suffix = ".tflite"
    precisions = ("fp32", "fp16", "dynamic-int8", "int8", "int8-per-tensor", "int16x8")
    requires = {"onnx": "onnx", "onnx2tf": "tf", "tensorflow": "tf", "ai_edge_litert": "tflite"}
    layouts = ("NHWC", "NCHW")
    needs_calibration = frozenset({"int8", "int8-per-tensor", "int16x8"})
    expected = {"fp32": "none", "fp16": "fp16-weights", "dynamic-int8": "dynamic-int8", "int8": "full-int8",
                "int8-per-tensor": "full-int8", "int16x8": "int16x8"}  # fmt: skip
    io_dtype_options = {"int8": ("int8", "uint8", "float32"), "int8-per-tensor": ("int8", "uint8", "float32"),
                        "int16x8": ("float32", "int16")}  # fmt: skip
    backend_dist = "onnx2tf"

    WORKER_MODULES = ("onnx2tf", "tensorflow")  # used only in the worker process: found, never imported here

    def __init__(self, float_nodes: tuple[str, ...] | list[str] = ()) -> None:
        self.float_nodes = tuple(float_nodes)
        self._made_by = ""
        # the class lists every requirement (capability table); the instance imports only the light ones
        self.requires = {m: e for m, e in type(self).requires.items() if m not in self.WORKER_MODULES}

    def check(self, req: ExportRequest) -> None:
        super().check(req)
        for module in self.WORKER_MODULES:
            if importlib.util.find_spec(module) is None:
                raise MissingExtraError(module, "tf")

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"]["io_dtype"] = self.resolve_io_dtype(req)
        if self.float_nodes and req.precision in self.needs_calibration:
            meta["export"]["float_nodes"] = list(self.float_nodes)
        return meta

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        nodes = self.float_nodes if req.precision in self.needs_calibration else ()
        path, self._made_by = _locate(req, _variant(req.precision, self.resolve_io_dtype(req), nodes), nodes)
        tmp_path.write_bytes(path.read_bytes())

    def notes(
        self, req: ExportRequest, quantization: str, inputs: list[TensorInfo], outputs: list[TensorInfo]
    ) -> list[str]:
        notes = [f"made by {self._made_by}"] if self._made_by else []
        if req.io_layout == "NHWC":
            notes.append("NHWC input: onnx2tf converts the graph to channels-last (feed N,H,W,C)")
        else:
            notes.append("NCHW input kept with onnx2tf -kt: one TRANSPOSE in front; NHWC avoids it")
        if self.float_nodes and req.precision in self.needs_calibration:
            notes.append(
                f"{len(self.float_nodes)} op output(s) kept in float: {', '.join(self.float_nodes)[:300]}"
            )
        return notes + super().notes(req, quantization, inputs, outputs)

    # the same file checks, metadata embedding and read-back as the primary TFLite backend
    embed_metadata = LiteRTTorchExporter.embed_metadata
    describe = LiteRTTorchExporter.describe


# -- subprocess side ------------------------------------------------------------------------------------------
def _write_sample_file(directory: Path) -> None:
    """The file onnx2tf downloads for its dummy inference: 20 deterministic RGB images in [0, 1]."""
    target = directory / SAMPLE_FILE
    if not target.is_file():
        np.save(target, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))


def _convert_onnx2tf(job: dict[str, Any]) -> None:
    import onnx2tf

    kwargs: dict[str, Any] = {
        "input_onnx_file_path": job["onnx"], "output_folder_path": job["out"], "verbosity": "warn",
        "output_dynamic_range_quantized_tflite": True,
        "keep_ncw_or_nchw_or_ncdhw_input_names": [job["input"]] if job["nchw"] else None,
    }  # fmt: skip
    if job["calib"]:
        ident = np.zeros((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32)  # data is normalised
        kwargs.update(
            output_integer_quantized_tflite=True, quant_type="per-channel",
            custom_input_op_name_np_data_path=[[job["input"], job["calib"], *ident]],
            input_quant_dtype=job["int_io"], output_quant_dtype=job["int_io"],
        )  # fmt: skip
    onnx2tf.convert(**kwargs)


def _quantize_variants(job: dict[str, Any]) -> None:
    calib = np.load(job["calib"]).astype(np.float32)  # before the slow TF import, so bad input fails fast

    import tensorflow as tf
    from tensorflow.lite.python import convert as tfl_convert

    types = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}

    def dataset():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    def converter() -> Any:
        conv = tf.lite.TFLiteConverter.from_saved_model(job["saved_model"])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = dataset
        return conv

    cached = Path(job["calibrated"])
    for spec in job["variants"]:
        io = types[spec["io"]]
        if spec["kind"] == "int16x8":
            conv = converter()
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            conv._experimental_disable_per_channel = not spec["per_channel"]
            conv.inference_input_type = conv.inference_output_type = io
            data = conv.convert()
        else:
            if not cached.is_file():  # calibrate once, quantize many ways (what TFLiteConverter does inside)
                conv = converter()
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                conv._experimental_calibrate_only = True
                cached.write_bytes(conv.convert())
            data = tfl_convert.mlir_quantize(
                cached.read_bytes(), disable_per_channel=not spec["per_channel"], input_data_type=io,
                output_data_type=io, denylisted_nodes=spec["float_nodes"] or None,
            )  # fmt: skip
        Path(spec["dest"]).write_bytes(data)


def worker_loop() -> None:
    """Worker process entry: one JSON job per stdin line, a marker line on stdout after each job."""
    for line in sys.stdin:
        job = json.loads(line)
        ok = False
        try:
            os.chdir(job["cwd"])
            _write_sample_file(Path.cwd())
            if "onnx2tf" in job:
                _convert_onnx2tf(job["onnx2tf"])
            if "quantize" in job:
                _quantize_variants(job["quantize"])
            ok = True
        except BaseException:  # noqa: BLE001 - onnx2tf reports errors with sys.exit; log everything
            traceback.print_exc()
        sys.stderr.flush()
        print(f"{_DONE} {job['id']} {'ok' if ok else 'error'}", flush=True)
        if not ok:
            return  # a failed conversion may leave TF state behind: the next job gets a fresh process
