"""The search's entry points of each new point (uec._pivot_tree) and the search with them,
against brute force (scikit-learn) on identical input."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from uec import _core, _knn
from uec._pivot_tree import PivotTree
from uec.datasets import make_manifold_clusters

K = 15


def _recall(found, ref):
    return np.mean([len(set(a) & set(b)) / ref.shape[1] for a, b in zip(found, ref)])


@pytest.mark.parametrize("n, d", [(5000, 50), (3000, 3), (40, 8), (20, 300)])
def test_leaves_partition_the_rows_and_hold_their_own_rows(n, d):
    X = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    tree = PivotTree(X, leaf_size=32, seed=3)
    rows = tree.leaves[tree.leaves >= 0]
    np.testing.assert_array_equal(np.sort(rows), np.arange(n))  # every row in exactly one leaf
    assert tree.leaves.shape[1] == 32
    own = tree.entries(X)
    # a training row descends to its own leaf (the build's and the query's test of a node are
    # the same comparison, up to the last rounding of a row right on the plane)
    assert np.mean((own == np.arange(n)[:, None]).any(axis=1)) > 0.99
    again = PivotTree(X, leaf_size=32, seed=3)
    np.testing.assert_array_equal(again.leaves, tree.leaves)
    np.testing.assert_array_equal(again.entries(X[::-1])[::-1], own)  # each row its own


def test_duplicate_rows_end_in_leaves_of_bounded_size():
    X = np.ones((1000, 4), dtype=np.float32)  # every split falls on one side: halves instead
    tree = PivotTree(X, leaf_size=16, seed=0)
    assert ((tree.leaves >= 0).sum(axis=1) <= 16).all()
    assert np.array_equal(np.sort(tree.leaves[tree.leaves >= 0]), np.arange(1000))
    assert tree.entries(X[:5]).shape == (5, 16)


def test_leaf_entries_lift_the_recall_on_curved_separated_sheets():
    # 20 sheets: 256 fixed entries alone reach every sheet but the greedy walk stalls on the
    # curved ones (recall 0.93 at 40,000 training points); from the new point's leaf it does not
    X, _ = make_manifold_clusters(42000, 20, 50, random_state=0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    train, new = X[:40000], X[40000:]
    _, _, index = _knn.knn_graph(train, K, random_state=0)
    ref = NearestNeighbors(n_neighbors=K).fit(train).kneighbors(new, return_distance=False)
    found, _ = index.query(train, new, K)
    indptr, adj = index._search_graph()
    fixed_only, _ = _core.knn_search(train, indptr, adj, new, K, ef=_knn.SEARCH_EF,
                                     n_entries=256, seed=index.seed)
    assert _recall(found, ref) >= 0.99
    assert _recall(fixed_only, ref) < _recall(found, ref) - 0.03


def test_search_entries_argument():
    X = np.random.default_rng(1).normal(size=(500, 6)).astype(np.float32)
    graph = np.argsort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, :K].astype(np.int32)
    sq = np.take_along_axis(((X[:, None] - X[None]) ** 2).sum(-1), graph, 1).astype(np.float32)
    indptr, adj = _core.knn_search_graph(graph, sq, 2 * (K - 1))
    Q = X[:20] + 0.01
    none, _ = _core.knn_search(X, indptr, adj, Q, 5, ef=32, n_entries=8, seed=0)
    padded, _ = _core.knn_search(X, indptr, adj, Q, 5, ef=32, n_entries=8, seed=0,
                                 entries=np.full((20, 4), -1, dtype=np.int32))
    np.testing.assert_array_equal(none, padded)  # -1: no entry
    with pytest.raises(ValueError, match="entries must lie in"):
        _core.knn_search(X, indptr, adj, Q, 5, entries=np.full((20, 2), 500, dtype=np.int32))
    with pytest.raises(ValueError, match="entries"):
        _core.knn_search(X, indptr, adj, Q, 5, entries=np.zeros((19, 2), dtype=np.int32))


def test_new_points_reach_their_cluster_among_more_clusters_than_fixed_entries():
    # 200 separated blobs: the kNN graph has 200 components, more than the fixed entries can
    # cover (with 256 fixed entries alone 27% of new points ended in a wrong blob, and UEC's
    # predict ACC was 0.79); each point's own leaves start it in its blob
    from sklearn.datasets import make_blobs

    X, y = make_blobs(14000, n_features=10, centers=200, cluster_std=0.3,
                      center_box=(-50, 50), random_state=0)
    X = X.astype(np.float32)
    train, new, y_train, y_new = X[:12000], X[12000:], y[:12000], y[12000:]
    _, _, index = _knn.knn_graph(train, K, random_state=0)
    found, _ = index.query(train, new, K)
    assert np.mean(y_train[found[:, 0]] == y_new) >= 0.999
    indptr, adj = index._search_graph()
    fixed_only, _ = _core.knn_search(train, indptr, adj, new, K, ef=_knn.SEARCH_EF,
                                     n_entries=256, seed=index.seed)
    assert np.mean(y_train[fixed_only[:, 0]] == y_new) < 0.9
