"""Tests of uec.graph against independent references (umap-learn, scikit-learn)."""

import subprocess
import sys
import os

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits, make_blobs
from sklearn.neighbors import NearestNeighbors

from uec import graph as G

K = 15


@pytest.fixture(scope="module")
def umap_():
    return pytest.importorskip("umap.umap_")


@pytest.fixture(scope="module")
def datasets():
    blobs, _ = make_blobs(n_samples=300, n_features=10, centers=4, cluster_std=2.0, random_state=0)
    digits = load_digits().data
    dup = np.random.default_rng(3).normal(size=(250, 5))
    dup[10:40] = dup[10]  # 30 copies: more than K, so rho = 0 for those rows
    dup[50:54] = dup[50]  # 4 copies: ties at rho for the neighbours of the group
    out = {}
    for name, X in (("blobs", blobs), ("digits", digits), ("duplicates", dup)):
        idx, dist = G.nearest_neighbors(X, K)
        out[name] = (X, idx, dist)
    return out


DATASETS = ["blobs", "digits", "duplicates"]


def _same_csr(ours, ref, rtol=1e-5, atol=1e-6):
    ref = scipy.sparse.csr_matrix(ref)
    ref.eliminate_zeros()
    ref.sort_indices()
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours.indptr, ref.indptr)
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.data, ref.data, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- smooth_knn_dist


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("local_connectivity", [1.0, 0.0, 0.5, 2.0, 2.5])
def test_smooth_knn_dist_matches_umap(umap_, datasets, name, local_connectivity):
    _, _, dist = datasets[name]
    sig, rho = G.smooth_knn_dist(dist, float(K), local_connectivity=local_connectivity)
    sig_ref, rho_ref = umap_.smooth_knn_dist(
        dist, float(K), local_connectivity=float(local_connectivity), bandwidth=1.0
    )
    assert sig.dtype == np.float32 and rho.dtype == np.float32
    np.testing.assert_array_equal(rho, rho_ref)
    np.testing.assert_allclose(sig, sig_ref, rtol=1e-5, atol=0)
    # the search reproduces umap's float64 bisection step for step: (nearly) bit-identical;
    # only rows clamped with the global mean (rho == 0) may differ by an ulp, because umap's
    # global mean is a thread-count dependent float32 reduction
    exact = np.mean(sig[rho > 0] == sig_ref[rho > 0]) if np.any(rho > 0) else 1.0
    assert exact >= 0.995


def test_smooth_knn_dist_bandwidth_and_clamp(umap_):
    rng = np.random.default_rng(1)
    d = np.sort(rng.uniform(0.5, 3.0, size=(500, K)).astype(np.float32), axis=1)
    d[:, 0] = 0.0
    d[:, 1:8] = d[:, 1:2]  # 7 neighbours at rho: psum > target for any sigma -> clamped sigma
    for bandwidth in (1.0, 0.8):
        sig, rho = G.smooth_knn_dist(d, float(K), bandwidth=bandwidth)
        sig_ref, rho_ref = umap_.smooth_knn_dist(d, float(K), local_connectivity=1.0, bandwidth=bandwidth)
        np.testing.assert_array_equal(rho, rho_ref)
        np.testing.assert_array_equal(sig, sig_ref)


def test_smooth_knn_dist_target_reached(datasets):
    _, _, dist = datasets["blobs"]
    sig, rho = G.smooth_knn_dist(dist, float(K))
    psum = np.exp(-np.maximum(dist[:, 1:] - rho[:, None], 0) / sig[:, None].astype(np.float64)).sum(1)
    np.testing.assert_allclose(psum, np.log2(K), atol=1e-4)


# ----------------------------------------------------------------------------- membership / fuzzy set


