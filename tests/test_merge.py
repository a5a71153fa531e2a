"""Sub-clusters merged into clusters (uec.merge) and how the estimator uses them."""

import itertools

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from sklearn.metrics import adjusted_rand_score as ari

from uec import UEC
from uec.datasets import make_manifold_clusters
from uec.merge import merge_subclusters, refine_mapping, split_disconnected


def _modularity(A, groups):
    """Newman's modularity of a partition of the weighted graph A (dense, float64)."""
    m2 = A.sum()
    deg = A.sum(axis=1)
    q = 0.0
    for g in np.unique(groups):
        idx = groups == g
        q += A[np.ix_(idx, idx)].sum() / m2 - (deg[idx].sum() / m2) ** 2
    return q


def _greedy_reference(A, sub, k2, k):
    """Greedy agglomeration by recomputing the whole modularity for every candidate merge; a
    pair with an empty group is taken first, and a pair of groups that shares no edge only when
    every remaining pair shares none."""
    root = np.arange(k2)
    while len(np.unique(root)) > k:
        best = None
        for a, b in itertools.combinations(np.unique(root), 2):
            in_a = np.isin(sub, np.flatnonzero(root == a))
            in_b = np.isin(sub, np.flatnonzero(root == b))
            # a group without edges (an empty sub-cluster) counts as linked to every group
            connected = (A[np.ix_(in_a, in_b)].sum() > 0 or A[in_a].sum() == 0
                         or A[in_b].sum() == 0)
            trial = root.copy()
            trial[trial == b] = a
            empty = not in_a.any() or not in_b.any()
            key = (empty, connected, _modularity(A, trial[sub]))
            if best is None or key[:2] > best[0][:2] or (
                    key[:2] == best[0][:2] and key[2] > best[0][2] + 1e-12):
                best = (key, a, b)
        _, a, b = best
        root[root == b] = a
    return root


@pytest.mark.parametrize("seed", range(5))
def test_greedy_merges_equal_full_modularity_recomputation(seed):
    rng = np.random.default_rng(seed)
    n, k2, k = 60, 7, 3
    sub = rng.integers(0, k2, n)
    sub[:k2] = np.arange(k2)  # no empty sub-cluster
    B = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    # planted structure: sub-clusters 0-2, 3-4 and 5-6 are densely connected
    block = np.array([0, 0, 0, 1, 1, 2, 2])[sub]
    B += (block[:, None] == block[None, :]) * rng.random((n, n)) * 0.8
    A = np.triu(B, 1)
    A = A + A.T
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2, refine=False)
    ref = _greedy_reference(A, sub, k2, k)
    # same partition of the sub-clusters (names may differ)
    assert len(np.unique(mapping)) == k
    for a, b in itertools.combinations(range(k2), 2):
        assert (mapping[a] == mapping[b]) == (ref[a] == ref[b])
    assert np.array_equal(mapping, [0, 0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("seed", range(6))
def test_connected_pairs_merge_first_as_in_the_reference(seed):
    # Two or three components of the graph, each made of several sub-clusters with weak links
    # between some of them: modularity alone would join small unconnected groups before the
    # weakly linked halves of a component.
    rng = np.random.default_rng(seed)
    n, k2 = 48, 8
    sub = np.repeat(np.arange(k2), n // k2)
    rng.shuffle(sub)
    comp = np.array([0, 0, 0, 1, 1, 1, 2, 2])[sub] if seed % 2 else np.array(
        [0, 0, 0, 0, 1, 1, 1, 1])[sub]
    same_sub = sub[:, None] == sub[None, :]
    same_comp = comp[:, None] == comp[None, :]
    B = rng.random((n, n)) * (same_sub * (rng.random((n, n)) < 0.6)
                              + (same_comp & ~same_sub) * (rng.random((n, n)) < 0.03) * 0.2)
    A = np.triu(B, 1)
    A = A + A.T
    # components of the sub-cluster graph (two sub-clusters are linked when any edge joins them)
    link = np.array([[A[np.ix_(sub == a, sub == b)].sum() > 0 for b in range(k2)]
                     for a in range(k2)])
    n_comp, comp_of_sub = scipy.sparse.csgraph.connected_components(link, directed=False)
    assert 2 <= n_comp < k2
    for k in (n_comp, n_comp - 1, n_comp + 1):
        mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2, refine=False)
        ref = _greedy_reference(A, sub, k2, k)
        for a, b in itertools.combinations(range(k2), 2):
            assert (mapping[a] == mapping[b]) == (ref[a] == ref[b]), (k, mapping, ref)
    # with as many clusters as components, the clusters are the components
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), n_comp, k2)
    assert ari(comp_of_sub, mapping) == 1.0


