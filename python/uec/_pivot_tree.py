"""A random pivot tree of the training rows, whose leaves give each new point its own entry
points for the beam search of the kNN graph (uec._knn.KnnGraphIndex.query): in a random
projection of the rows to a few dimensions, each node sends a row to the nearer of two of its
rows drawn at random, so a new point's leaf holds rows near it. Deterministic for a seed; a
query's leaf depends only on its row. Why: docs/design.md §2.1 and the guide's "kNN search".
"""

from __future__ import annotations

import numpy as np

__all__ = ["PivotTree"]

PROJECTED_DIMS = 16  # the tree splits the rows projected on this many random directions
_ROWS = 65_536  # rows projected or descended at a time


class PivotTree:
    """Binary tree over the rows of ``data`` (n, d) down to leaves of at most ``leaf_size``.

    The rows are projected on ``min(d, PROJECTED_DIMS)`` Gaussian directions (y = x R, drawn
    from ``seed``). A node of more rows draws two distinct rows a, b (the same stream, nodes in
    creation order) and sends each row to the child of the nearer one in the projection,
    ``y . (y_b - y_a) > (|y_b|^2 - |y_a|^2) / 2`` for b's; a node whose rows all fall on one
    side (duplicates) is cut in two halves of its rows as they stand. Kept: ``R``, each node's
    ``normal`` (y_b - y_a) and ``offset``, ``children`` (nodes, 2) int32 (a child ``c < 0`` is
    leaf ``-c - 1``) and ``leaves`` (leaves, leaf_size) int32 row numbers padded with -1.
    """

    def __init__(self, data, leaf_size=32, seed=0):
        n, d = data.shape
        self.leaf_size = int(max(1, leaf_size))
        rng = np.random.default_rng(int(seed))
        r = min(int(d), PROJECTED_DIMS)
        self.R = (rng.standard_normal((d, r)) / np.sqrt(r)).astype(np.float32)
        Y = self._project(data)
        normals, offsets, children, leaves = [], [], [], []

        def new_leaf(rows):
            leaf = np.full(self.leaf_size, -1, dtype=np.int32)
            leaf[:rows.size] = rows
            leaves.append(leaf)
            return -len(leaves)

        def new_node():
            normals.append(None)
            offsets.append(0.0)
            children.append([0, 0])
            return len(children) - 1

        if n <= self.leaf_size:
            self.root = new_leaf(np.arange(n))
        else:
            self.root = new_node()
            stack = [(self.root, np.arange(n))]
            while stack:
                node, rows = stack.pop()
                a, b = rows[rng.choice(rows.size, 2, replace=False)]
                normal = Y[b] - Y[a]
                offset = 0.5 * (float(Y[b] @ Y[b]) - float(Y[a] @ Y[a]))
                to_b = Y[rows] @ normal > offset
                if to_b.all() or not to_b.any():
                    to_b = np.arange(rows.size) >= rows.size // 2
                normals[node], offsets[node] = normal, offset
                for side, part in enumerate((rows[~to_b], rows[to_b])):
                    if part.size <= self.leaf_size:
                        children[node][side] = new_leaf(part)
                    else:
                        child = new_node()
                        children[node][side] = child
                        stack.append((child, part))
        self.normals = (np.stack(normals) if normals else np.zeros((0, r))).astype(np.float32)
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.children = np.asarray(children, dtype=np.int32).reshape(-1, 2)
        self.leaves = np.stack(leaves).astype(np.int32)

    def _project(self, X):
        out = np.empty((X.shape[0], self.R.shape[1]), dtype=np.float32)
        for lo in range(0, X.shape[0], _ROWS):
            out[lo:lo + _ROWS] = np.asarray(X[lo:lo + _ROWS], dtype=np.float32) @ self.R
        return out

    def entries(self, X):
        """The leaf of each row of X (m, d): (m, leaf_size) int32 training rows, -1 padded."""
        m = X.shape[0]
        if self.root < 0:
            return np.repeat(self.leaves[-self.root - 1][None], m, axis=0)
        out = np.empty((m, self.leaf_size), dtype=np.int32)
        for lo in range(0, m, _ROWS):
            Y = self._project(X[lo:lo + _ROWS])
            node = np.zeros(Y.shape[0], dtype=np.int64)
            leaf = np.empty(Y.shape[0], dtype=np.int64)
            active = np.arange(Y.shape[0])
            while active.size:
                at = node[active]
                to_b = np.einsum("ij,ij->i", Y[active], self.normals[at]) > self.offsets[at]
                child = self.children[at, to_b.astype(np.intp)]
                done = child < 0
                leaf[active[done]] = -child[done] - 1
                node[active[~done]] = child[~done]
                active = active[~done]
            out[lo:lo + Y.shape[0]] = self.leaves[leaf]
        return out
