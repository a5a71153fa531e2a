"""Queries far from the training data: kNN rows whose float32 answer cannot be trusted, and
their search again in float64 so that the scale of the query does not change the answer.

Used by :func:`uec._transform.query_training_neighbours` for the Minkowski metrics (euclidean,
manhattan, chebyshev, minkowski with ``p >= 1``) on dense or sparse data; cosine and correlation
do not depend on the rows' scale and need none of this.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse

__all__ = ["FAR_RELATIVE_SPREAD", "far_rows", "far_metric_p", "exact_far_query",
           "exact_far_query_p", "search_far"]

# A query row whose k neighbour distances agree to this relative spread is far from the training
# data compared with the data's own spread (or its float32 distances overflowed): which training
# points are nearest then hangs on the last bits of each distance, where float32 (the graph
# search) and the expanded |x|^2 - 2 x.t + |t|^2 (scikit-learn's brute force) have none left.
# Those rows are searched again by :func:`exact_far_query` / :func:`exact_far_query_p`.
FAR_RELATIVE_SPREAD = 2.0**-10
# Doubles per temporary array of the brute-force passes (32 MiB).
_BLOCK_DOUBLES = 1 << 22

logger = logging.getLogger(__name__)

_P_OF_METRIC = {"euclidean": 2.0, "l2": 2.0, "sqeuclidean": 2.0, "manhattan": 1.0, "l1": 1.0,
                "cityblock": 1.0, "taxicab": 1.0, "chebyshev": np.inf, "linfinity": np.inf,
                "linf": np.inf, "infinity": np.inf}


def far_rows(distances):
    """Rows of a (m, k) kNN answer (sorted) whose ordering cannot be trusted at the precision it
    was computed in: non-finite, or every neighbour at the same distance within
    ``FAR_RELATIVE_SPREAD`` of it (but not all at distance 0)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0:
        return np.zeros(d.shape[0], dtype=bool)
    bad = ~np.isfinite(d).all(axis=1)
    with np.errstate(invalid="ignore"):
        near, far = d[:, 0], d[:, -1]
        tight = (near > 0.0) & ((far - near) <= FAR_RELATIVE_SPREAD * near)
    return bad | tight


def far_metric_p(metric, metric_kwds=None):
    """The exponent p of ``metric`` when it is a Minkowski distance (p >= 1, ``inf`` for
    chebyshev) that the far search handles, else None. ``metric_kwds`` may only hold
    minkowski's ``p``."""
    kwds = dict(metric_kwds or {})
    if not isinstance(metric, str):
        return None
    if metric == "minkowski":
        p = kwds.pop("p", 2.0)
        try:
            p = float(p)
        except (TypeError, ValueError):
            return None
        return p if not kwds and p >= 1.0 else None
    return None if kwds else _P_OF_METRIC.get(metric)


def _rows(A, sl):
    """Rows ``sl`` (slice or index array) of dense or sparse A, dense float64."""
    part = A[sl]
    if scipy.sparse.issparse(part):
        return part.toarray().astype(np.float64, copy=False)
    return np.asarray(part, dtype=np.float64)


def _centre(train):
    return np.asarray(train.mean(axis=0), dtype=np.float64).ravel()


def search_far(train, X, indices, distances, k, metric, metric_kwds=None):
    """``(indices, distances)`` with the rows of a kNN answer that :func:`far_rows` flags
    searched again by the exact float64 search of ``metric`` (see :func:`far_metric_p`);
    unchanged when the metric is not handled or no row is flagged."""
    p = far_metric_p(metric, metric_kwds)
    if p is None:
        return indices, distances
    far = np.flatnonzero(far_rows(distances))
    if not far.size:
        return indices, distances
    logger.debug("kNN query: %d rows far from the training data searched again in float64",
                 far.size)
    Xf = _rows(X, far)
    if p == 2.0:
        fi, fd = exact_far_query(train, Xf, k, squared=metric == "sqeuclidean")
    else:
        fi, fd = exact_far_query_p(train, Xf, k, p)
    indices, distances = np.array(indices, dtype=np.int32), np.array(distances, np.float64)
    indices[far], distances[far] = fi, fd
    return indices, distances