def test_empty_subclusters_are_absorbed_in_a_connected_graph():
    # A connected graph (every pair of groups linked) with two empty sub-clusters: they must not
    # survive as clusters while connected pairs are merged first.
    rng = np.random.default_rng(0)
    n, k2, k = 60, 9, 3
    sub = rng.choice([1, 2, 4, 5, 6, 8], n)  # 0, 3 and 7 are empty (0: absorbed into a
    # group with a higher index, which keeps the lower one)
    B = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    A = np.triu(B, 1)
    A = A + A.T
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2, refine=False)
    assert len(np.unique(mapping[sub])) == k
    ref = _greedy_reference(A, sub, k2, k)
    for a, b in itertools.combinations(range(k2), 2):
        assert (mapping[a] == mapping[b]) == (ref[a] == ref[b])


def _pieces_reference(labels, A, k2, min_size):
    """split_disconnected written out: breadth-first search inside each sub-cluster, then each
    small fragment to the kept piece it shares most weight with (ties: lowest index)."""
    n = len(labels)
    comp = -np.ones(n, dtype=int)
    pieces = []  # (parent, points)
    for i in range(n):
        if comp[i] >= 0:
            continue
        comp[i] = len(pieces)
        stack, pts = [i], []
        while stack:
            u = stack.pop()
            pts.append(u)
            for v in np.flatnonzero(A[u] > 0):
                if comp[v] < 0 and labels[v] == labels[u]:
                    comp[v] = comp[i]
                    stack.append(v)
        pieces.append((labels[i], sorted(pts)))
    index = {}
    extra = []
    for p in range(k2):
        mine = sorted([c for c, (par, _) in enumerate(pieces) if par == p],
                      key=lambda c: (-len(pieces[c][1]), pieces[c][1][0]))
        if mine:
            index[mine[0]] = p
            extra += [c for c in mine[1:] if len(pieces[c][1]) >= min_size]
    for j, c in enumerate(extra):
        index[c] = k2 + j
    out = np.empty(n, dtype=int)
    for c, (par, pts) in enumerate(pieces):
        if c in index:
            out[pts] = index[c]
    for c, (par, pts) in enumerate(pieces):
        if c not in index:
            w = np.zeros(k2 + len(extra))
            for u in pts:
                for v in np.flatnonzero(A[u] > 0):
                    if comp[v] in index:
                        w[index[comp[v]]] += A[u, v]
            out[pts] = int(np.argmax(w)) if w.max() > 0 else par
    return out, np.concatenate([np.arange(k2), [pieces[c][0] for c in extra]]).astype(int)


@pytest.mark.parametrize("seed", range(6))
def test_split_disconnected_equals_breadth_first_reference(seed):
    rng = np.random.default_rng(seed)
    n, k2 = 80, 5
    labels = rng.integers(0, k2, n)
    labels[labels == 4] = 3  # sub-cluster 4 is empty
    B = rng.random((n, n)) * (rng.random((n, n)) < 0.035)
    A = np.triu(B, 1)
    A = A + A.T
    for min_size in (1, 3, 6):
        got, parent = split_disconnected(labels, scipy.sparse.csr_matrix(A), k2, min_size)
        ref, ref_parent = _pieces_reference(labels, A, k2, min_size)
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(parent, ref_parent)
    # min_size above every piece: the sub-clusters are unchanged except for fragments moved
    got, parent = split_disconnected(labels, scipy.sparse.csr_matrix(A), k2, n + 1)
    assert parent.size == k2 and got.max() < k2


