"""Wrong arrays and parameters at the compiled core's door: every one raises (ValueError, or
TypeError for a wrong dtype or memory layout), names the argument, and leaves the inputs as they
were. A precomputed kNN from the user is checked the same way through the estimator. (The basic
shape, index and indptr checks are in test_core_boundary.py; these run under the sanitizers too,
see .ci/sanitize.sh.)"""

import numpy as np
import pytest

from uec import UEC, _core

N, K, D, C = 30, 4, 2, 3


def graph(n=N, k=K, seed=0):
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    indices = rng.integers(0, n, size=n * k).astype(np.int32)
    eps = rng.uniform(1.0, 4.0, size=n * k).astype(np.float32)
    return indptr, indices, eps


def params(mode=_core.MODE_PLUS, **kw):
    p = _core.EpochParams()
    p.mode = mode
    p.n_epochs_total = 10
    for key, value in kw.items():
        setattr(p, key, value)
    return p


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.uniform(0, 10, size=(N, D)).astype(np.float32)
    M = rng.uniform(0, 10, size=(C, D)).astype(np.float32)
    indptr, indices, eps = graph(seed=seed)
    return dict(Z=Z, M=M, indptr=indptr, indices=indices, eps=eps, next_sample=eps.copy(),
                next_negative=eps / 5, labels=np.full(N, -1, np.int32), tail=None)


def optimize(a, p=None, begin=0, end=3):
    return _core.optimize(a["Z"], a["M"], a["indptr"], a["indices"], a["eps"], a["next_sample"],
                          a["next_negative"], a["labels"], a["tail"], p or params(), begin, end)


def assert_refused(a, exc, match, p=None):
    before = {k: v.copy() for k, v in a.items() if isinstance(v, np.ndarray)}
    with pytest.raises(exc, match=match):
        optimize(a, p)
    for k, v in before.items():  # refused before anything was written
        np.testing.assert_array_equal(a[k], v, err_msg=k)


def test_valid_call_still_runs():
    a = arrays()
    res = optimize(a)
    assert res["epochs_run"] == 3 and np.isfinite(a["Z"]).all() and np.isfinite(a["M"]).all()


# -- a user's kNN through the estimator ----------------------------------------------------------


def user_knn(n=N, k=8, seed=0):
    from uec.graph import nearest_neighbors

    X = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    idx, dist = nearest_neighbors(X, k)
    return X, idx.copy(), dist.copy()


@pytest.mark.parametrize("bad,match", [
    (N, "knn indices must lie in \\[0, 30\\), got 30 at row 3, column 2"),
    (-1, "knn indices must lie in \\[0, 30\\), got -1 at row 3, column 2"),
    (2**31 - 1, "knn indices must lie in"),
    (-(2**31), "knn indices must lie in"),
])
def test_estimator_refuses_out_of_range_knn_indices(bad, match):
    X, idx, dist = user_knn()
    idx = idx.astype(np.int64)
    idx[3, 2] = bad
    with pytest.raises(ValueError, match=match):
        UEC(n_clusters=2, n_neighbors=8, n_epochs=5, knn=(idx, dist)).fit(X)


@pytest.mark.parametrize("change,match", [
    (lambda i, d: (i.astype(np.float64), d), "knn indices must be an integer array"),
    (lambda i, d: (i, np.where(np.arange(d.size).reshape(d.shape) == 9, np.nan, d)), "finite and non-negative"),
    (lambda i, d: (i, np.where(np.arange(d.size).reshape(d.shape) == 9, np.inf, d)), "finite and non-negative"),
    (lambda i, d: (i, -d), "finite and non-negative"),
    (lambda i, d: (i[:-1], d[:-1]), "knn indices must have shape"),
    (lambda i, d: (i[:, :5], d[:, :5]), "knn indices must have shape \\(30, >= 8\\)"),
    (lambda i, d: (i, d[:, :7]), "knn distances must have shape"),
    (lambda i, d: (i.ravel(), d.ravel()), "knn indices must have shape"),
    (lambda i, d: (i,), "knn must be a pair"),
])
def test_estimator_refuses_malformed_knn(change, match):
    X, idx, dist = user_knn()
    knn = change(idx, dist)
    with pytest.raises(ValueError, match=match):
        UEC(n_clusters=2, n_neighbors=8, n_epochs=5, knn=knn).fit(X)


