"""Image classification datasets: MedMNIST-style .npz files, image folders, DICOM folders or labels CSVs, and the
embedded synthetic set."""

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

def check_source(source: str | Path, dicom_window: str | None = None, *, dicom_headers: bool = True) -> Path | None:
    """Check that a dataset source can be opened (no pixel decoding); returns its path, None for 'embedded'/memory.

    DICOM sources are checked from their headers here (unless ``dicom_headers`` is False: the loader itself
    repeats every check while decoding), so a bad file fails before anything is written.
    """
    text = str(source).strip()
    if dicom_window is not None:
        from edgeprune.data.dicom import parse_window

        parse_window(dicom_window)
    if text.lower() == "embedded" or text.startswith(MEMORY_DATA):
        if text.startswith(MEMORY_DATA):
            lookup(text)
        if dicom_window is not None:
            raise EdgepruneError("--dicom-window was given but the data is not DICOM",
                                 "drop --dicom-window, or pass a DICOM folder or labels CSV to --data")
        return None
    path = Path(source).expanduser()
    if not path.exists():
        raise EdgepruneError(f"dataset '{source}' does not exist",
                             "pass a MedMNIST-style .npz file, an image or DICOM folder, a labels .csv, or 'embedded'")
    if not path.is_dir() and path.suffix.lower() not in (".npz", ".csv"):
        raise EdgepruneError(f"dataset '{source}' is neither a .npz file, a labels .csv nor a folder",
                             "pass a MedMNIST-style .npz file, a folder of class sub-folders with images or DICOM "
                             "files, or a labels .csv of DICOM files")
    if _is_dicom(path):
        if dicom_headers:
            from edgeprune.data.dicom import check_dicom

            check_dicom(path)
    elif dicom_window is not None:
        raise EdgepruneError(f"--dicom-window was given but '{source}' holds no DICOM files",
                             "drop --dicom-window, or pass a DICOM folder or labels CSV to --data")
    return path


def _is_dicom(path: Path) -> bool:
    from edgeprune.data.dicom import is_dicom_folder

    return path.suffix.lower() == ".csv" or (path.is_dir() and is_dicom_folder(path))


def load_dataset(
    source: str | Path | ArraySource,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    image_size: tuple[int, int] | None = None,
    dicom_window: str | None = None,
) -> ImageDataset:
    """Load ``source``: "embedded" (synthetic fundus set), a MedMNIST-style .npz, an image folder, or arrays
    given in Python (an :class:`ArraySource` or its ``memory:...`` spec).

    Missing validation/test splits are carved out of train, stratified by class with ``seed``.
    ``image_size`` (H, W) resizes every image while loading (keeps memory small for large photos).
    A folder of DICOM files, or a labels .csv naming DICOM files, is decoded with pydicom (edgeprune.data.dicom);
    ``dicom_window`` ("C,W") then replaces the files' own Window Center/Width.
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
        path = check_source(source, dicom_window, dicom_headers=False)
        assert path is not None
        if _is_dicom(path):
            from edgeprune.data.dicom import load_dicom_csv, load_dicom_folder, parse_window

            loader = load_dicom_csv if path.suffix.lower() == ".csv" else load_dicom_folder
            window = parse_window(dicom_window) if dicom_window is not None else None
            ds = loader(path, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                        image_size=image_size, window=window)
        elif path.is_dir():
            ds = load_folder(path, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                             image_size=image_size)
        else:
            ds = load_npz(path, seed=seed, val_fraction=val_fraction)
        ds.source = str(source)
    if image_size and tuple(image_size) != ds.image_size:
        for split, (images, labels) in ds.splits.items():
            resized, _ = resize_images(list(images), tuple(image_size))
            ds.splits[split] = (np.stack(resized), labels)
        ds.split_note += f"; resized bilinearly to {image_size[0]}x{image_size[1]} (requested size)"
    return ds

