"""Graph clustering stage: Leiden communities of the fuzzy kNN graph, merged to n_clusters.

The communities are found by the Leiden algorithm (the compiled core's) maximising
modularity at resolution 1 (its standard form). When that gives at least ``n_clusters``
communities they are merged along the graph into ``n_clusters`` clusters (``uec.merge``); when
it gives fewer, the resolution is raised (bisected) until there are enough. Both the criterion
and the search were chosen on the quality suite (docs/results/quality.md).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from ._pieces import _cut, _interleave, _merge_roots, _within_merges
from .merge import _group_weights, merge_subclusters, merge_sweep

logger = logging.getLogger(__name__)

__all__ = ["leiden", "modularity", "communities", "cluster_graph", "cpm_partition",
           "estimate_n_clusters", "union_view", "view_graph", "spectral_count",
           "ClusterHierarchy"]

MAX_RESOLUTION = 1e6
BISECTION_STEPS = 40
# CPM's resolution is a weight per pair of points: fuzzy weights are at most 1 (every point
# alone above it), and 1e-7 joins every connected component of up to ~10^7 points
CPM_RESOLUTIONS = (1e-7, 1.0)
LEIDEN_ITERATIONS = 2  # iterating until stable costs several times more (docs/results/speed.md)
SPLIT_ITERATIONS = 1  # labels_at above the fit's groups: one pass splits each group
SWEEP_GROUPS = 1024  # up to this many groups labels_at merges them for every k in one sweep


class _CSR:
    """A symmetric sparse matrix as the core's Leiden reads it (indptr int64, indices int32,
    float64 weights) with its degrees, prepared once for repeated calls."""

    def __init__(self, graph):
        G = scipy.sparse.csr_matrix(graph, dtype=np.float64)
        G.sum_duplicates()
        self.n = G.shape[0]
        self.indptr = G.indptr.astype(np.int64)
        self.indices = G.indices.astype(np.int32)
        self.weights = np.ascontiguousarray(G.data, dtype=np.float64)
        self.degrees = np.bincount(np.repeat(np.arange(self.n), np.diff(self.indptr)),
                                   weights=self.weights, minlength=self.n)


def _seed(random_state):
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(random_state.randint(0, 2**31 - 1))


def leiden(graph, resolution=1.0, random_state=None, *, n_iterations=LEIDEN_ITERATIONS, _g=None,
           objective="modularity", node_weights=None):
    """Leiden partition maximising modularity (or, with ``objective="CPM"``, the constant Potts
    model) at ``resolution``, ``n_iterations`` iterations (the compiled core's Leiden, which
    releases the GIL).

    ``graph``: symmetric non-negative sparse matrix (n, n); its diagonal is ignored. The CPM
    compares each pair's weight with ``resolution * n_i * n_j``, ``n`` the ``node_weights``
    (default 1); modularity is the CPM with the degrees as node weights and ``resolution /
    W`` (``W`` the total weight, both directions). Returns int labels 0..c-1, numbered by
    first point. With an integer ``random_state`` the result is reproducible.
    """
    from . import _core

    if not (np.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution={resolution!r} must be a positive finite number")
    if objective not in ("modularity", "CPM"):
        raise ValueError(f"objective={objective!r} must be 'modularity' or 'CPM'")
    g = _CSR(graph) if _g is None else _g
    if objective == "modularity":
        total = float(g.degrees.sum())
        weights, gamma = g.degrees, float(resolution) / (total if total > 0 else 1.0)
    else:
        weights = np.ones(g.n) if node_weights is None else node_weights
        gamma = float(resolution)
    seed = _seed(random_state)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**63))
    labels = _core.leiden(g.indptr, g.indices, g.weights,
                          np.ascontiguousarray(weights, dtype=np.float64), gamma,
                          n_iterations=int(n_iterations), seed=seed)
    return labels.astype(np.intp)


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


def communities(graph, n_clusters, random_state=None, *, labels=None):
    """Leiden communities at resolution 1, or at the lowest resolution found that gives at
    least ``n_clusters`` communities when resolution 1 gives fewer.

    Returns ``(labels, resolution)``. The search doubles the resolution until the count is
    reached, then bisects (geometrically) between the last resolution with too few and the
    first with enough, stopping early when the count equals ``n_clusters``. A count above
    ``n_clusters`` is then merged down by :func:`cluster_graph`. ``labels``: the partition at
    resolution 1 for this seed when already computed (:func:`estimate_n_clusters`).
    """
    seed = _seed(random_state)
    if labels is not None and labels.max() + 1 >= n_clusters:
        return labels, 1.0
    g = _CSR(graph)
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


def cluster_graph(graph, n_clusters, random_state=None, *, labels=None):
    """Cluster the graph into ``n_clusters``: :func:`communities`, then, if there are more
    communities than ``n_clusters``, the merge along the graph of ``uec.merge``.

    Returns ``(community_labels, mapping, resolution)`` with
    ``labels == mapping[community_labels]``. Fewer than ``n_clusters`` communities happen only
    when the graph cannot be cut that finely (fewer vertices with edges than clusters); the
    mapping then leaves clusters empty, and a warning is logged.
    """
    graph = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    labels, resolution = communities(graph, n_clusters, random_state, labels=labels)
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


def cpm_partition(graph, n_clusters, random_state=None):
    """Leiden communities of the constant Potts model (CPM) with the resolution bisected
    (geometrically, in ``[CPM_RESOLUTIONS]``) to ``n_clusters``: the graph's partition at that
    count by an objective with no resolution limit, which does not prefer clusters of equal
    volume as modularity does. The refinement's second start on the data's graph
    (``uec.refine.choose_partition``, docs/design.md §2.6 step 6). When no resolution gives
    exactly ``n_clusters``, the closest count above it is merged down (``uec.merge``).

    Returns ``(community_labels, mapping, resolution)`` as :func:`cluster_graph`.
    """
    graph = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    seed = _seed(random_state)
    g = _CSR(graph)
    lo, hi = np.log(CPM_RESOLUTIONS[0]), np.log(CPM_RESOLUTIONS[1])
    above = None  # (count, labels, resolution): the fewest communities seen above n_clusters
    below = None
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        labels = leiden(graph, float(np.exp(mid)), seed, _g=g, objective="CPM")
        c = int(labels.max()) + 1
        if c == n_clusters:
            return labels, np.arange(c, dtype=np.intp), float(np.exp(mid))
        if c > n_clusters:
            hi = mid
            if above is None or c < above[0]:
                above = (c, labels, float(np.exp(mid)))
        else:
            lo = mid
            if below is None or c > below[0]:
                below = (c, labels, float(np.exp(mid)))
    if above is None:  # the graph cannot be cut that finely
        c, labels, resolution = below
        return labels, np.arange(c, dtype=np.intp), resolution
    c, labels, resolution = above
    return labels, np.asarray(merge_subclusters(labels, graph, n_clusters, c), np.intp), resolution


def union_view(X, graph, n_neighbors, n_epochs, metric="cosine", random_state=None, n_jobs=-1):
    """The graph the clusters are found on: ``graph`` (the fuzzy graph of the fit's metric)
    joined with the fuzzy graph of the same rows under a second ``metric``, by the fuzzy union
    of the maximum (each edge weighs its larger membership of the two).

    Two points are then neighbours when they are near in either view: for example the
    euclidean graph of ``UEC(metric="euclidean")`` and the cosine graph, which ignores each
    row's length (brightness, size, total counts); ``UEC(union_metric=...)``, measured on the
    quality suite and its held-out sets in docs/results/quality.md. The second graph is built
    as the first (``uec.graph.build_graph``, the same ``n_neighbors`` and pruning). For
    the cosine metric its kNN is the euclidean kNN of the rows scaled to unit length (``1 -
    cos = |u - v|^2 / 2``), so our own NN-descent searches it for dense data; a row of zeros
    stays at the origin (cosine distance 1/2 from every unit row). Returns a CSR matrix.
    """
    if metric == "cosine":
        import sklearn.preprocessing

        rows = sklearn.preprocessing.normalize(X, norm="l2")
        view = view_graph(rows, n_neighbors, n_epochs, "euclidean", random_state, n_jobs,
                          cosine=True)
    else:
        view = view_graph(X, n_neighbors, n_epochs, metric, random_state, n_jobs)
    joined = scipy.sparse.csr_matrix(graph).maximum(view).tocsr()
    joined.sort_indices()
    return joined


def view_graph(rows, n_neighbors, n_epochs, metric="euclidean", random_state=None, n_jobs=-1,
               cosine=False):
    """The fuzzy kNN graph of ``rows`` under ``metric``, built as the fit's own
    (``uec.graph.build_graph``, the same ``n_neighbors`` and pruning): :func:`union_view`'s
    second view, and the whitened view of ``uec.refine.choose_partition``. ``cosine``: the
    rows are unit length and their euclidean distances become cosine distances."""
    from .graph import build_graph, knn_threads
    from .neighbours import nearest_neighbors

    k = int(n_neighbors)
    n_jobs = knn_threads(rows, metric, random_state, n_jobs)
    indices, distances = nearest_neighbors(rows, k, metric, random_state, n_jobs)
    if cosine:
        distances = (0.5 * distances.astype(np.float64) ** 2).astype(np.float32)
    view, _, _ = build_graph(None, k, n_epochs, knn=(indices, distances),
                             random_state=random_state, n_jobs=n_jobs)
    return scipy.sparse.csr_matrix(view)


def spectral_count(W, floor=1):
    """Number of clusters among ``c`` groups by the eigengap of their graph: ``W`` (c, c) the
    graph weight between groups (the diagonal the weight inside each), and the chosen count
    the ``k`` in ``[2, c - 1]`` after which the eigenvalues of ``D^-1/2 W D^-1/2`` drop the
    most (first maximum), as spectral clustering reads the number of clusters off the
    spectrum. The groups cannot be told apart more finely than ``c``; ``floor`` (the number of
    connected components, which no partition may join) bounds the count from below, and a
    count of 1 or 2 groups is returned as it is.
    """
    W = np.asarray(W, dtype=np.float64)
    c = W.shape[0]
    if c <= 2:
        return c
    d = W.sum(axis=1)
    d = np.where(d > 0.0, d, 1.0)
    ev = np.linalg.eigvalsh(W / np.sqrt(np.outer(d, d)))[::-1]
    gaps = ev[1:c - 1] - ev[2:c]  # the drop after the 2nd, ..., (c-1)-th eigenvalue
    k = int(np.argmax(gaps)) + 2
    return int(min(c, max(k, floor)))


def estimate_n_clusters(graph, random_state=None):
    """The number of clusters of the graph, with the communities it was read from.

    The Leiden communities at resolution 1 (modularity's optimum) bound the count from above;
    it is then read off the eigengap of the graph between them (:func:`spectral_count`), at
    least the number of connected components of the graph. Chosen on the quality suite against
    the modularity optimum itself and the eigengap of the whole graph
    (docs/results/unknown_k.md). Returns ``(k, labels)``, ``labels`` the communities at
    resolution 1, which :func:`cluster_graph` takes to merge them into ``k`` clusters.
    """
    graph = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    labels = leiden(graph, 1.0, _seed(random_state))
    c = int(labels.max()) + 1
    n_comp = scipy.sparse.csgraph.connected_components(graph, directed=False)[0]
    k = spectral_count(_group_weights(labels, graph, c), floor=n_comp)
    logger.info("n_clusters=None: %d clusters by the eigengap between %d Leiden communities "
                "(%d connected components)", k, c, n_comp)
    return k, labels


class ClusterHierarchy:
    """The partition of a fit at any number of clusters, without a refit.

    Built from the fit's groups (the Leiden communities, or the sub-clusters of the centre
    stage) and the fuzzy graph. For ``k`` up to the number of groups, ``labels_at(k)`` merges
    the groups by the fit's own rule (``uec.merge.merge_subclusters``, from the group weights
    stored once), so that at the fitted k it gives the fitted labels. For more clusters than
    groups, each group is first split into its own Leiden communities (resolution 1 of the
    graph restricted to the group, one Leiden iteration: computed once, at the first such
    call), and the pieces are
    merged back within their group, greedily by modularity gain (pairs that share graph weight
    first); ``labels_at(k)`` then undoes the last merges of that sequence, so the partitions
    above the number of groups are nested in each other and in the groups.

    Attributes
    ----------
    group_labels : int array (n_samples,)
        Group of each training point.
    n_groups : int
    merges : int array (m, 2) or None
        Once computed: the merges of the split pieces, in order (``(a, b)``: piece ``b``
        joined to piece ``a``, numbered as in ``piece_labels``).
    piece_labels : int array (n_samples,) or None
        Once computed: piece of each point.
    refined : (int, int array (n_samples,)) or None
        The fit's count and labels when ``uec.refine`` moved them off the groups' merge:
        ``labels_at`` returns those labels at that count.
    """

    def __init__(self, group_labels, graph, random_state=None, positions=None, n_groups=None):
        self.group_labels = np.asarray(group_labels, dtype=np.intp)
        if n_groups is None:
            n_groups = int(self.group_labels.max()) + 1 if self.group_labels.size else 0
        self.n_groups = int(n_groups)
        self._graph = graph  # the fit's own matrix (graph_): kept by reference, not copied
        self._positions = positions
        self._seed = _seed(random_state)
        self.merges = None
        self.piece_labels = None
        self.refined = None  # (k, labels): the fit's labels at its own k (uec.refine)
        self._mappings = None
        self._piece_roots = None

    @property
    def max_clusters(self):
        """The largest k for which :meth:`labels_at` has a partition (computes the pieces)."""
        self._split()
        return int(self.piece_labels.max()) + 1 if self.piece_labels.size else 0

    def mapping_at(self, n_clusters):
        """Cluster of each group for ``n_clusters <= n_groups`` (the fit's merge rule)."""
        k = int(n_clusters)
        if not 1 <= k <= self.n_groups:
            raise ValueError(f"n_clusters={n_clusters!r} must be between 1 and the number of "
                             f"groups, {self.n_groups}")
        if self._mappings is None:
            G = scipy.sparse.csr_matrix(self._graph, dtype=np.float64)
            if self.n_groups <= SWEEP_GROUPS:  # every k at once: the merges are one sequence
                self._mappings = merge_sweep(self.group_labels, G, range(1, self.n_groups + 1),
                                             self.n_groups, positions=self._positions)
            else:  # many sub-clusters: k by k, nothing O(n_groups^2) kept
                return merge_subclusters(self.group_labels, G, k, self.n_groups,
                                         positions=self._positions)
        return self._mappings[k].copy()

    def __getstate__(self):
        # the caches are recomputed on demand; the pieces and their merges (the stored tree) stay
        state = dict(self.__dict__)
        state["_mappings"] = state["_piece_roots"] = None
        return state

    def labels_at(self, n_clusters):
        """Cluster of each training point with ``n_clusters`` clusters (int array, 0..k-1)."""
        if isinstance(n_clusters, (bool, np.bool_)) or not isinstance(n_clusters, (int, np.integer)):
            raise ValueError(f"n_clusters={n_clusters!r} must be an integer")
        k = int(n_clusters)
        refined = getattr(self, "refined", None)
        if refined is not None and k == refined[0]:
            return refined[1].copy()
        if 1 <= k <= self.n_groups:
            return self.mapping_at(k)[self.group_labels]
        top = self.max_clusters
        if not 1 <= k <= top:
            raise ValueError(f"n_clusters={k} must be between 1 and {top} (the fit's groups "
                             f"split into their own communities)")
        if self._piece_roots is None:
            self._piece_roots = _merge_roots(self.merges, top, len(self.merges))
        return _cut(self.piece_labels, self.merges, k, self._piece_roots)

    def _split(self):
        if self.piece_labels is not None:
            return
        G = scipy.sparse.csr_matrix(self._graph, dtype=np.float64)
        groups = self.group_labels
        deg = np.asarray(G.sum(axis=1)).ravel()
        m2 = float(deg.sum()) if deg.sum() > 0 else 1.0
        inner = _inner_edges(G, groups)
        local = split_groups(G, groups, self.n_groups, self._seed, _inner=inner)
        # pieces numbered group by group (a group's pieces are contiguous)
        n_local = np.zeros(self.n_groups, dtype=np.intp)
        np.maximum.at(n_local, groups, local + 1)
        first = np.concatenate([[0], np.cumsum(n_local)[:-1]])
        pieces = local + first[groups]
        n_pieces = int(n_local.sum())
        row, col, w = inner  # pieces of one group: only edges inside groups join them
        if n_pieces <= SWEEP_GROUPS:  # small: one dense matrix, sliced without sparse overhead
            W_all = np.bincount(pieces[row] * n_pieces + pieces[col], weights=w,
                                minlength=n_pieces * n_pieces).reshape(n_pieces, n_pieces)
        else:
            W_all = scipy.sparse.csr_matrix((w, (pieces[row], pieces[col])),
                                            shape=(n_pieces, n_pieces))
        W_all = 0.5 * (W_all + W_all.T)
        vol_all = np.bincount(pieces, weights=deg, minlength=n_pieces)
        sequences = []  # per group: its merges (global piece numbers) and their gains
        for g in range(self.n_groups):
            lo, p = int(first[g]), int(n_local[g])
            if p > 1:
                W = W_all[lo:lo + p, lo:lo + p]
                W = W if isinstance(W, np.ndarray) else W.toarray()
                sequences.append([(gain, a + lo, b + lo)
                                  for gain, a, b in _within_merges(W, vol_all[lo:lo + p], m2)])
        self.piece_labels = pieces
        self.merges = _interleave(sequences)


def _inner_edges(graph, groups):
    """The entries of a sparse matrix whose two ends lie in one group: (row, col, float64
    weight), both directions of each edge, in the matrix's order."""
    C = scipy.sparse.coo_matrix(graph)
    keep = groups[C.row] == groups[C.col]
    return C.row[keep], C.col[keep], C.data[keep].astype(np.float64)


def split_groups(graph, groups, n_groups, random_state=None, n_iterations=SPLIT_ITERATIONS, *,
                 _inner=None):
    """Each group's own Leiden communities (modularity at resolution 1 of the graph restricted
    to the group).

    All groups share one Leiden call: the edges between groups are dropped and the run
    maximises the constant Potts model with node weight ``d_i / sqrt(W_g)`` (``d_i`` the
    within-group degree, ``W_g`` the group's total weight): within a group its terms ``A_ij -
    d_i d_j / W_g`` are that group's modularity times ``W_g``, and no community can span two
    groups (they are not connected), so the optimum is each group's modularity optimum. Groups
    of at most two points or without inner edges stay one piece. Returns each point's piece
    within its group, 0..p-1, numbered by first point. ``_inner``: :func:`_inner_edges` of the
    graph and groups, when already computed.
    """
    groups = np.asarray(groups, dtype=np.intp)
    n = groups.shape[0]
    row, col, w = _inner_edges(graph, groups) if _inner is None else _inner
    d = np.bincount(row, weights=w, minlength=n)  # within-group degree
    W_g = np.bincount(groups, weights=d, minlength=n_groups)
    sizes = np.bincount(groups, minlength=n_groups)
    splittable = (sizes > 2) & (W_g > 0)
    membership = np.full(n, -1, dtype=np.intp)  # -1: one piece (relabelled 0 below)
    if splittable.any():
        # only the splittable groups' points, renumbered in index order
        inside = splittable[groups]
        points = np.flatnonzero(inside)
        renum = np.cumsum(inside) - 1
        node_w = (d / np.sqrt(np.where(W_g > 0, W_g, 1.0))[groups])[points]
        e = inside[row]
        sub = scipy.sparse.csr_matrix((w[e], (renum[row[e]], renum[col[e]])),
                                      shape=(points.size, points.size))
        membership[points] = leiden(sub, 1.0, _seed(random_state), objective="CPM",
                                    n_iterations=n_iterations, node_weights=node_w)
    # renumber within each group by first appearance
    key = groups.astype(np.int64) * (int(membership.max()) + 2) + (membership + 1)
    _, first_idx, inverse = np.unique(key, return_index=True, return_inverse=True)
    key_group = groups[first_idx]
    order = np.lexsort((first_idx, key_group))  # keys by group, then by first point
    sorted_groups = key_group[order]
    rank = np.empty(order.size, dtype=np.intp)
    rank[order] = np.arange(order.size) - np.searchsorted(sorted_groups, sorted_groups)
    return rank[inverse.ravel()]
