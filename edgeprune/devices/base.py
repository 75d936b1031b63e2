"""The device abstraction: where an artifact is timed, and the registry that maps "host", "adb:SERIAL" ... to it."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edgeprune.errors import EdgepruneError
from edgeprune.registry import Registry
from edgeprune.schemas import DeviceFingerprint, Measurement

DELEGATES = ("xnnpack", "none", "gpu", "nnapi")


@dataclass
class BenchSpec:
    """What to run: one measurement per thread count, ``warmup`` untimed then ``runs`` timed invokes.

    ``delegate`` defaults from ``use_xnnpack`` ("xnnpack" or "none"); "gpu" and "nnapi" only exist on Android.
    Android (adb) only: ``big_cores`` pins the run to the fastest cluster with ``taskset``; ``cooldown_c`` waits
    (at most ``cooldown_timeout_s``) until the battery is below that temperature before each configuration;
    ``benchmark_binary`` is the user's own ``benchmark_model`` (else $EDGEPRUNE_BENCHMARK_MODEL); ``via_app``
    runs the demo app's BenchmarkActivity instead; ``op_profiling`` adds benchmark_model's per-op table.
    Emulated lanes (qemu-arm64) only: ``parity_inputs`` are real input rows (N, ...) in the artifact's input
    layout for the parity check, described by ``parity_inputs_label`` (e.g. "validation images"); else random inputs.
    """

    threads: list[int] = field(default_factory=lambda: [1])
    warmup: int = 10
    runs: int = 50
    use_xnnpack: bool = True
    delegate: str = ""
    big_cores: bool = False
    cooldown_c: float | None = None
    cooldown_timeout_s: float = 300.0
    benchmark_binary: str | None = None
    via_app: bool = False
    op_profiling: bool = False
    parity_inputs: Any = None
    parity_inputs_label: str = ""

    def __post_init__(self) -> None:
        if not self.threads or any(
            not isinstance(t, numbers.Integral) or isinstance(t, bool) or t < 1 for t in self.threads
        ):
            raise EdgepruneError(
                f"bad thread counts {self.threads}", "pass one or more integers >= 1, e.g. threads=[1, 4]"
            )
        if self.warmup < 0 or self.runs < 1:
            raise EdgepruneError(
                f"bad benchmark lengths warmup={self.warmup}, runs={self.runs}",
                "use warmup >= 0 and runs >= 1",
            )
        self.threads = [int(t) for t in self.threads]
        self.delegate = (self.delegate or ("xnnpack" if self.use_xnnpack else "none")).strip().lower()
        if self.delegate not in DELEGATES:
            raise EdgepruneError(f"unknown delegate '{self.delegate}'", f"use one of: {', '.join(DELEGATES)}")
        if self.delegate == "none":
            self.use_xnnpack = False
        if self.cooldown_c is not None and not 0 < self.cooldown_c < 80:
            raise EdgepruneError(f"bad cool-down temperature {self.cooldown_c} °C", "use e.g. cooldown_c=38")


class Device(ABC):
    """A place that can fingerprint itself and time a model file; one subclass (one file) per kind.

    Declared capabilities (read by ``edgeprune list devices`` and the pre-flight check): ``can_time`` is False
    for lanes whose timings mean nothing (an emulator: parity and op support only); ``timing_note`` says in
    one line what the lane's numbers are.
    """

    kind: ClassVar[str]
    can_time: ClassVar[bool] = True
    timing_note: ClassVar[str] = ""

    @classmethod
    def from_spec(cls, arg: str | None) -> Device:
        """Build the device from the part of the spec after ``kind:`` (None when absent)."""
        if arg:
            raise EdgepruneError(
                f"device kind '{cls.kind}' takes no argument (got '{cls.kind}:{arg}')", f"use '{cls.kind}'"
            )
        return cls()

    @abstractmethod
    def fingerprint(self) -> DeviceFingerprint:
        """Describe the hardware and OS the numbers come from."""

    @abstractmethod
    def benchmark(
        self, model_path: Path, spec: BenchSpec, artifact_name: str, artifact_sha256: str
    ) -> list[Measurement]:
        """Time ``model_path``; one Measurement per configuration in ``spec``."""


def check_cpu_bench_request(model_path: Path, spec: BenchSpec, where: str) -> Path:
    """The model file exists and the spec asks only for CPU delegates; ``where`` e.g. 'over ssh'."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise EdgepruneError(f"model file not found: {model_path}", "pass the path of an exported .tflite file")
    if spec.delegate not in ("xnnpack", "none"):
        raise EdgepruneError(f"delegate '{spec.delegate}' is not available {where}", "use xnnpack or none")
    return model_path


DEVICES: Registry[type[Device]] = Registry("device")


D = TypeVar("D", bound=type["Device"])


def register_device(cls: D) -> D:
    """Class decorator: register a Device subclass under its ``kind``."""
    DEVICES.add(cls.kind, cls)
    return cls


def split_options(arg: str | None) -> tuple[str | None, dict[str, str]]:
    """Split a device argument ``MAIN?key=value&key=value`` into MAIN (None when empty) and its options."""
    if not arg:
        return None, {}
    main, _, query = arg.partition("?")
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EdgepruneError(
                f"device option '{pair}' is not key=value", "write options like adb:SERIAL?big_cores=1"
            )
        options[key.strip()] = value.strip()
    return main.strip() or None, options


def option_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def open_device(spec: str) -> Device:
    """Open a device from a spec such as ``host``, ``adb``, ``adb:SERIAL``, ``qemu-arm64`` or ``ssh:user@host``."""
    spec = (spec or "").strip()
    if not spec:
        raise EdgepruneError("empty device spec", f"use one of: {', '.join(DEVICES.names()) or 'host'}")
    kind, _, arg = spec.partition(":")
    if "?" in kind:  # options without an argument: "adb?port=5038" == "adb:?port=5038"
        kind, _, query = kind.partition("?")
        arg = "?" + query
    return DEVICES.get(kind.strip()).from_spec(arg.strip() or None)