def test_estimator_accepts_a_wider_knn_and_uses_its_first_columns():
    X, idx, dist = user_knn(k=12)
    a = UEC(n_clusters=2, n_neighbors=8, n_epochs=20, random_state=0, knn=(idx, dist)).fit(X)
    b = UEC(n_clusters=2, n_neighbors=8, n_epochs=20, random_state=0, knn=(idx[:, :8], dist[:, :8])).fit(X)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)


@pytest.mark.parametrize("bad", [-1, N, 2**31 - 1, -(2**31)])
def test_core_refuses_out_of_range_indices_in_every_mode(bad):
    for mode in (_core.MODE_CE, _core.MODE_COMMA, _core.MODE_LIGHT_PLUS, _core.MODE_PLUS):
        a = arrays()
        a["indices"][-1] = bad
        assert_refused(a, ValueError, f"indices\\[{N * K - 1}\\] = {bad} is outside \\[0, {N}\\)",
                       params(mode))


# -- non-finite values and the sampling state ---------------------------------------------------


@pytest.mark.parametrize("name,value,match", [
    ("Z", np.nan, "embedding contains NaN or infinity"),
    ("Z", -np.inf, "embedding contains NaN or infinity"),
    ("M", np.inf, "centres contains NaN or infinity"),
    ("eps", np.inf, "epochs_per_sample must be positive and finite"),
    ("eps", -1.0, "epochs_per_sample must be positive and finite"),
    ("next_sample", np.nan, "next_sample must be finite and >= 0"),
    ("next_sample", -3.0, "next_sample must be finite and >= 0"),
    ("next_negative", -np.inf, "next_negative must be finite and >= 0"),
    ("next_negative", -1e30, "next_negative must be finite and >= 0"),
])
def test_non_finite_or_negative_values_are_refused(name, value, match):
    a = arrays()
    a[name].ravel()[5] = value
    assert_refused(a, ValueError, match)


def test_non_finite_tail_is_refused():
    a = arrays()
    a["tail"] = np.random.default_rng(1).normal(size=(N, D)).astype(np.float32)
    a["tail"][2, 1] = np.nan
    assert_refused(a, ValueError, "tail contains NaN or infinity", params(_core.MODE_CE))


# -- arrays the core would write into must be exactly what it writes ----------------------------


@pytest.mark.parametrize("name,make,match", [
    ("M", lambda M: np.asfortranarray(M), "centres must be a C-contiguous float32"),
    ("M", lambda M: np.repeat(M, 2, axis=0)[::2], "centres must be a C-contiguous float32"),
    ("M", lambda M: M.astype(np.float64), "centres must be a C-contiguous float32 numpy array, got ndarray of dtype float64"),
    ("M", lambda M: M.tolist(), "centres must be a C-contiguous float32 numpy array, got list"),
    ("labels", lambda L: np.zeros(2 * N, np.int32)[::2], "labels must be a C-contiguous int32"),
    ("labels", lambda L: L.astype(np.int64), "labels must be a C-contiguous int32"),
    ("tail", lambda _: np.zeros((N, D), np.float64), "tail must be a C-contiguous float32"),
])
def test_arrays_that_would_be_silently_copied_are_refused(name, make, match):
    # A cast would convert these into a temporary copy and the in-place updates would be lost.
    a = arrays()
    a[name] = make(a[name])
    p = params(_core.MODE_CE) if name == "tail" else params()
    with pytest.raises(TypeError, match=match):
        optimize(a, p)


