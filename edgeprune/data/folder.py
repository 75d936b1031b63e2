"""Image folders: root/<class>/*.png or root/{train,val,test}/<class>/*.png, read with Pillow."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeprune.data.dataset import ImageDataset
from edgeprune.data.splits import carve_missing_splits, stratified_split
from edgeprune.errors import EdgepruneError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SPLITS_ORDER = ("train", "val", "test")
_LAYOUT_FIX = "arrange images as root/<class>/*.png or root/{train,val,test}/<class>/*.png"


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural_key(p.name))


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: _natural_key(p.name))


def _to_array(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = 65535.0 if arr.max() > 255 else 255.0
                return np.clip(np.round(arr * 255.0 / top), 0, 255).astype(np.uint8)
            if im.mode not in ("L", "RGB"):
                im = im.convert("L" if im.mode in ("1", "LA", "F") else "RGB")
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EdgepruneError(f"cannot read image '{path}' ({exc})", "remove or re-save the file") from exc


def resize_images(images: list[np.ndarray], size: tuple[int, int]) -> tuple[list[np.ndarray], int]:
    """Resize every image whose (H, W) differs from ``size`` (bilinear); return images and how many changed."""
    from PIL import Image

    out, changed = [], 0
    for arr in images:
        if arr.shape[:2] != tuple(size):
            arr = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.Resampling.BILINEAR))
            changed += 1
        out.append(arr)
    return out, changed


Lister = Callable[[Path], list[Path]]


def _collect(split_dir: Path, where: str, lister: Lister, kind: str) -> dict[str, list[Path]]:
    classes = _subdirs(split_dir)
    if not classes:
        raise EdgepruneError(f"no class folders in '{where}'", _LAYOUT_FIX)
    found = {c.name: lister(c) for c in classes}
    empty = [name for name, files in found.items() if not files]
    if empty:
        raise EdgepruneError(f"class folder(s) {', '.join(empty)} in '{where}' hold no {kind}",
                             "add images or delete the empty folders")
    return found


def _fingerprint(root: Path, files: list[Path], extra: bytes = b"") -> str:
    h = hashlib.sha256()
    for p in sorted(files, key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    if extra:
        h.update(extra)
    return h.hexdigest()


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Refuse split fractions that leave no training data."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise EdgepruneError(f"val fraction {val_fraction} and test fraction {test_fraction} leave no training data",
                             "use fractions above 0 whose sum is below 1, e.g. 0.15 and 0.2")


def find_layout(root: Path, lister: Lister, kind: str) -> tuple[dict[str, dict[str, list[Path]]], dict[str, Path]]:
    """root/<class>/ or root/{train,val,test}/<class>/: files per split ("all" when unsplit) and class."""
    top = _subdirs(root)
    split_dirs = {SPLIT_ALIASES[d.name.lower()]: d for d in top if d.name.lower() in SPLIT_ALIASES}
    if split_dirs:
        others = [d.name for d in top if d.name.lower() not in SPLIT_ALIASES]
        if others or "train" not in split_dirs:
            raise EdgepruneError(f"'{root}' mixes split folders with other folders ({', '.join(others) or 'no train'})",
                                 _LAYOUT_FIX)
        return {s: _collect(d, f"{root.name}/{d.name}", lister, kind) for s, d in split_dirs.items()}, split_dirs
    return {"all": _collect(root, root.name, lister, kind)}, {}


def labelled_files(per_split: dict[str, dict[str, list[Path]]]) -> tuple[list[str], list[tuple[str, int, Path]]]:
    """Class names (natural order) and (split, label, path) for every file."""
    class_names = sorted({c for found in per_split.values() for c in found}, key=_natural_key)
    index = {c: i for i, c in enumerate(class_names)}
    return class_names, [(s, index[c], p) for s, found in per_split.items() for c, ps in found.items() for p in ps]


def assemble(arrays: list[np.ndarray], files: list[tuple[str, int, Path]], split_dirs: dict[str, Path], *,
             seed: int, val_fraction: float, test_fraction: float, image_size: tuple[int, int] | None,
             notes: list[str] | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Unify channels and size, then split: official split folders, or stratified carving of "all"."""
    notes = list(notes or [])
    if any(a.ndim == 3 for a in arrays) and any(a.ndim == 2 for a in arrays):
        arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
        notes.append("grayscale images expanded to RGB (folder mixes both)")
    sizes = Counter(a.shape[:2] for a in arrays)
    target = tuple(image_size) if image_size else max(sizes, key=lambda s: (sizes[s], s[0] * s[1]))
    arrays, changed = resize_images(arrays, target)
    if changed:
        why = "requested size" if image_size else "most common size"
        notes.append(f"{changed} image(s) resized bilinearly to {target[0]}x{target[1]} ({why})")

    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in dict.fromkeys(split for split, _, _ in files):
        sel = [i for i, (split, _, _) in enumerate(files) if split == s]
        labels = np.array([files[i][1] for i in sel], dtype=np.int64)
        splits[s] = (np.stack([arrays[i] for i in sel]), labels)

    if "all" in splits:
        images, labels = splits.pop("all")
        rest, test_idx = stratified_split(labels, test_fraction, seed)
        train_rel, val_rel = stratified_split(labels[rest], val_fraction / (1.0 - test_fraction), seed + 1)
        train_idx, val_idx = rest[train_rel], rest[val_rel]
        splits = {s: (images[i], labels[i]) for s, i in (("train", train_idx), ("val", val_idx), ("test", test_idx))}
        split_note = (f"stratified train/val/test {1 - val_fraction - test_fraction:.0%}/{val_fraction:.0%}/"
                      f"{test_fraction:.0%} of all images, seed {seed}")
    else:
        found = "/".join(split_dirs[s].name for s in SPLITS_ORDER if s in split_dirs)
        split_note = "official splits from folders " + found
        carved = len(splits) < len(SPLITS_ORDER)
        splits, note = carve_missing_splits(splits, val_fraction, test_fraction, seed)
        split_note += f"; {note}" if carved else ""
    if notes:
        split_note += "; " + "; ".join(notes)
    return splits, split_note


def load_folder(root: str | Path, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2,
                image_size: tuple[int, int] | None = None) -> ImageDataset:
    """Load an image folder; missing val/test splits are carved from train (class-stratified, seeded)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgepruneError(f"image folder '{root}' does not exist", "check the path given to --data")
    check_fractions(val_fraction, test_fraction)
    per_split, split_dirs = find_layout(root, _images_in, ".png/.jpg/.jpeg/.bmp images")
    class_names, files = labelled_files(per_split)
    arrays = [_to_array(p) for _, _, p in files]
    splits, split_note = assemble(arrays, files, split_dirs, seed=seed, val_fraction=val_fraction,
                                  test_fraction=test_fraction, image_size=image_size)
    return ImageDataset(name=root.resolve().name, class_names=class_names, splits=splits, source=str(root),
                        source_sha256=_fingerprint(root, [p for _, _, p in files]), split_note=split_note)
