"""Graph clustering stage: Leiden communities of the fuzzy kNN graph, merged to n_clusters.

The communities are found by the Leiden algorithm (igraph's C implementation) maximising
modularity at resolution 1 (its standard form). When that gives at least ``n_clusters``
communities they are merged along the graph into ``n_clusters`` clusters (``uec.merge``); when
it gives fewer, the resolution is raised (bisected) until there are enough. Both the criterion
and the search were chosen on the quality suite (docs/results/quality.md).
"""

from __future__ import annotations

import logging
import random

import numpy as np
import scipy.sparse

from .merge import merge_subclusters

logger = logging.getLogger(__name__)

__all__ = ["leiden", "modularity", "communities", "cluster_graph"]

MAX_RESOLUTION = 1e6
BISECTION_STEPS = 40
LEIDEN_ITERATIONS = 2  # igraph's default; iterating until stable costs 5x on MNIST


def _igraph(graph):
    """Undirected weighted igraph.Graph of the upper triangle of a symmetric sparse matrix."""
    try:
        import igraph
    except ImportError as exc:  # a declared dependency; this only guards broken installs
        raise ImportError("the graph clustering stage needs igraph (pip install igraph)") from exc
    upper = scipy.sparse.triu(scipy.sparse.csr_matrix(graph), k=1).tocoo()
    # pairs of Python ints: igraph reads these four times faster than a NumPy edge array
    edges = zip(upper.row.tolist(), upper.col.tolist())
    return igraph.Graph(graph.shape[0], edges=edges,
                        edge_attrs={"weight": upper.data.astype(np.float64).tolist()})


def _seed(random_state):
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(random_state.randint(0, 2**31 - 1))


def leiden(graph, resolution=1.0, random_state=None, *, _g=None):
    """Leiden partition maximising modularity at ``resolution`` (igraph, ``LEIDEN_ITERATIONS``
    iterations).

    ``graph``: symmetric non-negative sparse matrix (n, n). Returns int labels 0..c-1. With an
    integer ``random_state`` the result is reproducible: igraph draws from a ``random.Random``
    of that seed for this call, and its default generator is restored afterwards.
    """
    import igraph

    if not (np.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution={resolution!r} must be a positive finite number")
    g = _igraph(graph) if _g is None else _g
    seed = _seed(random_state)
    igraph.set_random_number_generator(random.Random(seed))
    try:
        part = g.community_leiden(objective_function="modularity", weights="weight",
                                  resolution=float(resolution),
                                  n_iterations=LEIDEN_ITERATIONS)
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.intp)


def modularity(graph, labels, resolution=1.0):
    """Newman's modularity of ``labels`` on the weighted graph, in float64:
    sum_c [ w_in(c) / W - resolution * (vol(c) / W)^2 ], W the total weight (both directions)."""
    G = scipy.sparse.coo_matrix(graph)
    labels = np.asarray(labels)
    deg = np.bincount(G.row, weights=G.data.astype(np.float64), minlength=G.shape[0])
    total = deg.sum()
    if total <= 0:
        return 0.0
    inside = G.data[labels[G.row] == labels[G.col]].astype(np.float64).sum()
    vol = np.bincount(labels, weights=deg)
    return float(inside / total - resolution * np.sum((vol / total) ** 2))


def communities(graph, n_clusters, random_state=None):
    """Leiden communities at resolution 1, or at the lowest resolution found that gives at
    least ``n_clusters`` communities when resolution 1 gives fewer.

    Returns ``(labels, resolution)``. The search doubles the resolution until the count is
    reached, then bisects (geometrically) between the last resolution with too few and the
    first with enough, stopping early when the count equals ``n_clusters``. A count above
    ``n_clusters`` is then merged down by :func:`cluster_graph`.
    """
    g = _igraph(graph)
    seed = _seed(random_state)
    labels = leiden(graph, 1.0, seed, _g=g)
    if labels.max() + 1 >= n_clusters:
        return labels, 1.0
    lo, hi = 1.0, 2.0
    while True:
        labels = leiden(graph, hi, seed, _g=g)
        if labels.max() + 1 >= n_clusters or hi >= MAX_RESOLUTION:
            break
        lo, hi = hi, hi * 2.0
    best = (labels, hi)
    for _ in range(BISECTION_STEPS):
        if best[0].max() + 1 == n_clusters:
            break
        mid = float(np.sqrt(lo * hi))
        labels = leiden(graph, mid, seed, _g=g)
        if labels.max() + 1 >= n_clusters:
            hi, best = mid, (labels, mid)
        else:
            lo = mid
    return best


def cluster_graph(graph, n_clusters, random_state=None):
    """Cluster the graph into ``n_clusters``: :func:`communities`, then, if there are more
    communities than ``n_clusters``, the merge along the graph of ``uec.merge``.

    Returns ``(community_labels, mapping, resolution)`` with
    ``labels == mapping[community_labels]``. Fewer than ``n_clusters`` communities happen only
    when the graph cannot be cut that finely (fewer vertices with edges than clusters); the
    mapping then leaves clusters empty, and a warning is logged.
    """
    graph = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    labels, resolution = communities(graph, n_clusters, random_state)
    n_comm = int(labels.max()) + 1
    if n_comm > n_clusters:
        mapping = merge_subclusters(labels, graph, n_clusters, n_comm)
    else:
        mapping = np.arange(n_comm, dtype=np.intp)
        if n_comm < n_clusters:
            logger.warning("the graph gave only %d communities for n_clusters=%d (resolution "
                           "%.3g); %d clusters are empty", n_comm, n_clusters, resolution,
                           n_clusters - n_comm)
    logger.info("Leiden: %d communities at resolution %.3g, merged into %d clusters",
                n_comm, resolution, n_clusters)
    return labels, np.asarray(mapping, dtype=np.intp), resolution
