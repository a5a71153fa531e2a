"""The graph stage's Gaussian refinement (uec.refine, UEC(refine="auto")): EM of a full-covariance
mixture started at the graph's partition, against an EM written here in float64 NumPy, and
the fit's contracts around it."""

import numpy as np
import pytest
import scipy.sparse
from scipy.special import logsumexp

from uec import UEC
from uec.metrics import clustering_accuracy
from uec.refine import (REG_COVAR, SWITCH_Z, choose_partition, gaussian_refine, identifiable,
                        mixture_parameters, split_gain, vuong_z, whiten)


def _elongated(n_per=300, seed=0):
    """Three 3-d Gaussian classes: two long parallel ones close enough that the kNN graph joins
    their ends, and one apart; X, y and the true parameters."""
    rng = np.random.default_rng(seed)
    C = np.diag([9.0, 0.25, 1.0])
    means = np.array([[0.0, 0.0, 0.0], [0.0, 1.6, 0.0], [8.0, 8.0, 0.0]])
    X = np.concatenate([rng.multivariate_normal(m, C, n_per) for m in means])
    y = np.repeat(np.arange(3), n_per)
    return X.astype(np.float32), y, means, C


def _em_log_densities(X, labels, k, reg, n_iter=500):
    """EM of a full-covariance Gaussian mixture from the hard partition ``labels``, float64:
    each row's weighted log density under each component at the fixed point, (n, k)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    resp = np.eye(k)[labels]
    for _ in range(n_iter):
        Nk = resp.sum(axis=0)
        w = Nk / n
        mu = resp.T @ X / Nk[:, None]
        logp = np.empty((n, k))
        for j in range(k):
            D = X - mu[j]
            Cj = (resp[:, j, None] * D).T @ D / Nk[j] + reg * np.eye(d)
            _, logdet = np.linalg.slogdet(Cj)
            maha = np.einsum("ij,ij->i", D @ np.linalg.inv(Cj), D)
            logp[:, j] = np.log(w[j]) - 0.5 * (maha + logdet + d * np.log(2 * np.pi))
        new = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        if np.abs(new - resp).max() < 1e-10:
            break
        resp = new
    return logp


def _em_reference(X, labels, k, reg, n_iter=500, graph=None):
    """The labels of :func:`_em_log_densities`'s mixture; with ``graph``, each point's choice
    among its own cluster and its neighbours'."""
    logp = _em_log_densities(X, labels, k, reg, n_iter)
    if graph is not None:
        n = logp.shape[0]
        G = graph.tocoo()
        allowed = np.zeros((n, k), dtype=bool)
        allowed[G.row, labels[G.col]] = True
        allowed[np.arange(n), labels] = True
        logp = np.where(allowed, logp, -np.inf)
    return logp.argmax(axis=1)


def test_mixture_parameter_count():
    # k means of d, k symmetric d x d covariances, k - 1 free weights
    for k, d in [(3, 4), (9, 8), (2, 30), (20, 50)]:
        assert mixture_parameters(k, d) == k * d + k * d * (d + 1) // 2 + (k - 1)
    X = np.zeros((44, 4))
    assert identifiable(X, 3)  # 3 * (4 + 10) + 2 = 44 parameters, 44 rows
    assert not identifiable(X[:43], 3)
    assert not identifiable(scipy.sparse.csr_matrix(np.ones((1000, 2))), 2)
    assert not identifiable(np.ones((1000, 2)), 1)


def test_em_matches_a_numpy_reference():
    X, y, _, _ = _elongated()
    rng = np.random.default_rng(1)
    start = y.copy()
    flip = rng.choice(y.size, 120, replace=False)  # a rough partition to start from
    start[flip] = rng.integers(0, 3, flip.size)
    got = gaussian_refine(X, start, 3)
    reg = REG_COVAR * float(np.asarray(X, np.float64).var(axis=0).mean())
    ref = _em_reference(X, start, 3, reg)
    assert got is not None
    # the same fixed point; EM's stopping tolerance may leave a boundary point or two apart
    assert np.mean(got == ref) >= 0.995
    assert clustering_accuracy(y, got) > clustering_accuracy(y, start)


def test_not_identifiable_or_degenerate_keeps_the_partition():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 40))  # 2 x (40 + 820) + 1 parameters > 200 rows
    labels = (X[:, 0] > 0).astype(int)
    assert gaussian_refine(X, labels, 2) is None
    X2 = rng.normal(size=(200, 3))
    small = np.zeros(200, dtype=int)
    small[:3] = 1  # cluster 1 has 3 rows: fewer than d + 1 = 4, its covariance is singular
    assert gaussian_refine(X2, small, 2) is None


