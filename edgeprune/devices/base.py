"""The device abstraction: where an artifact is timed, and the registry that maps "host", "adb:SERIAL" ... to it."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from edgeprune.errors import EdgepruneError
from edgeprune.registry import Registry
from edgeprune.schemas import DeviceFingerprint, Measurement


@dataclass
class BenchSpec:
    """What to run: one measurement per thread count, ``warmup`` untimed then ``runs`` timed invokes."""

    threads: list[int] = field(default_factory=lambda: [1])
    warmup: int = 10
    runs: int = 50
    use_xnnpack: bool = True

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

    @property
    def delegate(self) -> str:
        return "xnnpack" if self.use_xnnpack else "none"


class Device(ABC):
    """A place that can fingerprint itself and time a model file; one subclass (one file) per kind."""

    kind: ClassVar[str]

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


DEVICES: Registry[type[Device]] = Registry("device")


D = TypeVar("D", bound=type["Device"])


def register_device(cls: D) -> D:
    """Class decorator: register a Device subclass under its ``kind``."""
    DEVICES.add(cls.kind, cls)
    return cls


def open_device(spec: str) -> Device:
    """Open a device from a spec such as ``host``, ``adb``, ``adb:SERIAL``, ``qemu-arm64`` or ``ssh:user@host``."""
    spec = (spec or "").strip()
    if not spec:
        raise EdgepruneError("empty device spec", f"use one of: {', '.join(DEVICES.names()) or 'host'}")
    kind, _, arg = spec.partition(":")
    return DEVICES.get(kind.strip()).from_spec(arg.strip() or None)
