"""Datasets handed over in Python: numpy arrays, torch Datasets or DataLoaders, held in memory.

An :class:`ArraySource` turns them into the uint8 pixel arrays every other source yields (the preprocessing
contract normalises later, exactly as for files). It is registered under a ``memory:<name>@<hash>`` spec that
``data.source`` can hold, so the config and manifest stay plain text; the spec only resolves in the Python
process that registered it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeprune.config import MEMORY_DATA
from edgeprune.data.splits import carve_missing_splits
from edgeprune.errors import EdgepruneError

Arrays = tuple[np.ndarray, np.ndarray]
_LIVE: dict[str, ArraySource] = {}
_PIXELS_FIX = "pass raw pixels: uint8 0..255 (or floats in 0..1), shaped (N,H,W), (N,H,W,C) or (N,C,H,W)"


def pixel_array(arr: Any, what: str, fail: Callable[[str], EdgepruneError]) -> np.ndarray:
    """(N,H,W) or (N,H,W,3) uint8 from (N,H,W), (N,H,W,C) or channels-first (N,C,H,W) images.

    Integer pixels must lie in 0..255; ``fail(problem)`` builds the error for the caller's kind of source.
    """
    arr = np.asarray(arr)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[3] not in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)  # channels-first -> channels-last
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] != 3):
        raise fail(f"'{what}' has shape {arr.shape}; expected (N,H,W) or (N,H,W,3)")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 255)):
            raise fail(f"'{what}' holds {arr.dtype} values; expected uint8 pixels 0..255")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def label_array(arr: Any, what: str, n: int, fail: Callable[[str], EdgepruneError]) -> np.ndarray:
    """One non-negative integer class index per image, as int64."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise fail(f"'{what}' has shape {arr.shape}; expected one class index per image "
                   "(multi-label data is not supported)")
    if arr.shape[0] != n:
        raise fail(f"'{what}' has {arr.shape[0]} labels for {n} images")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
        raise fail(f"'{what}' must hold non-negative integer class indices")
    return arr.astype(np.int64)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _floats_to_pixels(images: np.ndarray, what: str) -> np.ndarray:
    """Float images in 0..1 (torchvision ToTensor) become uint8; normalised floats cannot be undone."""
    if not np.issubdtype(images.dtype, np.floating):
        return images
    if images.size and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise EdgepruneError(f"{what}: float images outside 0..1 look normalised already", _PIXELS_FIX)
    return np.round(images * 255.0).astype(np.uint8)


def materialize(data: Any, what: str) -> Arrays:
    """(images, labels) numpy arrays from a pair of arrays, a torch Dataset or a DataLoader."""
    if isinstance(data, tuple | list) and len(data) == 2 and hasattr(data[0], "shape") and len(data[0].shape) >= 3:
        images, labels = _to_numpy(data[0]), _to_numpy(data[1])  # an (images, labels) pair
    else:
        batches = _batches(data, what)
        if not batches:
            raise EdgepruneError(f"{what} is empty", "pass at least one image per class")
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
    return _floats_to_pixels(images, what), labels


def _batches(data: Any, what: str) -> list[Arrays]:
    try:
        from torch.utils.data import DataLoader, Dataset
    except ImportError:  # pragma: no cover - torch is a core dependency
        DataLoader = Dataset = ()  # type: ignore[assignment,misc]
    if isinstance(data, DataLoader):
        out = []
        for batch in data:
            if not isinstance(batch, tuple | list) or len(batch) < 2:
                raise EdgepruneError(f"{what} yields {type(batch).__name__} batches", "yield (images, labels) pairs")
            out.append((_to_numpy(batch[0]), _to_numpy(batch[1]).reshape(-1)))
        return out
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        items = [data[i] for i in range(len(data))]
        if items and (not isinstance(items[0], tuple | list) or len(items[0]) < 2):
            raise EdgepruneError(f"{what} items are {type(items[0]).__name__}", "return (image, label) per item")
        if not items:
            return []
        return [(np.stack([_to_numpy(i[0]) for i in items]), np.asarray([int(i[1]) for i in items]))]
    raise EdgepruneError(f"{what} is a {type(data).__name__}",
                         "pass (images, labels) numpy arrays, a torch Dataset or a DataLoader")