def test_read_only_embedding_is_refused():
    a = arrays()
    a["Z"].setflags(write=False)
    with pytest.raises(ValueError, match="not writeable"):
        optimize(a)


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value,match", [
    ("a", 0.0, "a must be a positive finite number"),
    ("b", float("nan"), "b must be a positive finite number"),
    ("learning_rate", float("nan"), "learning_rate must be a finite number >= 0"),
    ("learning_rate", float("inf"), "learning_rate must be a finite number >= 0"),
    ("alpha", -1.0, "alpha must be a finite number >= 0"),
    ("beta", float("inf"), "beta must be a finite number >= 0"),
    ("gamma", -0.5, "gamma \\(repulsion_strength\\) must be a finite number >= 0"),
    ("centre_lr", float("nan"), "centre_lr must be"),
    ("target_power", 0.0, "target_power must be a finite number > 0"),
    ("negative_sample_rate", 0.0, "negative_sample_rate must be a finite number > 0"),
    ("tol", float("nan"), "tol must be"),
    ("step_factor", -0.1, "step_factor must be"),
    ("attract_scale", float("inf"), "attract_scale must be"),
    ("clip_mode", 3, "clip_mode must be 0, 1 or 2, got 3"),
    ("schedule", 2, "schedule must be 0 \\(linear\\) or 1 \\(step\\), got 2"),
    ("step_every", 0, "step_every must be >= 1"),
    ("centre_update", 3, "centre_update must be 0 \\(gradient\\), 1 \\(mean\\) or 2 \\(fixed point\\), got 3"),
    ("centre_update", -1, "centre_update must be"),
    ("n_epochs_total", 0, "n_epochs_total must be >= 1"),
    ("min_joint_epochs", -1, "min_joint_epochs must be >= 0"),
    ("n_threads", 0, "n_threads must be in \\[1, 1024\\], got 0"),
    ("n_threads", 5000, "n_threads must be in \\[1, 1024\\], got 5000"),
    ("mode", 4, "mode must be 0"),
])
def test_bad_epoch_params_are_refused(field, value, match):
    assert_refused(arrays(), ValueError, match, params(**{field: value}))


def test_epoch_range_is_checked():
    a = arrays()
    with pytest.raises(ValueError, match="epoch range"):
        _core.optimize(a["Z"], a["M"], a["indptr"], a["indices"], a["eps"], a["next_sample"],
                       a["next_negative"], a["labels"], None, params(), 5, 2)
    with pytest.raises(ValueError, match="epoch range"):
        _core.optimize(a["Z"], a["M"], a["indptr"], a["indices"], a["eps"], a["next_sample"],
                       a["next_negative"], a["labels"], None, params(), -1, 2)


# -- the other entry points ------------------------------------------------------------------------


STATS = [
    lambda Z, M, **kw: _core.cluster_stats(Z, M, kw.get("a", 1.5), 0.9, kw.get("p", 2.0), True, kw.get("n_jobs", 1)),
    lambda Z, M, **kw: _core.cluster_gradients(Z, M, kw.get("a", 1.5), 0.9, kw.get("p", 2.0), _core.MODE_PLUS, kw.get("n_jobs", 1)),
    lambda Z, M, **kw: _core.soft_assign(Z, M, kw.get("a", 1.5), 0.9, kw.get("p", 2.0), True, kw.get("n_jobs", 1)),
]


@pytest.mark.parametrize("call", STATS)
def test_stats_entry_points_check_their_input(call):
    a = arrays()
    Z, M = a["Z"], a["M"]
    call(Z, M)  # valid
    bad = Z.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="embedding contains NaN"):
        call(bad, M)
    bad = M.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="centres contains NaN"):
        call(Z, bad)
    with pytest.raises(ValueError, match="p \\(target_power\\) must be a finite number > 0"):
        call(Z, M, p=0.0)
    with pytest.raises(ValueError, match="a must be"):
        call(Z, M, a=float("inf"))
    with pytest.raises(ValueError, match="n_jobs=0 is not allowed"):
        call(Z, M, n_jobs=0)
    with pytest.raises(ValueError, match="n_jobs=100000 asks for more than 1024 threads"):
        call(Z, M, n_jobs=100000)
    with pytest.raises(ValueError, match="centres has shape"):
        call(Z, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="centres must have at least one row"):
        call(Z, np.zeros((0, 2), np.float32))
    with pytest.raises(TypeError):
        call(np.asfortranarray(Z), M)


def test_ce_steps_checks_its_input():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="clip_mode must be 0, 1 or 2, got 7"):
        _core.ce_steps(x, x, 1.5, 0.9, 1.0, 7)
    with pytest.raises(ValueError, match="y has shape"):
        _core.ce_steps(x, np.zeros((3, 2), np.float32), 1.5, 0.9)
    with pytest.raises(ValueError, match="b must be"):
        _core.ce_steps(x, x, 1.5, -0.9)


def test_estimator_refuses_thousands_of_threads():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="n_jobs=5000 must be <= 1024"):
        UEC(n_clusters=2, n_neighbors=5, n_jobs=5000).fit(X)
