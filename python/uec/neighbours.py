"""Neighbours stage: the k nearest neighbours of every point, by our NN-descent (``uec._knn``),
pynndescent, an exact search, or the user's ``knn`` (checked), and the metric checks before it.

:func:`nearest_neighbors` picks the search (:func:`knn_backend` says which); data of extreme
magnitude is searched at a safe power-of-two scale. The graph stage (``uec.graph``) builds the
fuzzy simplicial set from its result.
"""

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse

from . import _knn

logger = logging.getLogger(__name__)

__all__ = ["nearest_neighbors", "knn_backend", "validate_knn", "check_metric_kwds",
           "check_metric_rows", "sklearn_metric_args", "EXACT_KNN_MAX_SAMPLES"]

EXACT_KNN_MAX_SAMPLES = 4096
_FLOAT32_MAX = np.float32(np.finfo(np.float32).max)

# Metrics with d(s x, s y) = |s|^degree d(x, y): for these the kNN of X and of X scaled by a power
# of two are the same, so data of extreme magnitude can be searched at a safe scale (squared
# differences of 1e30 overflow float32, those of 1e-30 underflow it).
_HOMOGENEOUS_METRICS = {
    "euclidean": 1, "l2": 1, "manhattan": 1, "l1": 1, "cityblock": 1, "taxicab": 1,
    "chebyshev": 1, "linf": 1, "linfinity": 1, "infinity": 1, "minkowski": 1,
    "cosine": 0, "correlation": 0,
}
# Magnitudes (powers of two) outside which X or the kNN distances are rescaled: inside, nothing
# changes (so the graph stays equal to umap-learn's); outside, squares overflow or underflow
# float32, or sigma's bisection (64 steps from 1) cannot reach the distance scale.
_SAFE_EXPONENT_X = 32
_SAFE_EXPONENT_DIST = 20


def check_metric_rows(X, metric):
    """Rows a metric is undefined on, refused before the kNN search: the correlation distance
    divides by each row's standard deviation, so a constant row gives NaN (it was reported as
    'the kNN distances of X overflow float32: rescale X', naming neither metric nor row)."""
    if not (isinstance(metric, str) and metric == "correlation"):
        return
    if scipy.sparse.issparse(X):
        Xc = scipy.sparse.csr_matrix(X)
        # a sparse row's max and min count its implicit zeros
        constant = (Xc.max(axis=1).toarray() == Xc.min(axis=1).toarray()).ravel()
    else:
        A = np.asarray(X)
        constant = np.all(A == A[:, :1], axis=1)
    if constant.any():
        rows = np.flatnonzero(constant)
        shown = ", ".join(map(str, rows[:5])) + (" ..." if rows.size > 5 else "")
        raise ValueError(
            f"metric='correlation' is undefined for constant rows (zero variance), and X has "
            f"{rows.size} (rows {shown}); allowed: rows with at least two different values. Drop "
            f"those rows, or use another metric (e.g. 'cosine' or 'euclidean')"
        )


def _power_of_two_scale(magnitude, limit):
    """2**e with e = round(log2(magnitude)) when |e| > limit, else 1.0 (also for 0 or non-finite)."""
    if not (np.isfinite(magnitude) and magnitude > 0.0):
        return 1.0
    e = int(np.round(np.log2(magnitude)))
    return 1.0 if abs(e) <= limit else float(2.0**e)


def _times_power_of_two(X, factor):
    """X * factor for a power of two ``factor``, exactly and in X's dtype: a float32 array
    times ``np.float32(2.0**130)`` would overflow the factor to inf although every product is
    finite (a constant X of 1e-39 is scaled to 1)."""
    e = int(np.round(np.log2(factor)))
    if scipy.sparse.issparse(X):
        X = X.copy()
        X.data = np.ldexp(X.data, e)
        return X
    return np.ldexp(X, e)


def _max_abs(X):
    data = X.data if scipy.sparse.issparse(X) else X
    return float(np.max(np.abs(data))) if data.size else 0.0


