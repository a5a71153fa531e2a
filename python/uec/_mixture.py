"""EM of a full-covariance Gaussian mixture from a given start (uec.refine's model): the
iterations of scikit-learn's ``GaussianMixture`` (the same updates, stopping rule and
regularisation) without its random initialisation, which a given start makes redundant, or
its closing E-step, whose labels the refinement computes itself. Why: docs/design.md §2.6.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.special import logsumexp

__all__ = ["GaussianEM", "weighted_log_density"]

_LOG_2PI = np.log(2.0 * np.pi)
_BLOCK_VALUES = 1 << 20  # 8 MiB of float64: a block's products stay in cache


class GaussianEM:
    """A full-covariance Gaussian mixture fitted by EM from ``(weights, means, covariances)``.

    Each iteration is scikit-learn's: the E-step's responsibilities at the current parameters,
    then the M-step (``nk`` = summed responsibilities + 10 machine epsilons, means, biased
    covariances plus ``reg_covar`` on the diagonal, weights ``nk / sum(nk)``); EM stops after
    the iteration in which the mean log-likelihood of the E-step changed by less than ``tol``,
    or after ``max_iter``. Fitted: ``weights_``, ``means_``, ``precisions_cholesky_`` (L_j
    with Sigma_j^-1 = L_j L_j^T), ``n_iter_``, ``converged_``. A covariance that is not
    positive definite raises ``numpy.linalg.LinAlgError``.
    """

    def __init__(self, reg_covar=1e-6, tol=1e-3, max_iter=100):
        self.reg_covar = float(reg_covar)
        self.tol = float(tol)
        self.max_iter = int(max_iter)

    def fit(self, X, weights, means, covariances):
        X = np.asarray(X, dtype=np.float64)
        self.weights_ = np.array(weights, dtype=np.float64)
        self.means_ = np.array(means, dtype=np.float64)
        self.precisions_cholesky_ = _precision_cholesky(np.asarray(covariances, np.float64))
        self.converged_ = False
        lower = -np.inf
        for it in range(1, self.max_iter + 1):
            previous = lower
            log_p = weighted_log_density(self, X)
            norm = logsumexp(log_p, axis=1)
            lower = float(norm.mean())
            self._m_step(X, np.exp(log_p - norm[:, None]))
            self.n_iter_ = it
            if abs(lower - previous) < self.tol:
                self.converged_ = True
                break
        return self

    def _m_step(self, X, resp):
        n, d = X.shape
        nk = resp.sum(axis=0) + 10.0 * np.finfo(resp.dtype).eps
        means = (resp.T @ X) / nk[:, None]
        cov = np.empty((means.shape[0], d, d))
        for j in range(means.shape[0]):
            diff = X - means[j]
            diff *= np.sqrt(resp[:, j])[:, None]  # sum_i r_ij (x_i - mu_j)(x_i - mu_j)^T
            cov[j] = diff.T @ diff / nk[j]
            cov[j].flat[:: d + 1] += self.reg_covar
        self.precisions_cholesky_ = _precision_cholesky(cov)
        self.means_ = means
        self.weights_ = nk / nk.sum()

    def score_samples(self, X):
        """Log density of each row under the mixture."""
        return logsumexp(weighted_log_density(self, np.asarray(X, dtype=np.float64)), axis=1)

    def score(self, X):
        """Mean log density of the rows."""
        return float(self.score_samples(X).mean())


def _precision_cholesky(covariances):
    k, d, _ = covariances.shape
    out = np.empty_like(covariances)
    eye = np.eye(d)
    for j in range(k):
        try:
            chol = scipy.linalg.cholesky(covariances[j], lower=True)
        except scipy.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(f"component {j}: covariance not positive definite") from exc
        out[j] = scipy.linalg.solve_triangular(chol, eye, lower=True).T
    return out


def weighted_log_density(mixture, X):
    """log(w_j N(x | mu_j, Sigma_j)) of each row for each component (m, k), from a mixture's
    ``weights_``, ``means_`` and ``precisions_cholesky_`` (GaussianEM's or scikit-learn's).
    Rows go in blocks through one product with every component's L_j side by side (a block's
    whitened rows at most ``_BLOCK_VALUES`` float64 values)."""
    k, d = mixture.means_.shape
    L = np.asarray(mixture.precisions_cholesky_, dtype=np.float64)
    L_all = np.ascontiguousarray(L.transpose(1, 0, 2).reshape(d, k * d))  # [L_1 ... L_k]
    shift = np.einsum("jd,jde->je", mixture.means_, L).reshape(k * d)  # mu_j L_j
    const = (np.log(mixture.weights_) + np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
             - 0.5 * d * _LOG_2PI)
    out = np.empty((X.shape[0], k))
    step = max(1, _BLOCK_VALUES // (k * d))
    for lo in range(0, X.shape[0], step):
        Y = X[lo:lo + step] @ L_all
        Y -= shift
        Y *= Y
        out[lo:lo + step] = const - 0.5 * Y.reshape(Y.shape[0], k, d).sum(axis=2)
    return out
