"""Graph stage: the UMAP fuzzy simplicial set of the kNN (``uec.neighbours``), pruned, with the
epochs per sample of each edge and the curve parameters a, b. A vectorised NumPy
reimplementation of umap-learn's graph: given the same kNN it reproduces
``umap.umap_.fuzzy_simplicial_set`` to float32 rounding (docs/design.md §2.1-§2.3).

Pipeline (see :func:`build_graph`)::

    X --nearest_neighbors--> (indices, distances) --smooth_knn_dist--> (sigmas, rhos)
      --compute_membership_strengths / fuzzy union--> CSR graph --prune_graph--> sampled edges
"""

import logging
import time
import warnings

import numpy as np
import scipy.sparse

from ._progress import stage
# the neighbours stage (uec.neighbours), also importable from here as before the split
from .neighbours import (  # noqa: F401
    _FLOAT32_MAX,
    _HOMOGENEOUS_METRICS,
    _SAFE_EXPONENT_DIST,
    _SAFE_EXPONENT_X,
    EXACT_KNN_MAX_SAMPLES,
    _check_finite_distances,
    _check_n_neighbors,
    _exact_euclidean,
    _exp32,
    _max_abs,
    _power_of_two_scale,
    _self_first,
    _times_power_of_two,
    check_metric_kwds,
    check_metric_rows,
    knn_backend,
    nearest_neighbors,
    sklearn_metric_args,
    validate_knn,
)

logger = logging.getLogger(__name__)

__all__ = [
    "nearest_neighbors",
    "knn_backend",
    "validate_knn",
    "smooth_knn_dist",
    "compute_membership_strengths",
    "fuzzy_simplicial_set",
    "prune_graph",
    "epochs_per_sample",
    "find_ab_params",
    "build_graph",
]

SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3


def _local_rho(d, local_connectivity):
    """Distance to the ``local_connectivity``-th nearest non-zero neighbour (interpolated)."""
    n, k = d.shape
    positive = d > 0.0
    count = positive.sum(axis=1)
    nz = np.take_along_axis(d, np.argsort(~positive, axis=1, kind="stable"), axis=1)
    rho = np.zeros(n, dtype=np.float32)
    lc = float(local_connectivity)
    index = int(np.floor(lc))
    interp = lc - index
    full = count >= lc
    rows = np.flatnonzero(full)
    if rows.size:
        if index > 0:
            rho[rows] = nz[rows, index - 1]
            if interp > SMOOTH_K_TOLERANCE:
                step = nz[rows, index] - nz[rows, index - 1]  # float32, as in umap
                rho[rows] = rho[rows].astype(np.float64) + interp * step.astype(np.float64)
        else:
            rho[rows] = interp * nz[rows, 0].astype(np.float64)
    partial = ~full & (count > 0)
    rho[partial] = d[partial].max(axis=1)
    return rho


_SMOOTH_BLOCK = 8192  # rows bisected together


def _bisect_sigma(d, rho, target, n_iter):
    """smooth_knn_dist's search for sigma on rows ``d`` (m, k - 1) with their ``rho``: float64
    bisection on float32 differences, each row stopping exactly when umap's scalar loop would."""
    m = d.shape[0]
    diff = (d - rho[:, None]).astype(np.float64)
    nonpos = diff <= 0.0
    lo = np.zeros(m)
    hi = np.full(m, float(_FLOAT32_MAX))
    mid = np.ones(m)
    active = np.arange(m)
    for _ in range(n_iter):
        if active.size == 0:
            break
        x = -(diff[active] / mid[active, None])
        x[nonpos[active]] = 0.0  # exp(0) = 1 for neighbours closer than rho
        np.exp(x, out=x)
        psum = np.zeros(active.size)
        for j in range(x.shape[1]):  # summed left to right, like the scalar loop
            psum += x[:, j]
        keep = ~(np.abs(psum - target) < SMOOTH_K_TOLERANCE)
        active, psum = active[keep], psum[keep]
        above = psum > target
        down, up = active[above], active[~above]
        hi[down] = mid[down]
        mid[down] = (lo[down] + hi[down]) / 2.0
        lo[up] = mid[up]
        unbounded = hi[up] >= float(_FLOAT32_MAX)
        mid[up[unbounded]] *= 2.0
        bounded = up[~unbounded]
        mid[bounded] = (lo[bounded] + hi[bounded]) / 2.0
    return mid


