"""Groups (sub-clusters or communities) merged into clusters along the kNN graph.

Greedy agglomeration by modularity gain (Newman's rule), connected pairs before unconnected
ones, after ``split_disconnected`` has cut each group into its connected pieces;
``refine_mapping`` revisits the joins past modularity's optimum, and when more than
``MIXED_WEIGHT`` of the weight runs between the groups there, the remaining joins are made by
``ward_merge`` and ``ratio_merge`` and the partition cutting less weight is kept. Each rule and
the measurements behind it: docs/design.md §2.6 and §2.6.1.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

logger = logging.getLogger(__name__)


def merge_subclusters(labels, graph, n_clusters, n_subclusters=None, refine=True,
                      positions=None, weights=None):
    """Map sub-clusters to clusters by greedy modularity merges on ``graph``, then local moves.

    Each step merges the pair with the largest modularity gain among the pairs that share
    graph weight; pairs that share none are merged (by the same gain) only when no connected
    pair is left, so a connected component of the graph is never cut while another is joined.
    With ``refine``, when some merges had to lower modularity (more groups than ``n_clusters``
    at its optimum), the groups as they stood before the first such merge are then moved
    between clusters by :func:`refine_mapping` as units: the joins that lowered modularity are
    revisited, every join that raised it stays.

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
    refine : bool
        Revisit the merges past modularity's optimum: :func:`refine_mapping` on the greedy
        result, then the partition of the same groups by :func:`ratio_merge` or, with
        ``positions``, :func:`ward_merge` (of the two the one that keeps more graph weight
        within its clusters; Ward's on a tie) is taken if it cuts less than ``CUT_RATIO`` of
        the weight the refined partition cuts. When the groups at modularity's optimum are not
        communities (more than ``MIXED_WEIGHT`` of the graph's weight runs between them), the
        merges past it are made by that partition instead, whatever ``refine``.
    positions : float array (n_subclusters, d) or None
        Where each sub-cluster lies in the embedding (its points' mean), for Ward's criterion.
    weights : float array (n_subclusters, n_subclusters) or None
        The graph weight between sub-clusters when already summed (``_group_weights``); then
        ``graph`` is not read. Not modified.

    Returns
    -------
    mapping : int array (n_subclusters,)
        Cluster of each sub-cluster, in ``[0, n_clusters)``; clusters are numbered in the order
        of their smallest sub-cluster, so with ``n_clusters == n_subclusters`` the mapping is the
        identity.
    """
    k = int(n_clusters)
    return merge_sweep(labels, graph, [k], n_subclusters, refine, positions, weights)[k]


def merge_sweep(labels, graph, ks, n_subclusters=None, refine=True, positions=None,
                weights=None):
    """:func:`merge_subclusters` for every ``k`` of ``ks`` at once: ``{k: mapping}``, each
    equal to ``merge_subclusters(..., k, ...)``. The greedy merges (and those of the other
    rules) are the same sequence whatever k, so each runs once, down to the smallest k; only
    the refinement is made per k."""
    labels = np.asarray(labels)
    k2 = int(labels.max()) + 1 if n_subclusters is None else int(n_subclusters)
    ks = [int(k) for k in ks]
    for k in ks:
        if not 1 <= k <= k2:
            raise ValueError(f"n_clusters={k} must be between 1 and n_subclusters={k2}")
    out = {k: np.arange(k2, dtype=np.intp) for k in ks if k == k2}
    todo = sorted({k for k in ks if k < k2}, reverse=True)
    if not todo:
        return out
    k_min = todo[-1]
    W = (_group_weights(labels, graph, k2) if weights is None
         else np.array(weights, dtype=np.float64))
    vol = W.sum(axis=1)
    m2 = vol.sum()
    if not m2 > 0.0:
        m2 = 1.0  # no edges at all: every gain is 0, merges go by index
    # Score of merging a and b: the modularity gain (up to the factor 2 / m2)
    # w_ab - vol_a vol_b / m2, which lies in [-m2 / 4, m2]; pairs of groups that both have edges
    # but none between them are moved below every other pair by subtracting 2 m2 (a group
    # without edges is no evidence of a cut), and pairs with an empty sub-cluster above every
    # other pair by adding 4 m2 (merged first, whatever the graph). Each row keeps its best
    # partner (first maximum), so a merge costs O(k2) plus a rescan of the rows whose best
    # partner was a or b.
    alive = np.ones(k2, dtype=bool)
    empty = np.bincount(labels, minlength=k2)[:k2] == 0  # no points: absorbed before anything

    def scores(r):
        row = (W[r] - vol[r] * vol / m2 - _unlinked(W[r], vol[r], vol) * (2.0 * m2)
               + (empty[r] | empty) * (4.0 * m2))
        row[~alive] = -np.inf
        row[r] = -np.inf
        return row

    best = np.empty(k2, dtype=np.intp)
    best_val = np.empty(k2)
    for r in range(k2):
        row = scores(r)
        best[r] = int(np.argmax(row))
        best_val[r] = row[best[r]]
    root = np.arange(k2)
    sizes = np.bincount(labels, minlength=k2)[:k2]
    counts = sizes.copy()  # points in each group, summed as groups merge
    optimum = None  # groups, weights and sizes before the first merge that lowers modularity
    alternatives = None
    roots = {}  # k -> root of each sub-cluster after the greedy merges down to k
    for step in range(k2 - k_min):
        a = int(np.argmax(np.where(alive, best_val, -np.inf)))  # first maximum: deterministic
        if optimum is None and best_val[a] < 0.0:
            units = np.flatnonzero(alive)  # each group's root, ascending
            W_units = W[np.ix_(units, units)]
            share = 1.0 - np.trace(W_units) / m2
            member = np.searchsorted(units, root)
            alternatives = _Alternatives(W_units, counts[units], positions, sizes, member,
                                         todo[-1])
            if _mixed(W_units, m2):
                # no community structure left for modularity's balance term to follow
                logger.info("the %d groups at modularity's optimum share %.3f of the graph's "
                            "weight (> %g): the merges past it by %s", units.size, share,
                            MIXED_WEIGHT, alternatives.rule_name(k_min))
                # units are in the order of their smallest sub-cluster: so is the numbering
                for k in todo:
                    if k < units.size:
                        out[k] = alternatives.mapping(k)[0][member]
                todo = [k for k in todo if k >= units.size]
                if not todo:
                    return out
                k_min = todo[-1]
                break
            logger.debug("the %d groups at modularity's optimum share %.3f of the graph's "
                         "weight", units.size, share)
            optimum = (units, root.copy(), W_units.copy(), counts.copy(), step)
        a, b = sorted((a, int(best[a])))
        _join(W, vol, a, b)
        counts[a] += counts[b]
        empty[a] &= empty[b]
        alive[b] = False
        root[root == b] = a
        best_val[b] = -np.inf
        if k2 - step - 1 in todo:
            roots[k2 - step - 1] = root.copy()
        # only scores involving a changed; rows that pointed at a or b are rescanned
        for r in np.flatnonzero(alive):
            if r == a or best[r] == a or best[r] == b:
                row = scores(r)
                best[r] = int(np.argmax(row))
                best_val[r] = row[best[r]]
            else:
                s_ra = (W[r, a] - vol[r] * vol[a] / m2
                        - _unlinked(W[r, a], vol[r], vol[a]) * (2.0 * m2)
                        + (empty[r] | empty[a]) * (4.0 * m2))
                if s_ra > best_val[r] or (s_ra == best_val[r] and a < best[r]):
                    best[r], best_val[r] = a, s_ra
    for k in todo:
        root_k = roots[k]
        mapping = np.unique(root_k, return_inverse=True)[1].astype(np.intp)  # j-th root: j
        if optimum is not None and refine and optimum[4] < k2 - k:
            # Only the merges that lowered modularity are revisited: the groups as they stood
            # before the first of them move as units, so every join that raised modularity
            # stays. Their weights are the merge's own rows at that moment. Units are in the
            # order of their smallest sub-cluster, so refine_mapping's numbering is the
            # sub-clusters' too.
            units, unit_root, W_units, unit_counts, _ = optimum
            member = np.searchsorted(units, unit_root)
            mapping = refine_mapping(mapping[units], W_units, unit_counts[units], k)[member]
            # Modularity's balance term may cut a cluster that the graph all but separates
            # (olive oils: a region of four areas cut in two, two other regions joined): the
            # other rules' partition is taken when it cuts less than CUT_RATIO of the weight
            # this one cuts.
            other, rule = alternatives.mapping(k)
            cut = W_units.sum() - _within(W_units, mapping[units])
            cut_other = W_units.sum() - _within(W_units, other)
            if cut_other < CUT_RATIO * cut:
                logger.info("k=%d: the partition by %s cuts %.3g of the graph's weight, "
                            "modularity's %.3g (ratio < %g): it is taken", k, rule, cut_other,
                            cut, CUT_RATIO)
                mapping = other[member]
        out[k] = mapping
    return out


class _Alternatives:
    """:func:`_alternative` for every k down to ``k_min``: the ratio and Ward sequences are
    run once and cut at each k."""

    def __init__(self, W_units, unit_counts, positions, sizes, member, k_min):
        self.W_units = W_units
        self.ratio_roots = _ratio_roots(W_units, k_min)
        self.ward_roots = None
        if positions is not None:
            # each group's position: its sub-clusters' positions weighted by their points
            pos = np.asarray(positions, dtype=np.float64) * sizes[:, None]
            unit_pos = np.stack([np.bincount(member, weights=pos[:, j],
                                             minlength=len(unit_counts))
                                 for j in range(pos.shape[1])], axis=1)
            unit_pos /= np.maximum(unit_counts, 1)[:, None]
            self.ward_roots = _ward_roots(unit_pos, unit_counts, W_units, k_min)

    def mapping(self, k):
        g = self.W_units.shape[0]
        mapping, rule = _renumber(self.ratio_roots[g - k], g), "observed over expected weight"
        if self.ward_roots is not None:
            by_ward = _renumber(self.ward_roots[g - k], g)
            if _within(self.W_units, by_ward) >= _within(self.W_units, mapping):
                mapping, rule = by_ward, "Ward's criterion"
        return mapping, rule

    def rule_name(self, k):
        return self.mapping(k)[1]


def _alternative(W_units, unit_counts, positions, sizes, member, k):
    """The partition of the groups past modularity's optimum by :func:`ratio_merge` or, when
    ``positions`` (of the sub-clusters, ``sizes`` points each; ``member``: each sub-cluster's
    group) are given, by :func:`ward_merge`, whichever keeps more graph weight within its
    clusters (Ward's on a tie); returns it and the rule's name."""
    return _Alternatives(W_units, unit_counts, positions, sizes, member, k).mapping(k)


def refine_mapping(mapping, W, counts, n_clusters, max_sweeps=100, swaps=True):
    """Move groups (rows of ``W``) between clusters while each move raises modularity.

    The greedy merge decides each join once. Past modularity's optimum (when every merge loses
    modularity) it prefers joining the smallest groups, so an isolated piece of one class can be
    joined to a small piece of another before either meets its own class (MNIST autoencoder
    features: 950 sevens joined to 2,500 twos, with which they share 43 units of graph weight
    against 208 with the other sevens). Moving single groups afterwards undoes such joins:
    sweeps over the groups in index order move each to the cluster that raises modularity the
    most, until a sweep moves nothing. ``merge_subclusters`` passes the groups it had at
    modularity's optimum.

    Some mistakes no single move can undo: when every group is about as large as the others,
    moving one only makes its new cluster too large. With ``swaps``, once no single move is
    left, the exchange of two groups between their clusters that raises modularity the most is
    made, and the sweeps resume (make_blobs' anisotropic example, seed 0: two pieces of two
    classes had each been joined to the other's class, ARI 0.54; one exchange gives 0.96).
    Every step raises modularity, so this ends at a local optimum for both kinds of step.

    A move needs evidence in the graph: the group must share with the target cluster (without
    the group it is exchanged with) at least the weight that one of its points has on average
    (``W[s].sum() / counts[s]``), so an island that shares almost nothing with anything
    (digits: 27 ones sharing 0.1) stays where the merge put it instead of following
    modularity's size term alone. A move never empties a cluster, and a group without points
    never moves.

    Parameters
    ----------
    mapping : int array (g,)
        Cluster of each group, in ``[0, n_clusters)``.
    W : (g, g) float64 array
        Symmetric graph weight between groups (diagonal: inside each one).
    counts : int array (g,)
        Points in each group.
    n_clusters : int
    max_sweeps : int
        Safety bound on the number of sweeps (and of exchanges).
    swaps : bool
        Also exchange pairs of groups when no single move is left.

    Returns
    -------
    mapping : int array (g,)
        Clusters renumbered in the order of their smallest group.
    """
    mapping = np.asarray(mapping, dtype=np.intp).copy()
    k2 = mapping.shape[0]
    k = int(n_clusters)
    vol = W.sum(axis=1)
    m2 = vol.sum()
    if not m2 > 0.0 or k < 2:
        return _renumber(mapping, k)
    counts = np.asarray(counts)
    P = np.zeros((k2, k))
    P[np.arange(k2), mapping] = 1.0
    vol_c = vol @ P
    points_c = counts.astype(np.float64) @ P
    need = np.where(counts > 0, vol / np.maximum(counts, 1), np.inf)  # evidence per group
    tol = 1e-12 * m2

    def move(s, a, c):
        P[s, a], P[s, c] = 0.0, 1.0
        mapping[s] = c
        vol_c[a] -= vol[s]
        vol_c[c] += vol[s]
        points_c[a] -= counts[s]
        points_c[c] += counts[s]

    for _ in range(max_sweeps):
        for _ in range(max_sweeps):
            moved = False
            for s in range(k2):
                a = mapping[s]
                if counts[s] == 0 or points_c[a] <= counts[s]:
                    continue  # no points to move, or the move would empty its cluster
                w_c = W[s] @ P
                stay = (w_c[a] - W[s, s]) - vol[s] * (vol_c[a] - vol[s]) / m2
                gain = w_c - vol[s] * vol_c / m2
                gain[a] = -np.inf
                gain[w_c < need[s]] = -np.inf  # too little shared weight: no evidence
                c = int(np.argmax(gain))
                if gain[c] > stay + tol:
                    move(s, a, c)
                    moved = True
            if not moved:
                break
        if not swaps:
            break
        # Exchange s (in a) and t (in b). In units of half the change of sum_c (W_cc -
        # vol_c^2 / m2): D[s, b] + D[t, a] - 2 W[s, t] + 2 vol_s vol_t / m2, where D[s, c] is
        # the change of moving s alone to c (its gain there minus staying).
        w_c = W @ P
        own = w_c[np.arange(k2), mapping]
        stay = (own - np.diag(W)) - vol * (vol_c[mapping] - vol) / m2
        D = (w_c - np.outer(vol, vol_c) / m2) - stay[:, None]
        D_t = D[:, mapping]  # D_t[s, t] = D[s, cluster of t]
        gain = D_t + D_t.T - 2.0 * W + 2.0 * np.outer(vol, vol) / m2
        shared = w_c[:, mapping] - W  # s's weight with t's cluster, t left out
        ok = ((mapping[:, None] != mapping[None, :]) & (shared >= need[:, None])
              & (shared.T >= need[None, :]))
        gain = np.where(ok, gain, -np.inf)
        flat = int(np.argmax(gain))  # first maximum: deterministic
        s, t = divmod(flat, k2)
        if not gain[s, t] > tol:
            break
        a, b = mapping[s], mapping[t]
        move(s, a, b)
        move(t, b, a)
    return _renumber(mapping, k)


MIXED_WEIGHT = 0.08
"""Share of the graph's weight between the groups at modularity's optimum above which they
are not taken for communities (docs/results/previous_default.md: at most 0.063 on digits, MNIST,
autoencoder features and the synthetic manifolds; 0.083-0.27 where classes overlap: iris, wine,
breast cancer, penguins, make_classification)."""


CUT_RATIO = 0.5
"""Among communities, the partition of ``_alternative`` replaces modularity's when it cuts
less than this share of the graph weight that modularity's cuts (docs/results/previous_default.md:
0.16-0.22 on the olive oils' regions, at least 0.70 on digits, MNIST and aniso)."""


def _mixed(W, m2):
    """Whether more than MIXED_WEIGHT of the weight ``m2`` lies off the diagonal of W."""
    return m2 > 0.0 and (m2 - np.trace(W)) > MIXED_WEIGHT * m2


def ward_merge(positions, sizes, W, n_clusters):
    """Greedy Ward merges of groups down to ``n_clusters``, connected pairs first.

    Each step joins the pair with the smallest increase of the within-cluster sum of squares,
    ``n_a n_b / (n_a + n_b) * |x_a - x_b|^2`` (x: size-weighted mean position), among the pairs
    that share graph weight in ``W``; a pair that shares none is joined only when no connected
    pair is left, as in :func:`merge_subclusters`. Ties go to the first pair in row order.

    Parameters
    ----------
    positions : (g, d) float64 array
    sizes : (g,) float array
        Points in each group (0 for a group without points: its position is not used).
    W : (g, g) float array
        Symmetric graph weight between groups.
    n_clusters : int

    Returns
    -------
    mapping : int array (g,)
        Cluster of each group, numbered in the order of their smallest group.
    """
    g = positions.shape[0]
    k = int(n_clusters)
    return _renumber(_ward_roots(positions, sizes, W, k)[g - k], g)


def _ward_roots(positions, sizes, W, k_min):
    """Roots of each group after 0, 1, ..., g - k_min of :func:`ward_merge`'s joins."""
    g = positions.shape[0]
    k = int(k_min)
    x = np.array(positions, dtype=np.float64)
    n = np.array(sizes, dtype=np.float64)
    link = np.array(W, dtype=np.float64) > 0.0
    alive = np.ones(g, dtype=bool)
    root = np.arange(g)

    def costs(r):
        """Ward's increase of the sum of squares for joining group r with each live group."""
        tot = n[r] + n
        c = np.where(tot > 0.0, n[r] * n / np.where(tot > 0.0, tot, 1.0), 0.0)
        c = c * ((x - x[r]) ** 2).sum(axis=1)
        c[~alive] = np.inf
        c[r] = np.inf
        return c

    C = np.vstack([costs(r) for r in range(g)]) if g else np.zeros((0, 0))
    roots = [root.copy()]
    for _ in range(g - k):
        linked = np.where(link, C, np.inf)
        flat = int(np.argmin(linked))
        if not np.isfinite(linked.flat[flat]):
            flat = int(np.argmin(C))  # no connected pair left: Ward's criterion alone
        a, b = sorted(divmod(flat, g))
        tot = n[a] + n[b]
        if tot > 0.0:
            x[a] = (n[a] * x[a] + n[b] * x[b]) / tot
        n[a] = tot
        link[a] |= link[b]
        link[:, a] = link[a]
        alive[b] = False
        root[root == b] = a
        C[b, :] = np.inf
        C[:, b] = np.inf
        C[a] = costs(a)
        C[:, a] = C[a]
        roots.append(root.copy())
    return roots


def ratio_merge(W, n_clusters):
    """Greedy merges of groups down to ``n_clusters`` by the ratio of observed to expected
    weight, connected pairs first.

    Each step joins the pair with the largest ``w_ab * m / (vol_a * vol_b)``: the weight
    between them over what modularity's null model expects from their volumes (``m`` the
    total weight, ``vol`` the row sums of W). Modularity's gain subtracts that expectation
    instead of dividing by it, which at the same ratio favours joining large groups: past
    its optimum it picks balanced halves. A pair in which one group has no weight at all
    scores 0 (no evidence either way); a pair of groups with weight elsewhere but none
    between them is joined only when no other pair is left, the one of smallest
    ``vol_a * vol_b`` first, as in :func:`merge_subclusters`. Ties go to the first pair in
    row order.

    Parameters
    ----------
    W : (g, g) float array
        Symmetric non-negative graph weight between groups (the diagonal: within each group).
    n_clusters : int

    Returns
    -------
    mapping : int array (g,)
        Cluster of each group, numbered in the order of their smallest group.
    """
    g = np.shape(W)[0]
    k = int(n_clusters)
    return _renumber(_ratio_roots(W, k)[g - k], g)


def _ratio_roots(W, k_min):
    """Roots of each group after 0, 1, ..., g - k_min of :func:`ratio_merge`'s joins."""
    W = np.array(W, dtype=np.float64)
    g = W.shape[0]
    k = int(k_min)
    vol = W.sum(axis=1)
    m2 = vol.sum()
    scale = 1.0 / m2 if m2 > 0.0 else 1.0
    alive = np.ones(g, dtype=bool)
    root = np.arange(g)

    def scores(r):
        expected = vol[r] * vol * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            row = np.where(W[r] > 0.0, W[r] / expected, 0.0)
        # both with weight, none between them: below every other pair, smallest product first
        row = np.where((W[r] <= 0.0) & (expected > 0.0), -1.0 - expected * scale, row)
        row[~alive] = -np.inf
        row[r] = -np.inf
        return row

    # each row keeps its best partner (first maximum); a join changes only the scores of the
    # joined group, so the other rows are rescanned only when their partner was a or b
    best = np.zeros(g, dtype=np.intp)
    best_val = np.full(g, -np.inf)
    for r in range(g):
        row = scores(r)
        best[r] = int(np.argmax(row))
        best_val[r] = row[best[r]]
    roots = [root.copy()]
    for _ in range(g - k):
        a = int(np.argmax(np.where(alive, best_val, -np.inf)))
        a, b = sorted((a, int(best[a])))
        _join(W, vol, a, b)
        alive[b] = False
        root[root == b] = a
        roots.append(root.copy())
        best_val[b] = -np.inf
        row_a = scores(a)
        for r in np.flatnonzero(alive):
            if r == a or best[r] == a or best[r] == b:
                row = row_a if r == a else scores(r)
                best[r] = int(np.argmax(row))
                best_val[r] = row[best[r]]
            elif row_a[r] > best_val[r] or (row_a[r] == best_val[r] and a < best[r]):
                best[r], best_val[r] = a, row_a[r]
    return roots


def _join(W, vol, a, b):
    """Group b's weights and volume added to group a's (in place); b's emptied."""
    W[a, :] += W[b, :]
    W[:, a] += W[:, b]
    W[b, :] = 0.0
    W[:, b] = 0.0
    vol[a] += vol[b]
    vol[b] = 0.0


def _within(W, mapping):
    """Graph weight within the clusters of ``mapping`` (groups' weights W)."""
    return float(W[mapping[:, None] == mapping[None, :]].sum())


def _renumber(mapping, k):
    """Clusters numbered in the order of their smallest sub-cluster."""
    first = np.full(k, mapping.shape[0], dtype=np.intp)
    np.minimum.at(first, mapping, np.arange(mapping.shape[0]))
    order = np.argsort(first, kind="stable")
    rank = np.empty(k, dtype=np.intp)
    rank[order] = np.arange(k)
    return rank[mapping]


def _unlinked(w, vol_a, vol_b):
    """1.0 where two groups both have graph weight but share none, else 0.0 (arrays or scalars)."""
    return ((w <= 0.0) & (vol_a > 0.0) & (vol_b > 0.0)).astype(np.float64)


def _group_weights(labels, graph, n_groups):
    """Dense symmetric (n_groups, n_groups) float64 matrix of the graph weight between groups
    (the diagonal holds the weight inside each group)."""
    n = labels.shape[0]
    P = scipy.sparse.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, n_groups))
    A = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    W = np.asarray((P.T @ A @ P).todense(), dtype=np.float64)
    return 0.5 * (W + W.T)


def split_disconnected(labels, graph, n_subclusters, min_size, max_pieces=1024):
    """Cut each sub-cluster into the connected pieces of ``graph`` restricted to its points.

    The largest piece of sub-cluster ``k`` keeps the index ``k``. Every other piece of at least
    ``min_size`` points becomes a new sub-cluster, numbered from ``n_subclusters`` on (ordered
    by parent, then by decreasing size, then by first point; at most ``max_pieces`` of them, the
    largest). A smaller fragment joins the piece it shares the most graph weight with, or the
    largest piece of its own sub-cluster when it shares none with any kept piece.

    Returns
    -------
    new_labels : int array (n_samples,)
        Piece of each point, in ``[0, n_pieces)``.
    parent : int array (n_pieces,)
        Sub-cluster each piece was cut from (``parent[k] == k`` for ``k < n_subclusters``).
    """
    labels = np.asarray(labels, dtype=np.intp)
    n = labels.shape[0]
    k2 = int(n_subclusters)
    G = scipy.sparse.csr_matrix(graph, dtype=np.float64)  # no copy when it already is one
    A = G.tocoo()
    inside = (labels[A.row] == labels[A.col]) & (A.data > 0)
    H = scipy.sparse.csr_matrix((np.ones(int(inside.sum())), (A.row[inside], A.col[inside])),
                                shape=(n, n))
    n_comp, comp = scipy.sparse.csgraph.connected_components(H, directed=False)
    size = np.bincount(comp, minlength=n_comp)
    first = np.full(n_comp, n, dtype=np.intp)
    np.minimum.at(first, comp, np.arange(n))
    comp_parent = labels[first]
    # order pieces by (parent, -size, first point): the first of each parent is its largest
    order = np.lexsort((first, -size, comp_parent))
    is_head = np.ones(n_comp, dtype=bool)
    is_head[1:] = comp_parent[order[1:]] != comp_parent[order[:-1]]
    heads = order[is_head]
    extra = order[~is_head]
    extra = extra[size[extra] >= int(min_size)]
    if extra.size > max_pieces:  # keep the largest, in the same order
        keep = np.sort(np.argsort(-size[extra], kind="stable")[:max_pieces])
        extra = extra[keep]
    piece = np.full(n_comp, -1, dtype=np.intp)
    piece[heads] = comp_parent[heads]
    piece[extra] = k2 + np.arange(extra.size)
    n_pieces = k2 + extra.size
    parent = np.concatenate([np.arange(k2), comp_parent[extra]]).astype(np.intp)
    frag = np.flatnonzero(piece < 0)
    if frag.size:
        # graph weight from each fragment to each kept piece
        kept_of_point = piece[comp]
        Pf = scipy.sparse.csr_matrix(
            (np.ones(n), (np.arange(n), np.where(kept_of_point < 0, n_pieces, kept_of_point))),
            shape=(n, n_pieces + 1))
        F = scipy.sparse.csr_matrix((np.ones(n), (np.arange(n), comp)), shape=(n, n_comp))
        Wf = (F[:, frag].T @ G @ Pf).tocsr()
        Wf = Wf[:, :n_pieces].tocsr()
        Wf.sum_duplicates()
        target = np.asarray(Wf.argmax(axis=1)).ravel()
        has = np.asarray(Wf.max(axis=1).toarray()).ravel() > 0.0
        piece[frag] = np.where(has, target, comp_parent[frag])
    return piece[comp], parent
