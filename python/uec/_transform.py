"""Placing new points against a fitted UEC embedding (``UEC.transform`` / ``UEC.predict``).

umap-learn's ``UMAP.transform`` procedure: the new points' kNN among the training points,
their membership weights (``local_connectivity`` lowered by one, no symmetrisation), a start at
the neighbours' weighted mean, then a few CE epochs with the training embedding fixed.
``UEC.predict`` is instead a vote of the training neighbours (``neighbour_vote``). Each row's
random stream is keyed by the row, so ``transform(X[idx]) == transform(X)[idx]`` bit for bit.
The steps, the epoch counts and the reasons: docs/design.md §2.9.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
import zlib

import numpy as np
import scipy.sparse
from sklearn.utils.validation import check_array, check_is_fitted

from . import _core
from ._validation import check_numeric_input, check_unchanged_since_fit
from .graph import smooth_knn_dist
from .neighbours import EXACT_KNN_MAX_SAMPLES, _exp32
from .optimize import epoch_params

logger = logging.getLogger(__name__)


def check_new(model, X):
    """New rows X for transform/predict of a fitted ``model``, in the training data's form
    (float32 C order, CSR when the fit's data was sparse), checked against the fit."""
    check_is_fitted(model, "embedding_")
    check_unchanged_since_fit(model)
    if not hasattr(model, "_raw_data"):
        raise ValueError("this UEC was fitted without keeping its training data; refit it to "
                         "use transform/predict")
    # a DataFrame's columns must be the fit's, in its order (as scikit-learn's estimators)
    _check_feature_names(model, X, reset=False)
    check_numeric_input(X)
    # new rows take the training data's form, so that the kNN search compares like with like
    X = check_array(X, dtype=np.float32, order="C", accept_sparse="csr", input_name="X")
    if scipy.sparse.issparse(model._raw_data) != scipy.sparse.issparse(X):
        X = scipy.sparse.csr_matrix(X) if scipy.sparse.issparse(model._raw_data) else X.toarray()
    if scipy.sparse.issparse(X) and not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.shape[1] != model.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but UEC is expecting "
                         f"{model.n_features_in_} features as input (those of the fit)")
    return X


def _check_feature_names(est, X, reset):
    """scikit-learn's own check of a DataFrame's column names: with ``reset`` (fit) they become
    ``feature_names_in_`` (removed for data without string names); else renamed or reordered
    columns raise ValueError and a change between named and unnamed data warns, as KMeans does."""
    try:
        from sklearn.utils.validation import _check_feature_names as check
    except ImportError:  # scikit-learn < 1.6: a method of BaseEstimator
        return est._check_feature_names(X, reset=reset)
    return check(est, X, reset=reset)


def _fitted_neighbors(model):
    """n_neighbors of the fit (``n_neighbors_``: clipped to n_samples - 1); the parameter for
    a model pickled before ``n_neighbors_`` existed."""
    return int(getattr(model, "n_neighbors_", model.n_neighbors))