@pytest.mark.parametrize("name", DATASETS)
def test_membership_strengths_match_umap(umap_, datasets, name):
    _, idx, dist = datasets[name]
    sig, rho = G.smooth_knn_dist(dist, float(K))
    coo = G.compute_membership_strengths(idx, dist, sig, rho)
    rows, cols, vals, _ = umap_.compute_membership_strengths(idx, dist, sig, rho)
    assert isinstance(coo, scipy.sparse.coo_matrix) and coo.dtype == np.float32
    np.testing.assert_array_equal(coo.row, rows)
    np.testing.assert_array_equal(coo.col, cols)
    np.testing.assert_allclose(coo.data, vals, rtol=1e-6, atol=1e-7)
    assert np.all(coo.data[coo.row == coo.col] == 0.0)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize(
    "set_op_mix_ratio,local_connectivity", [(1.0, 1.0), (0.3, 1.0), (0.0, 1.0), (1.0, 0.5), (0.7, 2.5)]
)
def test_fuzzy_simplicial_set_matches_umap(umap_, datasets, name, set_op_mix_ratio, local_connectivity):
    X, idx, dist = datasets[name]
    g = G.fuzzy_simplicial_set(
        idx, dist, n_samples=X.shape[0], set_op_mix_ratio=set_op_mix_ratio, local_connectivity=local_connectivity
    )
    ref, sig_ref, rho_ref = umap_.fuzzy_simplicial_set(
        X,
        K,
        np.random.RandomState(0),
        "euclidean",
        knn_indices=idx,
        knn_dists=dist,
        set_op_mix_ratio=set_op_mix_ratio,
        local_connectivity=local_connectivity,
    )
    assert isinstance(g, scipy.sparse.csr_matrix) and g.dtype == np.float32
    assert g.has_sorted_indices and np.all(g.data != 0)
    _same_csr(g, ref)
    assert (g != g.T).nnz == 0  # exactly symmetric
    assert g.diagonal().max() == 0.0
    assert g.data.max() <= 1.0


def test_fuzzy_simplicial_set_rejects_bad_params(datasets):
    _, idx, dist = datasets["blobs"]
    with pytest.raises(ValueError, match="set_op_mix_ratio"):
        G.fuzzy_simplicial_set(idx, dist, set_op_mix_ratio=1.5)
    with pytest.raises(ValueError, match="n_samples"):
        G.fuzzy_simplicial_set(idx, dist, n_samples=idx.shape[0] + 1)


# ----------------------------------------------------------------------------- nearest neighbours


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_exact_knn_matches_sklearn(datasets, metric):
    X = datasets["digits"][0][:600] + np.random.default_rng(0).normal(scale=1e-3, size=(600, 64))
    idx, dist = G.nearest_neighbors(X, K, metric=metric)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == dist.shape == (600, K)
    assert idx.flags.c_contiguous and dist.flags.c_contiguous
    np.testing.assert_array_equal(idx[:, 0], np.arange(600))
    assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= 0)

    ref_d, ref_i = NearestNeighbors(n_neighbors=K + 1, algorithm="brute", metric=metric).fit(X).kneighbors(X)
    np.testing.assert_allclose(dist[:, 1:], ref_d[:, 1:K], rtol=1e-5, atol=1e-6)
    gaps = np.diff(ref_d[:, 1:], axis=1)  # includes the gap to the (K+1)-th neighbour
    untied = np.all(gaps > 1e-5 * (1 + ref_d[:, 1:-1]), axis=1)
    assert untied.mean() > 0.5
    np.testing.assert_array_equal(idx[untied, 1:], ref_i[untied, 1:K])


def test_exact_knn_duplicates_self_first(datasets):
    X = datasets["duplicates"][0]
    for Xin in (X, X.astype(np.float32)):
        idx, dist = G.nearest_neighbors(Xin, K, metric="euclidean")
        np.testing.assert_array_equal(idx[:, 0], np.arange(len(X)))
        assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= 0)
        assert np.all(dist[10:40] == 0)  # 30 exact copies: all distances are exactly 0
        assert np.all(np.isin(idx[10:40], np.arange(10, 40)))
        for i in range(50, 54):
            assert set(idx[i, :4]) == set(range(50, 54)) and np.all(dist[i, :4] == 0)
        # all neighbour lists are distinct points
        assert all(len(set(row)) == K for row in idx)
    idx, dist = G.nearest_neighbors(X, K, metric="cosine")
    np.testing.assert_array_equal(idx[:, 0], np.arange(len(X)))
    assert np.all(dist[:, 0] == 0)


