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


def igraph_leiden(A, objective, resolution, seed, node_weights=None, n_iterations=2):
    """igraph's Leiden (the independent reference) on a symmetric sparse matrix."""
    import igraph

    upper = scipy.sparse.triu(scipy.sparse.csr_matrix(A), k=1).tocoo()
    g = igraph.Graph(A.shape[0], edges=list(zip(upper.row.tolist(), upper.col.tolist())),
                     edge_attrs={"weight": upper.data.tolist()})
    igraph.set_random_number_generator(random.Random(seed))
    try:
        kw = {} if node_weights is None else {"node_weights": list(map(float, node_weights))}
        part = g.community_leiden(objective_function=objective, weights="weight",
                                  resolution=resolution, n_iterations=n_iterations, **kw)
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(part.membership)


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
    # the labels are the stage's partition of the fitted clustering graph
    sub, mapping, _ = cluster_graph(model.clustering_graph_, 5, random_state=3)
    assert ari(mapping[sub], model.labels_) == 1.0
    assert model.subcluster_centers_.shape == (model.n_subclusters_, 2)
    assert set(model.timings_) >= {"knn", "graph", "init", "layout", "clustering"}


def test_graph_clustering_needs_ce():
    X = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(ValueError, match="clustering='graph'"):
        UEC(n_clusters=2, variant="comma", clustering="graph").fit(X)
    with pytest.raises(ValueError, match="clustering"):
        UEC(n_clusters=2, clustering="kmeans").fit(X)


# ------------------------------------------------------------------- the union with a second view


def _pruned(g, n_epochs):
    """A graph with the edges below max / n_epochs dropped (uec.graph.prune_graph's rule)."""
    g = scipy.sparse.csr_matrix(g, dtype=np.float64)
    g.data[g.data < g.data.max() / float(n_epochs)] = 0.0
    g.eliminate_zeros()
    return g


def test_union_view_is_the_max_of_umap_learns_two_graphs():
    """The clustering graph against an independent reference: umap-learn's fuzzy simplicial
    set of scikit-learn's exact euclidean kNN and of its exact cosine kNN, each pruned as the
    fit prunes, joined by the elementwise maximum."""
    umap_ = pytest.importorskip("umap.umap_")
    from sklearn.datasets import load_digits
    from sklearn.neighbors import NearestNeighbors

    from uec.community import union_view
    from uec.graph import build_graph

    X = load_digits().data[:500].astype(np.float32)
    X += np.random.default_rng(0).normal(scale=1e-2, size=X.shape).astype(np.float32)  # no ties
    k, n_epochs = 15, 500
    refs = []
    for metric in ("euclidean", "cosine"):
        d, i = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X).kneighbors(X)
        assert np.array_equal(i[:, 0], np.arange(X.shape[0]))
        d[:, 0] = 0.0  # scikit-learn's self distance is a rounding residue, umap's rho reads it
        g, _, _ = umap_.fuzzy_simplicial_set(X, k, np.random.RandomState(0), metric,
                                             knn_indices=i, knn_dists=d)
        refs.append(_pruned(g, n_epochs))
    ref = refs[0].maximum(refs[1]).tocsr()
    graph, _, _ = build_graph(X, k, n_epochs, random_state=np.random.RandomState(0), n_jobs=1)
    ours = union_view(X, graph, k, n_epochs, metric="cosine", random_state=0, n_jobs=1)
    assert ours.shape == ref.shape and ours.nnz == ref.nnz
    assert (abs(ours - ref) > 1e-4).nnz == 0
    assert (ours != ours.T).nnz == 0
    # more than the euclidean graph: the cosine view adds edges
    assert ours.nnz > refs[0].nnz