def _exp32(x):
    """float32 exp via float64 (equals glibc ``expf``, used by umap, up to rare 1-ulp cases)."""
    return np.exp(x.astype(np.float64)).astype(np.float32)


def _check_n_neighbors(n_neighbors, n_samples):
    if isinstance(n_neighbors, (bool, np.bool_)) or not isinstance(n_neighbors, (int, np.integer)):
        raise ValueError(f"n_neighbors must be an integer >= 2, got {n_neighbors!r}")
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be >= 2, got {n_neighbors}")
    if n_samples is not None and n_neighbors > n_samples:
        raise ValueError(
            f"n_neighbors={n_neighbors} exceeds the number of samples ({n_samples}); "
            f"it must be at most n_samples"
        )
    return int(n_neighbors)


def _self_first(indices, distances):
    """Return kNN arrays where column 0 is the point itself at distance 0.

    If a row already contains the point it is moved to the front (other entries
    keep their order); otherwise it is prepended and the last neighbour dropped.
    """
    n, k = indices.shape
    own = np.arange(n, dtype=indices.dtype)[:, None]
    ext_idx = np.concatenate([own, indices], axis=1)
    ext_dist = np.concatenate([np.zeros((n, 1), distances.dtype), distances], axis=1)
    drop = np.concatenate([np.zeros((n, 1), bool), indices == own], axis=1)
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]
    return (
        np.ascontiguousarray(np.take_along_axis(ext_idx, order, axis=1), dtype=np.int32),
        np.ascontiguousarray(np.take_along_axis(ext_dist, order, axis=1), dtype=np.float32),
    )


