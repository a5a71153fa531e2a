"""The pieces above a fit's groups (``ClusterHierarchy``): each group's pieces merged back
greedily by modularity gain, the groups' merge sequences interleaved into one, and the
partition after any number of those merges."""

from __future__ import annotations

import numpy as np

from ._merge_rules import _join, _unlinked


def _within_merges(W, vol, m2):
    """Greedy modularity merges of one group's pieces down to one: each step joins the pair
    with the largest gain ``w_ab - vol_a vol_b / m2`` (``vol`` the pieces' degrees in the whole
    graph, ``m2`` its total weight), pairs that share no weight after every pair that does
    (first maximum: deterministic). Returns ``(gain, a, b)`` per merge, ``a < b``, ``b``
    joining ``a``. O(p^3) for p pieces of the group."""
    W = np.array(W, dtype=np.float64)
    vol = np.array(vol, dtype=np.float64)
    p = W.shape[0]
    alive = np.ones(p, dtype=bool)
    merges = []
    for _ in range(p - 1):
        score = W - np.outer(vol, vol) / m2 - _unlinked(W, vol[:, None], vol[None, :]) * (2 * m2)
        ok = alive[:, None] & alive[None, :]
        np.fill_diagonal(ok, False)
        score = np.where(ok, score, -np.inf)
        flat = int(np.argmax(score))
        a, b = sorted(divmod(flat, p))
        merges.append((float(score.flat[flat]), a, b))
        _join(W, vol, a, b)
        alive[b] = False
    return merges


def _interleave(sequences):
    """One merge sequence from the groups' own: the groups do not share pieces, so each
    group's merges do not change another's gains, and the greedy order over all of them is
    the groups' sequences interleaved by gain (the largest next gain first; ties to the
    smaller piece). Returns an int array (m, 2) of (a, b)."""
    import heapq

    heap = [(-seq[0][0], seq[0][1], g, 0) for g, seq in enumerate(sequences) if seq]
    heapq.heapify(heap)
    out = []
    while heap:
        _, _, g, i = heapq.heappop(heap)
        _, a, b = sequences[g][i]
        out.append((a, b))
        if i + 1 < len(sequences[g]):
            nxt = sequences[g][i + 1]
            heapq.heappush(heap, (-nxt[0], nxt[1], g, i + 1))
    return np.asarray(out, dtype=np.intp).reshape(-1, 2)


def _cut(pieces, merges, n_clusters, roots=None):
    """Labels after the first ``len(pieces) - n_clusters`` merges of the sequence, numbered by
    each cluster's first point. ``roots``: the pieces' roots after each number of merges, when
    already computed (:func:`_merge_roots`)."""
    p = int(pieces.max()) + 1
    root = _merge_roots(merges, p, p - n_clusters)[-1] if roots is None else roots[p - n_clusters]
    # piece level: each piece's first point, each cluster's first point, then one gather
    piece_first = np.full(p, pieces.size, dtype=np.intp)
    np.minimum.at(piece_first, pieces, np.arange(pieces.size))
    cluster_first = np.full(p, pieces.size, dtype=np.intp)
    np.minimum.at(cluster_first, root, piece_first)
    alive = np.flatnonzero(cluster_first < pieces.size)
    rank = np.empty(p, dtype=np.intp)
    rank[alive[np.argsort(cluster_first[alive], kind="stable")]] = np.arange(alive.size)
    return rank[root][pieces]


def _merge_roots(merges, p, n_merges):
    """Root of each of ``p`` pieces after 0, 1, ..., ``n_merges`` merges of the sequence."""
    root = np.arange(p)
    roots = [root.copy()]
    for a, b in merges[:n_merges]:
        root[root == b] = a
        roots.append(root.copy())
    return roots
