"""The merge's other rules and its parts (uec.merge uses them; each importable from there too):
the refinement of a mapping past modularity's optimum (:func:`refine_mapping`), Ward's merge
(:func:`ward_merge`) and the merge by observed over expected weight (:func:`ratio_merge`), and
the group-weight helpers. The rules and their measurements: docs/design.md §2.6.1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

__all__ = ["refine_mapping", "ward_merge", "ratio_merge"]


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

    diag = np.diag(W).copy()

    def first_mover(start):
        """The first group s >= start whose best allowed move raises modularity under the
        current state, and its target: (s, c), or None. Until a move is made a sweep's state
        does not change, so this is the sequential sweep's next move, found for all the
        remaining groups at once."""
        rows = np.arange(start, k2)
        if rows.size == 0:
            return None
        a = mapping[rows]
        w_c = W[rows] @ P
        v = vol[rows]
        stay = (w_c[np.arange(rows.size), a] - diag[rows]) - v * (vol_c[a] - v) / m2
        gain = w_c - v[:, None] * vol_c[None, :] / m2
        gain[np.arange(rows.size), a] = -np.inf
        gain[w_c < need[rows, None]] = -np.inf  # too little shared weight: no evidence
        c = np.argmax(gain, axis=1)
        ok = ((counts[rows] != 0) & (points_c[a] > counts[rows])  # never empty a cluster
              & (gain[np.arange(rows.size), c] > stay + tol))
        hit = np.flatnonzero(ok)
        return None if hit.size == 0 else (int(rows[hit[0]]), int(c[hit[0]]))

    for _ in range(max_sweeps):
        for _ in range(max_sweeps):  # sweeps in index order, each move seen by the next group
            moved, start = False, 0
            while (found := first_mover(start)) is not None:
                s, c = found
                move(s, mapping[s], c)
                moved, start = True, s + 1
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
