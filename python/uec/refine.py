"""The graph stage's labels refined by a Gaussian mixture in the space of X, where one is
identifiable (``UEC(refine="auto")``): EM started at the graph's partition, each point then
choosing among the clusters it touches in the graph. Why and how: docs/design.md §2.6."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse

from ._mixture import GaussianEM, weighted_log_density
from .community import modularity

logger = logging.getLogger(__name__)

__all__ = ["mixture_parameters", "identifiable", "identifiable_shape", "gaussian_refine",
           "choose_partition", "whiten", "vuong_z", "fit_mixture", "mixture_labels",
           "sample_rows", "startable", "split_gain"]

# EM runs on at most this many rows (a fixed-seed sample, which must itself be at least the
# mixture's parameter count); every row is then labelled by the fitted mixture
REFINE_SAMPLE = 50_000
REG_COVAR = 1e-6  # added to each covariance's diagonal, times the mean variance of the features
MAX_ITER = 1000
PREDICT_ROWS = 65_536
TOL = 1e-6  # on the mean log-likelihood per row: EM crawls along long, close clusters
# the whitened view's partition is taken when its mixture is the more likely at the two-sided
# 5% level of Vuong's test (the standard normal's 97.5% quantile)
SWITCH_Z = 1.959963984540054


def mixture_parameters(n_clusters, n_features):
    """Free parameters of a mixture of ``n_clusters`` Gaussians with full covariances in
    ``n_features`` dimensions: means, covariances and the weights (which sum to 1)."""
    k, d = int(n_clusters), int(n_features)
    return k * (d + d * (d + 1) // 2) + k - 1


def identifiable(X, n_clusters):
    """Whether ``refine="auto"`` refines a partition of X into ``n_clusters``: X dense, at
    least two clusters, and no more mixture parameters than the rows EM is fitted on."""
    return identifiable_shape(X.shape[0], X.shape[1], n_clusters, scipy.sparse.issparse(X))


def identifiable_shape(n_samples, n_features, n_clusters, sparse=False):
    """:func:`identifiable` from X's size alone (the memory check's view of a fit)."""
    if sparse or int(n_clusters) < 2:
        return False
    return mixture_parameters(n_clusters, n_features) <= min(int(n_samples), REFINE_SAMPLE)


def sample_rows(n_samples, random_state=0):
    """The rows EM is fitted on: all of them, or a fixed-seed sample of ``REFINE_SAMPLE``
    (sorted) when there are more; the graph stage builds the whitened start on the same."""
    n = int(n_samples)
    if n <= REFINE_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, REFINE_SAMPLE, replace=False))


def gaussian_refine(X, labels, n_clusters, random_state=0, graph=None):
    """Labels of X after EM of a full-covariance Gaussian mixture started at the partition
    ``labels`` (0..n_clusters-1): component j starts at cluster j's share of the rows, mean
    and covariance, so the numbering is kept. Returns ``None`` (keep ``labels``) when X is not
    :func:`identifiable`, a cluster has fewer rows than ``n_features + 1`` (its covariance
    would be singular), EM fails, or a cluster ends empty. ``random_state`` draws the sample
    when X has more than ``REFINE_SAMPLE`` rows (EM itself is deterministic from its start).
    """
    fitted = fit_mixture(X, labels, n_clusters, random_state)
    if fitted is None:
        return None
    return mixture_labels(fitted, X, labels, graph)


def choose_partition(X, candidates, n_clusters, random_state=0):
    """The refinement of the best of several starting partitions. ``candidates``: the default
    ``(labels, graph)`` (the graph stage's partition of the data's graph), then alternatives
    ``(labels, graph, rule)``, each compared with the best so far:

    - ``rule="restart"``: another partition of the same graph (``graph`` given:
      :func:`uec.community.cpm_partition`'s). Taken only when it is the better start by both
      objectives at hand: its mixture's mean log-likelihood is higher by more than EM's
      tolerance (``TOL``; below it the two are one optimum as far as EM can tell), **and** its
      refined labels have the higher modularity on the graph (the graph stage's own
      objective). The likelihood alone prefers a partition that isolates a small dense
      island and joins two classes (docs/design.md §2.6 step 6).
    - ``rule="view"`` (the default for a pair): the partition of another view's graph (that
      of :func:`whiten`'s rows), taken only when its mixture is the more likely by Vuong's
      test for two non-nested models of equal size at the two-sided 5% level
      (:func:`vuong_z` > ``SWITCH_Z``).

    EM runs from each start in the space of X. An alternative's labels may cover only
    :func:`sample_rows` (a start made on the sample, with ``graph`` None): when it is taken,
    every row then takes its most likely component. Returns ``(index, labels)``: the candidate
    taken, and its refined labels (None: that candidate's graph labels as they are)."""
    first = fit_mixture(X, candidates[0][0], n_clusters, random_state)
    if first is None:
        return 0, None

    def refine_with(i, fitted):
        labels, graph = candidates[i][:2]
        return mixture_labels(fitted, X, labels if graph is not None else None, graph)

    best, fitted, refined = 0, first, None  # refined: the best start's, once computed
    for i, cand in enumerate(candidates[1:], start=1):
        rule = cand[2] if len(cand) > 2 else "view"
        if _same_partition(first[2], candidates[best][0], cand[0]):
            continue  # the same partition, renumbered or not, gives the same mixture
        other = fit_mixture(X, cand[0], n_clusters, random_state)
        if other is None:
            continue
        if rule == "restart":
            gain = float(other[0].score(other[1]) - fitted[0].score(fitted[1]))
            taken, mine = False, None
            if gain > TOL:
                if refined is None:
                    refined = refine_with(best, fitted)
                mine = refine_with(i, other)
                current = candidates[best][0] if refined is None else refined
                taken = mine is not None and (modularity(cand[1], mine)
                                              > modularity(cand[1], current))
            logger.info("refine: EM from the CPM partition against the default's: mean "
                        "log-likelihood %+.3g, %s", gain, "taken" if taken else "not taken")
            if taken:
                best, fitted, refined = i, other, mine
        else:
            z = vuong_z(fitted[0].score_samples(fitted[1]), other[0].score_samples(fitted[1]))
            logger.info("refine: the whitened view's mixture against the data's: Vuong z = "
                        "%.2f", z)
            if z > SWITCH_Z:
                best, fitted, refined = i, other, None
    if refined is None:
        refined = refine_with(best, fitted)
    if refined is None and best > 0:  # a cluster emptied: the default's refinement
        best, refined = 0, refine_with(0, first)
    return best, refined


def _same_partition(rows, a, b):
    """Whether labels ``a`` and ``b`` (each of every row, or of ``rows`` only) group ``rows``
    alike, whatever their numbering."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    a = a if a.shape[0] == rows.shape[0] else a[rows]
    b = b if b.shape[0] == rows.shape[0] else b[rows]
    if a.shape != b.shape:
        return False
    pairs = np.unique(a * (int(b.max()) + 1) + b).shape[0]
    return pairs == np.unique(a).shape[0] == np.unique(b).shape[0]


def vuong_z(loglik_a, loglik_b):
    """Vuong's statistic for two non-nested models of the same size, from each row's log
    likelihood under either: sqrt(n) times the mean of their differences (b - a) over its
    standard deviation; large and positive when b is the closer model. 0 when they agree on
    every row."""
    diff = np.asarray(loglik_b, dtype=np.float64) - np.asarray(loglik_a, dtype=np.float64)
    sd = float(diff.std())
    if not np.isfinite(sd) or sd == 0.0:
        return 0.0
    return float(np.sqrt(diff.shape[0]) * diff.mean() / sd)


def whiten(X):
    """X's rows centred, rotated onto the eigenvectors of its covariance and each coordinate
    scaled to unit variance (directions of no variance dropped), as float32: the view in which
    no one direction (an overall size or composition that every feature shares) outweighs the
    others. Both moments are accumulated over blocks of rows in float64."""
    n, d = X.shape
    mean = np.zeros(d)
    for lo in range(0, n, PREDICT_ROWS):
        mean += np.asarray(X[lo:lo + PREDICT_ROWS], dtype=np.float64).sum(axis=0)
    mean /= n
    C = np.zeros((d, d))
    for lo in range(0, n, PREDICT_ROWS):
        B = np.asarray(X[lo:lo + PREDICT_ROWS], dtype=np.float64) - mean
        C += B.T @ B
    vals, vecs = np.linalg.eigh(C / n)
    keep = vals > max(float(vals.max()), 0.0) * d * np.finfo(np.float64).eps
    if not keep.any():
        return np.zeros((n, 1), dtype=np.float32)
    scale = vecs[:, keep] / np.sqrt(vals[keep])
    out = np.empty((n, int(keep.sum())), dtype=np.float32)
    for lo in range(0, n, PREDICT_ROWS):
        out[lo:lo + PREDICT_ROWS] = (np.asarray(X[lo:lo + PREDICT_ROWS], dtype=np.float64)
                                     - mean) @ scale
    return out


def startable(X, labels, n_clusters, random_state=0):
    """Whether EM can start at ``labels`` (of every row, or of :func:`sample_rows` only): X
    :func:`identifiable`, labels in 0..n_clusters-1, and each cluster with at least
    ``n_features + 1`` of the sample's rows (else its covariance is singular)."""
    k = int(n_clusters)
    labels = np.asarray(labels, dtype=np.intp)
    if not identifiable(X, k) or labels.min() < 0:
        return False
    rows = sample_rows(X.shape[0], random_state)
    ls = labels if labels.shape[0] == rows.shape[0] else labels[rows]
    counts = np.bincount(ls, minlength=k)
    return counts.shape[0] <= k and counts.min() >= X.shape[1] + 1


def split_gain(X, labels, n_clusters, random_state=0):
    """BIC's case for two Gaussians per cluster over one, in nats per row (of
    :func:`sample_rows`): the classification log-likelihood gained when every cluster of
    ``labels`` that can be is cut in two (2-means in the coordinates of X, where the graph was
    built, started across its first principal axis; each half its own full-covariance
    Gaussian and weight), less half the added parameters times log(n). Positive when BIC
    prefers the cut: the clusters are not one Gaussian each, and EM of the k-component
    mixture would move their boundaries for the model's sake (docs/design.md §2.6 step 6). A
    cluster that is not cut into two halves of at least ``n_features + 1`` rows each, or
    whose covariance is singular even with ``REG_COVAR``, is left whole."""
    labels = np.asarray(labels, dtype=np.intp)
    rows = sample_rows(X.shape[0], random_state)
    Xs = np.asarray(X[rows], dtype=np.float64)
    ls = labels if labels.shape[0] == rows.shape[0] else labels[rows]
    n, d = Xs.shape
    reg = _reg_covar(Xs)
    gain, added = 0.0, 0
    for j in range(int(n_clusters)):
        Z = Xs[ls == j]
        m = Z.shape[0]
        if m < 2 * (d + 1):
            continue
        halves = _two_means(Z)
        counts = np.bincount(halves, minlength=2)
        if counts.min() < d + 1:
            continue
        try:
            gain += sum(_gaussian_loglik(Z[halves == h], reg) + counts[h] * np.log(counts[h] / m)
                        for h in range(2)) - _gaussian_loglik(Z, reg)
        except np.linalg.LinAlgError:
            continue
        added += mixture_parameters(2, d) - mixture_parameters(1, d)
    return float((gain - 0.5 * added * np.log(n)) / n)


def _two_means(Z):
    """Z's rows cut in two by Lloyd's 2-means started at the two sides of the plane through
    their mean normal to their first principal axis (no random start): 0/1 per row."""
    from .centres import _kmeans_labels_and_centres

    D = Z - Z.mean(axis=0)
    axis = np.linalg.eigh(D.T @ D)[1][:, -1]
    side = D @ axis > 0
    if side.all() or not side.any():
        return side.astype(np.intp)
    init = np.stack([Z[~side].mean(axis=0), Z[side].mean(axis=0)])
    return _kmeans_labels_and_centres(Z, 2, 0, init=init)[0].astype(np.intp)


def _reg_covar(Xs):
    """The covariances' added diagonal: ``REG_COVAR`` times the mean variance of the features."""
    return REG_COVAR * max(float(Xs.var(axis=0).mean()), np.finfo(np.float64).tiny)


def _gaussian_loglik(Z, reg):
    """Log-likelihood of the rows Z under their own Gaussian (mean, biased covariance plus
    ``reg`` on its diagonal)."""
    from scipy.linalg import solve_triangular

    m, d = Z.shape
    L = np.linalg.cholesky(np.cov(Z, rowvar=False, bias=True).reshape(d, d) + reg * np.eye(d))
    Y = solve_triangular(L, (Z - Z.mean(axis=0)).T, lower=True)
    return float(-np.log(np.diag(L)).sum() * m
                 - 0.5 * (np.einsum("ij,ij->", Y, Y) + m * d * np.log(2.0 * np.pi)))


def fit_mixture(X, labels, n_clusters, random_state=0):
    """EM of the mixture started at ``labels`` (of every row, or of :func:`sample_rows` only):
    ``(gmm, Xs, rows)`` with the rows it was fitted on (:func:`sample_rows`) in float64, or
    None where :func:`gaussian_refine` keeps the labels."""
    k = int(n_clusters)
    if not startable(X, labels, k, random_state):
        return None
    labels = np.asarray(labels, dtype=np.intp)
    n, d = X.shape
    rows = sample_rows(n, random_state)
    Xs = np.asarray(X[rows], dtype=np.float64)
    ls = labels if labels.shape[0] == rows.shape[0] else labels[rows]
    counts = np.bincount(ls, minlength=k)
    reg = _reg_covar(Xs)
    means = np.zeros((k, d))
    covariances = np.zeros((k, d, d))
    for j in range(k):
        Xj = Xs[ls == j]
        means[j] = Xj.mean(axis=0)
        covariances[j] = np.cov(Xj, rowvar=False, bias=True).reshape(d, d) + reg * np.eye(d)
    try:
        gmm = GaussianEM(reg_covar=reg, tol=TOL, max_iter=MAX_ITER).fit(
            Xs, counts / counts.sum(), means, covariances)
    except (np.linalg.LinAlgError, ValueError) as exc:
        logger.info("refine: EM from the graph's partition failed (%s); the graph's labels kept",
                    exc)
        return None
    return gmm, Xs, rows


def mixture_labels(fitted, X, labels, graph=None):
    """Every row of X labelled by :func:`fit_mixture`'s ``fitted`` mixture, each choosing
    among the clusters it touches in ``graph`` (when given) under the start ``labels`` (of
    every row; None: each row takes its most likely component); None when a cluster ends
    empty."""
    gmm, Xs, _ = fitted
    n = X.shape[0]
    k = gmm.means_.shape[0]
    touch = None
    if graph is not None:
        labels = np.asarray(labels, dtype=np.intp)
        # a point may only take a cluster it already touches in the graph (its own, or one
        # of its neighbours'): the graph says which clusters are candidates, the mixture
        # chooses among them
        G = scipy.sparse.csr_matrix(graph)
        own = scipy.sparse.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, k))
        touch = (G @ own + own).tocsr()  # sparse: k may be large
    refined = np.empty(n, dtype=np.intp)
    for lo in range(0, n, PREDICT_ROWS):  # rows in float64 a block at a time
        hi = min(n, lo + PREDICT_ROWS)
        block = Xs[lo:hi] if Xs.shape[0] == n else np.asarray(X[lo:hi], dtype=np.float64)
        logp = weighted_log_density(gmm, block)
        if touch is not None:
            logp = np.where(touch[lo:hi].toarray() > 0, logp, -np.inf)
        refined[lo:hi] = np.argmax(logp, axis=1)
    if np.bincount(refined, minlength=k).min() == 0:
        logger.info("refine: EM emptied a cluster; the graph's labels kept")
        return None
    moved = "-" if labels is None else int(np.count_nonzero(refined != labels))
    logger.info("refine: a %d-component Gaussian mixture (%d EM iterations) moved %s of %d "
                "points", k, gmm.n_iter_, moved, n)
    return refined
