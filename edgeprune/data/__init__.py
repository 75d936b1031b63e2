"""Image classification datasets: MedMNIST-style .npz files, image folders and the embedded synthetic set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.config import MEMORY_DATA
from edgeprune.data.arrays import ArraySource, lookup, register
from edgeprune.data.dataset import ImageDataset
from edgeprune.data.splits import stratified_sample, stratified_split
from edgeprune.data.synthetic import embedded_data_dir
from edgeprune.errors import EdgepruneError

__all__ = [
    "ArraySource",
    "ImageDataset",
    "check_source",
    "embedded_data_dir",
    "load_dataset",
    "register",
    "stratified_sample",
    "stratified_split",
]

def check_source(source: str | Path) -> Path | None:
    """Check that a dataset source can be opened (no loading); returns its path, None for 'embedded'/memory."""

    text = str(source).strip()
    if text.lower() == "embedded":
        return None
    if text.startswith(MEMORY_DATA):
        lookup(text)
        return None
    path = Path(source).expanduser()
    if not path.exists():
        raise EdgepruneError(f"dataset '{source}' does not exist",
                             "pass a MedMNIST-style .npz file, an image folder, or 'embedded'")
    if not path.is_dir() and path.suffix.lower() != ".npz":
        raise EdgepruneError(f"dataset '{source}' is neither a .npz file nor a folder",
                             "pass a MedMNIST-style .npz file or a folder of class sub-folders with images")
    return path


def load_dataset(
    source: str | Path | ArraySource,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    image_size: tuple[int, int] | None = None,
) -> ImageDataset:
    """Load ``source``: "embedded" (synthetic fundus set), a MedMNIST-style .npz, an image folder, or arrays
    given in Python (an :class:`ArraySource` or its ``memory:...`` spec).

    Missing validation/test splits are carved out of train, stratified by class with ``seed``.
    ``image_size`` (H, W) resizes every image while loading (keeps memory small for large photos).
    """
    from edgeprune.data.folder import load_folder, resize_images
    from edgeprune.data.npz import load_npz

    if isinstance(source, str) and source.strip().lower() == "embedded":
        ds = load_folder(embedded_data_dir(), seed=seed, val_fraction=val_fraction,
                         test_fraction=test_fraction, image_size=image_size)
        ds.name, ds.source = "fundus-synth", "embedded"
        return ds
    if isinstance(source, str) and source.startswith(MEMORY_DATA):
        source = lookup(source)
    if isinstance(source, ArraySource):
        ds = source.dataset(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    else:
        path = check_source(source)
        assert path is not None
        ds = (load_folder(path, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                          image_size=image_size)
              if path.is_dir() else load_npz(path, seed=seed, val_fraction=val_fraction))
        ds.source = str(source)
    if image_size and tuple(image_size) != ds.image_size:
        for split, (images, labels) in ds.splits.items():
            resized, _ = resize_images(list(images), tuple(image_size))
            ds.splits[split] = (np.stack(resized), labels)
        ds.split_note += f"; resized bilinearly to {image_size[0]}x{image_size[1]} (requested size)"
    return ds