def _bad(problem: str) -> EdgepruneError:
    return EdgepruneError(f"in-memory data: {problem}", _PIXELS_FIX)


@dataclass(eq=False)
class ArraySource:
    """Images and labels per split, in memory. Missing val/test splits are carved out of train."""

    train: Arrays
    val: Arrays | None = None
    test: Arrays | None = None
    class_names: list[str] = field(default_factory=list)
    name: str = "arrays"

    def __post_init__(self) -> None:
        given = {s: v for s, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None}
        checked = {}
        for split, (images, labels) in given.items():
            pixels = pixel_array(images, f"{split} images", _bad)
            checked[split] = (pixels, label_array(labels, f"{split} labels", len(pixels), _bad))
        shapes = {s: v[0].shape[1:] for s, v in checked.items()}
        if len(set(shapes.values())) != 1:
            raise _bad(f"splits have different image shapes {shapes}")
        if len(checked["train"][1]) == 0:
            raise _bad("the train split is empty")
        top = max(int(v[1].max()) for v in checked.values() if v[1].size) + 1
        if not self.class_names:
            self.class_names = [f"class-{i}" for i in range(top)]
        elif top > len(self.class_names):
            raise EdgepruneError(f"labels go up to {top - 1} but {len(self.class_names)} class names were given",
                                 "give one name per class (classes=[...]) or fix the labels")
        self.train, self.val, self.test = checked["train"], checked.get("val"), checked.get("test")

    @classmethod
    def from_data(cls, train: Any, val: Any = None, test: Any = None, classes: int | Sequence[str] | None = None,
                  name: str = "arrays") -> ArraySource:
        """Accept arrays, torch Datasets or DataLoaders per split; ``classes`` is a count or the class names."""
        names = [f"class-{i}" for i in range(classes)] if isinstance(classes, int) else list(classes or [])
        parts = {s: None if d is None else materialize(d, f"{s} data")
                 for s, d in (("train", train), ("val", val), ("test", test))}
        if parts["train"] is None:
            raise EdgepruneError("no training data given", "pass train=(images, labels) or a torch Dataset")
        return cls(parts["train"], parts["val"], parts["test"], names, name)

    @property
    def sha256(self) -> str:
        """Fingerprint of every split's pixels and labels and of the class names."""
        h = hashlib.sha256("\n".join(self.class_names).encode())
        for split, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            for arr in part or ():
                h.update(f"{split}{arr.dtype}{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    @property
    def spec(self) -> str:
        """What ``data.source`` holds for this source: ``memory:<name>@<hash>``."""
        return f"{MEMORY_DATA}{self.name}@{self.sha256[:12]}"

    def dataset(self, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2) -> Any:
        """The ImageDataset the pipeline reads (missing splits carved from train, stratified and seeded)."""
        from edgeprune.data.dataset import ImageDataset

        splits = {s: v for s, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None}
        splits, note = carve_missing_splits(splits, val_fraction, test_fraction, seed)
        return ImageDataset(name=self.name, class_names=list(self.class_names), splits=splits, source=self.spec,
                            source_sha256=self.sha256, split_note=f"arrays given in Python; {note}")


def register(source: ArraySource) -> str:
    """Make ``source`` reachable through its spec in this process; returns the spec."""
    _LIVE[source.spec] = source
    return source.spec


def lookup(spec: str) -> ArraySource:
    """The registered source of ``memory:...``; another process cannot see it."""
    found = _LIVE.get(spec)
    if found is None:
        raise EdgepruneError(f"dataset '{spec}' was held in memory by another Python process",
                             "pass the arrays again with edgeprune.build(...), or save them as a MedMNIST-style .npz")
    return found