def test_split_keeps_connected_subclusters_and_cuts_unconnected_ones():
    # sub-cluster 0 holds two unconnected chains of 4 and 3 points; sub-cluster 1 one chain
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    A = np.zeros((10, 10))
    for u, v in [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9), (6, 7)]:
        A[u, v] = A[v, u] = 1.0
    got, parent = split_disconnected(labels, scipy.sparse.csr_matrix(A), 2, min_size=3)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 2, 2, 2, 1, 1, 1])
    np.testing.assert_array_equal(parent, [0, 1, 0])
    # the 3-point chain is a fragment at min_size=4: it joins sub-cluster 1 (its only edge)
    got, parent = split_disconnected(labels, scipy.sparse.csr_matrix(A), 2, min_size=4)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(parent, [0, 1])


@pytest.mark.parametrize("seed", [0, 3])
def test_unconnected_clusters_are_found_by_default(seed):
    # Eight sheets; the clustering term draws some of them together in the embedding, and the
    # plain modularity merge (before the cut and the connected-first rule) scored ARI 0.72 and
    # 0.78 on these seeds.
    X, y = make_manifold_clusters(2000, n_features=20, n_clusters=8, random_state=seed)
    model = UEC(n_clusters=8, random_state=0, n_jobs=2).fit(X)
    assert ari(y, model.labels_) > 0.99


@pytest.mark.parametrize("shape", ["moons", "circles"])
def test_moons_and_circles(shape):
    # Two interleaved arcs / nested rings: the clustering term draws points of both into the
    # same sub-clusters; cut along the graph and merged connected-first they are found exactly
    # (the plain modularity merge of the nearest-centre sub-clusters scored ARI 0.00-0.57).
    from sklearn.datasets import make_circles, make_moons

    if shape == "moons":
        X, y = make_moons(1500, noise=0.06, random_state=0)
    else:
        X, y = make_circles(1500, noise=0.04, factor=0.5, random_state=0)
    model = UEC(n_clusters=2, random_state=0, n_jobs=2).fit(X)
    assert ari(y, model.labels_) > 0.99


def test_identity_without_merges_and_numbering():
    sub = np.array([2, 0, 1, 1, 3])
    A = scipy.sparse.random(5, 5, density=0.5, random_state=0)
    A = A + A.T
    assert np.array_equal(merge_subclusters(sub, A, 4, 4), np.arange(4))
    mapping = merge_subclusters(sub, A, 1, 4)
    assert np.array_equal(mapping, np.zeros(4))


def test_empty_subclusters_and_no_edges():
    sub = np.array([0, 0, 1, 1, 4, 4])  # sub-clusters 2 and 3 are empty
    A = np.zeros((6, 6))
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = A[4, 5] = A[5, 4] = 1.0
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix(A), 3, 5)
    labels = mapping[sub]
    assert len(np.unique(labels)) == 3  # the empty ones were absorbed, the real three kept
    mapping = merge_subclusters(sub, scipy.sparse.csr_matrix((6, 6)), 2, 5)
    assert set(mapping) == {0, 1}


def test_bad_n_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 must be between 1 and n_subclusters=3"):
        merge_subclusters(np.array([0, 1, 2]), scipy.sparse.eye(3), 5)


@pytest.fixture(scope="module")
def fitted():
    X, y = make_manifold_clusters(900, n_features=20, n_clusters=3, random_state=0)
    model = UEC(n_clusters=3, variant="comma", n_epochs=120, random_state=0, n_jobs=1).fit(X)
    return X, y, model


