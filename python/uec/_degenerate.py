"""Warnings for degenerate data and results that would otherwise pass silently: fewer distinct
samples than clusters (identical samples must then be split, or clusters stay empty), groups of
identical samples large enough to be cut off from the kNN graph, and clusters that end a fit
with no point. scikit-learn's KMeans warns in the same situations, with
the same category."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning


def count_distinct_rows(X, knn_distances, at_least=None):
    """Number of distinct rows of X, read off its kNN: a row whose nearest other neighbour is at
    distance 0 has a duplicate; the others are distinct. Only the rows with duplicates are
    compared, so clean data costs nothing. With ``at_least``, stop early and return a lower bound
    >= at_least when it is already clear that there are that many."""
    n = X.shape[0]
    dists = np.asarray(knn_distances)
    if dists.shape[1] < 2:
        return n
    dup = np.flatnonzero(dists[:, 1] == 0.0)
    singles = n - dup.size
    if dup.size == 0 or (at_least is not None and singles >= at_least):
        return n if dup.size == 0 else singles
    if scipy.sparse.issparse(X):
        rows = X[dup].tocsr()
        rows.sum_duplicates()
        rows.sort_indices()
        seen = set()
        for i in range(rows.shape[0]):
            s, e = rows.indptr[i], rows.indptr[i + 1]
            nz = rows.data[s:e] != 0
            seen.add((rows.indices[s:e][nz].tobytes(), rows.data[s:e][nz].tobytes()))
        return singles + len(seen)
    sub = np.ascontiguousarray(X[dup])
    return singles + np.unique(sub.reshape(sub.shape[0], -1), axis=0).shape[0]


def warn_few_distinct(X, knn_distances, n_clusters):
    """Warn when X has fewer distinct samples than n_clusters."""
    distinct = count_distinct_rows(X, knn_distances, at_least=n_clusters)
    if distinct < n_clusters:
        warnings.warn(
            f"X has {distinct} distinct samples, fewer than n_clusters={n_clusters}: identical "
            f"samples will be split across clusters or some clusters will stay empty",
            ConvergenceWarning,
            stacklevel=3,
        )
    return distinct


# Share of samples with an exact copy above which the duplicates get a warning.
DUPLICATE_SHARE = 0.1


def warn_duplicates(knn_distances, n_neighbors):
    """Warn when exact duplicates are common enough to distort the graph.

    Each copy is a neighbour at distance 0 and gets membership 1, so a sample with copies has a
    narrower bandwidth for its other neighbours; with a few copies per sample the pruned graph
    falls apart into many small pieces, and samples with n_neighbors - 1 or more copies see only
    their copies. umap-learn builds the same graph (its answer is ``unique=True``). Measured: 60
    blobs points repeated 3 times gave 16 graph components and ARI 0.13 (umap-learn + k-means:
    0.28) against 1.0 without the copies."""
    dists = np.asarray(knn_distances)
    if dists.shape[1] < 2:
        return 0
    n = dists.shape[0]
    with_copy = int(np.count_nonzero(dists[:, 1] == 0.0))
    cut_off = int(np.count_nonzero(dists[:, -1] == 0.0))
    if cut_off or with_copy > DUPLICATE_SHARE * n:
        detail = (f"{cut_off} of them have at least n_neighbors - 1 = {n_neighbors - 1} copies and "
                  f"see only their copies; " if cut_off else "")
        warnings.warn(
            f"{with_copy} of the {n} samples have exact duplicates: {detail}copies shrink the "
            f"fuzzy graph's bandwidth and can cut it into small pieces, which then become "
            f"clusters (as in umap-learn). Fit on the distinct rows (np.unique(X, axis=0, "
            f"return_inverse=True)) and map the labels back with the inverse.",
            UserWarning,
            stacklevel=3,
        )
    return with_copy


def warn_empty_clusters(labels, n_clusters, labels_from):
    """Warn when some of the n_clusters have no point among the labels (``labels_from``: "S"
    or "T" for the centres' stage, None for the graph stage)."""
    used = np.unique(labels).size
    if used < n_clusters:
        why = ("the graph has too few communities" if labels_from is None
               else f"no point has them as argmax {labels_from}")
        warnings.warn(
            f"{n_clusters - used} of the n_clusters={n_clusters} clusters are empty after the fit "
            f"({why}); the data may hold fewer clusters",
            ConvergenceWarning,
            stacklevel=3,
        )
    return used
