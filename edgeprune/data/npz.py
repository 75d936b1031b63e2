"""MedMNIST-layout .npz files: {train,val,test}_{images,labels}."""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np

from edgeprune.data.arrays import label_array, pixel_array
from edgeprune.data.dataset import ImageDataset
from edgeprune.data.splits import stratified_split
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file

# Label meanings from the MedMNIST v2 dataset descriptions (medmnist INFO, "label").
KNOWN_CLASS_NAMES: dict[str, list[str]] = {
    "retinamnist": [f"grade-{g}" for g in range(5)],
    "breastmnist": ["malignant", "normal-or-benign"],
    "dermamnist": [
        "actinic-keratoses-and-intraepithelial-carcinoma",
        "basal-cell-carcinoma",
        "benign-keratosis-like-lesions",
        "dermatofibroma",
        "melanoma",
        "melanocytic-nevi",
        "vascular-lesions",
    ],
}
_LAYOUT = "keys train_images, train_labels, val_images, val_labels, test_images, test_labels"


def known_dataset(stem: str) -> str | None:
    """MedMNIST name for a file stem such as 'retinamnist' or 'retinamnist_128', else None."""
    stem = stem.lower()
    return next((k for k in KNOWN_CLASS_NAMES if stem == k or stem.startswith(k + "_")), None)


def _bad(path: Path, problem: str) -> EdgepruneError:
    return EdgepruneError(f"{path.name}: {problem}", f"save the file in the MedMNIST layout ({_LAYOUT})")


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise EdgepruneError(f"{path.name} is not a readable .npz file ({exc.__class__.__name__}: {exc})",
                             "re-download it or re-save it with numpy.savez") from exc


def load_npz(path: str | Path, *, seed: int = 0, val_fraction: float = 0.15) -> ImageDataset:
    """Load a MedMNIST-style .npz; a missing val split is taken from train (stratified)."""
    path = Path(path)
    if not path.is_file():
        raise EdgepruneError(f"dataset file '{path}' does not exist", "check the path given to --data")
    raw = _read(path)
    required = ["train_images", "train_labels", "test_images", "test_labels"]
    has_val = "val_images" in raw or "val_labels" in raw
    missing = [k for k in required + (["val_images", "val_labels"] if has_val else []) if k not in raw]
    if missing:
        raise _bad(path, f"missing key(s) {', '.join(missing)} (found: {', '.join(sorted(raw)) or 'none'})")

    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    channels_first = False
    fail = functools.partial(_bad, path)
    for split in ("train", "val", "test") if has_val else ("train", "test"):
        images = pixel_array(raw[f"{split}_images"], f"{split}_images", fail)
        channels_first |= images.shape[1:3] != raw[f"{split}_images"].shape[1:3]
        splits[split] = (images, label_array(raw[f"{split}_labels"], f"{split}_labels", len(images), fail))
    shapes = {s: v[0].shape[1:] for s, v in splits.items()}
    if len(set(shapes.values())) != 1:
        raise _bad(path, f"splits have different image shapes {shapes}")
    if len(splits["train"][1]) == 0:
        raise _bad(path, "the train split is empty")

    note = "official splits from the file"
    if not has_val:
        images, labels = splits["train"]
        rest, taken = stratified_split(labels, val_fraction, seed)
        splits["train"] = (images[rest], labels[rest])
        splits["val"] = (images[taken], labels[taken])
        note = f"official train/test; stratified val {val_fraction:.0%} from train, seed {seed}"
    if channels_first:
        note += "; images were channels-first (N,C,H,W) and were transposed to (N,H,W,C)"
    splits = {s: splits[s] for s in ("train", "val", "test")}

    n_classes = int(max(int(lab.max()) for _, lab in splits.values() if lab.size)) + 1
    known = known_dataset(path.stem)
    if known:
        names = list(KNOWN_CLASS_NAMES[known])
        if n_classes > len(names):
            raise _bad(path, f"labels go up to {n_classes - 1} but {known} has {len(names)} classes")
    else:
        names = [f"class-{i}" for i in range(n_classes)]
    return ImageDataset(name=known or path.stem, class_names=names, splits=splits, source=str(path),
                        source_sha256=sha256_file(path), split_note=note)
