"""uec._mixture (the refinement's EM) against scikit-learn's GaussianMixture from the same start,
and its log densities against scipy.stats in float64."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from uec import _mixture
from uec._mixture import GaussianEM, weighted_log_density


def _problem(seed, k=3, d=4, n=600):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    X = np.vstack([c + rng.normal(size=(n // k, d)) @ rng.normal(size=(d, d))
                   for c in centres])
    truth = np.repeat(np.arange(k), n // k)
    start = truth.copy()
    flip = rng.random(start.size) < 0.2  # a start that EM must correct
    start[flip] = rng.integers(0, k, flip.sum())
    reg = 1e-6 * X.var(axis=0).mean()
    counts = np.bincount(start, minlength=k)
    means = np.stack([X[start == j].mean(axis=0) for j in range(k)])
    covs = np.stack([np.cov(X[start == j], rowvar=False, bias=True) + reg * np.eye(d)
                     for j in range(k)])
    return X, counts / counts.sum(), means, covs, reg


@pytest.mark.parametrize("seed", range(4))
def test_em_matches_scikit_learn_from_the_same_start(seed):
    X, w, mu, cov, reg = _problem(seed)
    ours = GaussianEM(reg_covar=reg, tol=1e-6, max_iter=500).fit(X, w, mu, cov)
    ref = GaussianMixture(len(w), covariance_type="full", reg_covar=reg, tol=1e-6,
                          max_iter=500, weights_init=w, means_init=mu,
                          precisions_init=np.linalg.inv(cov)).fit(X)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_ > 1
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_,
                               rtol=1e-7, atol=1e-8)
    assert ours.score(X) == pytest.approx(ref.score(X), abs=1e-9)
    np.testing.assert_allclose(ours.score_samples(X[:50]), ref.score_samples(X[:50]),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(weighted_log_density(ours, X).argmax(axis=1), ref.predict(X))


def test_max_iter_stops_em_unconverged_as_scikit_learn_does():
    X, w, mu, cov, reg = _problem(0)
    ours = GaussianEM(reg_covar=reg, tol=0.0, max_iter=2).fit(X, w, mu, cov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = GaussianMixture(3, reg_covar=reg, tol=0.0, max_iter=2, weights_init=w,
                              means_init=mu, precisions_init=np.linalg.inv(cov)).fit(X)
    assert not ours.converged_ and ours.n_iter_ == 2
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("block", [1 << 20, 7])  # one block, and blocks of a single row
def test_weighted_log_density_against_scipy(monkeypatch, block):
    monkeypatch.setattr(_mixture, "_BLOCK_VALUES", block)
    X, w, mu, cov, reg = _problem(1, k=4, d=3, n=400)
    em = GaussianEM(reg_covar=reg, tol=1e-6, max_iter=50).fit(X, w, mu, cov)
    got = weighted_log_density(em, X)
    covariances = np.linalg.inv(np.einsum("jab,jcb->jac", em.precisions_cholesky_,
                                          em.precisions_cholesky_))
    ref = np.column_stack([np.log(em.weights_[j]) + multivariate_normal(
        em.means_[j], covariances[j]).logpdf(X) for j in range(4)])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-9)


def test_a_singular_covariance_raises():
    X, w, mu, cov, reg = _problem(2)
    cov = cov.copy()
    cov[1] = np.zeros_like(cov[1])
    with pytest.raises(np.linalg.LinAlgError, match="component 1"):
        GaussianEM(reg_covar=reg).fit(X, w, mu, cov)