def transform_epochs(model) -> int:
    """Epochs of ``transform`` for a fitted model (umap-learn's rule)."""
    if model.n_epochs is not None:
        return max(1, int(model.n_epochs) // 3)
    return 100 if model.embedding_.shape[0] <= 10_000 else 30


_INDEX_LOCKS = weakref.WeakKeyDictionary()
_INDEX_LOCKS_GUARD = threading.Lock()


def _index_lock(index):
    with _INDEX_LOCKS_GUARD:
        lock = _INDEX_LOCKS.get(index)
        if lock is None:
            lock = _INDEX_LOCKS[index] = threading.Lock()
        return lock


def query_training_neighbours(model, X, k, n_jobs):
    """(indices, distances) of the k nearest training points of each row of X, rows sorted.

    With a Minkowski metric (euclidean, manhattan, chebyshev, minkowski), dense or sparse, rows
    far from the training data (``_far.far_rows``: X[450:460] * 1e18 gave the same wrong
    cluster for all ten, the float32 search and the expanded float64 distances having no bits
    left to rank the training points) are searched again in float64 by ``_far.search_far``,
    whose answer does not depend on the scale.
    Distances beyond float32 are refused, naming X."""
    from ._far import search_far

    with np.errstate(over="ignore"):  # distances beyond float32 are reported below
        indices, distances = _query_training_neighbours(model, X, k, n_jobs)
    indices, distances = search_far(model._raw_data, X, indices, distances, k, model.metric,
                                    getattr(model, "metric_kwds", None))
    distances = np.asarray(distances)
    with np.errstate(over="ignore", invalid="ignore"):
        d32 = distances.astype(np.float32)
    if not np.isfinite(d32).all():
        rows = np.flatnonzero(~np.isfinite(d32).all(axis=1))
        top = float(np.max(distances[rows])) if np.isfinite(distances[rows]).all() else float("inf")
        raise ValueError(
            f"X has {rows.size} rows (first: {rows[0]}) whose distances to the training data "
            f"({top:.3g}) exceed float32's range ({float(np.finfo(np.float32).max):.3g}); "
            f"allowed: rows within it. Rescale X as the training data were scaled"
        )
    return np.ascontiguousarray(indices, dtype=np.int32), np.ascontiguousarray(d32)


def _query_training_neighbours(model, X, k, n_jobs):
    index = getattr(model, "_knn_search_index", None)
    train = model._raw_data
    from ._knn import KnnGraphIndex

    if isinstance(index, KnnGraphIndex):
        # our NN-descent's graph: a beam search of it (the same answer whatever n_jobs)
        indices, distances = index.query(train, X, k, n_jobs=n_jobs)
        logger.debug("transform kNN: graph search of %d points, k=%d", X.shape[0], k)
        return indices, np.asarray(distances, dtype=np.float32)
    if index is not None:
        # same epsilon as umap-learn's transform (0.12; 0.24 for angular trees)
        epsilon = 0.24 if getattr(index, "_angular_trees", False) else 0.12
        # pynndescent's query prepares search state on the index itself: one query at a time
        # per index, or concurrent calls on one model return different neighbours
        with _index_lock(index):
            indices, distances = index.query(X, k=k, epsilon=epsilon)
        logger.debug("transform kNN: NN-descent query of %d points, k=%d", X.shape[0], k)
        return np.asarray(indices, dtype=np.int32), np.asarray(distances, dtype=np.float32)

    from sklearn.neighbors import NearestNeighbors

    if train.shape[0] > EXACT_KNN_MAX_SAMPLES:
        logger.info("transform: exact kNN against %d training points (the fit had no search index)",
                    train.shape[0])
    metric_kwds = getattr(model, "metric_kwds", None) or {}
    exact_l2 = model.metric in ("euclidean", "l2") and not metric_kwds
    # For the euclidean metric a few more candidates than k come from the GEMM expansion, whose
    # rounding depends on the BLAS thread count; their exact distances then decide, ties by
    # index, so the neighbours of a row are the same in every process (integer-valued data such
    # as digits has many exact ties at the k-th distance).
    k_query = min(train.shape[0], k + 16) if exact_l2 else k
    from .neighbours import sklearn_metric_args

    nn = NearestNeighbors(n_neighbors=k_query, algorithm="brute", n_jobs=n_jobs,
                          **sklearn_metric_args(model.metric, metric_kwds))
    distances, indices = nn.fit(train).kneighbors(X, n_neighbors=k_query)
    if exact_l2:
        # as in the fit's kNN: recompute the chosen distances exactly (the GEMM expansion gives
        # 1e-4 instead of 0 for duplicates), then re-sort each row
        distances = _exact_l2(X, train, indices)
        order = np.lexsort((indices, distances), axis=1)[:, :k]  # by distance, then index
        indices = np.take_along_axis(indices, order, axis=1)
        distances = np.take_along_axis(distances, order, axis=1)
    return np.ascontiguousarray(indices, dtype=np.int32), np.ascontiguousarray(distances, dtype=np.float32)


def _exact_l2(X, train, indices):
    """Float64 euclidean distance of each row of X to the training rows ``indices[row]``,
    from the differences themselves (dense or CSR, exact for duplicates)."""
    k = indices.shape[1]
    distances = np.empty(indices.shape, dtype=np.float64)
    if scipy.sparse.issparse(train):
        step = max(1, (1 << 16) // max(1, k))
        for s in range(0, X.shape[0], step):
            block = indices[s : s + step]
            rows = np.repeat(np.arange(s, s + block.shape[0]), k)
            diff = (X[rows] - train[block.ravel()]).astype(np.float64)
            sq = np.asarray(diff.multiply(diff).sum(axis=1)).ravel()
            distances[s : s + block.shape[0]] = np.sqrt(sq).reshape(block.shape)
        return distances
    Xd = np.asarray(X, dtype=np.float64)
    Td = np.asarray(train, dtype=np.float64)
    step = max(1, (1 << 22) // max(1, k * Xd.shape[1]))
    for s in range(0, Xd.shape[0], step):
        diff = Td[indices[s : s + step]] - Xd[s : s + step, None, :]
        distances[s : s + step] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return distances


def bipartite_memberships(distances, k):
    """Membership weights (m, k) float32 of new points to their training neighbours.

    umap-learn's transform graph: smooth-kNN sigma with local_connectivity 0 (so rho = 0), then
    ``exp(-(d - rho) / sigma)``, 1 where ``d <= rho`` or ``sigma == 0``; no self edge is zeroed.
    """
    d = np.ascontiguousarray(distances, dtype=np.float32)
    sigmas, rhos = smooth_knn_dist(d, float(k), local_connectivity=0.0)
    diff = d - rhos[:, None]
    one = (diff <= 0.0) | (sigmas[:, None] == 0.0)
    safe = np.where(sigmas == 0.0, np.float32(1.0), sigmas)
    x = -(diff / safe[:, None])
    x[one] = 0.0
    return _exp32(x)


def initial_positions(indices, weights, embedding):
    """Weighted mean of the neighbours' embedding; a point that coincides with a training point
    (weight 1 at distance 0, column order = distance order) starts exactly on it."""
    Zn = embedding[indices].astype(np.float64)  # (m, k, d)
    w = weights.astype(np.float64)
    total = w.sum(axis=1)
    out = np.empty((indices.shape[0], embedding.shape[1]), dtype=np.float64)
    ok = total > 0
    out[ok] = np.einsum("ik,ikd->id", w[ok], Zn[ok]) / total[ok, None]
    out[~ok] = Zn[~ok, 0]  # every weight underflowed: start at the nearest neighbour
    exact = w == 1.0
    hit = exact.any(axis=1)
    first = np.argmax(exact, axis=1)
    out[hit] = Zn[hit, first[hit]]
    return np.ascontiguousarray(out, dtype=np.float32)


def _transform_seed(model) -> int:
    return zlib.crc32(np.ascontiguousarray(model.embedding_).tobytes()) * 2654435761 + 7


# The core draws the random numbers of head i in epoch e from the stream (seed, e, i): a pure
# function of the three (csrc/core/rng.hpp). transform makes i a function of the row itself: each
# row is placed at slot ``key % STREAM_SLOTS`` of a fixed table, ``key`` a hash of the row's
# training neighbours and their membership weights, and rows that share a slot run in separate
# calls of the core (rounds). With the training embedding fixed, heads do not interact, so a row's
# output depends on the row alone: not on its position in X, nor on the other rows of the call.
STREAM_SLOTS = 4096
# Membership weights are at most 1 (w = exp(-d / sigma), 1 at d = 0): the reference of the
# sampling schedule (an edge of weight w is sampled every 1 / w epochs) and of the pruning (edges
# below 1 / n_epochs dropped), fixed so that neither depends on the call's strongest edge.
MAX_MEMBERSHIP = 1.0


def _row_keys(indices, weights):
    """Key (int64 >= 0) of each row: a hash of its neighbours and membership weights."""
    idx = np.ascontiguousarray(indices, dtype=np.int32)
    w = np.ascontiguousarray(weights, dtype=np.float32)
    return np.array([zlib.crc32(w[r].tobytes(), zlib.crc32(idx[r].tobytes()))
                     for r in range(idx.shape[0])], dtype=np.int64)


def _rounds(slots):
    """Round of each row: its rank among the rows of its slot (ties by row order; the round only
    says which call of the core runs the row, which does not change its output)."""
    m = slots.shape[0]
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    first = np.r_[True, s[1:] != s[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(m), 0))
    rnd = np.empty(m, dtype=np.int64)
    rnd[order] = np.arange(m) - start
    return rnd


def transform(model, X, n_epochs=None, n_threads=1, verbose=False):
    """Embedding (m, n_components) float32 of the rows of X placed against ``model``, row by
    row: ``transform(X[idx]) == transform(X)[idx]`` bit for bit (see ``STREAM_SLOTS``)."""
    from ._progress import EpochProgress

    k = int(getattr(model, "n_neighbors_", model.n_neighbors))  # clipped by the fit
    embedding = np.ascontiguousarray(model.embedding_, dtype=np.float32)
    n_train, d = embedding.shape
    m = X.shape[0]
    n_epochs = transform_epochs(model) if n_epochs is None else int(n_epochs)

    t0 = time.perf_counter()
    indices, distances = query_training_neighbours(model, X, k, n_threads)
    weights = bipartite_memberships(distances, k)
    logger.info("transform: kNN of %d new points in %.2f s", m, time.perf_counter() - t0)

    Z = initial_positions(indices, weights, embedding)
    if n_epochs <= 0 or m == 0:
        return Z

    slots = _row_keys(indices, weights) % STREAM_SLOTS
    rounds = _rounds(slots)
    n_rounds = int(rounds.max()) + 1
    pruned = np.where(weights >= MAX_MEMBERSHIP / float(n_epochs), weights, np.float32(0.0))

    params = epoch_params(model, model.a_, model.b_, n_epochs, _transform_seed(model), n_threads,
                          placing=True)

    progress = EpochProgress(n_epochs * n_rounds, verbose, desc="UEC transform",
                             show_change=False)
    t0 = time.perf_counter()
    try:
        for r in range(n_rounds):
            rows = np.flatnonzero(rounds == r)
            at = slots[rows]
            W = np.zeros((STREAM_SLOTS, k), dtype=np.float32)
            idx = np.zeros((STREAM_SLOTS, k), dtype=np.int32)
            W[at], idx[at] = pruned[rows], indices[rows]
            graph = scipy.sparse.csr_matrix(
                (W.ravel(), idx.ravel(), np.arange(0, STREAM_SLOTS * k + 1, k, dtype=np.int64)),
                shape=(STREAM_SLOTS, n_train),
            )
            graph.eliminate_zeros()
            graph.sort_indices()
            eps = (MAX_MEMBERSHIP / graph.data.astype(np.float64)).astype(np.float32)
            next_sample = eps.copy()
            next_negative = (eps / float(model.negative_sample_rate)).astype(np.float32)
            Zs = np.zeros((STREAM_SLOTS, d), dtype=np.float32)
            Zs[at] = Z[rows]
            _core.optimize(Zs, None, graph.indptr.astype(np.int64),
                           graph.indices.astype(np.int32), eps, next_sample, next_negative, None,
                           embedding, params, 0, n_epochs, progress.callback)
            Z[rows] = Zs[at]
    finally:
        progress.close()
    logger.info("transform: %d epochs in %.2f s (%d round(s))", n_epochs,
                time.perf_counter() - t0, n_rounds)
    if not np.isfinite(Z).all():
        raise FloatingPointError("transform produced non-finite coordinates")
    return Z


def neighbour_vote(model, X, n_threads=1, return_distances=False, return_shares=False):
    """Cluster of each row of X by its training neighbours: the k = n_neighbors nearest training
    points (as ``transform`` finds them), each voting for its cluster (``labels_``) with its
    membership weight (``bipartite_memberships``); a tie, or weights that all underflowed, goes
    to the nearest neighbour's cluster, and so does a row whose neighbours are all at the same
    distance to within ``_far.FAR_RELATIVE_SPREAD`` (a point far outside the training data: its
    weights are equal at float32 precision, a tie among points the float64 search still ranks).
    Row by row: no random numbers, and a row's label does not depend on the other rows of the
    call. ``return_distances``: also the (m, k) distances to those neighbours;
    ``return_shares``: also the (m, n_clusters) share of each row's vote weight per cluster
    (one-hot on the label for a row whose weights all underflowed or that is far out).
    Returns the labels, then those in that order."""
    k = int(getattr(model, "n_neighbors_", model.n_neighbors))  # clipped by the fit
    m = X.shape[0]
    C = int(model.n_clusters_)
    if m == 0:
        out = [np.empty(0, dtype=np.intp)]
        if return_distances:
            out.append(np.empty((0, k), dtype=np.float32))
        if return_shares:
            out.append(np.empty((0, C), dtype=np.float64))
        return tuple(out) if len(out) > 1 else out[0]
    indices, distances = query_training_neighbours(model, X, k, n_threads)
    weights = bipartite_memberships(distances, k).astype(np.float64)
    # the partition before noise (noise_threshold): every neighbour votes for its cluster
    partition = getattr(model, "_partition", model.labels_)
    votes_for = np.asarray(partition, dtype=np.intp)[indices]  # (m, k)
    flat = (np.arange(m, dtype=np.intp)[:, None] * C + votes_for).ravel()
    score = np.bincount(flat, weights=weights.ravel(), minlength=m * C).reshape(m, C)
    nearest = votes_for[:, 0]
    best = score.max(axis=1)
    from ._far import far_rows

    far = far_rows(distances)
    tie = (score[np.arange(m), nearest] >= best) | far
    labels = np.where(tie, nearest, score.argmax(axis=1))
    out = [labels]
    if return_distances:
        out.append(distances)
    if return_shares:
        total = score.sum(axis=1)
        shares = np.divide(score, total[:, None], out=np.zeros_like(score),
                           where=total[:, None] > 0)
        lone = far | ~(total > 0)
        shares[lone] = 0.0
        shares[np.flatnonzero(lone), labels[lone]] = 1.0
        out.append(shares)
    return tuple(out) if len(out) > 1 else out[0]