def check_metric_kwds(metric, metric_kwds, X=None):
    """``metric_kwds`` as a dict (``{}`` for None), checked: a mapping with string keys and, when
    ``X`` is given and scikit-learn knows ``metric``, accepted by the metric on two rows of X
    (so a misspelt keyword fails before the kNN search, naming ``metric_kwds``)."""
    if metric_kwds is None:
        return {}
    if not isinstance(metric_kwds, Mapping) or not all(isinstance(k, str) for k in metric_kwds):
        raise ValueError(
            f"metric_kwds={metric_kwds!r} must be None or a dict of keyword arguments of the "
            f"metric (for example {{'p': 3}} with metric='minkowski')"
        )
    kwds = dict(metric_kwds)
    if X is None or not kwds or not isinstance(metric, str):
        return kwds
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import VALID_METRICS

    if metric not in VALID_METRICS["brute"] or metric == "precomputed":
        return kwds  # a pynndescent-only metric: pynndescent checks its arguments
    rows = X[:2]
    rows = rows.toarray() if scipy.sparse.issparse(rows) else np.asarray(rows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = pairwise_distances(rows.astype(np.float64), metric=metric, **kwds)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"metric_kwds={kwds!r} is not accepted by metric={metric!r}: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None
    if not np.all(np.isfinite(d)):
        raise ValueError(
            f"metric_kwds={kwds!r} with metric={metric!r} gives non-finite distances on X "
            f"(check the sizes of the arrays in metric_kwds against X's {rows.shape[1]} features)"
        )
    return kwds


def sklearn_metric_args(metric, metric_kwds):
    """Keyword arguments of scikit-learn's NearestNeighbors for ``metric`` and ``metric_kwds``:
    Minkowski's ``p`` goes to its own parameter (scikit-learn warns when it is in
    ``metric_params``), everything else to ``metric_params``."""
    kwds = dict(metric_kwds or {})
    out = {"metric": metric}
    if metric == "minkowski" and "p" in kwds:
        out["p"] = kwds.pop("p")
    if kwds:
        out["metric_params"] = kwds
    return out


def nearest_neighbors(X, n_neighbors, metric="euclidean", random_state=None, n_jobs=-1, exact=None,
                      return_index=False, metric_kwds=None):
    """k nearest neighbours of every row of ``X`` (the point itself included).

    Returns ``(indices, distances)``: int32 and float32 arrays of shape
    ``(n_samples, n_neighbors)``, rows sorted by distance, column 0 the point
    itself at distance 0.  ``exact=None`` uses brute force for at most 4096
    samples and NN-descent above that: our own (``uec._knn``) for dense data and a euclidean
    metric, whose result for a given ``random_state`` does not depend on ``n_jobs``, else
    pynndescent's, whose result does (see :func:`knn_backend`).  With ``return_index=True`` a
    third element is the search index for new points (``None`` for brute force).
    ``metric_kwds`` (a dict) go to the metric: to scikit-learn's brute force as
    ``metric_params`` and to pynndescent as its ``metric_kwds``; with any, the search is
    pynndescent's (ours knows only the plain euclidean distance).
    """
    if not scipy.sparse.issparse(X):
        X = np.asarray(X)
    metric_kwds = check_metric_kwds(metric, metric_kwds, X)
    check_metric_rows(X, metric)
    n = X.shape[0]
    k = _check_n_neighbors(n_neighbors, n)
    if exact is None:
        exact = n <= EXACT_KNN_MAX_SAMPLES
    index = None
    degree = _HOMOGENEOUS_METRICS.get(metric) if isinstance(metric, str) else None
    scale = _power_of_two_scale(_max_abs(X), _SAFE_EXPONENT_X) if degree is not None else 1.0
    if scale != 1.0:
        # search at unit magnitude (exact: a power of two), report distances in X's units
        logger.debug("kNN: X has magnitude ~%g; searching X / %g", scale, scale)
        found = nearest_neighbors(_times_power_of_two(X, 1.0 / scale), k, metric, random_state, n_jobs, exact,
                                  return_index=return_index, metric_kwds=metric_kwds)
        indices, distances = found[0], found[1]
        distances = (distances.astype(np.float64) * scale**degree).astype(np.float32)
        _check_finite_distances(distances, X)
        # an index built on the rescaled data would need rescaled queries: not kept
        return (indices, distances, None) if return_index else (indices, distances)
    if exact:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=n_jobs,
                              **sklearn_metric_args(metric, metric_kwds))
        distances, indices = nn.fit(X).kneighbors(X, n_neighbors=k)
        if metric in ("euclidean", "l2") and not metric_kwds:
            # the GEMM expansion loses precision (duplicates at 1e-8 instead of 0):
            # recompute the selected distances directly and re-sort the rows
            distances = _exact_euclidean(X, indices)
            order = np.argsort(distances, axis=1, kind="stable")
            indices = np.take_along_axis(indices, order, axis=1)
            distances = np.take_along_axis(distances, order, axis=1)
        logger.debug("exact kNN: n=%d k=%d metric=%s", n, k, metric)
    elif _knn.supports(X, metric) and not metric_kwds:
        indices, distances, index = _knn.knn_graph(X, k, metric=metric, random_state=random_state,
                                                   n_jobs=n_jobs)
    else:
        import pynndescent

        n_trees = min(64, 5 + int(round(n**0.5 / 20.0)))
        n_iters = max(5, int(round(np.log2(n))))
        # the index's search graph needs a floor of neighbours (uec._knn.SEARCH_MIN_DEGREE)
        k_index = min(n, max(k, _knn.SEARCH_MIN_DEGREE))
        index = pynndescent.NNDescent(
            X, n_neighbors=k_index, metric=metric, metric_kwds=metric_kwds or None,
            random_state=random_state, n_trees=n_trees, n_iters=n_iters,
            max_candidates=60, low_memory=True, n_jobs=n_jobs, compressed=False, verbose=False,
        )
        indices, distances = (np.asarray(a)[:, :k] for a in index.neighbor_graph)
        logger.debug("NN-descent kNN: n=%d k=%d metric=%s trees=%d iters=%d", n, k, metric, n_trees, n_iters)
        if np.any(indices < 0):
            logger.warning("NN-descent found fewer than %d neighbours for some points", k)
    indices, distances = _self_first(np.asarray(indices), np.asarray(distances))
    _check_finite_distances(distances, X)
    if return_index:
        return indices, distances, index
    return indices, distances


