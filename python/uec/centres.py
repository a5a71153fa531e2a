"""Centres stage: the initial cluster (sub-cluster) centres in the embedding, by k-means, a
gaussian mixture, random rows or spectral clustering of the graph, or given by the user
(:func:`initial_centres`, docs/design.md §2.7). Deterministic for a fixed ``random_state``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ._validation import _as_float_matrix, _check_graph, _check_positive_int, _check_random_state
from .initialization import spectral_layout

logger = logging.getLogger(__name__)

__all__ = ["initial_centres", "CENTRE_METHODS"]

CENTRE_METHODS = ("kmeans", "gmm", "random", "spectral")


def _jitter_scale(Z):
    spread = float(np.max(Z.max(axis=0) - Z.min(axis=0))) if Z.shape[0] else 0.0
    return 1e-3 * (spread if spread > 0 else 1.0)


def _separate_duplicates(centres, Z, random_state):
    """Add a tiny jitter to repeated centres so that no two centres coincide."""
    if centres.shape[0] < 2:
        return centres
    _, first = np.unique(centres, axis=0, return_index=True)
    if first.size == centres.shape[0]:
        return centres
    dup = np.ones(centres.shape[0], dtype=bool)
    dup[first] = False
    logger.info(
        "initial centres: %d centre(s) coincide with another; adding a small jitter",
        int(dup.sum()),
    )
    centres = centres.copy()
    centres[dup] += random_state.normal(scale=_jitter_scale(Z), size=(int(dup.sum()), Z.shape[1]))
    return centres


def _random_rows(Z, k, random_state):
    """``k`` distinct random rows of Z (with replacement when Z has fewer distinct rows)."""
    n = Z.shape[0]
    if k <= n:
        idx = random_state.choice(n, size=k, replace=False)
        rows = Z[idx]
        if np.unique(rows, axis=0).shape[0] == k:
            return rows
    uniq = np.unique(Z, axis=0)
    u = uniq.shape[0]
    if u >= k:
        return uniq[random_state.choice(u, size=k, replace=False)]
    logger.warning(
        "initial centres: n_clusters=%d exceeds the %d distinct points; some centres are "
        "repeated points (slightly jittered)",
        k,
        u,
    )
    extra = uniq[random_state.choice(u, size=k - u, replace=True)]
    return np.concatenate([uniq[random_state.permutation(u)], extra])


# Above this many rows, k-means' ten restarts run on a random sample of this many rows and the
# best restart's centres are then refined by Lloyd iterations on all rows (1M points and 60
# centres: 49 s with every restart on all rows).
KMEANS_SAMPLE = 100_000


def _kmeans_centres(Z, k, random_state):
    n = Z.shape[0]
    if n <= KMEANS_SAMPLE:
        return _kmeans_labels_and_centres(Z, k, random_state)[1]
    sample = random_state.choice(n, size=KMEANS_SAMPLE, replace=False)
    _, seeds = _kmeans_labels_and_centres(Z[sample], k, random_state)
    return _kmeans_labels_and_centres(Z, k, random_state, init=seeds)[1]


def _kmeans_labels_and_centres(data, k, random_state, init=None):
    """k-means with 10 restarts, or one run of Lloyd iterations from the centres ``init``."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    if init is None:
        km = KMeans(n_clusters=k, n_init=10, random_state=random_state)
    else:
        km = KMeans(n_clusters=k, init=init, n_init=1, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km.fit(data)
    return km.labels_, km.cluster_centers_


def _spectral_centres(Z, k, graph, random_state):
    A = _check_graph(graph, name="graph")
    if A.shape[0] != Z.shape[0]:
        raise ValueError(
            f"graph with shape {A.shape} does not match Z with {Z.shape[0]} samples; "
            f"expected shape ({Z.shape[0]}, {Z.shape[0]})"
        )
    if k == 1:
        return Z.mean(axis=0, keepdims=True, dtype=np.float64)
    # k - 1 non-trivial eigenvectors: they are orthogonal to the trivial one, so k well
    # separated groups map to k distinct directions; normalising the rows (as in Ng, Jordan &
    # Weiss) removes the sqrt(degree) factor of the eigenvectors.
    emb = spectral_layout(A, k - 1, random_state)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.maximum(norms, np.finfo(np.float64).tiny)
    labels, _ = _kmeans_labels_and_centres(emb, k, random_state)
    centres = np.empty((k, Z.shape[1]))
    counts = np.bincount(labels, minlength=k)
    for j in range(k):
        if counts[j] > 0:
            centres[j] = Z[labels == j].mean(axis=0, dtype=np.float64)
        else:
            logger.info("initial centres: spectral group %d is empty; using a random point", j)
            centres[j] = Z[random_state.randint(Z.shape[0])]
    return centres


def initial_centres(method, Z, n_clusters, random_state=None, graph=None):
    """Initial cluster centres in the embedding ``Z``.

    Parameters
    ----------
    method : {"kmeans", "gmm", "random", "spectral"} or array of shape (n_clusters, dim)
        "kmeans": k-means (10 restarts) on Z (above ``KMEANS_SAMPLE`` rows the restarts run on
        a random sample of that many and the best is refined on all of Z); "gmm": means of a full-covariance gaussian
        mixture fitted on Z; "random": distinct random rows of Z; "spectral": spectral
        clustering of ``graph`` (k-means with 10 restarts on the row-normalised spectral
        embedding made of the ``n_clusters - 1`` non-trivial Laplacian eigenvectors), centres =
        means of the groups in Z.  An array is validated and used as given.
    Z : array (n_samples, dim)
        Current embedding.
    n_clusters : int
    random_state : None, int, RandomState or Generator
    graph : sparse matrix (n_samples, n_samples), required for "spectral"

    Returns
    -------
    ndarray, float32, C-contiguous, shape (n_clusters, dim)
        Centres never coincide: when there are fewer distinct points than clusters the
        repeated centres get a jitter of 1e-3 times the extent of Z.
    """
    n_clusters = _check_positive_int(n_clusters, "n_clusters")
    Z = _as_float_matrix(Z, "Z")
    n, d = Z.shape
    if n < 1:
        raise ValueError(f"Z with shape {Z.shape} is not valid; it has no samples")

    if not isinstance(method, str):
        if method is None:
            raise ValueError(
                f"centre_init=None is not valid; expected one of {list(CENTRE_METHODS)} or "
                f"an array of shape ({n_clusters}, {d})"
            )
        try:
            arr = np.array(method, dtype=np.float32, copy=True)
        except (TypeError, ValueError):
            raise ValueError(
                f"centre_init of type {type(method).__name__} is not valid; expected one of "
                f"{list(CENTRE_METHODS)} or a numeric array of shape ({n_clusters}, {d})"
            ) from None
        if arr.shape != (n_clusters, d):
            raise ValueError(
                f"centre_init array with shape {arr.shape} is not valid; expected shape "
                f"({n_clusters}, {d})"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                "centre_init array contains NaN or infinite values; all values must be finite"
            )
        return np.ascontiguousarray(arr)

    if method not in CENTRE_METHODS:
        raise ValueError(
            f"centre_init={method!r} is not valid; expected one of {list(CENTRE_METHODS)} or an "
            f"array of shape ({n_clusters}, {d})"
        )
    if method == "spectral" and graph is None:
        raise ValueError("centre_init='spectral' needs the fuzzy graph, but graph is None")

    rs = _check_random_state(random_state)
    if n_clusters > n:
        logger.warning(
            "initial centres: n_clusters=%d exceeds the number of samples %d; using every "
            "sample plus repeated (jittered) ones",
            n_clusters,
            n,
        )
        centres = _random_rows(Z, n_clusters, rs)
    elif method == "random":
        centres = _random_rows(Z, n_clusters, rs)
    elif method == "kmeans":
        centres = _kmeans_centres(Z, n_clusters, rs)
    elif method == "gmm":
        centres = _gmm_means(Z, n_clusters, rs)
    else:
        centres = _spectral_centres(Z, n_clusters, graph, rs)

    centres = np.asarray(centres, dtype=np.float64)
    centres = _separate_duplicates(centres, Z, rs)
    return np.ascontiguousarray(centres, dtype=np.float32)


def _gmm_means(Z, k, random_state):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(
        n_components=k, covariance_type="full", n_init=1, random_state=random_state
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(Z)
    except ValueError as exc:
        logger.warning(
            "initial centres: the gaussian mixture failed (%s); using k-means centres", exc
        )
        _, centres = _kmeans_labels_and_centres(Z, k, random_state)
        return centres
    return gmm.means_