def test_fit_refines_small_tables_and_keeps_contracts():
    X, y, means, C = _elongated()
    plain = UEC(n_clusters=3, random_state=0, refine=None).fit(X)
    model = UEC(n_clusters=3, random_state=0).fit(X)
    # the refined labels are those of the EM started at the graph's own labels
    reg = REG_COVAR * float(np.asarray(X, np.float64).var(axis=0).mean())
    ref = _em_reference(X, plain.labels_, 3, reg, graph=model.clustering_graph_)
    assert np.mean(model.labels_ == ref) >= 0.995
    # and nearer the Bayes rule of the true mixture than the graph's labels
    P = np.linalg.inv(C)
    bayes = np.argmin([np.einsum("ij,jk,ik->i", X - m, P, X - m) for m in means], axis=0)
    assert (clustering_accuracy(bayes, model.labels_)
            >= clustering_accuracy(bayes, plain.labels_) + 0.03)
    np.testing.assert_array_equal(model.embedding_, plain.embedding_)  # the layout is untouched
    np.testing.assert_array_equal(model.labels_,
                                  model.subcluster_to_cluster_[model.subcluster_labels_])
    np.testing.assert_array_equal(model.labels_at(3), model.labels_)
    # other counts come from the graph's hierarchy, as without the refinement
    np.testing.assert_array_equal(model.labels_at(2), plain.labels_at(2))
    assert model.cluster_centers_.shape == (3, 2)


def test_two_moons_stay_apart():
    from sklearn.datasets import make_moons

    # two moons are not Gaussian: the mixture alone cuts across them (ACC about 0.5); each
    # point choosing only among the clusters it touches in the graph keeps them
    X, y = make_moons(1500, noise=0.06, random_state=0)
    model = UEC(n_clusters=2, random_state=0).fit(X)
    assert clustering_accuracy(y, model.labels_) >= 0.99
    plain = UEC(n_clusters=2, random_state=0, refine=None).fit(X)
    assert clustering_accuracy(y, gaussian_refine(X, plain.labels_, 2)) < 0.9
    graph = model.clustering_graph_
    assert clustering_accuracy(y, gaussian_refine(X, plain.labels_, 2, graph=graph)) >= 0.99