# -- euclidean ----------------------------------------------------------------------------------


def exact_far_query(train, X, k, squared=False):
    """``(indices, distances)`` (m, k) of the k nearest rows of ``train`` (dense or sparse) to
    each row of X by euclidean distance (squared with ``squared``), ranked so that the scale of X
    does not change the answer.

    In float64, around the training mean c, in two passes over the training rows: the first
    finds the row t0 that minimises |t - c|^2 - 2 (x - c).(t - c) (the |x - c|^2 that is the
    same for every t, and swamps the rest for a far x, is left out); the second ranks every row
    by d^2(t) - d^2(t0) = 2 (t0 - t).x - (t0 - t).(t0 + t), in which the coordinates where t
    agrees with t0 count exactly 0 however far x is (from c alone, rows that tie on x's far
    coordinates are told apart only by terms float64 cannot add to the far ones); ties by index.
    Brute force over the training rows in chunks, rows of X that share t0 together: meant for
    the few rows :func:`far_rows` flags."""
    X = _rows(X, slice(None))
    n, f = train.shape
    m = X.shape[0]
    k = int(min(k, n))
    centre = _centre(train)
    Xc = X - centre
    # about 4 Mi doubles per temporary: training rows per chunk, and query rows per chunk
    step = max(1, min(n, _BLOCK_DOUBLES // max(1, f)))
    rows = max(1, _BLOCK_DOUBLES // max(1, step))
    first = np.empty(m, dtype=np.int64)
    for r in range(0, m, rows):
        key = np.full((min(rows, m - r), 0), np.inf)
        idx = np.zeros((key.shape[0], 0), dtype=np.int64)
        for s in range(0, n, step):
            Tb = _rows(train, slice(s, s + step)) - centre
            part = np.einsum("ij,ij->i", Tb, Tb)[None, :] - 2.0 * (Xc[r : r + rows] @ Tb.T)
            key, idx = _keep(key, idx, part, s, 1)
        first[r : r + rows] = idx[:, 0]
    indices = np.empty((m, k), dtype=np.int32)
    out = np.empty((m, k), dtype=np.float64)
    rows = max(1, _BLOCK_DOUBLES // max(1, step + k * f))  # with the (rows, k, f) check below
    for t0 in np.unique(first):
        group = np.flatnonzero(first == t0)
        T0 = _rows(train, [t0])[0] - centre
        for r in range(0, group.size, rows):
            g = group[r : r + rows]
            key = np.full((g.size, 0), np.inf)
            idx = np.zeros((g.size, 0), dtype=np.int64)
            for s in range(0, n, step):
                D = T0 - (_rows(train, slice(s, s + step)) - centre)  # t0 - t
                part = 2.0 * (Xc[g] @ D.T) - np.einsum("ij,ij->i", D, 2.0 * T0 - D)[None, :]
                key, idx = _keep(key, idx, part, s, k)
            to_t0 = Xc[g] - T0
            sq = np.maximum(np.einsum("ij,ij->i", to_t0, to_t0)[:, None] + key, 0.0)
            # a training row equal to x is at distance exactly 0
            T = _rows(train, idx.ravel()).reshape(g.size, k, f) - centre
            sq[np.all(Xc[g][:, None, :] == T, axis=2)] = 0.0
            indices[g], out[g] = idx, sq
    return indices, (out if squared else np.sqrt(out))


def _keep(best_key, best_idx, key, start, kc):
    """The kc smallest keys of the kept ones and a new chunk's (numbered from ``start``), ties
    by index."""
    m = key.shape[0]
    key = np.concatenate([best_key, key], axis=1)
    idx = np.concatenate([best_idx, np.broadcast_to(np.arange(start, start + key.shape[1]
                                                              - best_key.shape[1]),
                                                    (m, key.shape[1] - best_key.shape[1]))],
                         axis=1)
    if key.shape[1] > kc:  # the kc smallest, ties by index (rows that tie exactly are common)
        part = np.lexsort((idx, key), axis=1)[:, :kc]
        key, idx = np.take_along_axis(key, part, axis=1), np.take_along_axis(idx, part, axis=1)
    return key, idx


# -- other Minkowski exponents ------------------------------------------------------------------


def _p_deltas(x, T, r, p):
    """d_p(x, t)^p - d_p(x, r)^p for each row t of T (scaled by S^p, S = max_j |x_j - r_j|;
    for p = inf: d(x, t) - d(x, r)), and what it is relative to: (deltas, base, S) with
    d_p(x, r)^p = S^p base (p = inf: base = d(x, r), S = 1).

    Per coordinate, |x_j - t_j| - |x_j - r_j| is r_j - t_j (or its negative) when x_j lies on
    the same side of t_j and r_j, which keeps its precision however far x_j is (the float64
    x_j - t_j alone has none of t_j left when |x_j| / |t_j| > 2^53); otherwise x_j lies between
    them and the direct difference is exact enough. Then u^p - v^p = v^p expm1(p log1p((u -
    v) / v)) keeps the precision of u - v."""
    a = x[None, :] - T  # x - t
    b = x - r  # x - r
    same = (a >= 0.0) == (b >= 0.0)[None, :]
    du = np.where(same, np.where(b >= 0.0, r[None, :] - T, T - r[None, :]), np.abs(a) - np.abs(b))
    v = np.abs(b)
    if np.isinf(p):
        top = float(v.max(initial=0.0))
        return np.max((v - top)[None, :] + du, axis=1, initial=-np.inf), top, 1.0
    if p == 1.0:
        return du.sum(axis=1), float(v.sum()), 1.0
    S = float(v.max(initial=0.0)) or 1.0
    vs = v / S
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(v > 0.0, du / np.where(v > 0.0, v, 1.0), 0.0)
        grow = np.where(v > 0.0, vs ** p * np.expm1(p * np.log1p(rel)),
                        (np.maximum(du, 0.0) / S) ** p)
    return grow.sum(axis=1), float((vs ** p).sum()), S


def exact_far_query_p(train, X, k, p):
    """:func:`exact_far_query` for the Minkowski distance of exponent p >= 1 (``inf``:
    chebyshev): ``(indices, distances)`` (m, k), ranked so that the scale of X does not change
    the answer. Brute force, row by row, in float64 around the training mean c, in two passes
    over the training rows: the first finds the row t0 that minimises d(x, t)^p - d(x, c)^p
    (:func:`_p_deltas`), the second ranks every row by d(x, t)^p - d(x, t0)^p, in which the
    coordinates where t agrees with t0 count exactly 0 however far x is (from c alone, rows
    that tie on x's far coordinates are told apart only by terms float64 cannot add to the far
    ones); ties by index."""
    X = _rows(X, slice(None))
    n, f = train.shape
    m = X.shape[0]
    k = int(min(k, n))
    p = float(p)
    centre = _centre(train)
    step = max(1, min(n, _BLOCK_DOUBLES // (4 * max(1, f))))
    indices = np.empty((m, k), dtype=np.int32)
    out = np.empty((m, k), dtype=np.float64)
    zero = np.zeros(f)

    def best(x, ref, keep):
        key = np.full((1, 0), np.inf)
        idx = np.zeros((1, 0), dtype=np.int64)
        for s in range(0, n, step):
            part = _p_deltas(x, _rows(train, slice(s, s + step)) - centre, ref, p)[0]
            key, idx = _keep(key, idx, part[None, :], s, keep)
        order = np.lexsort((idx[0], key[0]))
        return idx[0][order]

    for i in range(m):
        x = X[i] - centre
        t0 = _rows(train, best(x, zero, 1)[:1])[0] - centre
        cand = best(x, t0, k)
        T = _rows(train, cand) - centre
        delta, base, S = _p_deltas(x, T, t0, p)
        if np.isinf(p) or p == 1.0:
            d = base + delta
        else:
            d = S * np.maximum(base + delta, 0.0) ** (1.0 / p)
        d = np.maximum(d, 0.0)
        d[np.all(x[None, :] == T, axis=1)] = 0.0  # a duplicate of x is at exactly 0
        indices[i], out[i] = cand, d
    return indices, out
