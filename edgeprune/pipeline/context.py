"""Everything the stages share: config, run dir, preprocessed data and a way to rebuild the model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.contract import PreprocessContract
from edgeprune.rundir.outcomes import StageOutcomes
from edgeprune.train import TensorData


class TestSplitAccessError(RuntimeError):
    """Internal error: code read the test split without saying why, or while reading it is forbidden."""

    __test__ = False  # not a pytest class


class TestSplit:
    """The held-out test split behind a guard: it is read for the final verdict (and descriptive report
    metrics), never for a choice. Every read goes through :meth:`read`, which records its purpose; inside
    :meth:`sealed` (the repair ladder, a search) any read raises. Sizes and class counts are free to ask."""

    __test__ = False  # not a pytest class

    def __init__(self, data: TensorData) -> None:
        self._data = data
        self._sealed_by: list[str] = []
        self.reads: list[str] = []

    def __len__(self) -> int:
        return len(self._data)

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self._data.y.numpy(), minlength=num_classes).tolist()

    def read(self, purpose: str) -> TensorData:
        """The split's tensors; ``purpose`` (e.g. "final verdict: 4 artifacts") is recorded in :attr:`reads`."""
        if not purpose.strip():
            raise TestSplitAccessError("a read of the test split must name its purpose")
        if self._sealed_by:
            raise TestSplitAccessError(f"the test split was read ({purpose}) during {self._sealed_by[-1]}, "
                                       "which must only read the validation split")
        self.reads.append(purpose)
        return self._data

    def sealed_view(self, during: str) -> TestSplit:
        """A view of the same split whose every read raises: for a whole step that makes choices (the search)."""
        view = TestSplit(self._data)
        view._sealed_by.append(during)
        return view

    @contextmanager
    def sealed(self, during: str) -> Iterator[None]:
        """Within the block any read raises: for steps that make choices (they read validation only)."""
        self._sealed_by.append(during)
        try:
            yield
        finally:
            self._sealed_by.pop()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_data", "_sealed_by", "reads"):
            raise AttributeError(name)
        raise TestSplitAccessError(f"test split accessed as .{name}: use .read(purpose), which records the read")


@dataclass
class PreparedData:
    contract: PreprocessContract
    train: TensorData
    val: TensorData
    test: TestSplit
    calib_ids: list[int]
    info: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return self.contract.num_classes

    @property
    def calib_inputs(self) -> torch.Tensor:
        return self.train.x[self.calib_ids]


def _channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]


def prepare_data(cfg: BuildConfig) -> PreparedData:
    """Load the dataset, fix the preprocessing contract, and turn every split into tensors."""
    from edgeprune.data import load_dataset, stratified_sample

    d = cfg.data
    ds = load_dataset(d.source, seed=cfg.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                      dicom_window=d.dicom_window)
    from edgeprune.models import native_input_size

    size = d.image_size or max(32, ds.image_size[0], native_input_size(cfg.model.name) or 0)
    in_ch = d.in_channels
    base = PreprocessContract(
        input_size=(size, size), in_channels=in_ch, source_channels=ds.channels,
        gray_to_rgb=ds.channels == 1 and in_ch == 3, channel_order="GRAY" if in_ch == 1 else "RGB",
        mean=[0.0] * in_ch, std=[1.0] * in_ch, class_names=list(ds.class_names), dicom=ds.dicom,
    )
    x_tr, y_tr = ds.splits["train"]
    if d.max_train is not None and d.max_train < len(y_tr):
        keep = stratified_sample(y_tr, d.max_train, cfg.seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    if d.mean is not None and d.std is not None:
        mean, std = d.mean, d.std
    else:
        mean, std = _channel_stats(torch.from_numpy(base.apply(x_tr[:2048])))
    contract = base.model_copy(update={"mean": mean, "std": std})

    def tensors(images: np.ndarray, labels: np.ndarray) -> TensorData:
        chunks = [contract.apply(images[i : i + 1024]) for i in range(0, len(images), 1024)]
        return TensorData(torch.from_numpy(np.concatenate(chunks)), torch.from_numpy(labels.astype(np.int64)))

    x_te, y_te = ds.splits["test"]
    if cfg.verify.max_samples is not None and cfg.verify.max_samples < len(y_te):
        keep = stratified_sample(y_te, cfg.verify.max_samples, cfg.seed)
        x_te, y_te = x_te[keep], y_te[keep]
    calib_ids = [int(i) for i in stratified_sample(y_tr, min(d.calib_size, len(y_tr)), cfg.seed)]
    info = {
        "name": ds.name, "source": str(d.source), "source_sha256": ds.source_sha256, "split_note": ds.split_note,
        "class_names": list(ds.class_names),
        "sizes": {"train": int(len(y_tr)), "val": int(len(ds.splits["val"][1])), "test": int(len(y_te))},
        "class_counts": {
            "train": np.bincount(y_tr, minlength=len(ds.class_names)).tolist(),
            "val": np.bincount(ds.splits["val"][1], minlength=len(ds.class_names)).tolist(),
            "test": np.bincount(y_te, minlength=len(ds.class_names)).tolist(),
        },
        "calibration_ids": calib_ids,
        "calibration_split": "train",
        **({"dicom": ds.dicom} if ds.dicom else {}),
    }
    return PreparedData(contract, tensors(x_tr, y_tr), tensors(*ds.splits["val"]), TestSplit(tensors(x_te, y_te)),
                        calib_ids, info)


@dataclass
class BuildContext:
    cfg: BuildConfig
    run_dir: Path
    console: Console = field(default_factory=Console)
    outcomes: StageOutcomes = field(default_factory=StageOutcomes)  # of the stages run or reused so far

    @cached_property
    def data(self) -> PreparedData:
        return prepare_data(self.cfg)

    @property
    def example_input(self) -> torch.Tensor:
        h, w = self.data.contract.input_size
        return torch.zeros(1, self.data.contract.in_channels, h, w)

    def model_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.cfg.model.width_mult is not None:
            kw["width_mult"] = self.cfg.model.width_mult
        return kw

    def fresh_model(self, pretrained: bool = False) -> nn.Module:
        """A new instance of the configured architecture (untrained unless ``pretrained``)."""
        from edgeprune.models import resolve_model

        return resolve_model(self.cfg.model.name, num_classes=self.data.num_classes,
                             in_channels=self.data.contract.in_channels, pretrained=pretrained,
                             **self.model_kwargs())

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.run_dir)