def _lloyd_halves(Z):
    """Lloyd's 2-means in NumPy from the two sides of the first principal axis, until no row
    changes side."""
    D = Z - Z.mean(axis=0)
    _, _, Vt = np.linalg.svd(D, full_matrices=False)
    side = (D @ Vt[0] > 0).astype(int)
    while True:
        centres = np.stack([Z[side == h].mean(axis=0) for h in range(2)])
        new = ((Z[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        if np.array_equal(new, side):
            return side
        side = new


def _split_gain_reference(X, labels, k):
    """split_gain written out with scipy's Gaussian density: each cluster's rows under their
    own Gaussian against its two 2-means halves (:func:`_lloyd_halves`) under theirs, weights included, less half the
    added parameters times log(n), per row."""
    from scipy.stats import multivariate_normal

    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    reg = REG_COVAR * X.var(axis=0).mean()

    def loglik(Z):
        C = np.cov(Z, rowvar=False, bias=True) + reg * np.eye(d)
        return multivariate_normal(Z.mean(axis=0), C).logpdf(Z).sum()

    total, added = 0.0, 0
    for j in range(k):
        Z = X[labels == j]
        if Z.shape[0] < 2 * (d + 1):
            continue
        halves = _lloyd_halves(Z)
        counts = np.bincount(halves)
        if counts.min() < d + 1:
            continue
        total += sum(loglik(Z[halves == h]) + counts[h] * np.log(counts[h] / Z.shape[0])
                     for h in range(2)) - loglik(Z)
        added += 2 * d + d * (d + 1) + 1 - (d + d * (d + 1) // 2)
    return (total - 0.5 * added * np.log(n)) / n


def test_split_gain_against_scipy_and_its_sign():
    from sklearn.datasets import make_moons

    X, y, _, _ = _elongated()
    # Gaussian classes: BIC keeps one Gaussian each
    gain = split_gain(X, y, 3)
    np.testing.assert_allclose(gain, _split_gain_reference(X, y, 3), rtol=1e-9)
    assert gain < 0
    # two classes joined into one cluster: BIC cuts it, whatever the other clusters say
    joined = np.minimum(y, 1)
    gain = split_gain(X, joined, 2)
    np.testing.assert_allclose(gain, _split_gain_reference(X, joined, 2), rtol=1e-9)
    assert gain > 0
    # a moon is not one Gaussian
    Xm, ym = make_moons(1500, noise=0.06, random_state=0)
    gain = split_gain(Xm, ym, 2)
    np.testing.assert_allclose(gain, _split_gain_reference(Xm, ym, 2), rtol=1e-9)
    assert gain > 0
    # a cluster too small to cut in two halves of d + 1 rows is left whole: its gain is none
    small = y.copy()
    small[:5] = 3
    np.testing.assert_allclose(split_gain(X, small, 4), _split_gain_reference(X, small, 4),
                               rtol=1e-9)


def test_clusters_that_are_not_one_gaussian_each_are_not_refined(monkeypatch):
    import uec.clusters
    from sklearn.datasets import make_moons

    # where BIC prefers two Gaussians per cluster, EM of one per cluster would move boundaries
    # for the model's sake (MNIST's PCA scores): the graph's labels are kept, and neither
    # alternative start is made
    X, y = make_moons(1500, noise=0.06, random_state=0)
    calls = {name: _count_calls(monkeypatch, uec.clusters, name)
             for name in ("choose_partition", "cpm_partition", "whiten")}
    model = UEC(n_clusters=2, random_state=0).fit(X)
    plain = UEC(n_clusters=2, random_state=0, refine=None).fit(X)
    assert split_gain(X, plain.labels_, 2) > 0
    assert all(c == [] for c in calls.values()), calls
    np.testing.assert_array_equal(model.labels_, plain.labels_)
    # Gaussian classes are refined, from every start
    X, y, _, _ = _elongated()
    UEC(n_clusters=3, random_state=0).fit(X)
    assert all(c == [1] for c in calls.values()), calls


def test_wide_data_are_not_refined():
    from sklearn.datasets import load_digits

    X = load_digits().data[:600] / 16.0  # 64 features: 10 x 2,144 parameters > 600 rows
    a = UEC(n_clusters=10, random_state=0).fit(X)
    b = UEC(n_clusters=10, random_state=0, refine=None).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.subcluster_labels_, b.subcluster_labels_)


@pytest.mark.parametrize("bad", ["gaussian", True, 1])
def test_refine_is_validated(bad):
    X, _, _, _ = _elongated(50)
    with pytest.raises(ValueError, match="refine="):
        UEC(n_clusters=3, refine=bad).fit(X)


def _sized(n_per=100, seed=0, size=12.0):
    """Four 5-d Gaussian classes apart in the directions orthogonal to (1, ..., 1), every row
    moved along that direction by its own "size" (sd ``size``, far above the classes' spread):
    the euclidean neighbours are rows of one size, not of one class."""
    rng = np.random.default_rng(seed)
    d = 5
    v = np.ones(d) / np.sqrt(d)
    B = np.linalg.qr(np.column_stack([v, rng.normal(size=(d, d - 1))]))[0][:, 1:]
    means = np.array([[3, 0, 0, 0], [-3, 0, 0, 0], [0, 3, 0, 0], [0, -3, 0, 0]], float) @ B.T
    X = np.concatenate([m + 0.8 * rng.normal(size=(n_per, d))
                        + np.outer(size * rng.normal(size=n_per), v) for m in means])
    return X.astype(np.float32), np.repeat(np.arange(4), n_per)


def test_vuong_z_against_its_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    b = a + 0.1 + rng.normal(scale=0.5, size=500)
    d = b - a
    # sum of the differences over the square root of their sum of squares about the mean
    expected = d.sum() / np.sqrt(((d - d.mean()) ** 2).sum())
    assert vuong_z(a, b) == pytest.approx(expected, rel=1e-12)
    assert vuong_z(b, a) == pytest.approx(-expected, rel=1e-12)
    assert vuong_z(a, a) == 0.0


def test_whiten_gives_unit_covariance_and_drops_flat_directions():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3000, 3)) @ np.array([[5.0, 1, 0], [0, 0.2, 0], [0, 3, 1]])
    X = np.column_stack([A, A[:, 0] - A[:, 2], np.full(3000, 7.0)])  # rank 3 of 5
    W = whiten(X)
    assert W.dtype == np.float32 and W.shape == (3000, 3)
    W64 = W.astype(np.float64)
    np.testing.assert_allclose(W64.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.cov(W64.T, bias=True), np.eye(3), atol=1e-5)
    # a rotation of X's centred rows: the same distances in the Mahalanobis metric of X
    Xc = A - A.mean(axis=0)
    P = np.linalg.inv(np.cov(Xc.T, bias=True))
    maha = np.einsum("ij,jk,ik->i", Xc, P, Xc)
    np.testing.assert_allclose((W64 ** 2).sum(axis=1), maha, rtol=1e-4, atol=1e-4)


def test_a_shared_size_switches_to_the_whitened_start():
    X, y = _sized()
    plain = UEC(n_clusters=4, random_state=0, refine=None).fit(X)
    model = UEC(n_clusters=4, random_state=0).fit(X)
    assert clustering_accuracy(y, plain.labels_) < 0.6  # the graph of X cuts by size
    assert clustering_accuracy(y, model.labels_) >= 0.97
    # the whitened graph is the one the clusters were found on, and its hierarchy's
    assert model.clustering_graph_ is not model.graph_
    assert model.cluster_hierarchy_._graph is model.clustering_graph_
    np.testing.assert_array_equal(model.labels_at(4), model.labels_)
    np.testing.assert_array_equal(model.labels_,
                                  model.subcluster_to_cluster_[model.subcluster_labels_])
    np.testing.assert_array_equal(model.embedding_, plain.embedding_)  # the layout is untouched
    # the switch is Vuong's test on the two mixtures fitted in X from either start
    white = UEC(n_clusters=4, random_state=0, refine=None)
    white.fit(whiten(X))
    z = vuong_z(_loglik(X, plain.labels_), _loglik(X, white.labels_))
    assert z > SWITCH_Z


def _count_calls(monkeypatch, module, name):
    """``module.name`` replaced by itself counting its calls: the list it appends 1 to."""
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _loglik(X, labels):
    """Each row's log likelihood under the NumPy EM's mixture from ``labels``."""
    reg = REG_COVAR * float(np.asarray(X, np.float64).var(axis=0).mean())
    return logsumexp(_em_log_densities(X, labels, int(labels.max()) + 1, reg, 1000), axis=1)


def test_gaussian_classes_keep_the_data_start():
    X, y, _, _ = _elongated()
    part = UEC(n_clusters=3, random_state=0, refine=None).fit(X).labels_
    # one start only, or the same start twice (z = 0): the data's is kept
    assert choose_partition(X, [(part, None)], 3)[0] == 0
    taken, refined = choose_partition(X, [(part, None), (part, None)], 3)
    assert taken == 0
    np.testing.assert_array_equal(refined, gaussian_refine(X, part, 3))
    from sklearn.datasets import load_iris

    iris = load_iris()
    model = UEC(n_clusters=3, random_state=0).fit(iris.data)
    assert model.clustering_graph_ is model.graph_  # z is negative on iris: no switch
    assert clustering_accuracy(iris.target, model.labels_) >= 0.88


def test_no_whitened_start_without_euclidean_rows():
    X, y = _sized()
    cos = UEC(n_clusters=4, random_state=0, metric="manhattan").fit(X)
    assert cos.clustering_graph_ is cos.graph_
    unknown = UEC(random_state=0).fit(X)  # the count is estimated: one start
    assert unknown.clustering_graph_ is unknown.graph_


def test_above_the_em_sample_the_whitened_start_is_made_on_the_sample(monkeypatch):
    # with more rows than EM's sample, the whitened view's kNN graph covers the sample only
    # (what EM reads); taken, its mixture labels every row on the data's own graph
    import uec.clusters
    import uec.refine

    X, y = _sized(n_per=300)
    monkeypatch.setattr(uec.refine, "REFINE_SAMPLE", 600)
    seen = []
    real = uec.clusters.view_graph

    def spy(rows, *args, **kwargs):
        seen.append(rows.shape[0])
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(uec.clusters, "view_graph", spy)
    model = UEC(n_clusters=4, random_state=0).fit(X)
    assert seen == [600]
    assert clustering_accuracy(y, model.labels_) >= 0.97  # the switch, as with every row
    assert model.clustering_graph_ is model.graph_
    assert model.cluster_hierarchy_._graph is model.graph_
    np.testing.assert_array_equal(model.labels_at(4), model.labels_)
    np.testing.assert_array_equal(model.labels_,
                                  model.subcluster_to_cluster_[model.subcluster_labels_])
    plain = UEC(n_clusters=4, random_state=0, refine=None).fit(X)
    assert clustering_accuracy(y, plain.labels_) < 0.6


def test_a_second_start_that_is_the_first_renumbered_is_not_fitted_again(monkeypatch):
    # the same partition gives the same mixture (z = 0): EM runs once, and the data's is kept
    import uec.refine

    X, y, _, _ = _elongated()
    part = UEC(n_clusters=3, random_state=0, refine=None).fit(X).labels_
    calls = _count_calls(monkeypatch, uec.refine, "fit_mixture")
    taken, refined = choose_partition(X, [(part, None), ((part + 1) % 3, None)], 3)
    assert taken == 0 and len(calls) == 1
    np.testing.assert_array_equal(refined, gaussian_refine(X, part, 3))
    other = part.copy()
    other[:5] = (other[:5] + 1) % 3  # a different partition: both are fitted
    calls.clear()
    choose_partition(X, [(part, None), (other, None)], 3)
    assert len(calls) == 2
    assert not uec.refine._same_partition(np.arange(part.shape[0]), part, other)
    assert uec.refine._same_partition(np.arange(4), np.array([0, 0, 1, 2]), np.array([2, 2, 0, 1]))
    assert not uec.refine._same_partition(np.arange(4), np.array([0, 0, 1, 1]),
                                          np.array([0, 1, 1, 1]))


def test_startable_needs_n_features_plus_one_rows_per_cluster():
    from uec.refine import startable

    X, y = _sized()  # 5 features, 4 classes of 100
    assert startable(X, y, 4)
    labels = y.copy()
    labels[:94] = 1  # class 0 keeps 6 rows (= n_features + 1)
    assert startable(X, labels, 4)
    labels[94] = 1  # 5: its covariance would be singular
    assert not startable(X, labels, 4)
    assert not startable(X, np.where(y == 0, -1, y), 4)  # noise labels
    assert not startable(X, y, 5)  # a cluster with no rows
    assert not startable(X[:40], y[:40] % 4, 4)  # more parameters than rows


def test_no_whitened_start_when_em_cannot_start_from_the_data(monkeypatch):
    # the whitened view is built only when EM can start from the data's partition
    import uec.clusters

    X, y = _sized()
    built = _count_calls(monkeypatch, uec.clusters, "view_graph")
    UEC(n_clusters=4, random_state=0).fit(X)
    assert built == [1]
    seen = []
    monkeypatch.setattr(uec.clusters, "startable", lambda *a: seen.append(a[1]) or False)
    model = UEC(n_clusters=4, random_state=0).fit(X)
    assert built == [1] and model.clustering_graph_ is model.graph_
    # asked about the data's partition of the graph stage
    graph_only = UEC(n_clusters=4, random_state=0, refine=None).fit(X)
    np.testing.assert_array_equal(seen[0], graph_only.labels_)


def _three_apart(n_per=200, seed=0):
    """Three round 2-d classes far apart on a line; a bad start (the first two as one class,
    the third cut in halves) that EM cannot leave, and the true one."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(size=(n_per, 2)) + [10.0 * c, 0.0] for c in range(3)])
    y = np.repeat(np.arange(3), n_per)
    bad = np.where(y < 2, 0, np.where(X[:, 1] < 0, 1, 2))
    return X.astype(np.float32), y, bad


def _block_graph(labels):
    """A graph that links every pair of rows with the same label (weight 1): its modularity
    is highest at ``labels``."""
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    return scipy.sparse.csr_matrix(same.astype(np.float64))


def test_a_restart_is_kept_only_when_more_likely_and_of_higher_modularity():
    from uec.community import modularity

    X, y, bad = _three_apart()
    graph = _block_graph(y)
    # the reference EM: the true start's fixed point is the more likely one
    assert _loglik(X, y).mean() > _loglik(X, bad).mean() + 0.1
    taken, refined = choose_partition(X, [(bad, graph), (y, graph, "restart")], 3)
    assert taken == 1
    np.testing.assert_array_equal(refined, gaussian_refine(X, y, 3, graph=graph))
    taken, refined = choose_partition(X, [(y, graph), (bad, graph, "restart")], 3)
    assert taken == 0
    np.testing.assert_array_equal(refined, gaussian_refine(X, y, 3, graph=graph))
    # more likely, but on a graph whose communities are the other start's: not taken
    other = _block_graph(bad)
    assert (modularity(other, gaussian_refine(X, y, 3, graph=other))
            < modularity(other, gaussian_refine(X, bad, 3, graph=other)))
    taken, refined = choose_partition(X, [(bad, other), (y, other, "restart")], 3)
    assert taken == 0
    np.testing.assert_array_equal(refined, gaussian_refine(X, bad, 3, graph=other))
    # two starts that EM takes to the same fixed point (within its tolerance): the default's
    near = y.copy()
    near[[0, 1, 250]] = [1, 2, 0]
    taken, refined = choose_partition(X, [(near, graph), (y, graph, "restart")], 3)
    assert taken == 0
    np.testing.assert_array_equal(refined, gaussian_refine(X, near, 3, graph=graph))


def _loose_and_tight(seed=0):
    """One large loose 3-d class and four small tight ones close to each other."""
    rng = np.random.default_rng(seed)
    means = np.array([[0, 0, 0], [8, 0, 0], [10.5, 0, 0], [8, 2.5, 0], [10.5, 2.5, 0]], float)
    sds, sizes = [1.5, 0.5, 0.5, 0.5, 0.5], [600, 50, 50, 50, 50]
    X = np.concatenate([m + s * rng.normal(size=(n, 3)) for m, s, n in zip(means, sds, sizes)])
    return X.astype(np.float32), np.repeat(np.arange(5), sizes)


def test_the_fit_refines_the_better_of_the_two_graph_partitions(monkeypatch):
    import uec.clusters
    import uec.refine

    X, y = _loose_and_tight(1)  # a draw where the two starts reach different mixtures
    seen = {}
    real_cpm, real_choose = uec.clusters.cpm_partition, uec.clusters.choose_partition

    def cpm_spy(*args, **kwargs):
        seen["cpm"] = real_cpm(*args, **kwargs)
        return seen["cpm"]

    def choose_spy(X_, candidates, *args, **kwargs):
        seen["candidates"] = candidates
        seen["taken"] = real_choose(X_, candidates, *args, **kwargs)
        return seen["taken"]

    monkeypatch.setattr(uec.clusters, "cpm_partition", cpm_spy)
    monkeypatch.setattr(uec.clusters, "choose_partition", choose_spy)
    model = UEC(n_clusters=5, random_state=0).fit(X)
    plain = UEC(n_clusters=5, random_state=0, refine=None).fit(X)
    sub, mapping, _ = seen["cpm"]
    default, cpm = seen["candidates"][0][0], seen["candidates"][1][0]
    np.testing.assert_array_equal(default, plain.labels_)
    np.testing.assert_array_equal(cpm, mapping[sub])
    assert seen["candidates"][1][2] == "restart"
    # the CPM start is taken when its EM fixed point (the NumPy reference) is the more likely
    # and its refined labels have the higher modularity on the graph; here the first holds
    # and the second does not, so the default's start is refined
    from uec.community import modularity

    graph = model.clustering_graph_
    gain = _loglik(X, cpm).mean() - _loglik(X, default).mean()
    assert gain > 1e-3  # the two starts reach different mixtures here
    higher = (modularity(graph, gaussian_refine(X, cpm, 5, graph=graph))
              > modularity(graph, gaussian_refine(X, default, 5, graph=graph)))
    assert seen["taken"][0] == (1 if higher else 0) and not higher
    start = cpm if higher else default
    np.testing.assert_array_equal(model.labels_, gaussian_refine(X, start, 5, graph=graph))
    reg = REG_COVAR * float(np.asarray(X, np.float64).var(axis=0).mean())
    ref = _em_reference(X, start, 5, reg, graph=graph)
    assert np.mean(model.labels_ == ref) >= 0.9  # EM crawls here: stopped at its tolerance
    assert model.clustering_graph_ is model.graph_  # the data's graph in either case
    np.testing.assert_array_equal(model.labels_at(5), model.labels_)
    np.testing.assert_array_equal(model.labels_,
                                  model.subcluster_to_cluster_[model.subcluster_labels_])
    np.testing.assert_array_equal(model.embedding_, plain.embedding_)
    # above EM's sample no such start is made (it would cost Leiden runs of the whole graph)
    seen.clear()
    monkeypatch.setattr(uec.refine, "REFINE_SAMPLE", 500)
    UEC(n_clusters=5, random_state=0).fit(X)
    assert "cpm" not in seen


def test_no_cpm_start_at_a_count_found(monkeypatch):
    import uec.clusters

    X, y = _loose_and_tight()
    calls = _count_calls(monkeypatch, uec.clusters, "cpm_partition")
    UEC(random_state=0).fit(X)  # n_clusters=None: the count is estimated, one start
    assert calls == []
    UEC(n_clusters=5, random_state=0).fit(X)
    assert calls == [1]
