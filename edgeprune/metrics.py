"""Classification metrics for small, imbalanced (medical) test sets, plus output agreement and a paired bootstrap.

Everything is dataset-level (never averaged per batch) and numpy-only. Conventions:

* per-class rates that are undefined (a class with no true or no predicted samples) are reported as 0.0 in
  :class:`ClassificationMetrics` (the usual ``zero_division=0`` rule), but averages skip them: balanced accuracy
  averages sensitivity over classes present in ``labels``; macro-F1 averages over classes present in the labels
  or the predictions;
* AUROC is one-vs-rest from class probabilities (logits are soft-maxed first, because per-class ranks of raw
  logits differ from those of probabilities), computed with the Mann-Whitney rank formula, ties counting 1/2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeprune.errors import EdgepruneError


@dataclass
class ClassificationMetrics:
    """Dataset-level metrics of one model on one labelled set (rows of ``confusion`` = true class)."""

    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class_sensitivity: list[float]
    per_class_specificity: list[float]
    per_class_precision: list[float]
    auroc_ovr: list[float | None]
    macro_auroc: float | None
    confusion: list[list[int]]
    support: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_labels(labels: np.ndarray, num_classes: int, n: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if num_classes < 2:
        raise EdgepruneError(
            f"num_classes must be at least 2, got {num_classes}", "pass the number of classes"
        )
    if labels.ndim != 1 or labels.size == 0:
        raise EdgepruneError(
            f"labels must be a non-empty 1-D array, got shape {labels.shape}", "pass one label per sample"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise EdgepruneError(
            f"labels must be integers, got {labels.dtype}", "pass class indices, not one-hot or names"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise EdgepruneError(
            f"labels must lie in [0, {num_classes - 1}], got [{labels.min()}, {labels.max()}]",
            "check num_classes and the label encoding",
        )
    if n is not None and labels.shape[0] != n:
        raise EdgepruneError(f"{labels.shape[0]} labels for {n} predictions", "pass one label per prediction")
    return labels.astype(np.int64)


def to_probabilities(logits_or_probs: np.ndarray, num_classes: int) -> np.ndarray:
    """Return (N, K) probabilities: rows that already sum to 1 are kept, anything else is soft-maxed."""
    x = np.asarray(logits_or_probs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != num_classes:
        raise EdgepruneError(
            f"scores must have shape (N, {num_classes}), got {x.shape}",
            "pass one row of class scores per sample",
        )
    if not np.all(np.isfinite(x)):
        raise EdgepruneError("scores contain NaN or infinity", "check the model output")
    if x.min() >= 0.0 and x.max() <= 1.0 and np.allclose(x.sum(axis=1), 1.0, atol=1e-4):
        return x
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _rates(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class rates from confusion matrices of shape (..., K, K); undefined entries are NaN."""
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    total = support.sum(axis=-1, keepdims=True)
    fn, fp = support - tp, predicted - tp
    tn = total - tp - fn - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "sensitivity": np.where(support > 0, tp / support, np.nan),
            "specificity": np.where(tn + fp > 0, tn / (tn + fp), np.nan),
            "precision": np.where(predicted > 0, tp / predicted, np.nan),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
            "accuracy": tp.sum(axis=-1) / total[..., 0],
        }


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over non-NaN entries without the all-NaN warning (all-NaN gives NaN)."""
    valid = ~np.isnan(x)
    count = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(valid, x, 0.0).sum(axis=axis) / count, np.nan)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]  # exclusive
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def auroc_binary(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Mann-Whitney AUROC of ``scores`` for the boolean ``positive`` mask; None if either side is empty."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _confusion(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)


def _clean(values: np.ndarray) -> list[float]:
    return [0.0 if math.isnan(v) else float(v) for v in values]


def classification_metrics(
    logits_or_probs: np.ndarray, labels: np.ndarray, num_classes: int
) -> ClassificationMetrics:
    """Accuracy, balanced accuracy, macro-F1, per-class rates, one-vs-rest AUROC and the confusion matrix."""
    probs = to_probabilities(logits_or_probs, num_classes)
    labels = _check_labels(labels, num_classes, probs.shape[0])
    preds = probs.argmax(axis=1)
    cm = _confusion(labels, preds, num_classes)
    r = _rates(cm)
    aurocs = [auroc_binary(probs[:, c], labels == c) for c in range(num_classes)]
    present = [a for a in aurocs if a is not None]
    return ClassificationMetrics(
        n=int(labels.size),
        accuracy=float(r["accuracy"]),
        balanced_accuracy=float(_nanmean(r["sensitivity"])),
        macro_f1=float(_nanmean(r["f1"])),
        per_class_sensitivity=_clean(r["sensitivity"]),
        per_class_specificity=_clean(r["specificity"]),
        per_class_precision=_clean(r["precision"]),
        auroc_ovr=aurocs,
        macro_auroc=float(np.mean(present)) if present else None,
        confusion=cm.tolist(),
        support=cm.sum(axis=1).tolist(),
    )


def agreement(logits_a: np.ndarray, logits_b: np.ndarray) -> dict[str, float]:
    """How closely two models' outputs on the same inputs agree (e.g. PyTorch vs a converted artifact)."""
    a = np.asarray(logits_a, dtype=np.float64)
    b = np.asarray(logits_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 1 or a.size == 0:
        raise EdgepruneError(
            f"outputs differ in shape: {a.shape} vs {b.shape}", "compare outputs of the same inputs"
        )
    a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    diff = np.abs(a2 - b2)
    na, nb = np.linalg.norm(a2, axis=1), np.linalg.norm(b2, axis=1)
    dot = (a2 * b2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((na > 0) & (nb > 0), dot / (na * nb), np.where((na == 0) & (nb == 0), 1.0, 0.0))
    return {
        "n": int(a2.shape[0]),
        "top1_agreement": float(np.mean(a2.argmax(axis=1) == b2.argmax(axis=1))),
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "cosine": float(np.mean(cos)),
    }


# --- paired bootstrap -------------------------------------------------------------------------------------------
# Every resample is a vector of multiplicities (how often each item was drawn). Confusion matrices of all
# resamples are then one matrix product, and AUROC is a weighted Mann-Whitney sum over score-sorted items,
# so 1000 resamples cost a few small dense operations instead of a Python loop.


def _check_preds(preds: np.ndarray, num_classes: int, n: int, name: str) -> np.ndarray:
    p = np.asarray(preds)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer) or p.min() < 0 or p.max() >= num_classes:
        raise EdgepruneError(
            f"{name} must be {n} class indices in [0, {num_classes - 1}] (or (N, K) scores)",
            "pass the predicted classes of the same samples, in the same order as the labels",
        )
    return p.astype(np.int64)


def _auc_plan(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort order, per-item start/end of its tie group, and the positive mask in sorted order."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    new_group = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], s.size]
    gid = np.cumsum(new_group) - 1
    return order, starts[gid], ends[gid], positive[order]


def _weighted_auc(w: np.ndarray, plan: tuple[np.ndarray, ...]) -> np.ndarray:
    """AUROC for each row of item weights ``w`` (B, N); ties count 1/2; NaN when a side is empty."""
    order, g_start, g_end, pos = plan
    ws = w[:, order]
    neg_w, pos_w = ws * ~pos, ws * pos
    cum_neg = np.concatenate([np.zeros((ws.shape[0], 1)), np.cumsum(neg_w, axis=1)], axis=1)
    below = cum_neg[:, g_start]
    tied = cum_neg[:, g_end] - below
    num = (pos_w * (below + 0.5 * tied)).sum(axis=1)
    den = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _resample_stats(w: np.ndarray, onehot: np.ndarray, k: int, plans: list | None) -> dict[str, np.ndarray]:
    r = _rates((w @ onehot).reshape(-1, k, k))
    out = {
        "accuracy": r["accuracy"],
        "balanced_accuracy": _nanmean(r["sensitivity"]),
        "sens": r["sensitivity"],
    }
    if plans is not None:
        out["macro_auroc"] = _nanmean(np.stack([_weighted_auc(w, p) for p in plans], axis=1))
    return out


def _interval(
    point_ref: float, point_new: float, deltas: np.ndarray, alpha: float
) -> dict[str, float | None]:
    point = point_new - point_ref
    finite = deltas[~np.isnan(deltas)]
    if math.isnan(point) or finite.size == 0:
        return {"delta": None, "lo": None, "hi": None, "ref": None, "new": None}
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {
        "delta": float(point),
        "lo": float(lo),
        "hi": float(hi),
        "ref": float(point_ref),
        "new": float(point_new),
    }


def paired_bootstrap_delta(
    labels: np.ndarray,
    preds_ref: np.ndarray,
    preds_new: np.ndarray,
    num_classes: int,
    n_boot: int = 1000,
    seed: int = 0,
    scores_ref: np.ndarray | None = None,
    scores_new: np.ndarray | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of ``new - ref``: both models are scored on the same resampled items each round.

    Returns ``{"accuracy", "balanced_accuracy", "per_class_sensitivity": [...], "macro_auroc" (only with
    scores)}``, each ``{"delta", "lo", "hi", "ref", "new"}`` with a percentile interval at ``confidence``.
    A class missing from a resample is left out of that resample's averages (and its own interval).
    """
    labels = _check_labels(labels, num_classes)
    n, k = labels.size, num_classes
    preds = [_check_preds(p, k, n, name) for p, name in ((preds_ref, "preds_ref"), (preds_new, "preds_new"))]
    if n_boot < 1 or not 0.0 < confidence < 1.0:
        raise EdgepruneError(
            f"bad bootstrap settings n_boot={n_boot}, confidence={confidence}",
            "use n_boot >= 1, 0 < confidence < 1",
        )
    if (scores_ref is None) != (scores_new is None):
        raise EdgepruneError(
            "only one of scores_ref / scores_new was given", "pass both score arrays or neither"
        )
    plans: list[list | None] = [None, None]
    if scores_ref is not None and scores_new is not None:
        probs = [to_probabilities(s, k) for s in (scores_ref, scores_new)]
        for s in probs:
            if s.shape[0] != n:
                raise EdgepruneError(
                    f"scores have {s.shape[0]} rows for {n} labels", "pass one score row per label"
                )
        plans = [[_auc_plan(p[:, c], labels == c) for c in range(k)] for p in probs]
    onehots = [np.eye(k * k)[labels * k + p] for p in preds]

    full = np.ones((1, n))
    point = [_resample_stats(full, oh, k, pl) for oh, pl in zip(onehots, plans, strict=True)]
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        w = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        ref, new = (_resample_stats(w, oh, k, pl) for oh, pl in zip(onehots, plans, strict=True))
        parts.append({key: new[key] - ref[key] for key in ref})
    deltas = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    alpha = 1.0 - confidence
    result: dict[str, Any] = {"n": n, "n_boot": n_boot, "seed": seed, "confidence": confidence}
    for key in ("accuracy", "balanced_accuracy") + (("macro_auroc",) if plans[0] is not None else ()):
        result[key] = _interval(float(point[0][key][0]), float(point[1][key][0]), deltas[key], alpha)
    result["per_class_sensitivity"] = [
        _interval(float(point[0]["sens"][0, c]), float(point[1]["sens"][0, c]), deltas["sens"][:, c], alpha)
        for c in range(k)
    ]
    return result