def smooth_knn_dist(distances, k, n_iter=64, local_connectivity=1.0, bandwidth=1.0):
    """Per-point ``(sigmas, rhos)`` so that each fuzzy neighbourhood has size log2(k).

    ``rho`` is the distance to the ``local_connectivity``-th non-zero neighbour;
    ``sigma`` solves ``sum_j exp(-max(d_j - rho, 0) / sigma) = log2(k) * bandwidth``
    (column 0 excluded) by a 64-step bisection run on all rows at once, each row
    stopping exactly when umap's scalar loop would.
    """
    d = np.ascontiguousarray(distances, dtype=np.float32)
    positive = d[d > 0.0]
    scale = _power_of_two_scale(positive.mean(dtype=np.float64) if positive.size else 0.0,
                                _SAFE_EXPONENT_DIST)
    if scale != 1.0:
        # the bisection starts at sigma = 1 and doubles or halves 64 times at most, which
        # cannot reach distances of 1e30 or 1e-30: solve at unit scale (exact, a power of
        # two); sigma and rho scale with the distances, the memberships do not change
        sigma, rho = smooth_knn_dist(_times_power_of_two(d, 1.0 / scale), k, n_iter,
                                     local_connectivity, bandwidth)
        return _times_power_of_two(sigma, scale), _times_power_of_two(rho, scale)
    n = d.shape[0]
    target = np.log2(float(k)) * float(bandwidth)
    rho = _local_rho(d, local_connectivity)

    # umap declares its search variables float32, but numba does not apply those
    # declarations inside the prange body, so the search itself runs in float64 on
    # float32 differences; reproduce exactly that
    mid = np.ones(n)
    for start in range(0, n, _SMOOTH_BLOCK):  # a block of rows at a time: its arrays stay in cache
        block = slice(start, min(n, start + _SMOOTH_BLOCK))
        mid[block] = _bisect_sigma(d[block, 1:], rho[block], target, int(n_iter))
    sigma = mid.astype(np.float32)

    # lower bound on sigma relative to the mean neighbour distance (row mean where rho > 0,
    # global mean otherwise); like umap, row sums run sequentially in float32 and are divided
    # in float64 (umap's global mean is a thread-count dependent reduction: use float64)
    row_mean = np.add.accumulate(d, axis=1)[:, -1].astype(np.float64) / d.shape[1]
    global_mean = d.mean(dtype=np.float64)
    floor = MIN_K_DIST_SCALE * np.where(rho > 0.0, row_mean, global_mean)
    low = sigma < floor
    sigma[low] = floor[low]
    return sigma, rho


def compute_membership_strengths(indices, distances, sigmas, rhos):
    """Directed membership strengths ``exp(-(d - rho) / sigma)`` as an (n, n) COO matrix.

    Self edges get 0, neighbours within ``rho`` (or rows with ``sigma == 0``) get 1;
    entries with index -1 (missing neighbours) are dropped.
    """
    indices = np.asarray(indices)
    d = np.asarray(distances, dtype=np.float32)
    sigmas = np.asarray(sigmas, dtype=np.float32)
    rhos = np.asarray(rhos, dtype=np.float32)
    n, k = indices.shape
    diff = d - rhos[:, None]
    one = (diff <= 0.0) | (sigmas[:, None] == 0.0)
    safe_sigma = np.where(sigmas == 0.0, np.float32(1.0), sigmas)
    x = -(diff / safe_sigma[:, None])
    x[one] = 0.0
    vals = _exp32(x)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    vals[indices == np.arange(n)[:, None]] = 0.0
    cols = indices.ravel().astype(np.int32)
    vals = vals.ravel()
    present = cols >= 0
    return scipy.sparse.coo_matrix((vals[present], (rows[present], cols[present])), shape=(n, n))


def fuzzy_simplicial_set(indices, distances, n_samples=None, set_op_mix_ratio=1.0, local_connectivity=1.0):
    """Symmetric fuzzy graph of a kNN, as float32 CSR (zeros eliminated, indices sorted).

    Combines the directed strengths ``P`` by
    ``ratio * (P + P^T - P o P^T) + (1 - ratio) * P o P^T``
    (``set_op_mix_ratio=1`` is the fuzzy union, ``0`` the fuzzy intersection).
    """
    indices = np.asarray(indices)
    n = indices.shape[0]
    if n_samples is not None and int(n_samples) != n:
        raise ValueError(f"n_samples={n_samples} does not match the kNN's {n} rows")
    if not 0.0 <= float(set_op_mix_ratio) <= 1.0:
        raise ValueError(f"set_op_mix_ratio must be in [0, 1], got {set_op_mix_ratio}")
    if not float(local_connectivity) >= 0.0:
        raise ValueError(f"local_connectivity must be >= 0, got {local_connectivity}")
    d = np.ascontiguousarray(distances, dtype=np.float32)
    sigmas, rhos = smooth_knn_dist(d, float(indices.shape[1]), local_connectivity=float(local_connectivity))
    p = compute_membership_strengths(indices, d, sigmas, rhos).tocsr()  # duplicates summed
    p.eliminate_zeros()
    pt = p.transpose().tocsr()
    both = p.multiply(pt).tocsr()
    ratio = float(set_op_mix_ratio)
    if ratio == 1.0:
        graph = (p + pt) - both
    else:
        graph = ratio * ((p + pt) - both) + (1.0 - ratio) * both
    graph = scipy.sparse.csr_matrix(graph, dtype=np.float32)
    graph.eliminate_zeros()
    graph.sort_indices()
    logger.debug("fuzzy graph: n=%d nnz=%d", n, graph.nnz)
    return graph


