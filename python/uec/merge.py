"""Sub-clusters merged into clusters along the kNN graph.

UEC optimises ``n_subclusters`` centres (by default three per cluster) and then merges the
sub-clusters into ``n_clusters`` clusters: greedily, always the pair whose merge increases the
modularity of the partition of the fuzzy graph the most (Newman's agglomerative rule applied to
the sub-clusters as starting groups). A true cluster that the embedding has drawn as two or
three islands, or as one long arm (in MNIST, the 1s), is strongly connected in the graph and
merges first; two classes that touch in the embedding (4 and 9) share few graph edges for their
size and stay apart. Centres alone cannot see this: with one centre per cluster, k-means-style
centres split the 4-and-9 mass along the wrong line and the clustering term then pulls the
halves together (README, "Clustering quality").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse


def merge_subclusters(labels, graph, n_clusters, n_subclusters=None):
    """Map sub-clusters to clusters by greedy modularity merges on ``graph``.

    Parameters
    ----------
    labels : int array (n_samples,)
        Sub-cluster of each point, in ``[0, n_subclusters)``.
    graph : sparse matrix (n_samples, n_samples)
        Symmetric non-negative weights (the fuzzy graph).
    n_clusters : int
        Number of clusters to merge into (<= n_subclusters).
    n_subclusters : int or None
        Number of sub-clusters (default ``labels.max() + 1``); empty ones are merged first.

    Returns
    -------
    mapping : int array (n_subclusters,)
        Cluster of each sub-cluster, in ``[0, n_clusters)``; clusters are numbered in the order
        of their smallest sub-cluster, so with ``n_clusters == n_subclusters`` the mapping is the
        identity.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    k2 = int(labels.max()) + 1 if n_subclusters is None else int(n_subclusters)
    k = int(n_clusters)
    if not 1 <= k <= k2:
        raise ValueError(f"n_clusters={k} must be between 1 and n_subclusters={k2}")
    if k == k2:
        return np.arange(k2, dtype=np.intp)
    P = scipy.sparse.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, k2))
    A = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    W = np.asarray((P.T @ A @ P).todense(), dtype=np.float64)  # weights between sub-clusters
    W = 0.5 * (W + W.T)
    vol = W.sum(axis=1)
    m2 = vol.sum()
    if not m2 > 0.0:
        m2 = 1.0  # no edges at all: every gain is 0, merges go by index
    alive = np.ones(k2, dtype=bool)
    root = np.arange(k2)
    for _ in range(k2 - k):
        # modularity gain of merging a and b (up to the factor 2 / m2): w_ab - vol_a vol_b / m2
        gain = W - np.outer(vol, vol) / m2
        gain[~(alive[:, None] & alive[None, :])] = -np.inf
        np.fill_diagonal(gain, -np.inf)
        flat = int(np.argmax(gain))  # first maximum: deterministic ties
        a, b = sorted(divmod(flat, k2))
        W[a, :] += W[b, :]
        W[:, a] += W[:, b]
        W[b, :] = 0.0
        W[:, b] = 0.0
        vol[a] += vol[b]
        vol[b] = 0.0
        alive[b] = False
        root[root == b] = a
    order = np.flatnonzero(alive)  # roots, ascending: cluster j is the j-th root
    rank = np.empty(k2, dtype=np.intp)
    rank[order] = np.arange(order.size)
    return rank[root]