def test_estimator_attributes_are_consistent(fitted):
    X, y, model = fitted
    assert model.subcluster_centers_.shape == (9, 2)
    assert model.subcluster_to_cluster_.shape == (9,)
    assert np.array_equal(model.labels_, model.subcluster_to_cluster_[model.subcluster_labels_])
    # cluster_centers_: the medoid of each cluster's points in the embedding (issue 27)
    for j in range(3):
        P = model.embedding_[model.labels_ == j].astype(np.float64)
        sums = np.sqrt(((P[:, None, :] - P[None]) ** 2).sum(-1)).sum(1)
        np.testing.assert_array_equal(model.cluster_centers_[j], P[np.argmin(sums)])
    S, T = model.soft_assignments()
    assert S.shape == T.shape == (X.shape[0], 3)
    np.testing.assert_allclose(T.sum(axis=1), 1.0, rtol=1e-6)
    # predicting the training points reproduces most labels (transform moves them a little)
    assert (model.predict(X[:200]) == model.labels_[:200]).mean() > 0.95


def test_one_centre_per_cluster_is_the_papers_form():
    X, _ = make_manifold_clusters(400, n_features=10, n_clusters=3, random_state=1)
    model = UEC(n_clusters=3, variant="comma", n_subclusters=3, n_epochs=60, random_state=0,
                n_jobs=1).fit(X)
    assert np.array_equal(model.subcluster_to_cluster_, np.arange(3))
    assert np.array_equal(model.labels_, model.subcluster_labels_)
    assert np.array_equal(model.cluster_centers_, model.subcluster_centers_)
    S, T = model.soft_assignments()
    assert S.shape == (400, 3)


@pytest.mark.parametrize("value, message", [
    (2, "n_subclusters=2 must be between n_clusters=3 and n_samples=50"),
    (51, "n_subclusters=51 must be between n_clusters=3 and n_samples=50"),
    (2.5, "n_subclusters=2.5 must be an integer"),
])
def test_bad_n_subclusters(value, message):
    X = np.random.default_rng(0).random((50, 4))
    with pytest.raises(ValueError, match=message):
        UEC(n_clusters=3, n_subclusters=value).fit(X)


def _refine_reference(A, sub, mapping, k, swaps=True):
    """refine_mapping written out: sweeps over the sub-clusters in index order; each moves to
    the cluster whose full modularity (recomputed) is highest among the clusters it shares at
    least its points' mean weighted degree with, when that beats staying; never empties a
    cluster. After a sweep without a move, the exchange of two sub-clusters of different
    clusters with the highest full modularity, among those where each shares its mean weighted
    degree with the other's cluster (the other left out), is made when it beats the current
    modularity, and the sweeps resume; otherwise it stops."""
    mapping = mapping.copy()
    counts = np.bincount(sub, minlength=len(mapping))
    g = len(mapping)

    def evidence(s, members):
        in_s = sub == s
        return A[np.ix_(in_s, np.isin(sub, members))].sum() >= A[in_s].sum() / counts[s]

    while True:
        moved = _reference_sweep(A, sub, mapping, k, counts)
        if moved:
            continue
        if not swaps:
            return mapping
        q_now = _modularity(A, mapping[sub])
        best = None
        for s, t in itertools.combinations(range(g), 2):
            a, b = mapping[s], mapping[t]
            if a == b or counts[s] == 0 or counts[t] == 0:
                continue
            rest_b = np.setdiff1d(np.flatnonzero(mapping == b), [t])
            rest_a = np.setdiff1d(np.flatnonzero(mapping == a), [s])
            if not (evidence(s, rest_b) and evidence(t, rest_a)):
                continue
            trial = mapping.copy()
            trial[s], trial[t] = b, a
            q = _modularity(A, trial[sub])
            if best is None or q > best[0]:
                best = (q, s, t)
        if best is None or not best[0] > q_now + 1e-12:
            return mapping
        _, s, t = best
        mapping[s], mapping[t] = mapping[t], mapping[s]