def test_union_view_in_the_fit_leaves_the_layout_and_can_be_turned_off():
    from sklearn.datasets import make_blobs

    from uec._memory import estimate_fit_memory

    X, y = make_blobs(400, centers=4, n_features=6, random_state=0)
    fast = dict(random_state=0, n_jobs=1, n_epochs=60)
    on = UEC(4, union_metric="cosine", **fast).fit(X)
    off = UEC(4, **fast).fit(X)  # the default: the graph of metric alone
    # the second view is built after the layout and draws nothing before it
    assert np.array_equal(on.embedding_, off.embedding_)
    assert off.clustering_graph_ is off.graph_
    assert on.clustering_graph_.nnz > on.graph_.nnz
    assert ((on.clustering_graph_ - on.graph_).min() >= 0)  # the maximum of the two
    assert "union_view" in on.timings_ and "union_view" not in off.timings_
    assert ari(y, on.labels_) == 1.0 and ari(y, off.labels_) == 1.0
    # the same metric twice, a given kNN, or the centres' stage: the graph of metric alone
    same = UEC(4, union_metric="euclidean", **fast).fit(X)
    assert same.clustering_graph_ is same.graph_
    joint = UEC(4, variant="comma", union_metric="cosine", **fast).fit(X)
    assert joint.clustering_graph_ is joint.graph_
    from uec.graph import nearest_neighbors

    knn = nearest_neighbors(X.astype(np.float32), 15)
    given = UEC(4, knn=knn, union_metric="cosine", **fast).fit(X)
    assert given.clustering_graph_ is given.graph_
    with pytest.raises(ValueError, match="union_metric"):
        UEC(4, union_metric=3, **fast).fit(X)
    # the memory estimate counts the second view
    kw = dict(n_neighbors=15, n_components=2, n_clusters=1)
    assert estimate_fit_memory(70000, 784, union_view=True, **kw)[0] > \
        estimate_fit_memory(70000, 784, **kw)[0]


def dense_cpm(A, labels, resolution):
    """The constant Potts model in float64: sum over pairs i != j in one community of
    (A_ij - resolution), halved (each pair once)."""
    A = np.asarray(A, dtype=np.float64)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    return float(((A - resolution) * same).sum() / 2.0)


def test_cpm_partition_keeps_small_dense_groups_beside_a_large_sparse_one():
    from uec.community import cpm_partition

    # one large loose group and four small tight ones: modularity prefers groups of equal
    # volume, the constant Potts model compares every pair's weight with one resolution
    A, y = _unequal_blocks()
    sub, mapping, resolution = cpm_partition(A, 5, random_state=0)
    assert sub.max() + 1 == 5 and np.array_equal(mapping, np.arange(5))
    assert ari(y, mapping[sub]) == 1.0
    # a local optimum of the objective at the resolution found: no single vertex gains by
    # moving to another community (the NumPy form above, not igraph's)
    D = A.toarray()
    q = dense_cpm(D, sub, resolution)
    for i in range(0, D.shape[0], 7):
        for c in range(5):
            moved = sub.copy()
            moved[i] = c
            assert dense_cpm(D, moved, resolution) <= q + 1e-9
    # at least as good by that objective as igraph's Leiden at the same resolution
    direct = igraph_leiden(A, "CPM", resolution, seed=0)
    assert q >= dense_cpm(D, direct, resolution) - 1e-9


def _unequal_blocks():
    rng = np.random.default_rng(1)
    sizes, p_in = [160, 12, 12, 12, 12], [0.15, 0.7, 0.7, 0.7, 0.7]
    y = np.repeat(np.arange(5), sizes)
    p = np.where(y[:, None] == y[None, :], np.asarray(p_in)[y][:, None], 0.004)
    upper = np.triu(rng.random((y.size, y.size)) < p, k=1)
    return scipy.sparse.csr_matrix((upper | upper.T).astype(np.float64)), y


def test_cpm_partition_on_a_ring_of_cliques_and_past_the_vertices():
    from uec.community import cpm_partition

    A, y = ring_of_cliques(24, 6)
    sub, mapping, _ = cpm_partition(A, 24, random_state=0)
    assert ari(y, mapping[sub]) == 1.0  # no resolution limit: every clique its own
    sub, mapping, _ = cpm_partition(A, 12, random_state=0)
    labels = mapping[sub]
    assert np.unique(labels).size == 12
    # every cluster is made of whole cliques
    assert all(np.unique(labels[y == c]).size == 1 for c in range(24))
    # more clusters than any resolution up to 1 (the largest fuzzy weight) gives: the
    # finest partition found, fewer clusters than asked (unit weights: the cliques)
    small, cliques = ring_of_cliques(3, 3)
    sub, mapping, _ = cpm_partition(small, 20, random_state=0)
    assert mapping.size == sub.max() + 1 == 3 and ari(cliques, sub) == 1.0
