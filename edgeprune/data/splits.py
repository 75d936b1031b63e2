"""Class-stratified, seeded index selection for validation/test splits and calibration subsets."""

from __future__ import annotations

import numpy as np

from edgeprune.errors import EdgepruneError


def _as_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise EdgepruneError(f"labels must be one integer per image, got shape {arr.shape}",
                             "pass a 1-D label array")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
        raise EdgepruneError("labels must be non-negative integers", "encode classes as 0..C-1")
    return arr.astype(np.int64, copy=False)


def _allocate(sizes: np.ndarray, total: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Split ``total`` over classes proportionally to ``sizes`` (largest remainder), within [lo, hi]."""
    total = int(min(max(total, lo.sum()), hi.sum()))
    quota = total * sizes / max(int(sizes.sum()), 1)
    take = np.clip(np.floor(quota).astype(np.int64), lo, hi)
    while take.sum() < total:  # give one more to the class furthest below its quota
        gap = np.where(take < hi, quota - take, -np.inf)
        take[int(np.argmax(gap))] += 1
    while take.sum() > total:  # take one back from the class furthest above its quota
        gap = np.where(take > lo, quota - take, np.inf)
        take[int(np.argmin(gap))] -= 1
    return take


def _per_class_pick(labels: np.ndarray, take: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = []
    for cls, k in enumerate(take):
        members = np.flatnonzero(labels == cls)
        order = rng.permutation(members.size)  # drawn for every class so results do not depend on k
        picked.append(members[np.sort(order[:k])])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Move about ``fraction`` of every class out of ``labels``; return (rest_idx, taken_idx), both sorted.

    A class with at least 2 samples keeps at least one sample on each side; a single-sample class stays
    in ``rest``. The same labels, fraction and seed always give the same indices.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise EdgepruneError(f"split fraction must be between 0 and 1, got {fraction}",
                             "use for example --val-fraction 0.15")
    y = _as_labels(labels)
    sizes = np.bincount(y) if y.size else np.zeros(0, np.int64)
    lo = (sizes >= 2).astype(np.int64)
    hi = np.where(sizes >= 2, sizes - 1, 0)
    take = _allocate(sizes, int(round(y.size * float(fraction))), lo, hi)
    taken = _per_class_pick(y, take, seed)
    rest = np.setdiff1d(np.arange(y.size, dtype=np.int64), taken, assume_unique=True)
    return rest, taken.astype(np.int64)


def stratified_sample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified subset of size ``n`` (for calibration sets).

    Classes get shares proportional to their size with at least one sample each when ``n`` allows;
    if ``n`` is smaller than the number of classes, the ``n`` largest classes get one sample each.
    """
    if int(n) < 1:
        raise EdgepruneError(f"sample size must be at least 1, got {n}", "ask for one or more samples")
    y = _as_labels(labels)
    if n >= y.size:
        return np.arange(y.size, dtype=np.int64)
    sizes = np.bincount(y)
    present = sizes > 0
    if n >= int(present.sum()):
        take = _allocate(sizes, int(n), present.astype(np.int64), sizes)
    else:
        take = np.zeros_like(sizes)
        largest = np.argsort(-sizes, kind="stable")[: int(n)]
        take[largest] = 1
    return _per_class_pick(y, take, seed).astype(np.int64)


def carve_missing_splits(splits: dict[str, tuple[np.ndarray, np.ndarray]], val_fraction: float, test_fraction: float,
                         seed: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Take missing val/test splits out of train (stratified, seeds ``seed+1`` and ``seed+2``); returns a note."""
    notes = []
    for missing, frac, offset in (("val", val_fraction, 1), ("test", test_fraction, 2)):
        if missing not in splits:
            images, labels = splits["train"]
            rest, taken = stratified_split(labels, frac, seed + offset)
            splits["train"] = (images[rest], labels[rest])
            splits[missing] = (images[taken], labels[taken])
            notes.append(f"stratified {missing} {frac:.0%} from train, seed {seed + offset}")
    return {s: splits[s] for s in ("train", "val", "test")}, "; ".join(notes) or "all splits given"