def _reference_sweep(A, sub, mapping, k, counts):
    """Single-move sweeps of _refine_reference until one moves nothing; whether any moved."""
    any_moved = False
    while True:
        moved = False
        for s in range(len(mapping)):
            a = mapping[s]
            in_s = sub == s
            if counts[s] == 0 or counts[np.flatnonzero(mapping == a)].sum() == counts[s]:
                continue
            q_stay = _modularity(A, mapping[sub])
            best = None
            for c in range(k):
                in_c = np.isin(sub, np.flatnonzero(mapping == c)) & ~in_s
                if c == a or A[np.ix_(in_s, in_c)].sum() < A[in_s].sum() / counts[s]:
                    continue
                trial = mapping.copy()
                trial[s] = c
                q = _modularity(A, trial[sub])
                if best is None or q > best[0]:
                    best = (q, c)
            if best is not None and best[0] > q_stay + 1e-12:
                mapping[s] = best[1]
                moved = True
        if not moved:
            return any_moved
        any_moved = True


@pytest.mark.parametrize("seed", range(6))
def test_refinement_equals_full_modularity_reference(seed):
    # Planted clusters, each of a big and a small sub-cluster, plus cross links of random
    # strength; start the refinement from a random assignment that uses every cluster.
    rng = np.random.default_rng(seed)
    k, k2 = 3, 8
    sizes = rng.integers(4, 14, k2)
    sub = np.repeat(np.arange(k2), sizes)
    n = sub.size
    truth = np.array([0, 0, 1, 1, 2, 2, 0, 1])[sub]
    same = truth[:, None] == truth[None, :]
    B = rng.random((n, n)) * (rng.random((n, n)) < np.where(same, 0.5, 0.08))
    A = np.triu(B, 1)
    A = A + A.T
    start = rng.permutation(np.arange(k2) % k)
    Wg = _group_weights_dense(sub, A, k2)
    got = refine_mapping(start, Wg, np.bincount(sub, minlength=k2), k)
    ref = _refine_reference(A, sub, start, k)
    for a, b in itertools.combinations(range(k2), 2):
        assert (got[a] == got[b]) == (ref[a] == ref[b]), (seed, got, ref)
    assert len(np.unique(got)) == k
    # a local optimum: no allowed single move raises the modularity
    assert _modularity(A, got[sub]) >= _modularity(A, start[sub]) - 1e-12
    assert np.array_equal(_refine_reference(A, sub, got, k), got)


# Graph weight between the 13 groups left when every merge started to lose modularity in a fit
# of MNIST autoencoder features (deskewed pixels, MSE, 50 epochs; UEC defaults, seed 0), rounded;
# the diagonal is the weight inside each group. Groups and their majority digit (purity):
# 0: 6 (.99), 1: 8 (.97), 2: 1 (.99), 3: 9 (.98), 4: 0 (.99), 5: 7 (.98), 6: 4 (.99), 7: 3 (.98),
# 8: 5 (.98), 9: 2 (.92), 10: 1 (1.0), 11: 2 (.99), 12: 7 (.89, an island of 950 sevens).
MNIST_COUNTS = [6913, 6884, 5721, 6814, 6915, 6499, 6823, 7138, 6298, 2535, 1968, 4542, 950]
MNIST_W = np.array([
    [44151, 41, 31, 4, 63, 0, 51, 8, 147, 10, 0, 4, 1],
    [41, 43396, 53, 132, 21, 39, 34, 206, 274, 50, 1, 27, 6],
    [31, 53, 36126, 19, 2, 25, 18, 21, 9, 47, 863, 24, 15],
    [4, 132, 19, 43587, 23, 203, 324, 19, 80, 1, 1, 7, 35],
    [63, 21, 2, 23, 44581, 11, 5, 20, 32, 2, 0, 31, 1],
    [0, 39, 25, 203, 11, 41097, 28, 49, 11, 34, 8, 56, 208],
    [51, 34, 18, 324, 5, 28, 43352, 2, 4, 1, 1, 11, 21],
    [8, 206, 21, 19, 20, 49, 2, 45714, 239, 42, 6, 61, 33],
    [147, 274, 9, 80, 32, 11, 4, 239, 39965, 12, 1, 2, 9],
    [10, 50, 47, 1, 2, 34, 1, 42, 12, 15189, 4, 771, 43],
    [0, 1, 863, 1, 0, 8, 1, 6, 1, 4, 11948, 0, 0],
    [4, 27, 24, 7, 31, 56, 11, 61, 2, 771, 0, 27783, 90],
    [1, 6, 15, 35, 1, 208, 21, 33, 9, 43, 0, 90, 5509]], dtype=np.float64)


