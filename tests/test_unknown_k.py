"""n_clusters=None, the cluster hierarchy (labels_at), probabilities_, outlier_scores_ and the
noise option."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from uec import UEC
from uec.community import ClusterHierarchy, leiden, modularity, spectral_count, split_groups
from uec.merge import merge_subclusters

FAST = dict(random_state=0, n_jobs=1, n_epochs=60)


def _blobs(n=600, centers=4, n_features=10, seed=0):
    X, y = make_blobs(n, n_features=n_features, centers=centers, random_state=seed)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted():
    X, y = _blobs(centers=5)
    return UEC(**FAST).fit(X), X, y


def test_default_is_none_and_finds_separated_blobs(fitted):
    model, X, y = fitted
    assert UEC().n_clusters is None
    assert model.n_clusters_ == 5
    assert adjusted_rand_score(y, model.labels_) > 0.99
    assert model.cluster_centers_.shape == (5, 2)


@pytest.mark.parametrize("centers", [2, 3, 6])
def test_count_of_separated_blobs(centers):
    X, y = _blobs(n=150 * centers, centers=centers, seed=centers)
    model = UEC(**FAST).fit(X)
    assert model.n_clusters_ == centers
    assert adjusted_rand_score(y, model.labels_) > 0.99


def test_auto_string_and_centre_stage():
    X, y = _blobs(centers=3, seed=3)
    for params in (dict(n_clusters="auto"), dict(variant="comma")):
        model = UEC(**FAST, **params).fit(X)
        assert model.n_clusters_ == 3
        assert adjusted_rand_score(y, model.labels_) > 0.99
        assert model.soft_assignments()[0].shape == (X.shape[0], 3)


def test_integer_n_clusters_unchanged():
    X, _ = _blobs(centers=4)
    a = UEC(n_clusters=3, **FAST).fit(X)
    assert a.n_clusters_ == 3 and np.unique(a.labels_).size == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, "two", True])
def test_bad_n_clusters_names_parameter(bad):
    X, _ = _blobs(n=100)
    with pytest.raises(ValueError, match="n_clusters"):
        UEC(n_clusters=bad, **FAST).fit(X)


def test_none_with_subclusters_or_given_centres_refused():
    X, _ = _blobs(n=100)
    with pytest.raises(ValueError, match="n_subclusters"):
        UEC(n_subclusters=6, variant="comma", **FAST).fit(X)
    with pytest.raises(ValueError, match="n_clusters=None"):
        UEC(variant="comma", centre_init=np.zeros((3, 2)), **FAST).fit(X)


def test_spectral_count_against_dense_reference():
    """Four groups in two pairs tied strongly within the pair: the eigenvalues of
    D^-1/2 W D^-1/2 (numpy, float64) drop after the second; a block-diagonal W of c groups
    floors at c components."""
    W = np.array([[10, 3, .1, .1], [3, 10, .1, .1], [.1, .1, 10, 3], [.1, .1, 3, 10]], float)
    d = W.sum(1)
    ev = np.sort(np.linalg.eigvalsh(W / np.sqrt(np.outer(d, d))))[::-1]
    assert np.argmax(ev[1:3] - ev[2:4]) + 2 == spectral_count(W) == 2
    assert spectral_count(np.eye(5), floor=5) == 5
    assert spectral_count(np.eye(2)) == 2 and spectral_count(np.eye(1)) == 1


def test_labels_at_agrees_with_fits_at_each_k(fitted):
    """At the fitted k labels_at returns labels_; at a k below the groups it is the fit's
    merge rule applied to the groups (recomputed here from the n-sized graph)."""
    model, X, _ = fitted
    h = model.cluster_hierarchy_
    np.testing.assert_array_equal(model.labels_at(model.n_clusters_), model.labels_)
    G = scipy.sparse.csr_matrix(model.clustering_graph_, dtype=np.float64)
    for k in range(1, h.n_groups + 1):
        ref = merge_subclusters(model.subcluster_labels_, G, k, h.n_groups)[model.subcluster_labels_]
        np.testing.assert_array_equal(model.labels_at(k), ref)
        assert np.unique(model.labels_at(k)).size == k
    # an integer fit at k gives the same labels as labels_at(k) of the None fit (same groups)
    for k in (2, 3):
        assert adjusted_rand_score(UEC(n_clusters=k, **FAST).fit(X).labels_,
                                   model.labels_at(k)) == 1.0


def test_labels_at_above_the_groups_is_a_cut_of_the_stored_merges(fitted):
    """Above the number of groups: each partition is the brute-force replay of the stored
    merge sequence, partitions are nested in each other and in the groups, and every k up to
    3x the fitted count is reached."""
    model, _, _ = fitted
    h = model.cluster_hierarchy_
    top = h.max_clusters
    assert top >= 3 * model.n_clusters_
    pieces, merges = h.piece_labels, h.merges
    previous = None
    for k in range(top, h.n_groups, -1):
        labels = model.labels_at(k)
        # brute force: union-find over the first (top - k) merges, by explicit sets
        sets = {i: {i} for i in range(top)}
        for a, b in merges[:top - k]:
            sets[a] |= sets.pop(b)
        owner = {p: r for r, members in sets.items() for p in members}
        ref = np.array([owner[p] for p in pieces])
        assert adjusted_rand_score(ref, labels) == 1.0 and np.unique(labels).size == k
        # nested in the groups: each cluster lies inside one group
        pairs = np.unique(np.stack([labels, model.subcluster_labels_]), axis=1)
        assert pairs.shape[1] == k
        if previous is not None:  # nested: the finer partition refines this one
            assert np.unique(np.stack([previous, labels]), axis=1).shape[1] == k + 1
        previous = labels
    # the pieces split each group into its own communities: within each group their
    # modularity (recomputed in float64 on the group's own graph) is that of a Leiden run on
    # the group alone, to within Leiden's own spread
    G = scipy.sparse.csr_matrix(model.clustering_graph_, dtype=np.float64)
    for g in range(h.n_groups):
        idx = np.flatnonzero(model.subcluster_labels_ == g)
        sub = G[idx][:, idx]
        alone = modularity(sub, leiden(sub, 1.0, h._seed, n_iterations=1))
        assert modularity(sub, pieces[idx]) >= alone - 0.02
    with pytest.raises(ValueError, match="n_clusters"):
        model.labels_at(top + 1)
    with pytest.raises(ValueError, match="n_clusters"):
        model.labels_at(0)
    with pytest.raises(ValueError, match="n_clusters"):
        model.labels_at(2.0)


def test_hierarchy_of_centre_stage_reproduces_fit():
    X, _ = _blobs(centers=4)
    model = UEC(n_clusters=4, variant="comma", **FAST).fit(X)
    np.testing.assert_array_equal(model.labels_at(4), model.labels_)
    assert np.unique(model.labels_at(2)).size == 2


def test_probabilities_are_the_own_cluster_share(fitted):
    model, _, _ = fitted
    G = model.clustering_graph_.toarray().astype(np.float64)  # the graph the clusters are of
    same = model.labels_[:, None] == model.labels_[None, :]
    ref = (G * same).sum(1) / G.sum(1)
    np.testing.assert_allclose(model.probabilities_, ref, rtol=1e-10)
    assert model.probabilities_.min() >= 0 and model.probabilities_.max() <= 1


def _noisy(seed, n_features=10, part=0):
    """1,500 points of 4 blobs and 500 uniform points over their box; ``part`` 1 draws new
    points of the same blobs and box."""
    Xb, yb = make_blobs(3000, n_features=n_features, centers=4, random_state=seed)
    Xb, yb = Xb[part::2], yb[part::2]
    rng = np.random.RandomState(seed + 100 * part)
    Xn = rng.uniform(Xb.min(0), Xb.max(0), size=(500, n_features))
    X = np.vstack([Xb, Xn]).astype(np.float32)
    return X, np.r_[np.zeros(1500, bool), np.ones(500, bool)], yb


def test_outlier_scores_against_reference_and_noise_option():
    X, noise, y = _noisy(0)
    model = UEC(noise_threshold=0.5, random_state=0, n_jobs=1).fit(X)
    # reference: distance to the n_neighbors-th neighbour (itself included), float64 brute force
    D = np.sqrt(((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1))
    r = np.sort(D, axis=1)[:, model.n_neighbors - 1]
    n_comp, comp = scipy.sparse.csgraph.connected_components(model.graph_, directed=False)
    ref = np.array([np.percentile(r[comp == q], 25) for q in range(n_comp)])
    expected = np.clip(1 - ref[comp] / r, 0, 1)
    np.testing.assert_allclose(model.outlier_scores_, expected, atol=1e-4)
    assert np.array_equal(model.labels_ == -1, model.outlier_scores_ > 0.5)
    assert (model.labels_[noise] == -1).mean() >= 0.9
    assert (model.labels_[~noise] == -1).mean() <= 0.05
    # the blobs are recovered apart from the noise (which may form a cluster of its own)
    kept = model.labels_[:1500] >= 0
    assert adjusted_rand_score(y[kept], model.labels_[:1500][kept]) > 0.99
    # labels_at keeps the noise; predict marks far new points -1 and blob points not
    assert np.array_equal(model.labels_at(2) == -1, model.labels_ == -1)
    Xnew, noise_new, _ = _noisy(0, part=1)
    pred = model.predict(Xnew)
    assert (pred[noise_new] == -1).mean() >= 0.8 and (pred[~noise_new] == -1).mean() <= 0.1
    # without the option every point keeps a label
    plain = UEC(random_state=0, n_jobs=1).fit(X)
    assert (plain.labels_ >= 0).all() and (plain.predict(Xnew) >= 0).all()


@pytest.mark.parametrize("bad", [0, 1, -0.5, 1.5, "high"])
def test_bad_noise_threshold(bad):
    X, _ = _blobs(n=100)
    with pytest.raises(ValueError, match="noise_threshold"):
        UEC(noise_threshold=bad, **FAST).fit(X)


def test_hierarchy_pickles_without_a_second_graph_and_gives_the_same_partitions(fitted):
    import pickle

    model, _, _ = fitted
    ks = list(range(1, model.cluster_hierarchy_.max_clusters + 1))
    before = [model.labels_at(k) for k in ks]
    # a reference to the fit's clustering graph, not a copy
    assert model.cluster_hierarchy_._graph is model.clustering_graph_
    clone = pickle.loads(pickle.dumps(model))
    assert clone.cluster_hierarchy_._graph is clone.clustering_graph_
    assert clone.cluster_hierarchy_._mappings is None  # caches are rebuilt on demand
    for k, labels in zip(ks, before):
        np.testing.assert_array_equal(clone.labels_at(k), labels)


def test_many_groups_are_merged_k_by_k(monkeypatch):
    """Above SWEEP_GROUPS groups labels_at merges for the one k asked (nothing quadratic kept),
    with the same result as the sweep."""
    import uec.community as community

    X, _ = _blobs(centers=4)
    model = UEC(n_clusters=4, variant="comma", **FAST).fit(X)
    h = model.cluster_hierarchy_
    swept = [model.labels_at(k) for k in range(1, h.n_groups + 1)]
    monkeypatch.setattr(community, "SWEEP_GROUPS", 1)
    h._mappings = None
    for k, labels in zip(range(1, h.n_groups + 1), swept):
        np.testing.assert_array_equal(model.labels_at(k), labels)
    assert h._mappings is None


def test_predict_proba_is_the_normalised_vote(fitted):
    """Against a float64 reference of the vote: the neighbours' membership weights summed per
    cluster, normalised; predict is its argmax up to ties."""
    from uec import _transform

    model, X, _ = fitted
    Xn = X[:80] + 0.05
    P = model.predict_proba(Xn)
    assert P.shape == (80, model.n_clusters_)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    k = model.n_neighbors_
    idx, dist = _transform.query_training_neighbours(model, Xn, k, 1)
    w = _transform.bipartite_memberships(dist, k).astype(np.float64)
    ref = np.zeros_like(P)
    for i in range(80):
        for j in range(k):
            ref[i, model.labels_[idx[i, j]]] += w[i, j]
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(P, ref, rtol=1e-10, atol=1e-12)
    pred = model.predict(Xn)
    assert (P[np.arange(80), pred] == P.max(axis=1)).all()


def _planted(blocks, pairs, p_in, p_mid, p_out, seed=0):
    """Symmetric 0/1 graph of dense blocks; blocks of one group (``pairs``) are linked with
    probability ``p_mid``, blocks of different groups with ``p_out``."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(blocks)), blocks)
    groups = np.asarray(pairs)[truth]
    same, same_group = truth[:, None] == truth[None, :], groups[:, None] == groups[None, :]
    A = np.triu(rng.random((truth.size, truth.size))
                < np.where(same, p_in, np.where(same_group, p_mid, p_out)), 1)
    return scipy.sparse.csr_matrix((A | A.T).astype(np.float64)), truth, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_groups_is_each_groups_own_modularity_optimum(seed):
    """All groups share one Leiden call: a small group (two blocks of 20) beside a large one
    (two of 200) is split into its blocks, as a run on that group alone splits it, at that
    run's modularity (recomputed in float64); a plain modularity run on the union of the
    groups (one resolution for all) keeps the small group whole."""
    import random

    import igraph

    G, truth, groups = _planted([200, 200, 20, 20, 2], [0, 0, 1, 1, 2], 0.6, 0.05, 0.01, seed)
    local = split_groups(G, groups, 3, random_state=0)
    for g in (0, 1):
        idx = np.flatnonzero(groups == g)
        assert adjusted_rand_score(truth[idx], local[idx]) == 1.0
        assert set(local[idx]) == {0, 1}
        sub = G[idx][:, idx]
        assert modularity(sub, local[idx]) >= modularity(sub, leiden(sub, 1.0, 0)) - 1e-9
    assert np.all(local[groups == 2] == 0)  # two points: one piece
    assert np.array_equal(local, split_groups(G, groups, 3, random_state=0))
    # the reference failure: modularity at resolution 1 on the union of the groups' graphs
    C = G.tocoo()
    keep = groups[C.row] == groups[C.col]
    inner = scipy.sparse.csr_matrix((C.data[keep], (C.row[keep], C.col[keep])), shape=G.shape)
    igraph.set_random_number_generator(random.Random(0))
    try:
        g = igraph.Graph.Weighted_Adjacency(inner.toarray(), mode="undirected")
        union = np.asarray(g.community_leiden(objective_function="modularity",
                                              weights="weight", n_iterations=1).membership)
    finally:
        igraph.set_random_number_generator(random)
    assert np.unique(union[groups == 1]).size == 1