def prune_graph(graph, n_epochs):
    """Drop edges with weight < max_weight / n_epochs (sampled less than once); returns a copy."""
    if not n_epochs or float(n_epochs) <= 0:
        raise ValueError(f"n_epochs must be a positive integer, got {n_epochs!r}")
    graph = scipy.sparse.csr_matrix(graph, copy=True)
    if graph.nnz:
        graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph


def epochs_per_sample(weights, n_epochs):
    """Epochs between two samples of each edge: ``max(w) / w`` (float32; -1 where w <= 0).

    ``n_epochs`` only needs to be positive; umap's n_epochs * (w / max) formulation cancels it.
    """
    if not n_epochs or float(n_epochs) <= 0:
        raise ValueError(f"n_epochs must be positive, got {n_epochs!r}")
    w = np.asarray(weights, dtype=np.float64)
    out = np.full(w.shape, -1.0, dtype=np.float64)
    if w.size:
        pos = w > 0
        out[pos] = w.max() / w[pos]
    return out.astype(np.float32)


def _ab_curve(x, a, b):
    return 1.0 / (1.0 + a * x ** (2.0 * b))


def find_ab_params(spread=1.0, min_dist=0.1):
    """Fit ``1 / (1 + a x^(2b))`` to the target membership curve of (spread, min_dist)."""
    from scipy.optimize import curve_fit

    spread, min_dist = float(spread), float(min_dist)
    if not (np.isfinite(spread) and spread > 0.0):
        raise ValueError(f"spread must be a finite number > 0, got {spread}")
    if not (np.isfinite(min_dist) and 0.0 <= min_dist <= spread):
        raise ValueError(f"min_dist must satisfy 0 <= min_dist <= spread ({spread}), got {min_dist}")
    x = np.linspace(0.0, 3.0 * spread, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (a, b), _ = curve_fit(_ab_curve, x, y)
    return float(a), float(b)


def build_graph(
    X_or_none,
    n_neighbors,
    n_epochs,
    metric="euclidean",
    knn=None,
    random_state=None,
    n_jobs=-1,
    *,
    set_op_mix_ratio=1.0,
    local_connectivity=1.0,
    exact=None,
    return_index=False,
    timings=None,
    metric_kwds=None,
):
    """kNN (computed, or the user's ``knn``), fuzzy union, pruning.

    Returns ``(graph_csr, knn_indices, knn_distances)``, and with ``return_index=True`` a
    fourth element: the NN-descent search index, or ``None`` (brute force or a given ``knn``).
    ``timings``, a dict, receives the seconds of the kNN stage under ``"knn"``.
    """
    t0 = time.perf_counter()
    index = None
    if knn is not None:
        if X_or_none is not None:
            n = X_or_none.shape[0]
        elif isinstance(knn, (tuple, list)) and len(knn) == 2:
            n = np.shape(knn[0])[0]
        else:
            n = 0  # validate_knn reports the malformed knn
        indices, distances = validate_knn(knn, n, _check_n_neighbors(n_neighbors, None))
    else:
        if X_or_none is None:
            raise ValueError("X must be given when knn is None")
        indices, distances, index = nearest_neighbors(
            X_or_none, n_neighbors, metric=metric, random_state=random_state, n_jobs=n_jobs, exact=exact,
            return_index=True, metric_kwds=metric_kwds,
        )
    if timings is not None:
        timings["knn"] = time.perf_counter() - t0
    graph = fuzzy_simplicial_set(
        indices, distances, set_op_mix_ratio=set_op_mix_ratio, local_connectivity=local_connectivity
    )
    graph = prune_graph(graph, n_epochs)
    if return_index:
        return graph, indices, distances, index
    return graph, indices, distances


def knn_threads(X, metric, random_state, n_jobs, metric_kwds=None):
    """Threads for the kNN search of X: pynndescent's result depends on its thread count (17
    of 6,000 rows differed between 1 and 2 threads), so with a seed it runs on one thread, as
    in umap-learn, and a seeded fit is the same whatever n_jobs. Our own NN-descent (dense
    euclidean data) and the exact search do not need this."""
    if random_state is not None and knn_backend(X, metric, metric_kwds=metric_kwds) == "pynndescent":
        logger.info("random_state is set: pynndescent's kNN search runs on one thread")
        return 1
    return n_jobs


def fit_graph(model, X, k, n_epochs, rs, n_threads, times):
    """The neighbours and graph stages of a fit of ``model`` (a UEC): ``(fuzzy graph, kNN
    distances, search index or None)``; ``times`` gets "knn" and "graph" seconds."""
    t0 = time.perf_counter()
    knn_jobs = n_threads
    if model.knn is None:
        knn_jobs = knn_threads(X, model.metric, model.random_state, n_threads,
                               metric_kwds=model.metric_kwds)
    with stage("kNN graph", model.verbose), model._seeded_threads():
        graph, knn_indices, knn_dists, search_index = build_graph(
            X, k, n_epochs, metric=model.metric, knn=model.knn,
            metric_kwds=model.metric_kwds,
            random_state=rs, n_jobs=knn_jobs, return_index=True, timings=times,
        )
    times["graph"] = time.perf_counter() - t0 - times["knn"]
    return graph, knn_dists, search_index