def _block_graph(Wg, counts):
    """A sparse point graph whose group weights are exactly ``Wg``: each group's inner weight on
    a ring of its points, each pair's weight on one edge between their first points."""
    counts = np.asarray(counts)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows, cols, vals = [], [], []
    for g, (s0, c) in enumerate(zip(start, counts)):
        i = s0 + np.arange(c)
        j = s0 + (np.arange(c) + 1) % c
        rows += [i, j]
        cols += [j, i]
        vals += [np.full(c, Wg[g, g] / (2 * c))] * 2
        for h in range(g + 1, len(counts)):
            if Wg[g, h] > 0:
                rows += [[s0], [start[h]]]
                cols += [[start[h]], [s0]]
                vals += [[Wg[g, h]], [Wg[g, h]]]
    n = counts.sum()
    A = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(n, n))
    return A, np.repeat(np.arange(len(counts)), counts)


def test_refinement_undoes_the_island_join_of_the_mnist_fit():
    A, sub = _block_graph(MNIST_W, MNIST_COUNTS)
    greedy = merge_subclusters(sub, A, 10, 13, refine=False)
    # the greedy merge joins the island of sevens (12) to a group of twos (9), then to the twos
    assert greedy[12] == greedy[9] == greedy[11] and greedy[12] != greedy[5]
    refined = merge_subclusters(sub, A, 10, 13)
    digit = np.array([6, 8, 1, 9, 0, 7, 4, 3, 5, 2, 1, 2, 7])
    for a, b in itertools.combinations(range(13), 2):
        assert (refined[a] == refined[b]) == (digit[a] == digit[b]), refined
    # group-level modularity equals the point-level one (the group weights are exact)
    assert _modularity(MNIST_W, refined) > _modularity(MNIST_W, greedy)


def test_refinement_needs_evidence_to_move_an_island():
    # The same groups, but the island now shares almost nothing with anyone (as 27 ones on
    # digits did: 0.1 in all): modularity's size term alone would move it; it stays.
    Wg = MNIST_W.copy()
    Wg[12, :12] = Wg[:12, 12] = 0.0
    Wg[12, 9] = Wg[9, 12] = 0.1
    Wg[12, 5] = Wg[5, 12] = 0.05
    A, sub = _block_graph(Wg, MNIST_COUNTS)
    greedy = merge_subclusters(sub, A, 10, 13, refine=False)
    refined = merge_subclusters(sub, A, 10, 13)
    assert np.array_equal(greedy, refined)
    # without the evidence rule (a huge point count makes the threshold ~0) a move would
    # raise modularity: the rule is what keeps the island in place
    counts = np.where(np.arange(13) == 12, 10**12, MNIST_COUNTS)
    loose = refine_mapping(greedy, Wg, counts, 10)
    assert not np.array_equal(loose, greedy)
    assert _modularity(Wg, loose) > _modularity(Wg, greedy)


def _forced_stage(sub, A, k2):
    """Greedy groups just before the first merge that lowers modularity (None if none does)."""
    Ad = A.toarray() if scipy.sparse.issparse(A) else A
    prev = merge_subclusters(sub, A, k2, k2, refine=False)
    for kk in range(k2 - 1, 0, -1):
        cur = merge_subclusters(sub, A, kk, k2, refine=False)
        if _modularity(Ad, cur[sub]) < _modularity(Ad, prev[sub]) - 1e-12:
            return kk + 1, prev
        prev = cur
    return None, None