def test_self_first_when_missing_or_misplaced():
    idx = np.array([[1, 0, 2], [0, 2, 3], [2, 3, 0]])
    dist = np.array([[0.0, 0.0, 1.0], [0.5, 0.6, 0.7], [0.0, 0.1, 0.2]], dtype=np.float32)
    i2, d2 = G._self_first(idx, dist)
    np.testing.assert_array_equal(i2, [[0, 1, 2], [1, 0, 2], [2, 3, 0]])
    np.testing.assert_array_equal(d2, np.array([[0, 0, 1], [0, 0.5, 0.6], [0, 0.1, 0.2]], dtype=np.float32))


def test_nearest_neighbors_rejects_bad_k(datasets):
    X = datasets["blobs"][0]
    with pytest.raises(ValueError, match="n_neighbors"):
        G.nearest_neighbors(X, 1)
    with pytest.raises(ValueError, match="n_neighbors"):
        G.nearest_neighbors(X, X.shape[0] + 1)
    with pytest.raises(ValueError, match="n_neighbors"):
        G.nearest_neighbors(X, 2.5)


def test_approximate_knn_recall():
    X, _ = make_blobs(n_samples=2000, n_features=10, centers=5, cluster_std=2.0, random_state=1)
    X = X.astype(np.float32)
    idx, dist = G.nearest_neighbors(X, K, random_state=0, exact=False)
    ex_idx, ex_dist = G.nearest_neighbors(X, K, exact=True)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == (2000, K)
    np.testing.assert_array_equal(idx[:, 0], np.arange(2000))
    assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= 0)
    recall = np.mean([np.intersect1d(a, b).size / K for a, b in zip(idx, ex_idx)])
    assert recall >= 0.95


def test_module_import_is_light():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    code = "import sys, uec.graph; assert 'pynndescent' not in sys.modules and 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ----------------------------------------------------------------------------- validate_knn


def test_validate_knn_accepts_and_truncates(datasets):
    _, idx, dist = datasets["blobs"]
    i2, d2 = G.validate_knn((idx.astype(np.int64), dist.astype(np.float64)), 300, 10)
    assert i2.dtype == np.int32 and d2.dtype == np.float32 and i2.shape == d2.shape == (300, 10)
    assert i2.flags.c_contiguous and d2.flags.c_contiguous
    np.testing.assert_array_equal(i2, idx[:, :10])
    np.testing.assert_array_equal(d2, dist[:, :10])


def _bad_knns(idx, dist):
    oob, neg_idx = idx.copy(), idx.copy()
    oob[3, 4] = 300
    neg_idx[0, 1] = -1
    neg, nan, inf = dist.copy(), dist.copy(), dist.copy()
    neg[5, 2], nan[6, 3], inf[7, 1] = -0.1, np.nan, np.inf
    return {
        "out_of_range": (oob, dist),
        "negative_index": (neg_idx, dist),
        "too_few_rows": (idx[:-1], dist[:-1]),
        "too_few_columns": (idx[:, :5], dist[:, :5]),
        "one_dimensional": (idx[:, 0], dist[:, 0]),
        "mismatched": (idx, dist[:, :-1]),
        "negative_distance": (idx, neg),
        "nan_distance": (idx, nan),
        "inf_distance": (idx, inf),
        "float_indices": (idx.astype(float), dist),
        "not_a_pair": (idx,),
    }


BAD_KNN_CASES = [
    "out_of_range", "negative_index", "too_few_rows", "too_few_columns", "one_dimensional",
    "mismatched", "negative_distance", "nan_distance", "inf_distance", "float_indices", "not_a_pair",
]


@pytest.mark.parametrize("case", BAD_KNN_CASES)
def test_validate_knn_rejects(datasets, case):
    _, idx, dist = datasets["blobs"]
    with pytest.raises(ValueError, match="knn"):
        G.validate_knn(_bad_knns(idx, dist)[case], 300, 10)


# ----------------------------------------------------------------------------- prune / epochs / ab


