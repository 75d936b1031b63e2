"""Metrics on cases small enough to check by hand, AUROC against a brute-force pair count, and the bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.metrics import (
    _auc_plan,
    _weighted_auc,
    agreement,
    auroc_binary,
    classification_metrics,
    paired_bootstrap_delta,
)


def one_hot_logits(preds: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[preds] * 5.0


def brute_force_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def test_perfect_predictor() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 0])
    m = classification_metrics(one_hot_logits(labels, 3), labels, 3)
    assert m.n == 10 and m.accuracy == 1.0 and m.balanced_accuracy == 1.0 and m.macro_f1 == 1.0
    assert m.per_class_sensitivity == [1.0] * 3 and m.per_class_specificity == [1.0] * 3
    assert m.per_class_precision == [1.0] * 3 and m.auroc_ovr == [1.0] * 3 and m.macro_auroc == 1.0
    assert m.confusion == [[5, 0, 0], [0, 2, 0], [0, 0, 3]] and m.support == [5, 2, 3]


def test_majority_predictor_on_imbalanced_labels() -> None:
    labels = np.array([0] * 90 + [1] * 7 + [2] * 3)
    logits = np.tile([2.0, 0.5, -1.0], (100, 1))  # always class 0, identical scores for everyone
    m = classification_metrics(logits, labels, 3)
    assert m.accuracy == pytest.approx(0.9)
    assert m.balanced_accuracy == pytest.approx(1 / 3)
    assert m.per_class_sensitivity == [1.0, 0.0, 0.0]
    assert m.per_class_specificity == [0.0, 1.0, 1.0]
    assert m.per_class_precision == pytest.approx([0.9, 0.0, 0.0])
    f1_major = 2 * 0.9 * 1.0 / (0.9 + 1.0)
    assert m.macro_f1 == pytest.approx(f1_major / 3)
    assert m.auroc_ovr == [0.5, 0.5, 0.5]  # all scores tied
    assert m.confusion == [[90, 0, 0], [7, 0, 0], [3, 0, 0]]


def test_binary_counts_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    preds = np.array([0, 0, 1, 1, 0])
    m = classification_metrics(one_hot_logits(preds, 2), labels, 2)
    assert m.confusion == [[2, 1], [1, 1]]
    assert m.per_class_sensitivity == pytest.approx([2 / 3, 1 / 2])
    assert m.per_class_specificity == pytest.approx([1 / 2, 2 / 3])
    assert m.per_class_precision == pytest.approx([2 / 3, 1 / 2])
    assert m.balanced_accuracy == pytest.approx(7 / 12)
    assert m.macro_f1 == pytest.approx((2 / 3 + 1 / 2) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_pairwise_count_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = 4, 150
    labels = rng.integers(0, k, n)
    raw = rng.integers(1, 6, size=(n, k)).astype(float)  # few distinct values -> many ties
    probs = raw / raw.sum(axis=1, keepdims=True)
    m = classification_metrics(probs, labels, k)
    expected = [brute_force_auroc(probs[:, c], labels == c) for c in range(k)]
    assert m.auroc_ovr == pytest.approx(expected, abs=1e-12)
    assert m.macro_auroc == pytest.approx(np.mean(expected))


def test_logits_are_softmaxed_before_ranking() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(80, 3))
    labels = rng.integers(0, 3, 80)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    m = classification_metrics(logits, labels, 3)
    assert m.auroc_ovr == pytest.approx([brute_force_auroc(probs[:, c], labels == c) for c in range(3)])
    assert m == classification_metrics(probs, labels, 3)


def test_absent_class_has_no_auroc_and_is_left_out_of_averages() -> None:
    labels = np.array([0, 0, 1, 1, 0])
    m = classification_metrics(one_hot_logits(labels, 3), labels, 3)
    assert m.auroc_ovr[2] is None and m.macro_auroc == 1.0
    assert m.balanced_accuracy == 1.0 and m.macro_f1 == 1.0 and m.support == [3, 2, 0]
    json.dumps(m.to_dict())  # serialisable as is


@pytest.mark.parametrize(
    ("scores", "labels", "k"),
    [
        (np.zeros((3, 2)), np.array([0, 1, 2]), 2),  # label out of range
        (np.zeros((3, 2)), np.array([0, 1]), 2),  # length mismatch
        (np.zeros((3, 3)), np.array([0, 1, 1]), 2),  # wrong number of columns
        (np.zeros((2, 2)), np.array([0.0, 1.0]), 2),  # float labels
    ],
)
def test_bad_inputs_raise(scores: np.ndarray, labels: np.ndarray, k: int) -> None:
    with pytest.raises(EdgepruneError):
        classification_metrics(scores, labels, k)


def test_agreement() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0]])
    r = agreement(a, b)
    assert r["top1_agreement"] == 0.5 and r["max_abs"] == 1.0 and r["mean_abs"] == 0.5
    assert r["cosine"] == pytest.approx(0.5)
    same = agreement(a * 3, a * 3)
    assert same["top1_agreement"] == 1.0 and same["max_abs"] == 0.0 and same["cosine"] == pytest.approx(1.0)
    with pytest.raises(EdgepruneError):
        agreement(a, b[:1])


def test_weighted_auc_equals_auroc_of_materialised_resample() -> None:
    rng = np.random.default_rng(5)
    n = 60
    scores = np.round(rng.normal(size=n), 1)
    positive = rng.random(n) < 0.3
    plan = _auc_plan(scores, positive)
    for _ in range(5):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        idx = np.repeat(np.arange(n), counts)
        got = _weighted_auc(counts[None, :].astype(float), plan)[0]
        assert got == pytest.approx(auroc_binary(scores[idx], positive[idx]))


@pytest.fixture
def imbalanced() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 250 + [1] * 100 + [2] * 50)
    rng.shuffle(labels)
    noisy = np.where(rng.random(labels.size) < 0.8, labels, rng.integers(0, 3, labels.size))
    return labels, noisy


def test_bootstrap_identical_models_is_degenerate(imbalanced: tuple[np.ndarray, np.ndarray]) -> None:
    labels, preds = imbalanced
    r = paired_bootstrap_delta(labels, preds, preds.copy(), 3, n_boot=200)
    for entry in [r["accuracy"], r["balanced_accuracy"], *r["per_class_sensitivity"]]:
        assert entry["delta"] == 0.0 and entry["lo"] == 0.0 and entry["hi"] == 0.0


def test_bootstrap_one_class_always_wrong_is_strictly_negative(
    imbalanced: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, ref = imbalanced
    new = ref.copy()
    new[labels == 2] = 0  # the minority class is never recognised any more
    r = paired_bootstrap_delta(labels, ref, new, 3, n_boot=500, seed=1)
    minority = r["per_class_sensitivity"][2]
    assert minority["new"] == 0.0 and minority["delta"] == pytest.approx(-minority["ref"])
    assert minority["lo"] <= minority["delta"] <= minority["hi"] < 0
    assert r["balanced_accuracy"]["hi"] < 0
    untouched = r["per_class_sensitivity"][1]
    assert untouched["lo"] == untouched["hi"] == 0.0


def test_bootstrap_interval_contains_delta_and_matches_point_metrics(
    imbalanced: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, _ = imbalanced
    rng = np.random.default_rng(7)
    s_ref = rng.normal(size=(labels.size, 3)) + 2.0 * np.eye(3)[labels]
    s_new = rng.normal(size=(labels.size, 3)) + 1.0 * np.eye(3)[labels]
    kwargs = {"n_boot": 300, "seed": 3, "scores_ref": s_ref, "scores_new": s_new}
    r = paired_bootstrap_delta(labels, s_ref.argmax(1), s_new.argmax(1), 3, **kwargs)
    m_ref, m_new = (classification_metrics(s, labels, 3) for s in (s_ref, s_new))
    assert r["balanced_accuracy"]["delta"] == pytest.approx(m_new.balanced_accuracy - m_ref.balanced_accuracy)
    assert r["macro_auroc"]["delta"] == pytest.approx(m_new.macro_auroc - m_ref.macro_auroc)
    for key in ("accuracy", "balanced_accuracy", "macro_auroc"):
        assert r[key]["lo"] <= r[key]["delta"] <= r[key]["hi"]
    assert r["macro_auroc"]["hi"] < 0  # much weaker signal in the new scores
    again = paired_bootstrap_delta(labels, s_ref.argmax(1), s_new.argmax(1), 3, **kwargs)
    assert again == r  # deterministic for a seed
    json.dumps(r)


def test_bootstrap_rejects_bad_input(imbalanced: tuple[np.ndarray, np.ndarray]) -> None:
    labels, preds = imbalanced
    with pytest.raises(EdgepruneError):
        paired_bootstrap_delta(labels, preds[:-1], preds, 3)
    with pytest.raises(EdgepruneError):
        paired_bootstrap_delta(labels, preds, preds, 3, scores_ref=np.zeros((labels.size, 3)))


def test_bootstrap_of_a_class_with_no_images_is_undefined_not_an_error() -> None:
    labels = np.array([0] * 25 + [2] * 25)
    new = labels.copy()
    new[0] = 1
    delta = paired_bootstrap_delta(labels, labels, new, 3, n_boot=100)
    assert delta["per_class_sensitivity"][1] == {"delta": None, "lo": None, "hi": None, "ref": None, "new": None}
    assert delta["per_class_sensitivity"][0]["delta"] == pytest.approx(-1 / 25)
    assert delta["balanced_accuracy"]["delta"] == pytest.approx(-1 / 50)  # over the two present classes


def test_a_class_interval_depends_only_on_its_own_images() -> None:
    """What the gate's power computation relies on: flips in other classes leave a class's interval alone."""
    labels = np.repeat(np.arange(3), [40, 15, 60])
    one = labels.copy()
    one[np.flatnonzero(labels == 1)[0]] = 0
    many = one.copy()
    many[np.flatnonzero(labels == 0)[:5]] = 2
    many[np.flatnonzero(labels == 2)[:7]] = 1
    a = paired_bootstrap_delta(labels, labels, one, 3, n_boot=300, seed=3)["per_class_sensitivity"][1]
    b = paired_bootstrap_delta(labels, labels, many, 3, n_boot=300, seed=3)["per_class_sensitivity"][1]
    assert a == b and a["lo"] < 0