def _mixed_case(seed):
    """12 sub-clusters over 5 classes (each 70% its major class), k = 3: the greedy merge must
    go past modularity's optimum, and sub-clusters are linked to more than one class."""
    rng = np.random.default_rng(seed)
    k2, k, n_cls = 12, 3, 5
    sub = np.repeat(np.arange(k2), rng.integers(5, 14, k2))
    n = sub.size
    major = rng.integers(0, n_cls, k2)
    cls = np.where(rng.random(n) < 0.7, major[sub], rng.integers(0, n_cls, n))
    same = cls[:, None] == cls[None, :]
    B = rng.random((n, n)) * (rng.random((n, n)) < np.where(same, 0.35, 0.03))
    A = np.triu(B, 1)
    return sub, A + A.T, k2, k


@pytest.mark.parametrize("seed", range(8))
def test_refinement_keeps_every_join_that_raised_modularity(seed):
    # Moving mixed sub-clusters one at a time could raise modularity, but a join the greedy
    # merge made while it raised modularity is never undone: only the groups as they stood
    # before the first merge that lowered it move, as units.
    sub, A, k2, k = _mixed_case(seed)
    n = sub.size
    k_forced, groups = _forced_stage(sub, A, k2)
    refined = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2)
    greedy = merge_subclusters(sub, scipy.sparse.csr_matrix(A), k, k2, refine=False)
    assert len(np.unique(refined)) == k
    if k_forced is None or k_forced <= k:  # no merge lowered modularity: nothing to revisit
        assert np.array_equal(refined, greedy)
        return
    for a, b in itertools.combinations(range(k2), 2):
        if groups[a] == groups[b]:
            assert refined[a] == refined[b]
    # and the units are refined exactly as refine_mapping on their weights says
    P = np.zeros((n, k_forced))
    P[np.arange(n), groups[sub]] = 1
    unit_map = np.array([greedy[np.flatnonzero(groups == u)[0]] for u in range(k_forced)])
    ref = refine_mapping(unit_map, P.T @ A @ P, np.bincount(groups[sub], minlength=k_forced), k)
    for a, b in itertools.combinations(range(k2), 2):
        assert (refined[a] == refined[b]) == (ref[groups[a]] == ref[groups[b]])


@pytest.mark.parametrize("seed", [25, 26, 28, 31])
def test_moving_single_subclusters_would_undo_joins_that_raised_modularity(seed):
    # Why the units: on these cases refine_mapping over the sub-clusters themselves splits a
    # pair that the greedy merge joined while modularity rose (on MNIST pixels that moved a
    # sub-cluster of 1,575 fives and 643 threes over to the threes: ACC 0.941 -> 0.928).
    sub, A, k2, k = _mixed_case(seed)
    k_forced, _ = _forced_stage(sub, A, k2)
    raised = merge_subclusters(sub, A, max(k_forced, k), k2, refine=False)
    greedy = merge_subclusters(sub, A, k, k2, refine=False)
    Wg = _group_weights_dense(sub, A, k2)
    loose = refine_mapping(greedy, Wg, np.bincount(sub, minlength=k2), k)
    assert _modularity(Wg, loose) > _modularity(Wg, greedy)
    assert any(raised[a] == raised[b] and loose[a] != loose[b]
               for a, b in itertools.combinations(range(k2), 2))
    refined = merge_subclusters(sub, A, k, k2)
    assert all(refined[a] == refined[b] for a, b in itertools.combinations(range(k2), 2)
               if raised[a] == raised[b])


def _group_weights_dense(sub, A, k2):
    P = np.zeros((sub.size, k2))
    P[np.arange(sub.size), sub] = 1
    return P.T @ A @ P


