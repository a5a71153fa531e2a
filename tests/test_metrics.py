"""Tests of uec.metrics against independent references."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from uec import metrics


def brute_force_accuracy(y_true, y_pred):
    """Max over all injective maps between predicted clusters and true classes."""
    classes = sorted(set(y_true))
    clusters = sorted(set(y_pred))
    n = len(y_true)
    best = 0
    if len(clusters) <= len(classes):
        for perm in itertools.permutations(classes, len(clusters)):
            mapping = dict(zip(clusters, perm))
            best = max(best, sum(mapping[p] == t for t, p in zip(y_true, y_pred)))
    else:
        for perm in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(perm, classes))  # unmatched clusters map to nothing
            best = max(best, sum(mapping.get(p) == t for t, p in zip(y_true, y_pred)))
    return best / n


@pytest.mark.parametrize("seed", range(40))
def test_accuracy_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    k_true = int(rng.integers(1, 6))
    k_pred = int(rng.integers(1, 7))  # fewer, as many or more clusters than classes
    y_true = rng.integers(0, k_true, size=n)
    y_pred = rng.integers(0, k_pred, size=n)
    # labels need not be 0..k-1
    y_pred = y_pred * 7 + 3
    expected = brute_force_accuracy(y_true.tolist(), y_pred.tolist())
    assert metrics.clustering_accuracy(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_accuracy_more_and_fewer_clusters_explicit():
    y_true = np.array([0, 0, 0, 1, 1, 1])
    # 3 clusters for 2 classes: cluster 2 is left unmatched -> its samples are errors
    y_pred = np.array([0, 0, 2, 1, 1, 2])
    assert metrics.clustering_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert brute_force_accuracy(y_true.tolist(), y_pred.tolist()) == pytest.approx(4 / 6)
    # a single cluster for 2 classes: only the larger class can be matched
    y_true = np.array([0, 0, 0, 1, 1])
    assert metrics.clustering_accuracy(y_true, np.zeros(5)) == pytest.approx(3 / 5)


def test_accuracy_hand_computed():
    # contingency (rows true a,b,c; cols pred x,y):
    #   a: x=3, y=1 ; b: x=0, y=2 ; c: x=2, y=0
    # best matching: a<->x (3) + b<->y (2) = 5 of 8
    y_true = ["a", "a", "a", "a", "b", "b", "c", "c"]
    y_pred = ["x", "x", "x", "y", "y", "y", "x", "x"]
    assert metrics.clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 8)


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_permuted_labels_is_one(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, size=200)
    perm = rng.permutation(6)
    assert metrics.clustering_accuracy(y, perm[y]) == 1.0
    names = np.array(["cat", "dog", "eel", "fox", "gnu", "hen"])
    assert metrics.clustering_accuracy(names[y], perm[y] + 100) == 1.0


def test_accuracy_mixed_label_types():
    y_true = np.array([1, "a", "a", 1], dtype=object)
    y_pred = [0, 1, 1, 0]
    assert metrics.clustering_accuracy(y_true, y_pred) == 1.0


def test_accuracy_column_vectors_and_lists():
    y = [0, 1, 1, 2]
    assert metrics.clustering_accuracy(np.array(y)[:, None], y) == 1.0


@pytest.mark.parametrize(
    "fn", [metrics.clustering_accuracy, metrics.nmi, metrics.ari, metrics.evaluate]
)
def test_validation(fn):
    with pytest.raises(ValueError, match="same length"):
        fn([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="y_true"):
        fn(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="y_pred"):
        fn([0, 1, 2], None)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("average_method", ["arithmetic", "geometric", "min", "max"])
def test_nmi_equals_sklearn(seed, average_method):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=100)
    y_pred = rng.integers(0, 6, size=100)
    expected = normalized_mutual_info_score(y_true, y_pred, average_method=average_method)
    assert metrics.nmi(y_true, y_pred, average_method=average_method) == pytest.approx(expected)


def test_nmi_bad_average_method():
    with pytest.raises(ValueError, match="average_method"):
        metrics.nmi([0, 1], [0, 1], average_method="median")


@pytest.mark.parametrize("seed", range(10))
def test_ari_and_evaluate_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, size=80)
    y_pred = np.where(rng.random(80) < 0.7, y_true, rng.integers(0, 5, size=80))
    assert metrics.ari(y_true, y_pred) == pytest.approx(adjusted_rand_score(y_true, y_pred))
    result = metrics.evaluate(y_true, y_pred)
    assert set(result) == {"acc", "nmi", "ari"}
    assert all(isinstance(v, float) for v in result.values())
    assert result["acc"] == pytest.approx(brute_force_accuracy(y_true.tolist(), y_pred.tolist()))
    assert result["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
    assert result["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))


def test_evaluate_perfect():
    y = np.repeat(["a", "b", "c"], 10)
    result = metrics.evaluate(y, np.repeat([5, 3, 9], 10))
    assert result == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})


@pytest.mark.parametrize("seed", range(3))
def test_internal_indices_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    labels = rng.integers(0, 4, size=300)
    X[labels == 1] += 3
    named = np.array(["w", "x", "y", "z"])[labels]
    result = metrics.internal_indices(X, named)
    assert set(result) == {"davies_bouldin", "silhouette", "calinski_harabasz"}
    assert result["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels))
    assert result["silhouette"] == pytest.approx(silhouette_score(X, labels))
    assert result["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, labels))


def test_internal_indices_subsampled_silhouette():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    labels = (X[:, 0] > 0).astype(int)
    result = metrics.internal_indices(X, labels, sample_size=200, random_state=5)
    expected = silhouette_score(X, labels, sample_size=200, random_state=5)
    assert result["silhouette"] == pytest.approx(expected)
    assert result == metrics.internal_indices(X, labels, sample_size=200, random_state=5)
    assert result["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels))


def test_internal_indices_undefined_cases():
    X = np.random.default_rng(0).normal(size=(20, 2))
    one = metrics.internal_indices(X, np.zeros(20))
    assert all(np.isnan(v) for v in one.values())
    every_point_alone = metrics.internal_indices(X, np.arange(20))
    assert all(np.isnan(v) for v in every_point_alone.values())
    with pytest.raises(ValueError, match="labels"):
        metrics.internal_indices(X, np.zeros(19))
    with pytest.raises(ValueError, match="X"):
        metrics.internal_indices(np.full((20, 2), np.nan), np.zeros(20))
    with pytest.raises(ValueError, match="sample_size"):
        metrics.internal_indices(X, np.zeros(20), sample_size=1)
