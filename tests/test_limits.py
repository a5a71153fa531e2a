"""Bounds on parameters that size an allocation, overflow float32 or make the optimisation
diverge, and the messages of cases that used to fail deep inside (issue 30): each is refused
with a ValueError naming the parameter, its value and what is allowed, before the kNN search
(``build_graph`` is replaced by a function that fails the test if it is reached)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from uec import UEC, _core
from uec import estimator as estimator_module

FAST = dict(random_state=0, n_jobs=1, n_epochs=10)


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(300, n_features=5, centers=3, random_state=0)
    return X


@pytest.fixture
def no_graph(monkeypatch):
    """The kNN search and everything after it must not run."""

    def fail(*args, **kwargs):
        raise AssertionError("the kNN search ran before the parameters were checked")

    monkeypatch.setattr(estimator_module, "fit_graph", fail)  # the kNN and graph stages


# -- counts that size an allocation ------------------------------------------------------------


@pytest.mark.parametrize("rate", [10**4, 10**6, 10**8, 10**12])
def test_negative_sample_rate_is_bounded(X, no_graph, rate):
    # 10**8 grew to ~20 GB and was OOM-killed, 10**6 aborted with std::bad_alloc, 10**12 gave
    # the bits of repulsion_strength=0
    with pytest.raises(ValueError, match=rf"negative_sample_rate={rate} is too large: allowed 1 to 1000"):
        UEC(3, negative_sample_rate=rate, **FAST).fit(X)


def test_the_largest_negative_sample_rate_runs(X):
    m = UEC(3, negative_sample_rate=1000, n_epochs=2, random_state=0, n_jobs=1).fit(X[:60])
    assert np.isfinite(m.embedding_).all()


@pytest.mark.parametrize("name,value,allowed", [
    ("n_components", 10**6, "allowed 1 to 1024"),
    ("n_epochs", 10**9, "allowed up to 100000"),
    ("warmup_epochs", 10**9, "allowed up to 100000"),
    ("min_joint_epochs", 10**9, "allowed up to 100000"),
])
def test_counts_are_bounded(X, no_graph, name, value, allowed):
    kw = dict(FAST)
    kw[name] = value
    if name == "warmup_epochs":
        kw.update(variant="comma", n_epochs=None)
    with pytest.raises(ValueError, match=rf"{name}={value} is too large: {allowed}"):
        UEC(3, **kw).fit(X)


def _ring_graph(n, eps_value):
    indptr = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
    indices = np.array([(i + s) % n for i in range(n) for s in (1, -1)], dtype=np.int32)
    eps = np.full(2 * n, eps_value, dtype=np.float32)
    return indptr, indices, eps


def _ce_run(gamma, rate=5.0, eps_value=1.0):
    n = 20
    Z = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    indptr, indices, eps = _ring_graph(n, eps_value)
    p = _core.EpochParams()
    p.mode, p.gamma, p.negative_sample_rate = _core.MODE_CE, gamma, rate
    p.n_epochs_total, p.n_threads, p.seed = 1, 1, 3
    _core.optimize(Z, None, indptr, indices, eps, eps.copy(), np.zeros_like(eps), None, None, p, 0, 1)
    return Z


def test_core_refuses_a_huge_negative_sample_rate():
    with pytest.raises(ValueError, match="negative_sample_rate must be <= 1000, got 1e\\+12"):
        _ce_run(1.0, rate=1e12)


def test_core_negative_count_beyond_int_keeps_repulsion():
    # an edge sampled every 1e-30 epochs asks for 5e30 negatives: the float-to-int conversion
    # was undefined (on x86 INT_MIN: no negatives, the bits of repulsion_strength=0); now the
    # count is clamped and repulsion acts
    with_repulsion, without = _ce_run(1.0, eps_value=1e-30), _ce_run(0.0, eps_value=1e-30)
    assert np.isfinite(with_repulsion).all()
    assert not np.array_equal(with_repulsion, without)


# -- divergence and bad shape parameters --------------------------------------------------------


@pytest.mark.parametrize("spread,min_dist", [(1e-3, 0.0), (0.05, 0.0), (10.0, 10.0), (1e30, 0.1)])
def test_spread_and_min_dist_that_give_no_curve(X, no_graph, spread, min_dist):
    # (1e-3, 0) gave "b must be a positive finite number, got -70.52" from the core, after the
    # kNN search and the initial layout; (1e30, 0.1) a curve that is not fitted at all
    with pytest.raises(ValueError, match=r"spread=.*min_dist=.*cannot be fitted.*allowed"):
        UEC(3, spread=spread, min_dist=min_dist, **FAST).fit(X)


@pytest.mark.parametrize("name", ["learning_rate", "alpha", "beta", "centre_lr", "repulsion_strength"])
@pytest.mark.parametrize("variant", ["ce", "comma"])
def test_step_scales_are_bounded(X, no_graph, name, variant):
    # learning_rate=1e30 / alpha=1e30 gave "Z contains NaN or infinite values" naming nothing
    with pytest.raises(ValueError, match=rf"{name}=1e\+30 is too large: allowed up to 1000"):
        UEC(3, variant=variant, **{name: 1e30}, **FAST).fit(X)


@pytest.mark.parametrize("value", [1e30, 1e7, np.inf, np.nan])
def test_huge_or_non_finite_init_is_refused(X, no_graph, value):
    init = np.zeros((300, 2))
    init[5, 1] = value
    with pytest.raises(ValueError, match="init (has coordinates up to|contains NaN)"):
        UEC(3, init=init, **FAST).fit(X)


def test_init_of_the_wrong_shape_is_refused_before_the_search(X, no_graph):
    with pytest.raises(ValueError, match=r"init has shape \(10, 2\), expected \(300, 2\)"):
        UEC(3, init=np.zeros((10, 2)), **FAST).fit(X)


def test_huge_centre_init_is_refused(X, no_graph):
    with pytest.raises(ValueError, match="centre_init has coordinates up to 1e\\+30"):
        UEC(3, variant="comma", centre_init=np.full((3, 2), 1e30), **FAST).fit(X)


def test_a_given_init_within_bounds_still_fits(X):
    init = np.random.default_rng(0).uniform(0, 1e5, size=(300, 2))
    m = UEC(3, init=init, **FAST).fit(X)
    assert np.isfinite(m.embedding_).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_correlation_with_constant_rows_names_the_metric(X, no_graph, sparse):
    # was "the kNN distances of X overflow float32 ...: rescale X"
    import scipy.sparse

    Xc = X.copy()
    Xc[[4, 9]] = 1.5
    Xc[17] = 0.0
    if sparse:
        Xc = scipy.sparse.csr_matrix(Xc)
    from uec.graph import build_graph

    with pytest.raises(ValueError, match=r"metric='correlation' is undefined for constant rows.*3 \(rows 4, 9, 17\)"):
        build_graph(Xc, 15, 10, metric="correlation")


def test_correlation_with_constant_rows_from_fit(X):
    Xc = X.copy()
    Xc[:5] = 1.0
    with pytest.raises(ValueError, match="metric='correlation' is undefined for constant rows"):
        UEC(3, metric="correlation", **FAST).fit(Xc)


@pytest.mark.parametrize("value", [1e39, 3.5e38])
def test_knn_distance_beyond_float32_is_refused(X, value):
    from uec.graph import nearest_neighbors

    indices, distances = nearest_neighbors(X, 15, exact=True)
    distances = distances.astype(np.float64)
    distances[3, 5] = value
    # was "graph contains non-finite weights"
    with pytest.raises(ValueError, match=r"knn distances must be finite and non-negative, at most "
                                         r"3.403e\+38 \(float32\), got .* at row 3, column 5"):
        UEC(3, knn=(indices, distances), **FAST).fit(X)


# -- after the fit --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return UEC(3, **FAST).fit(X)


@pytest.mark.parametrize("method", ["transform", "predict"])
def test_rows_beyond_float32_distance_are_refused(fitted, method):
    # transform was "epochs_per_sample must be positive and finite" from the core
    with pytest.raises(ValueError, match=r"X has 5 rows \(first: 0\) whose distances to the "
                                         r"training data .* exceed float32's range"):
        getattr(fitted, method)(np.full((5, 5), 3e38))


@pytest.mark.parametrize("value", [5, 2, 1])
def test_set_params_n_clusters_after_fit(X, value):
    m = UEC(3, **FAST).fit(X)
    m.set_params(n_clusters=value)
    # was an IndexError / a reshape error in _transform.py
    for method in (m.predict, m.transform):
        with pytest.raises(ValueError, match=rf"n_clusters={value} differs from the fitted "
                                             r"model's 3 .*allowed: 3"):
            method(X[:5])
    m.set_params(n_clusters=3)
    np.testing.assert_array_equal(m.predict(X[:20]), m.labels_[:20])


def test_set_params_n_components_after_fit(fitted):
    m = UEC(3, **FAST).fit(fitted._raw_data)
    m.set_params(n_components=3)
    with pytest.raises(ValueError, match="n_components=3 differs from the fitted model's 2"):
        m.transform(m._raw_data[:5])


# -- far points (issue 30, item 5) ----------------------------------------------------------------


def _exact_sq_distances(train, Q):
    """Squared euclidean distances of float32 values in exact integer arithmetic (every float32
    is an integer multiple of 2^-149)."""
    def ints(A):
        return np.array([[int(np.float64(v) * 2.0**149) if v else 0 for v in row] for row in
                         np.asarray(A, dtype=np.float32).astype(np.float64)], dtype=object)

    T, Qi = ints(train), ints(Q)
    return np.array([[sum((a - b) ** 2 for a, b in zip(q, t)) for t in T] for q in Qi], dtype=object)


def _exact_nearest(train, Q, k=1):
    d = _exact_sq_distances(train, Q)
    return np.array([sorted(range(len(row)), key=lambda j: (row[j], j))[:k] for row in d])


@pytest.fixture(scope="module")
def far_models():
    out = {}
    for n in (500, 5000):  # brute-force queries, and the graph search (above 4,096 rows)
        X, _ = make_blobs(n, n_features=5, centers=3, random_state=0)
        X = X.astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[n] = (X, UEC(3, random_state=0, n_jobs=1, n_epochs=10).fit(X))
    return out


@pytest.mark.parametrize("n", [500, 5000])
@pytest.mark.parametrize("scale", [1e3, 1e12, 1e18])
def test_far_points_take_the_nearest_training_points_cluster(far_models, n, scale):
    # m.predict(X[450:460] * 1e18) gave one cluster for all ten; the nearest training point
    # (exact arithmetic) is in another cluster for most of them
    X, m = far_models[n]
    Q = (X[450:460] * np.float32(scale)).astype(np.float32)
    nearest = _exact_nearest(X, Q)[:, 0]
    np.testing.assert_array_equal(m.predict(Q), m.labels_[nearest])
    from uec import _transform

    idx, dist = _transform.query_training_neighbours(m, Q, m.n_neighbors, 1)
    np.testing.assert_array_equal(idx[:, 0], nearest)
    assert np.isfinite(dist).all()
    assert np.isfinite(m.transform(Q)).all()


@pytest.mark.parametrize("n", [500, 5000])
def test_rows_near_the_data_are_searched_as_before(far_models, n):
    # only rows far_rows flags are searched again: the rest keep the search's answer
    from uec import _far, _transform

    X, m = far_models[n]
    Q = X[:200] + np.float32(0.05)
    idx, dist = _transform.query_training_neighbours(m, Q, m.n_neighbors, 1)
    raw_idx, raw_dist = _transform._query_training_neighbours(m, Q, m.n_neighbors, 1)
    assert not _far.far_rows(raw_dist).any()
    np.testing.assert_array_equal(idx, raw_idx)
    np.testing.assert_array_equal(dist, raw_dist)


@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_exact_far_query_against_exact_arithmetic(zeros, sparse):
    # with zeros, rows that tie on a far query's only non-zero coordinate are told apart by the
    # others alone: ranked from the training mean they were not (row 5 was wrong)
    import scipy.sparse

    from uec import _far

    rng = np.random.default_rng(1)
    train = (rng.normal(size=(300, 4)) + 50.0).astype(np.float32)
    if zeros:
        train[rng.random(train.shape) < 0.2] = 0.0
    Q = np.concatenate([train[:3] * np.float32(1e15), -train[3:6] * np.float32(1e19),
                        train[6:9] + np.float32(0.01), train[9:10]]).astype(np.float32)
    T = scipy.sparse.csr_matrix(train) if sparse else train
    idx, sq = _far.exact_far_query(T, scipy.sparse.csr_matrix(Q) if sparse else Q, 5,
                                   squared=True)
    np.testing.assert_array_equal(idx, _exact_nearest(train, Q, k=5))
    assert sq[-1, 0] == 0.0  # a duplicate of a training row is at distance exactly 0
    ref = _exact_sq_distances(train, Q)  # in units of 2^-298
    exact = np.array([[float(ref[i, idx[i, j]]) for j in range(5)] for i in range(len(Q) - 1)])
    np.testing.assert_allclose(np.ldexp(sq[:-1], 298), exact, rtol=1e-12)


# -- search recall for small n_neighbors (issue 30, item 4) -------------------------------------


@pytest.fixture(scope="module")
def blobs6000():
    X, _ = make_blobs(6000, n_features=10, centers=5, random_state=0)
    return X.astype(np.float32)


@pytest.mark.parametrize("k", [2, 3])
def test_graph_search_recall_for_small_n_neighbors(blobs6000, k):
    # n_neighbors=2: the search of the fitted graph found the row itself for 19% of training
    # rows (recall of the 2 nearest 0.20; k = 3: 0.84)
    from uec import _knn
    from uec.graph import nearest_neighbors

    X = blobs6000
    indices, distances, index = _knn.knn_graph(X, k, random_state=0, n_jobs=1)
    assert indices.shape == (6000, k) and distances.shape == (6000, k)
    exact, _ = nearest_neighbors(X, k, exact=True, n_jobs=1)
    found, _ = index.query(X, X, k)
    assert np.mean(found[:, 0] == np.arange(len(X))) > 0.999
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)])
    assert recall > 0.99
    # new points too: held-out rows of the same blobs
    Q = X[:500] + np.float32(0.1)
    exact_q = np.argsort(((Q[:, None, :].astype(np.float64) - X[None]) ** 2).sum(-1), axis=1,
                         kind="stable")[:, :k]
    got, _ = index.query(X, Q, k)
    assert np.mean([len(set(a) & set(b)) / k for a, b in zip(got, exact_q)]) > 0.99


def test_the_search_floor_leaves_larger_n_neighbors_unchanged(blobs6000):
    # from n_neighbors = 6 the NN-descent heap is the one it was: the fit's kNN keeps its bits
    from uec import _knn

    X = blobs6000
    indices, distances, _ = _knn.knn_graph(X, 6, random_state=0, n_jobs=1)
    seed = _knn._seed(0)
    raw_idx, raw_sq, _ = _core.nn_descent(X, 6, seed=seed, n_threads=1, **_knn.default_params(6000, 6))
    np.testing.assert_array_equal(indices, raw_idx)
    np.testing.assert_array_equal(distances, np.sqrt(raw_sq))


# -- the memory model: the core's caches, and the check before any copy of X (item 2) -----------


def test_the_estimate_counts_the_cores_n_by_c_caches():
    from uec import _memory

    n = C = 12_000
    base = dict(n_neighbors=15, n_components=2, n_clusters=C, x_allocated=True,
                n_final_clusters=C)
    cache = 8 * n * C
    epochs = {v: _memory.core_epoch_bytes(n, 2, C, 15, v) for v in ("ce", "comma", "plus")}
    assert cache < epochs["comma"] < 1.1 * cache and 2 * cache < epochs["plus"] < 2.1 * cache
    assert epochs["ce"] < cache / 100  # the CE epochs keep no n x C cache
    # log S is kept only when target_power != 1
    assert _memory.core_epoch_bytes(n, 2, C, 15, "plus", target_power=1.0) < 1.1 * cache
    # plus was estimated at 1.08 GiB and peaked at 2.21 GiB: now the epochs' caches and the
    # C x C group weights of the merge and the hierarchy are both counted
    plus, pp = _memory.estimate_fit_memory(n, 10, variant="plus", **base)
    comma, pc = _memory.estimate_fit_memory(n, 10, variant="comma", **base)
    assert pp["largest stage: epochs"] == epochs["plus"] and plus < 1.05 * epochs["plus"]
    assert pc["largest stage: merge and hierarchy"] == 2 * 8 * C * C
    ce, _ = _memory.estimate_fit_memory(n, 10, variant="ce", **base)
    assert ce < cache / 10  # the graph stage keeps neither


def test_a_large_plus_fit_fails_fast(monkeypatch, no_graph):
    # n = C = 30,000 plus passed the check under a limit and died 17.6 s later with a bare
    # std::bad_alloc: its caches alone are 13.4 GiB
    from uec import _memory

    monkeypatch.setenv(_memory.ENV_VAR, "8G")
    X = np.random.default_rng(0).normal(size=(30_000, 2)).astype(np.float32)
    with pytest.raises(MemoryError, match=r"needs about 1[34]\.\d GiB.*largest stage: epochs"):
        UEC(30_000, variant="plus", **FAST).fit(X)


def test_the_check_runs_before_a_float64_memmap_is_copied(tmp_path, monkeypatch, no_graph):
    # the float32 copy of a float64 memmap was made (1.8 GiB in the report) before the check
    from uec import _memory

    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64,
                                  shape=(20_000, 64))
    X[:] = 1.0
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")

    def no_copy(*args, **kwargs):
        raise AssertionError("X was converted before the memory check")

    monkeypatch.setattr(estimator_module, "check_array", no_copy)
    monkeypatch.setenv(_memory.ENV_VAR, "4M")
    with pytest.raises(MemoryError, match=r"X \(float32 copy\) 4\.9 MiB"):
        UEC(3, **FAST).fit(X)


def test_a_float32_array_is_not_counted_twice(monkeypatch):
    from uec import _memory

    X = np.ones((1000, 8), dtype=np.float32)
    seen = []
    real = _memory.check_fit_memory

    def spy(n, f, **kwargs):
        seen.append(kwargs["x_allocated"])
        return real(n, f, **kwargs)

    monkeypatch.setattr(_memory, "check_fit_memory", spy)
    _memory.check_estimator_memory(UEC(3), X)
    _memory.check_estimator_memory(UEC(3), X.astype(np.float64))
    _memory.check_estimator_memory(UEC(3), np.asfortranarray(X))
    assert seen == [True, False, False]
    # invalid parameters are left to the estimator's own checks
    assert _memory.check_estimator_memory(UEC("three"), X) is None


# -- AutoEncoder.load: sizes against the saved weights before allocating -----------------------


def test_autoencoder_load_checks_sizes_before_allocating(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from uec.autoencoder import _FORMAT, _FORMAT_VERSION, AutoEncoder

    params = AutoEncoder(hidden_dims=[60000], n_components=2).get_params()
    params["hidden_dims"] = [60000]
    small = {"0.weight": torch.zeros(4, 784), "0.bias": torch.zeros(4),
             "2.weight": torch.zeros(2, 4), "2.bias": torch.zeros(2)}
    state = {"format": _FORMAT, "version": _FORMAT_VERSION, "params": params,
             "n_features_in": 60000, "loss_curve": [1.0], "encoder": small, "decoder": small}
    path = tmp_path / "crafted.pt"
    torch.save(state, path)

    def no_build(*args, **kwargs):
        raise AssertionError("the networks were allocated before the sizes were checked")

    monkeypatch.setattr(AutoEncoder, "_build", no_build)
    # hidden_dims=[60000] with 60000 features tried to allocate 14 GB on load
    with pytest.raises(ValueError, match=r"hidden_dims=\[60000\], n_features_in=60000 and "
                                         r"n_components=2 need encoder weights 0.weight of shape "
                                         r"\(60000, 60000\), but the file holds \(4, 784\)"):
        AutoEncoder.load(path)
    state["n_features_in"] = -3
    torch.save(state, path)
    with pytest.raises(ValueError, match="n_features_in=-3 must be a positive integer"):
        AutoEncoder.load(path)


def test_autoencoder_load_of_a_saved_model_still_works(tmp_path):
    pytest.importorskip("torch")
    from uec.autoencoder import AutoEncoder

    X = np.random.default_rng(0).uniform(size=(64, 12)).astype(np.float32)
    ae = AutoEncoder(hidden_dims=(8, 6), n_components=3, n_epochs=1, random_state=0,
                     device="cpu").fit(X)
    ae.save(tmp_path / "ae.pt")
    np.testing.assert_array_equal(AutoEncoder.load(tmp_path / "ae.pt").transform(X), ae.transform(X))


# -- property: extreme values of every numeric parameter -----------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_N = 30
_HUGE_INT = [10**6, 10**9, 2**31, 2**63]
_REAL_EXTREMES = [0.0, -1.0, 5e-324, 1e-300, 1e300, 1.7e308, float("inf"), float("-inf"), float("nan")]
# each parameter: typical values, its bounds and just past them, and extremes of its type
NUMERIC = {
    "n_clusters": [1, 2, 3, _N, _N + 1, 0, -1, 2.5, True] + _HUGE_INT,
    "n_subclusters": [None, 3, 9, _N, _N + 1, 0] + _HUGE_INT,
    "n_components": [1, 2, 3, 5, 1024, 1025, 0, -1] + _HUGE_INT,
    "n_neighbors": [2, 3, _N - 1, _N, 1, 0] + _HUGE_INT,
    "min_dist": [0.0, 0.01, 0.5, 0.99, 1.0] + _REAL_EXTREMES,
    "spread": [0.3, 1.0, 3.0, 1000.0, 1e-3] + _REAL_EXTREMES,
    "alpha": [1e-3, 1.0, 1000.0, 1000.5] + _REAL_EXTREMES,
    "beta": [1e-3, 1.0, 1000.0, 1000.5] + _REAL_EXTREMES,
    "target_power": [0.5, 1.0, 2.0, 10.0, 10.5] + _REAL_EXTREMES,
    "n_epochs": [None, 1, 2, 5, 20000, 100_001, 0, -1] + _HUGE_INT,
    "warmup_epochs": [None, 0, 1, 4, 19999, 100_001, -1] + _HUGE_INT,
    "learning_rate": [1e-3, 1.0, 1000.0, 1000.5, 1e30] + _REAL_EXTREMES,
    "centre_lr": [1e-3, 1.0, 1000.0, 1000.5, 1e30] + _REAL_EXTREMES,
    "negative_sample_rate": [1, 5, 1000, 1001, 0, -1, 2.5] + _HUGE_INT,
    "repulsion_strength": [1e-3, 1.0, 1000.0, 1000.5] + _REAL_EXTREMES,
    "tol": [1e-3, 0.5, 1.0, 1.5] + _REAL_EXTREMES,
    "min_joint_epochs": [0, 1, 10, 20000, 100_001, -1] + _HUGE_INT,
    "n_jobs": [1, 2, -1, -2, 1024, 1025, 0, -(10**6)] + _HUGE_INT,
}
CHOICES = {
    "variant": ["ce", "comma", "plus", "light_plus"],
    "centre_update": ["fixed_point", "gradient", "mean"],
    "clip": ["norm", "umap", "scaled"],
    "lr_schedule": ["linear", "step"],
    "init": ["spectral", "pca", "random"],
    "centre_init": ["kmeans", "random"],
}


@st.composite
def extreme_params(draw):
    names = draw(st.lists(st.sampled_from(sorted(NUMERIC)), min_size=1, max_size=3, unique=True))
    params = {name: draw(st.sampled_from(NUMERIC[name])) for name in names}
    for name, values in CHOICES.items():
        if draw(st.booleans()):
            params[name] = draw(st.sampled_from(values))
    return params


def _finite_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(params=extreme_params())
def test_extreme_parameters_fit_or_name_the_parameter(params):
    # the test's own time budget (not a limit of the library): epochs x negatives per edge
    epochs = params.get("n_epochs", 5)
    rate = params.get("negative_sample_rate", 5)
    if _finite_number(epochs) and _finite_number(rate) and epochs and rate:
        assume(abs(epochs) * (abs(rate) + 2) <= 3 * 10**5 or abs(epochs) > 100_000
               or abs(rate) > 1000)
    X, _ = make_blobs(_N, n_features=3, centers=3, random_state=0)
    kw = dict(n_clusters=3, n_epochs=5, random_state=0, n_jobs=1)
    kw.update(params)
    model = UEC(**kw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
    except ValueError as exc:
        named = [name for name in params if name in str(exc)]
        assert named, f"{exc!s} names none of {sorted(params)}"
        return
    assert np.isfinite(model.embedding_).all()
    assert np.isfinite(model.cluster_centers_).all()
    labels = model.labels_
    assert labels.shape == (_N,) and labels.min() >= -1
    assert np.isfinite(model.transform(X[:4])).all()
    assert model.predict(X[:4]).shape == (4,)


def _exact_p_distances(train, Q, p):
    """Minkowski distances (to the power p; p = inf: the max) in exact rational arithmetic."""
    from fractions import Fraction

    Ti = [[Fraction(float(v)) for v in row] for row in np.asarray(train, dtype=np.float64)]
    Qi = [[Fraction(float(v)) for v in row] for row in np.asarray(Q, dtype=np.float64)]
    if np.isinf(p):
        return [[max(abs(a - b) for a, b in zip(q, t)) for t in Ti] for q in Qi]
    return [[sum(abs(a - b) ** int(p) for a, b in zip(q, t)) for t in Ti] for q in Qi]


@pytest.mark.parametrize("p", [1.0, 3.0, np.inf])
@pytest.mark.parametrize("sparse", [False, True])
def test_exact_far_query_p_against_exact_arithmetic(p, sparse):
    # manhattan, minkowski p=3 and chebyshev: the nearest rows of far queries, dense and sparse,
    # equal to those of exact arithmetic, and their distances to float64 precision
    import scipy.sparse

    from uec import _far

    rng = np.random.default_rng(2)
    train = (rng.normal(size=(200, 4)) + 20.0).astype(np.float32)
    train[rng.random(train.shape) < 0.2] = 0.0  # zeros for the sparse form
    Q = np.concatenate([train[:3] * np.float32(1e15), -train[3:6] * np.float32(1e19),
                        train[6:9] + np.float32(0.01), train[9:10]]).astype(np.float32)
    T = scipy.sparse.csr_matrix(train) if sparse else train
    Qa = scipy.sparse.csr_matrix(Q) if sparse else Q
    idx, dist = _far.exact_far_query_p(T, Qa, 5, p)
    ref = _exact_p_distances(train, Q, p)
    want = np.array([sorted(range(len(r)), key=lambda j: (r[j], j))[:5] for r in ref])
    np.testing.assert_array_equal(idx, want)
    assert dist[-1, 0] == 0.0  # a duplicate of a training row is at distance exactly 0
    root = 1.0 if (np.isinf(p) or p == 1.0) else 1.0 / p
    exact = np.array([[float(ref[i][j]) ** root for j in idx[i]] for i in range(len(Q))])
    np.testing.assert_allclose(dist, exact, rtol=1e-9)


@pytest.mark.parametrize("metric, kwds, sparse", [("manhattan", None, False),
                                                  ("chebyshev", None, False),
                                                  ("minkowski", {"p": 3}, False),
                                                  ("euclidean", None, True),
                                                  ("manhattan", None, True)])
def test_far_points_other_metrics_and_sparse(metric, kwds, sparse):
    # X[150:160] * 1e18 put all ten rows in one cluster with these metrics (and with sparse
    # euclidean input), whatever the nearest training point; now the nearest training point
    # (exact arithmetic) gives the cluster at every scale
    import scipy.sparse

    X, _ = make_blobs(300, n_features=5, centers=3, random_state=0)
    X = X.astype(np.float32)
    Xt = scipy.sparse.csr_matrix(X) if sparse else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = UEC(3, metric=metric, metric_kwds=kwds, random_state=0, n_jobs=1,
                n_epochs=10).fit(Xt)
    _far_p = {"manhattan": 1.0, "chebyshev": np.inf, "euclidean": 2.0}.get(metric, 3.0)
    for scale in (1e3, 1e18):
        Q = (X[150:160] * np.float32(scale)).astype(np.float32)
        ref = _exact_p_distances(X, Q, _far_p)
        nearest = np.array([min(range(len(r)), key=lambda j: (r[j], j)) for r in ref])
        Qt = scipy.sparse.csr_matrix(Q) if sparse else Q
        np.testing.assert_array_equal(m.predict(Qt), m.labels_[nearest])
        assert np.isfinite(m.transform(Qt)).all()
    from uec import _far

    assert _far.far_metric_p(metric, kwds) == _far_p  # the far search used the reference's p


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, np.inf])
def test_far_query_chunks_give_the_same_answer(monkeypatch, p):
    # the brute force runs in chunks of training and query rows (about 4 Mi doubles each):
    # tiny chunks must give the same neighbours and distances as one chunk
    from uec import _far

    rng = np.random.default_rng(3)
    train = rng.normal(size=(120, 6)).astype(np.float32)
    Q = (rng.normal(size=(9, 6)) * 1e12).astype(np.float32)
    Q[:3] = train[:3] * np.float32(1e15)  # three rows share their best training row
    Q[3:6] = train[:1] * np.float32(1e15)

    def run():
        if p == 2.0:
            return _far.exact_far_query(train, Q, 5)
        return _far.exact_far_query_p(train, Q, 5, p)

    idx, dist = run()
    monkeypatch.setattr(_far, "_BLOCK_DOUBLES", 64)
    idx_small, dist_small = run()
    np.testing.assert_array_equal(idx_small, idx)
    np.testing.assert_allclose(dist_small, dist, rtol=1e-12)
