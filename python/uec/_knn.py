"""Euclidean kNN of dense data by our own NN-descent (``csrc/cpu/knn.cpp``), and the search of
its graph for new points (:class:`KnnGraphIndex`, ``csrc/cpu/knn_search.cpp``).

Used by :func:`uec.graph.nearest_neighbors` for dense input with a euclidean metric
(``"euclidean"``, ``"l2"``, ``"sqeuclidean"``) when the search is not exact; other metrics and
sparse input go to pynndescent. For a seed the result is the same bits whatever the thread
count. How and why: docs/design.md §2.1 and §6, and the guide's "kNN search".
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

EUCLIDEAN_METRICS = ("euclidean", "l2", "sqeuclidean")

# Search effort, chosen on MNIST (70,000 x 784) and make_manifold_clusters (100,000 x 50) so that
# the recall of the k = 15 nearest neighbours is at least pynndescent's with the settings of
# uec.graph (benchmarks/knn.py): a few more neighbours kept than asked for (HEAP_EXTRA) lift the
# recall of the k more cheaply than more trees or iterations do.
HEAP_EXTRA = 4
LEAF_SIZE = 40
MAX_CANDIDATES = 60
DELTA = 0.001
# The beam search for new points: beam width, fixed entry points, and how many of the points
# that list a point as a neighbour become its neighbours in the search graph (per neighbour it
# lists): chosen on MNIST (60,000 training, 10,000 new points) for a recall of the 15 nearest
# neighbours about pynndescent's query (epsilon 0.12) or better. The entry points also have to
# reach every part of the data: a kNN graph of separated clusters falls apart into components
# the search cannot cross. From fixed entries alone a new point of one of many separated
# clusters (more than the entries can cover) lands in a wrong one, and on curved sheets the
# greedy walk stalls; so each new point also starts from its own leaves of SEARCH_TREES random
# pivot trees (uec._pivot_tree, leaves of SEARCH_LEAF rows), and the fixed entries are few.
# Measurements: docs/results/speed.md ("Entry points") and transform.md.
SEARCH_EF = 32
SEARCH_ENTRIES = 32
SEARCH_TREES = 3
SEARCH_LEAF = 32
SEARCH_REVERSE_PER_NEIGHBOUR = 2
# Fewest neighbours per point the search graph is built from, whatever n_neighbors: with
# n_neighbors=2 each point had one neighbour and two reverse edges, and the beam search found the
# query row itself for 19-22% of training rows (recall of the 2 nearest 0.20; 3: 0.84). With 10
# (the NN-descent heap that k = 6 already keeps) recall is 1.0 on the same data. The fit's kNN
# is the first n_neighbors columns; for n_neighbors >= 6 its heap, and so its bits, are unchanged.
SEARCH_MIN_DEGREE = 10


def supports(X, metric) -> bool:
    """Whether our NN-descent searches ``X`` with ``metric`` (dense data, a euclidean metric)."""
    import scipy.sparse

    return (isinstance(metric, str) and metric in EUCLIDEAN_METRICS
            and not scipy.sparse.issparse(X))


def default_params(n_samples: int, n_neighbors: int) -> dict:
    """The NN-descent settings for n_samples points and n_neighbors neighbours (self included)."""
    n = int(n_samples)
    return dict(
        n_trees=min(48, 5 + int(round(np.sqrt(n) / 25.0))),
        leaf_size=LEAF_SIZE,
        max_candidates=MAX_CANDIDATES,
        n_iters=max(5, int(round(np.log2(max(n, 2))))),
        delta=DELTA,
        heap_k=min(n, int(n_neighbors) + HEAP_EXTRA),
    )


def _seed(random_state) -> int:
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int64).max, dtype=np.int64))


def _finish(sq_distances, metric):
    if metric == "sqeuclidean":
        return sq_distances
    return np.sqrt(sq_distances)


def knn_graph(X, n_neighbors, metric="euclidean", random_state=None, n_jobs=-1, **params):
    """``(indices, distances, index)`` of the ``n_neighbors`` nearest rows of every row of X.

    ``indices`` (n, k) int32 has each row itself in column 0, then its nearest other rows by
    (distance, index); ``distances`` (n, k) float32 are euclidean (squared for
    ``"sqeuclidean"``); ``index`` is a :class:`KnnGraphIndex` for new points. ``params``
    override :func:`default_params`.
    """
    from . import _core

    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim}-D")
    if metric not in EUCLIDEAN_METRICS:
        raise ValueError(f"metric={metric!r} is not supported here; use one of {EUCLIDEAN_METRICS}")
    kw = default_params(X.shape[0], n_neighbors)
    kw.update(params)
    seed = _seed(random_state)
    k = int(n_neighbors)
    # the search graph needs a floor of neighbours per point (SEARCH_MIN_DEGREE)
    k_index = min(X.shape[0], max(k, SEARCH_MIN_DEGREE))
    indices, sq, stats = _core.nn_descent(X, k_index, seed=seed, n_threads=int(n_jobs), **kw)
    logger.debug("NN-descent (uec) kNN: n=%d k=%d %s, %s", X.shape[0], n_neighbors, kw, stats)
    # the search index keeps the graph with the extra neighbours dropped (squared distances)
    index = KnnGraphIndex(indices, sq, metric, seed)
    indices = np.ascontiguousarray(indices[:, :k])
    distances = _finish(np.ascontiguousarray(sq[:, :k]), metric)
    return indices, distances, index


class KnnGraphIndex:
    """Search for the nearest training rows of new points in a fitted kNN graph.

    Holds the training kNN graph (``indices`` int32 and ``sq_distances`` float32, both (n, k),
    column 0 the point itself), the metric and a seed; not the training data, which the caller
    passes to :meth:`query` (UEC keeps them anyway). Plain arrays: it pickles small and fast.
    """

    def __init__(self, indices, sq_distances, metric="euclidean", seed=0):
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.sq_distances = np.ascontiguousarray(sq_distances, dtype=np.float32)
        self.metric = metric
        self.seed = int(seed)
        self._graph = None  # the search graph (CSR), built on first use, not pickled
        self._tree = None  # the pivot trees of the entry points, likewise

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_graph"] = state["_tree"] = None
        return state

    def _pivot_trees(self, data):
        if getattr(self, "_tree", None) is None:
            from ._pivot_tree import PivotTree

            self._tree = [PivotTree(data, SEARCH_LEAF, self.seed + j) for j in range(SEARCH_TREES)]
        return self._tree

    def _search_graph(self):
        if getattr(self, "_graph", None) is None:
            from . import _core

            max_reverse = SEARCH_REVERSE_PER_NEIGHBOUR * (self.indices.shape[1] - 1)
            self._graph = _core.knn_search_graph(self.indices, self.sq_distances, max_reverse)
        return self._graph

    @property
    def n_samples(self):
        return self.indices.shape[0]

    def query(self, data, X, k, n_jobs=1, ef=None, n_entries=None):
        """``(indices, distances)`` (m, k) of the k nearest rows of ``data`` (the training data
        the graph was built on) to each row of X, rows sorted by distance. Each row's answer
        depends only on that row (not on the batch or the threads)."""
        from . import _core

        data = np.ascontiguousarray(data, dtype=np.float32)
        X = np.ascontiguousarray(X, dtype=np.float32)
        if data.shape[0] != self.n_samples:
            raise ValueError(f"the index was built on {self.n_samples} rows, data has {data.shape[0]}")
        ef = max(SEARCH_EF, 2 * int(k)) if ef is None else int(ef)
        n_entries = SEARCH_ENTRIES if n_entries is None else int(n_entries)
        indptr, adj = self._search_graph()
        entries = np.concatenate([t.entries(X) for t in self._pivot_trees(data)], axis=1)
        indices, sq = _core.knn_search(data, indptr, adj, X, int(k), ef=ef, n_entries=n_entries,
                                       seed=self.seed, n_threads=int(n_jobs), entries=entries)
        return indices, _finish(sq, self.metric)

    def __repr__(self):
        return (f"KnnGraphIndex(n_samples={self.n_samples}, k={self.indices.shape[1]}, "
                f"metric={self.metric!r})")