# Graph weight between the nine sub-clusters of a fit of scikit-learn's anisotropic-blobs
# example (make_blobs(3000, centers=3, random_state=170) sheared by [[0.6, -0.6], [-0.4, 0.8]];
# UEC(3, random_state=0), rounded): the clustering term drew each class as three islands, and
# every merge of two loses modularity. Classes: 0, 3, 8 / 2, 5, 7 / 1, 4, 6.
ANISO_COUNTS = [329, 366, 390, 331, 345, 268, 328, 303, 340]
ANISO_W = np.array([
    [1918.0, 0.0, 0.9, 0.0, 0.0, 1.2, 0.0, 0.0, 24.9],
    [0.0, 2122.1, 0.0, 0.0, 20.4, 0.0, 15.1, 0.0, 0.0],
    [0.9, 0.0, 2255.0, 0.0, 0.0, 14.8, 0.0, 19.4, 0.0],
    [0.0, 0.0, 0.0, 1928.1, 0.0, 0.0, 0.8, 0.0, 20.7],
    [0.0, 20.4, 0.0, 0.0, 2004.3, 0.0, 0.0, 0.0, 0.0],
    [1.2, 0.0, 14.8, 0.0, 0.0, 1558.0, 0.0, 0.0, 0.0],
    [0.0, 15.1, 0.0, 0.8, 0.0, 0.0, 1898.8, 11.2, 0.0],
    [0.0, 0.0, 19.4, 0.0, 0.0, 0.0, 11.2, 1752.4, 1.2],
    [24.9, 0.0, 0.0, 20.7, 0.0, 0.0, 0.0, 1.2, 1947.5]])
ANISO_CLASSES = [0, 2, 1, 0, 2, 1, 2, 1, 0]


def _same_grouping(a, b):
    return all((a[i] == a[j]) == (b[i] == b[j]) for i, j in itertools.combinations(range(len(a)), 2))


def test_exchange_undoes_what_no_single_move_can():
    A, sub = _block_graph(ANISO_W, ANISO_COUNTS)
    greedy = merge_subclusters(sub, A, 3, 9, refine=False)
    counts = np.array(ANISO_COUNTS)
    moves = refine_mapping(greedy, ANISO_W, counts, 3, swaps=False)
    # single moves fix one join, then stop: sub-cluster 0 (class 0) is still with 2 and 5
    # (class 1), and 7 (class 1) with 3 and 8 (class 0); moving either alone would make its
    # new cluster too large for modularity
    assert moves[0] == moves[2] == moves[5] and moves[7] == moves[3] == moves[8]
    assert np.array_equal(_refine_reference(A, sub, greedy, 3, swaps=False), moves)
    got = refine_mapping(greedy, ANISO_W, counts, 3)
    assert _same_grouping(got, ANISO_CLASSES)
    assert _same_grouping(_refine_reference(A, sub, greedy, 3), got)
    assert _same_grouping(merge_subclusters(sub, A, 3, 9), ANISO_CLASSES)
    assert _modularity(A, got[sub]) > _modularity(A, moves[sub])


@pytest.mark.parametrize("seed", range(6))
def test_exchange_equals_the_full_modularity_reference(seed):
    # Three planted clusters of three equal islands each: strong weight inside an island, some
    # between islands of one cluster, little across. Start from the planted grouping with two
    # islands of different clusters exchanged: no single move can repair it, one exchange can.
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), 3)
    same = truth[:, None] == truth[None, :]
    W = np.where(same, rng.uniform(20, 30, (9, 9)), rng.uniform(0, 4, (9, 9)))
    W = np.triu(W, 1)
    W = W + W.T + np.diag(rng.uniform(950, 1050, 9))
    counts = np.full(9, 50)  # an island shares more than its mean degree (~21) with its own
    A, sub = _block_graph(W, counts)
    s, t = rng.choice(3, 2, replace=False) + np.array([0, 3])
    start = truth.copy()
    start[s], start[t] = truth[t], truth[s]
    assert _same_grouping(refine_mapping(start, W, counts, 3, swaps=False), start)
    got = refine_mapping(start, W, counts, 3)
    assert _same_grouping(got, truth)
    assert _same_grouping(_refine_reference(A, sub, start, 3), got)