def test_prune_graph(datasets):
    _, idx, dist = datasets["digits"]
    g = G.fuzzy_simplicial_set(idx, dist)
    before = g.copy()
    for n_epochs in (200, 10):
        p = G.prune_graph(g, n_epochs)
        thr = g.data.max() / float(n_epochs)
        keep = g.data >= thr
        assert keep.sum() < g.nnz  # something is dropped
        expected = scipy.sparse.csr_matrix((g.data * keep, g.indices.copy(), g.indptr.copy()), shape=g.shape)
        expected.eliminate_zeros()
        _same_csr(p, expected, rtol=0, atol=0)
        assert p.data.min() >= thr and (p != p.T).nnz == 0
    _same_csr(g, before, rtol=0, atol=0)  # input untouched


def test_epochs_per_sample(umap_, datasets):
    _, idx, dist = datasets["blobs"]
    w = G.prune_graph(G.fuzzy_simplicial_set(idx, dist), 200).data
    eps = G.epochs_per_sample(w, 200)
    assert eps.dtype == np.float32
    np.testing.assert_allclose(eps, w.max() / w.astype(np.float64), rtol=1e-6)
    np.testing.assert_allclose(eps, umap_.make_epochs_per_sample(w, 200), rtol=1e-6)
    assert eps.min() == 1.0
    np.testing.assert_array_equal(G.epochs_per_sample(np.array([2.0, 0.0, 1.0]), 50), [1.0, -1.0, 2.0])


@pytest.mark.parametrize("spread,min_dist", [(1.0, 0.1), (1.0, 0.0), (1.0, 0.5), (2.0, 0.3), (0.5, 0.05), (1.0, 1.0)])
def test_find_ab_params_matches_umap(umap_, spread, min_dist):
    a, b = G.find_ab_params(spread, min_dist)
    a_ref, b_ref = umap_.find_ab_params(spread, min_dist)
    assert isinstance(a, float) and isinstance(b, float)
    np.testing.assert_allclose([a, b], [a_ref, b_ref], rtol=1e-4, atol=1e-4)


def test_find_ab_params_defaults_and_validation():
    a, b = G.find_ab_params()
    assert abs(a - 1.577) < 1e-2 and abs(b - 0.895) < 1e-2
    for kwargs, name in (
        (dict(spread=0.0), "spread"),
        (dict(spread=-1.0), "spread"),
        (dict(spread=np.nan), "spread"),
        (dict(min_dist=-0.1), "min_dist"),
        (dict(spread=1.0, min_dist=1.5), "min_dist"),
    ):
        with pytest.raises(ValueError, match=name):
            G.find_ab_params(**kwargs)


# ----------------------------------------------------------------------------- build_graph


def test_build_graph(datasets):
    X, idx, dist = datasets["blobs"]
    g, i1, d1 = G.build_graph(X, K, 200)
    np.testing.assert_array_equal(i1, idx)
    np.testing.assert_array_equal(d1, dist)
    _same_csr(g, G.prune_graph(G.fuzzy_simplicial_set(idx, dist), 200), rtol=0, atol=0)
    # a user kNN (wider than needed) gives the same graph, with or without X
    wide_i, wide_d = G.nearest_neighbors(X, K + 5)
    for Xin in (X, None):
        g2, i2, d2 = G.build_graph(Xin, K, 200, knn=(wide_i, wide_d))
        assert i2.shape == (300, K)
        _same_csr(g2, g, rtol=0, atol=0)
    with pytest.raises(ValueError, match="knn"):
        G.build_graph(X, K, 200, knn=(wide_i[:-1], wide_d[:-1]))
    with pytest.raises(ValueError, match="n_epochs"):
        G.build_graph(X, K, 0)


def test_import_sets_a_passive_openmp_wait_policy_unless_chosen():
    # The core's threads must not spin at barriers on a shared machine; a user's choice stays.
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    base["PYTHONPATH"] = os.pathsep.join(sys.path)
    code = "import os, uec; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], check=True, env=base, capture_output=True,
                         text=True).stdout.strip()
    assert out == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=dict(base, OMP_WAIT_POLICY="active")).stdout.strip()
    assert out == "active"
