"""The graph stage's Gaussian refinement (uec.refine, UEC(refine="auto")): EM of a full-covariance
mixture started at the graph's partition, against an EM written here in float64 NumPy, and
the fit's contracts around it."""

import numpy as np
import pytest
import scipy.sparse
from scipy.special import logsumexp

from uec import UEC
from uec.metrics import clustering_accuracy
from uec.refine import REG_COVAR, gaussian_refine, identifiable, mixture_parameters


def _elongated(n_per=300, seed=0):
    """Three 3-d Gaussian classes: two long parallel ones close enough that the kNN graph joins
    their ends, and one apart; X, y and the true parameters."""
    rng = np.random.default_rng(seed)
    C = np.diag([9.0, 0.25, 1.0])
    means = np.array([[0.0, 0.0, 0.0], [0.0, 1.6, 0.0], [8.0, 8.0, 0.0]])
    X = np.concatenate([rng.multivariate_normal(m, C, n_per) for m in means])
    y = np.repeat(np.arange(3), n_per)
    return X.astype(np.float32), y, means, C


def _em_reference(X, labels, k, reg, n_iter=500, graph=None):
    """EM of a full-covariance Gaussian mixture from the hard partition ``labels``, float64;
    with ``graph``, each point's final choice among its own cluster and its neighbours'."""
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
    if graph is not None:
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
