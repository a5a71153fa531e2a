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

# the rules and parts in their own module; importable from here as before
from ._merge_rules import (  # noqa: F401
    _group_weights,
    _join,
    _ratio_roots,
    _renumber,
    _unlinked,
    _ward_roots,
    _within,
    ratio_merge,
    refine_mapping,
    ward_merge,
)

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