def knn_backend(X, metric="euclidean", exact=None, metric_kwds=None):
    """Which search :func:`nearest_neighbors` runs on ``X``: ``"exact"`` (brute force),
    ``"nn_descent"`` (ours: dense data, euclidean metric; the same result for a seed whatever
    ``n_jobs``) or ``"pynndescent"`` (every other metric, sparse data; its result depends on the
    thread count, so a seeded fit runs it on one thread)."""
    n = X.shape[0]
    if exact is None:
        exact = n <= EXACT_KNN_MAX_SAMPLES
    if exact:
        return "exact"
    return "nn_descent" if _knn.supports(X, metric) and not metric_kwds else "pynndescent"


def _exact_euclidean(X, indices):
    """Euclidean distances from every row of X to the rows ``indices[i]`` (float64, direct sums)."""
    n, k = indices.shape
    sparse = scipy.sparse.issparse(X)
    if not sparse:
        X = np.asarray(X, dtype=np.float64).reshape(n, -1)
    out = np.empty(indices.shape, dtype=np.float64)
    step = max(1, (1 << 22) // max(1, k * X.shape[1]))
    for s in range(0, n, step):
        idx = indices[s : s + step]
        if sparse:
            # row differences as a sparse matrix, one row per (point, neighbour) pair
            heads = np.repeat(np.arange(s, s + idx.shape[0]), k)
            diff = (X[idx.ravel()] - X[heads]).astype(np.float64)
            sq = np.asarray(diff.multiply(diff).sum(axis=1)).ravel()
            out[s : s + step] = np.sqrt(sq).reshape(idx.shape)
        else:
            diff = X[idx] - X[s : s + step, None, :]
            out[s : s + step] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return out


def _check_finite_distances(distances, X):
    bad = ~np.isfinite(distances)
    if bad.any():
        raise ValueError(
            f"the kNN distances of X overflow float32 ({int(bad.sum())} of them; X has values up to "
            f"{_max_abs(X):.3g} in magnitude): rescale X"
        )


def validate_knn(knn, n_samples, n_neighbors):
    """Check a user-supplied ``knn=(indices, distances)`` pair and truncate it.

    Returns ``(indices[:, :n_neighbors], distances[:, :n_neighbors])`` as
    C-contiguous int32 / float32 arrays; raises ``ValueError`` otherwise.
    """
    if not isinstance(knn, (tuple, list)) or len(knn) != 2:
        raise ValueError(
            f"knn must be a pair (indices, distances) of arrays, got {type(knn).__name__}"
            + (f" of length {len(knn)}" if isinstance(knn, (tuple, list)) else "")
        )
    indices, distances = np.asarray(knn[0]), np.asarray(knn[1])
    want = f"({n_samples}, >= {n_neighbors})"
    for name, arr in (("indices", indices), ("distances", distances)):
        if arr.ndim != 2 or arr.shape[0] != n_samples or arr.shape[1] < n_neighbors:
            raise ValueError(f"knn {name} must have shape {want}, got {arr.shape}")
    if indices.shape != distances.shape:
        raise ValueError(
            f"knn indices and distances must have the same shape, got {indices.shape} and {distances.shape}"
        )
    if indices.dtype.kind not in "iu":
        raise ValueError(f"knn indices must be an integer array, got dtype {indices.dtype}")
    if distances.dtype.kind not in "iuf":
        raise ValueError(f"knn distances must be a real-valued array, got dtype {distances.dtype}")
    indices = indices[:, :n_neighbors]
    distances = distances[:, :n_neighbors]
    bad = (indices < 0) | (indices >= n_samples)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"knn indices must lie in [0, {n_samples}), got {indices[r, c]} at row {r}, column {c}"
        )
    # float32 is what the graph is built in: 1e39 is finite here and infinite there
    bad = ~np.isfinite(distances) | (distances < 0) | (distances > _FLOAT32_MAX)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"knn distances must be finite and non-negative, at most {float(_FLOAT32_MAX):.4g} "
            f"(float32), got {distances[r, c]} at row {r}, column {c}"
        )
    return (
        np.ascontiguousarray(indices, dtype=np.int32),
        np.ascontiguousarray(distances, dtype=np.float32),
    )
