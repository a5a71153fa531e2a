"""Sub-clusters merged into clusters (uec.merge) and how the estimator uses them."""

import itertools

import numpy as np
import pytest
import scipy.sparse

from uec import UEC
from uec.datasets import make_manifold_clusters
from uec.merge import merge_subclusters


def _modularity(A, groups):
    """Newman's modularity of a partition of the weighted graph A (dense, float64)."""
    m2 = A.sum()
    deg = A.sum(axis=1)
    q = 0.0
    for g in np.unique(groups):
        idx = groups == g
        q += A[np.ix_(idx, idx)].sum() / m2 - (deg[idx].sum() / m2) ** 2
    return q


def _greedy_reference(A, sub, k2, k):
    """Greedy agglomeration by recomputing the whole modularity for every candidate merge."""
    root = np.arange(k2)
    while len(np.unique(root)) > k:
        best = None
        for a, b in itertools.combinations(np.unique(root), 2):
            trial = root.copy()
            trial[trial == b] = a
            q = _modularity(A, trial[sub])
            if best is None or q > best[0] + 1e-12:
                best = (q, a, b)
        _, a, b = best
        root[root == b] = a
    return root


@pytest.mark.parametrize("seed", range(5))
def test_greedy_merges_equal_full_modularity_recomputation(seed):
    rng = np.random.default_rng(seed)
    n, k2, k = 60, 7, 3
    sub = rng.integers(0, k2, n)
    sub[:k2] = np.arange(k2)  # no empty sub-cluster
    B = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    # planted structure: sub-clusters 0-2, 3-4 and 5-6 are densely connected
    block = np.array([0, 0, 0, 1, 1, 2, 2])[sub]
    B += (block[:, None] == block[None, :]) * rng.random((n, n)) * 0.8
    A = np.triu(B, 1)
    A = A + A.T
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2)
    ref = _greedy_reference(A, sub, k2, k)
    # same partition of the sub-clusters (names may differ)
    assert len(np.unique(mapping)) == k
    for a, b in itertools.combinations(range(k2), 2):
        assert (mapping[a] == mapping[b]) == (ref[a] == ref[b])
    assert np.array_equal(mapping, [0, 0, 0, 1, 1, 2, 2])


def test_identity_without_merges_and_numbering():
    sub = np.array([2, 0, 1, 1, 3])
    A = scipy.sparse.random(5, 5, density=0.5, random_state=0)
    A = A + A.T
    assert np.array_equal(merge_subclusters(sub, A, 4, 4), np.arange(4))
    mapping = merge_subclusters(sub, A, 1, 4)
    assert np.array_equal(mapping, np.zeros(4))


def test_empty_subclusters_and_no_edges():
    sub = np.array([0, 0, 1, 1, 4, 4])  # sub-clusters 2 and 3 are empty
    A = np.zeros((6, 6))
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = A[4, 5] = A[5, 4] = 1.0
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), 3, 5)
    labels = mapping[sub]
    assert len(np.unique(labels)) == 3  # the empty ones were absorbed, the real three kept
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix((6, 6)), 2, 5)
    assert set(mapping) == {0, 1}


def test_bad_n_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 must be between 1 and n_subclusters=3"):
        merge_subclusters(np.array([0, 1, 2]), scipy.sparse.eye(3), 5)


@pytest.fixture(scope="module")
def fitted():
    X, y = make_manifold_clusters(900, n_features=20, n_clusters=3, random_state=0)
    model = UEC(n_clusters=3, n_epochs=120, random_state=0, n_jobs=1).fit(X)
    return X, y, model


def test_estimator_attributes_are_consistent(fitted):
    X, y, model = fitted
    assert model.subcluster_centers_.shape == (9, 2)
    assert model.subcluster_to_cluster_.shape == (9,)
    assert np.array_equal(model.labels_, model.subcluster_to_cluster_[model.subcluster_labels_])
    # cluster_centers_: the mean embedding of each cluster's points
    for j in range(3):
        np.testing.assert_allclose(model.cluster_centers_[j],
                                   model.embedding_[model.labels_ == j].mean(axis=0), rtol=1e-5)
    S, T = model.soft_assignments()
    assert S.shape == T.shape == (X.shape[0], 3)
    np.testing.assert_allclose(T.sum(axis=1), 1.0, rtol=1e-6)
    # predicting the training points reproduces most labels (transform moves them a little)
    assert (model.predict(X[:200]) == model.labels_[:200]).mean() > 0.95


def test_one_centre_per_cluster_is_the_papers_form():
    X, _ = make_manifold_clusters(400, n_features=10, n_clusters=3, random_state=1)
    model = UEC(n_clusters=3, n_subclusters=3, n_epochs=60, random_state=0, n_jobs=1).fit(X)
    assert np.array_equal(model.subcluster_to_cluster_, np.arange(3))
    assert np.array_equal(model.labels_, model.subcluster_labels_)
    assert np.array_equal(model.cluster_centers_, model.subcluster_centers_)
    S, T = model.soft_assignments()
    assert S.shape == (400, 3)


@pytest.mark.parametrize("value, message", [
    (2, "n_subclusters=2 must be between n_clusters=3 and n_samples=50"),
    (51, "n_subclusters=51 must be between n_clusters=3 and n_samples=50"),
    (2.5, "n_subclusters=2.5 must be an integer"),
])
def test_bad_n_subclusters(value, message):
    X = np.random.default_rng(0).random((50, 4))
    with pytest.raises(ValueError, match=message):
        UEC(n_clusters=3, n_subclusters=value).fit(X)
