"""Above 4,096 samples the kNN comes from NN-descent (pynndescent): a seeded fit is still the same
whatever n_jobs, and data of extreme magnitude still get their true neighbours. (Numba compiles
NN-descent once per process; this file comes after test_graph.py, which pays for it.)"""

import numpy as np
import pytest

from uec import UEC
from uec.graph import EXACT_KNN_MAX_SAMPLES, nearest_neighbors


def clustered(n, f=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(8, f))
    return (centres[rng.integers(0, 8, n)] + rng.normal(size=(n, f))).astype(np.float32)


def test_seeded_fit_with_nn_descent_is_the_same_whatever_n_jobs():
    X = clustered(EXACT_KNN_MAX_SAMPLES + 500)
    kw = dict(n_clusters=8, n_epochs=10, random_state=0)
    a = UEC(n_jobs=1, **kw).fit(X)
    b = UEC(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


@pytest.mark.parametrize("scale", [2.0**100, 2.0**-100, 1e30, 1e-30])
def test_nn_descent_at_extreme_magnitudes(scale):
    # NN-descent squares float32 differences: 1e30 overflowed to inf and 1e-30 underflowed to 0,
    # so its neighbours were arbitrary; the search now runs at unit scale.
    X = clustered(3000)
    ref_idx, ref_dist = nearest_neighbors(X, 15, random_state=0, exact=False)
    idx, dist = nearest_neighbors(X * np.float32(scale), 15, random_state=0, exact=False)
    assert np.isfinite(dist).all()
    if np.log2(scale).is_integer():  # exact rescaling: the very same search
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist / scale, ref_dist, rtol=1e-6)
    else:
        exact_idx, _ = nearest_neighbors(X, 15, exact=True)
        recall = np.mean([np.intersect1d(a, b).size / 15 for a, b in zip(idx, exact_idx)])
        assert recall >= 0.95
