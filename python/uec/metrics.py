"""Clustering quality measures.

External (against ground truth): :func:`clustering_accuracy` (Hungarian-matched accuracy),
:func:`nmi`, :func:`ari` and :func:`evaluate` (all three at once).
Internal (no ground truth): :func:`internal_indices`.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["clustering_accuracy", "nmi", "ari", "internal_indices", "evaluate"]

_AVERAGE_METHODS = ("arithmetic", "geometric", "min", "max")


def _as_labels(y, name):
    if y is None:
        raise ValueError(f"{name}=None is not valid; expected a 1-D array of labels")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(
            f"{name} with shape {arr.shape} is not valid; expected a 1-D array of labels"
        )
    return arr


def _check_pair(y_true, y_pred):
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}; "
            "both must have the same length"
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty; at least one sample is required")
    return y_true, y_pred


def _encode(y):
    """Labels -> (codes in 0..k-1, k).  Works for any hashable labels, also mixed types."""
    try:
        _, codes = np.unique(y, return_inverse=True)
        codes = codes.ravel()
        return codes, int(codes.max()) + 1
    except TypeError:  # unorderable mixture (e.g. ints and strings in an object array)
        mapping = {}
        codes = np.fromiter(
            (mapping.setdefault(v, len(mapping)) for v in y.tolist()),
            dtype=np.int64,
            count=y.shape[0],
        )
        return codes, len(mapping)


def clustering_accuracy(y_true, y_pred):
    """Best accuracy over one-to-one matchings of predicted clusters to true classes.

    The contingency matrix (true classes x predicted clusters) is matched with the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment``, maximising the matched counts). The
    numbers of classes and clusters may differ: samples of a predicted cluster left unmatched
    (more clusters than classes) or of a class left unmatched count as errors. Labels may be
    of any type (ints, strings, ...).

    Returns
    -------
    float in [0, 1]
    """
    from scipy.optimize import linear_sum_assignment

    y_true, y_pred = _check_pair(y_true, y_pred)
    t, kt = _encode(y_true)
    p, kp = _encode(y_pred)
    contingency = np.bincount(t * kp + p, minlength=kt * kp).reshape(kt, kp)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return float(contingency[rows, cols].sum()) / y_true.shape[0]


def nmi(y_true, y_pred, average_method="arithmetic"):
    """Normalised mutual information (``sklearn.metrics.normalized_mutual_info_score``).

    ``average_method`` is one of "arithmetic" (default), "geometric", "min", "max".
    """
    from sklearn.metrics import normalized_mutual_info_score

    if average_method not in _AVERAGE_METHODS:
        raise ValueError(
            f"average_method={average_method!r} is not valid; expected one of "
            f"{list(_AVERAGE_METHODS)}"
        )
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred, average_method=average_method))


def ari(y_true, y_pred):
    """Adjusted Rand index (``sklearn.metrics.adjusted_rand_score``)."""
    from sklearn.metrics import adjusted_rand_score

    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(adjusted_rand_score(y_true, y_pred))


def evaluate(y_true, y_pred):
    """``dict(acc=clustering_accuracy, nmi=nmi, ari=ari)`` as Python floats."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return {
        "acc": clustering_accuracy(y_true, y_pred),
        "nmi": nmi(y_true, y_pred),
        "ari": ari(y_true, y_pred),
    }


def internal_indices(X, labels, sample_size=10000, random_state=0):
    """Internal cluster-validity indices computed with scikit-learn.

    Parameters
    ----------
    X : array (n_samples, n_features)
    labels : array (n_samples,)
    sample_size : int or None
        The silhouette (quadratic cost) is computed on a random subset of this many samples
        when ``n_samples`` is larger (``None``: always on all samples).
    random_state : int
        Seed of that subset, fixed by default so that the result is reproducible.

    Returns
    -------
    dict with "davies_bouldin" (lower is better), "silhouette" (in [-1, 1], higher is better)
    and "calinski_harabasz" (higher is better). An index is NaN when it is undefined: fewer
    than 2 clusters, or as many clusters as samples (also for a silhouette subsample that
    happens to hold a single cluster).
    """
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_score,
    )

    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"X of type {type(X).__name__} is not valid; expected a numeric 2-D array"
        ) from None
    if X.ndim != 2:
        raise ValueError(f"X with shape {X.shape} is not valid; expected a 2-D array")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values; all values must be finite")
    labels = _as_labels(labels, "labels")
    if labels.shape[0] != X.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but X has {X.shape[0]} rows; both must "
            "have the same length"
        )
    if sample_size is not None and (
        isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer))
        or sample_size < 2
    ):
        raise ValueError(
            f"sample_size={sample_size!r} is not valid; expected an integer >= 2 or None"
        )
    n = X.shape[0]
    nan = float("nan")
    result = {"davies_bouldin": nan, "silhouette": nan, "calinski_harabasz": nan}
    if n == 0:
        return result
    codes, k = _encode(labels)
    if k < 2 or k >= n:
        logger.info(
            "internal indices: %d cluster(s) for %d samples; indices are undefined (NaN)", k, n
        )
        return result
    result["davies_bouldin"] = float(davies_bouldin_score(X, codes))
    result["calinski_harabasz"] = float(calinski_harabasz_score(X, codes))
    try:
        if sample_size is not None and n > sample_size:
            result["silhouette"] = float(
                silhouette_score(X, codes, sample_size=sample_size, random_state=random_state)
            )
        else:
            result["silhouette"] = float(silhouette_score(X, codes))
    except ValueError as exc:  # the subsample holds a single cluster or every point alone
        logger.info("internal indices: silhouette undefined on the subsample (%s)", exc)
    return result
