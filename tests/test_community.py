"""The graph clustering stage (uec.community) against independent references."""

import logging
import random

import numpy as np
import pytest
import scipy.sparse

from uec import UEC
from uec.community import cluster_graph, communities, leiden, modularity
from uec.metrics import ari


def planted(sizes, p_in, p_out, seed):
    """Stochastic block model: symmetric 0/1 adjacency (no self loops) and the true blocks."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(sizes)), sizes)
    n = y.size
    p = np.where(y[:, None] == y[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    A = (upper | upper.T).astype(np.float64)
    return scipy.sparse.csr_matrix(A), y


def ring_of_cliques(n_cliques, size):
    """Cliques joined in a ring by one edge each: modularity at resolution 1 merges
    neighbouring cliques once there are many of them (its resolution limit)."""
    n = n_cliques * size
    A = np.zeros((n, n))
    for c in range(n_cliques):
        idx = np.arange(c * size, (c + 1) * size)
        A[np.ix_(idx, idx)] = 1
        nxt = ((c + 1) % n_cliques) * size
        A[idx[0], nxt] = A[nxt, idx[0]] = 1
    np.fill_diagonal(A, 0)
    return scipy.sparse.csr_matrix(A), np.repeat(np.arange(n_cliques), size)


def dense_modularity(A, labels, resolution):
    """Textbook float64 form: Q = 1/(2m) sum_ij [A_ij - resolution k_i k_j / (2m)] delta(c_i, c_j)."""
    A = np.asarray(A, dtype=np.float64)
    k = A.sum(axis=1)
    two_m = A.sum()
    same = labels[:, None] == labels[None, :]
    return float(((A - resolution * np.outer(k, k) / two_m) * same).sum() / two_m)


@pytest.mark.parametrize("resolution", [0.5, 1.0, 3.0])
def test_modularity_matches_dense_formula_and_igraph(resolution):
    import igraph

    rng = np.random.default_rng(1)
    W = scipy.sparse.random(60, 60, density=0.15, random_state=2, format="csr")
    W = (W + W.T).tolil()
    W.setdiag(0)  # a fuzzy graph has no self loops
    W = W.tocsr()
    W.eliminate_zeros()
    labels = rng.integers(0, 5, 60)
    ours = modularity(W, labels, resolution)
    assert ours == pytest.approx(dense_modularity(W.toarray(), labels, resolution), abs=1e-12)
    upper = scipy.sparse.triu(W, k=1).tocoo()
    g = igraph.Graph(60, edges=list(zip(upper.row.tolist(), upper.col.tolist())))
    ref = g.modularity(labels.tolist(), weights=upper.data.tolist(), resolution=resolution)
    assert ours == pytest.approx(ref, abs=1e-10)


def test_planted_partition_recovered_exactly():
    A, y = planted([40, 30, 50, 35], p_in=0.5, p_out=0.01, seed=0)
    sub, mapping, resolution = cluster_graph(A, 4, random_state=0)
    assert resolution == 1.0
    assert ari(y, mapping[sub]) == 1.0


def test_leiden_partition_is_a_local_optimum_of_modularity():
    # moving any single vertex to a neighbouring community does not raise modularity
    A, _ = planted([25, 25, 25], p_in=0.4, p_out=0.05, seed=3)
    labels = leiden(A, 1.0, random_state=0)
    q = modularity(A, labels)
    rows, cols = A.nonzero()
    for v in range(0, A.shape[0], 5):
        for c in np.unique(labels[cols[rows == v]]):
            moved = labels.copy()
            moved[v] = c
            assert modularity(A, moved) <= q + 1e-12


def test_resolution_raised_past_the_resolution_limit():
    A, y = ring_of_cliques(30, 5)
    at_one = leiden(A, 1.0, random_state=0)
    assert at_one.max() + 1 < 30  # modularity at resolution 1 merges neighbouring cliques
    labels, resolution = communities(A, 30, random_state=0)
    assert resolution > 1.0
    assert labels.max() + 1 == 30 and ari(y, labels) == 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 7, 12, 25])
def test_every_k_is_reached_and_reported(k, caplog):
    A, _ = planted([20, 20, 20, 20], p_in=0.5, p_out=0.02, seed=4)
    with caplog.at_level(logging.INFO, logger="uec.community"):
        sub, mapping, resolution = cluster_graph(A, k, random_state=0)
    labels = mapping[sub]
    assert np.unique(labels).size == k
    assert f"merged into {k} clusters" in caplog.text
    n_comm = sub.max() + 1
    assert n_comm >= k and mapping.shape == (n_comm,)
    if k > 4:
        assert resolution > 1.0  # four blocks: more clusters need a finer resolution


def test_seeded_and_leaves_pythons_random_alone():
    A, _ = planted([30, 30, 30], p_in=0.3, p_out=0.05, seed=5)
    random.seed(7)
    expected = random.random()
    random.seed(7)
    first = leiden(A, 1.0, random_state=11)
    assert random.random() == expected
    assert np.array_equal(first, leiden(A, 1.0, random_state=11))


def test_bad_resolution_named():
    A, _ = planted([5, 5], p_in=1.0, p_out=0.0, seed=0)
    with pytest.raises(ValueError, match="resolution"):
        leiden(A, 0.0)


def test_estimator_default_is_the_graph_stage():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(600, centers=5, n_features=8, random_state=0)
    model = UEC(n_clusters=5, random_state=0, n_jobs=1).fit(X)
    assert model.variant == "ce" and model._resolved_clustering() == "graph"
    assert ari(y, model.labels_) == 1.0
    assert np.array_equal(model.labels_, model.subcluster_to_cluster_[model.subcluster_labels_])
    # the labels are the stage's partition of the fitted graph
    sub, mapping, _ = cluster_graph(model.graph_, 5, random_state=3)
    assert ari(mapping[sub], model.labels_) == 1.0
    assert model.subcluster_centers_.shape == (model.n_subclusters_, 2)
    assert set(model.timings_) >= {"knn", "graph", "init", "layout", "clustering"}


def test_graph_clustering_needs_ce():
    X = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(ValueError, match="clustering='graph'"):
        UEC(n_clusters=2, variant="comma", clustering="graph").fit(X)
    with pytest.raises(ValueError, match="clustering"):
        UEC(n_clusters=2, clustering="kmeans").fit(X)
