"""The memory check: a fit whose estimated peak exceeds the available memory fails at once, before
the kNN, with a MemoryError that gives the estimate; the estimate follows real fits."""

import sys
import tracemalloc

import numpy as np
import pytest

import uec.clusters

from uec import UEC
from uec import _memory
from uec import estimator as estimator_module


@pytest.fixture
def no_graph(monkeypatch):
    """Make any attempt to build the graph fail loudly: the check must come first."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the graph was built although the memory check should have failed")

    monkeypatch.setattr(estimator_module, "fit_graph", forbidden)  # the kNN and graph stages


def X_of(n, f, seed=0):
    return np.random.default_rng(seed).normal(size=(n, f)).astype(np.float32)


def test_too_little_memory_fails_fast_with_the_estimate(monkeypatch, no_graph):
    monkeypatch.delenv(_memory.ENV_VAR, raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda: 8 << 20)  # 8 MiB
    X = X_of(3000, 20)
    # without a union view, refine="auto" also partitions X whitened (5 Gaussians in 20-d are
    # identifiable from 3,000 rows): that view's kNN and graph are the largest stage
    for union_metric, union_view, largest in ((None, False, "whitened view (kNN and graph)"),
                                              ("cosine", True, "union view (kNN and graph)")):
        est, _ = _memory.estimate_fit_memory(3000, 20, n_neighbors=15, n_components=2,
                                             n_clusters=5, x_allocated=True,
                                             union_view=union_view,
                                             whitened_view=not union_view)
        with pytest.raises(MemoryError) as info:
            UEC(n_clusters=5, union_metric=union_metric).fit(X)
        msg = str(info.value)
        assert f"needs about {_memory._fmt(est)}" in msg
        assert "n_samples=3000, n_features=20, n_neighbors=15" in msg
        assert "only 8.0 MiB is available" in msg
        assert "graph (CSR)" in msg and f"largest stage: {largest}" in msg
        assert _memory.ENV_VAR in msg
    assert "clustering graph (union view)" in msg


def test_enough_memory_passes(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: 1 << 40)
    model = UEC(n_clusters=3, n_epochs=10, random_state=0).fit(X_of(200, 5))
    assert np.isfinite(model.embedding_).all()


def test_memory_is_checked_once_per_fit(monkeypatch):
    # fit checked the same memory twice (before and after converting X); the second check runs
    # only when X's size cannot be read before the conversion (a list), and then it still fails
    calls = []
    real = _memory.check_fit_memory

    def counting(*args, **kwargs):
        calls.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(_memory, "check_fit_memory", counting)
    monkeypatch.setattr(estimator_module, "check_fit_memory", counting)
    monkeypatch.setattr(_memory, "available_memory", lambda: 1 << 40)
    X = X_of(200, 5)
    UEC(n_clusters=3, n_epochs=5, random_state=0).fit(X)
    assert calls == [(200, 5)]
    calls.clear()
    UEC(n_clusters=3, n_epochs=5, random_state=0).fit(X.tolist())
    assert calls == [(200, 5)]
    monkeypatch.setattr(_memory, "available_memory", lambda: 1 << 20)
    with pytest.raises(MemoryError, match="only 1.0 MiB is available"):
        UEC(n_clusters=3).fit(X_of(3000, 20).tolist())


def test_environment_variable_sets_the_limit(monkeypatch, no_graph):
    monkeypatch.setenv(_memory.ENV_VAR, "1M")
    assert _memory.available_memory() == 1 << 20
    with pytest.raises(MemoryError, match="only 1.0 MiB is available"):
        UEC(n_clusters=2).fit(X_of(500, 4))


def test_environment_variable_off_disables_the_check(monkeypatch):
    monkeypatch.setenv(_memory.ENV_VAR, "off")
    assert _memory.available_memory() is None
    assert _memory.check_fit_memory(10**9, 10**4, n_neighbors=15, n_components=2, n_clusters=10) > 1 << 40


@pytest.mark.parametrize("text,value", [("123", 123), ("8G", 8 << 30), ("1.5m", 3 << 19),
                                        ("2 GiB", 2 << 30), ("64kb", 64 << 10), ("1T", 1 << 40)])
def test_sizes_parse(text, value):
    assert _memory._parse_bytes(text) == value


def test_a_bad_size_names_the_variable(monkeypatch):
    monkeypatch.setenv(_memory.ENV_VAR, "lots")
    with pytest.raises(ValueError, match="UEC_MAX_MEMORY='lots' is not a size"):
        UEC(n_clusters=2).fit(X_of(50, 3))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/meminfo")
def test_available_memory_is_detected(monkeypatch):
    monkeypatch.delenv(_memory.ENV_VAR, raising=False)
    avail = _memory.available_memory()
    assert isinstance(avail, int) and 0 < avail
    with open("/proc/meminfo") as fh:
        total = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemTotal:"))
    assert avail <= total


def test_without_psutil_proc_meminfo_is_read(monkeypatch):
    monkeypatch.delenv(_memory.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    avail = _memory.available_memory()
    if sys.platform.startswith("linux"):
        assert isinstance(avail, int) and avail > 0


def test_huge_problems_are_refused_on_any_machine(monkeypatch, no_graph):
    # 10^8 x 100 floats need ~40 GB for X alone; a problem 1000x larger cannot fit anywhere
    monkeypatch.delenv(_memory.ENV_VAR, raising=False)
    if _memory.available_memory() is None:
        pytest.skip("available memory unknown here")
    with pytest.raises(MemoryError, match="needs about"):
        _memory.check_fit_memory(10**11, 100, n_neighbors=15, n_components=2, n_clusters=10)


def test_the_estimate_grows_as_the_model_says():
    base = dict(n_neighbors=15, n_components=2, n_clusters=10, init="random", knn_given=True)
    e1, p1 = _memory.estimate_fit_memory(10**5, 50, **base)
    e2, _ = _memory.estimate_fit_memory(2 * 10**5, 50, **base)
    assert 1.9 * e1 < e2 < 2.1 * e1  # linear in n once the kNN is given
    e3, p3 = _memory.estimate_fit_memory(10**5, 50, **dict(base, n_neighbors=30))
    assert p3["graph (CSR)"] > 1.9 * p1["graph (CSR)"]
    dense, _ = _memory.estimate_fit_memory(10**5, 10**4, **base)
    sparse, _ = _memory.estimate_fit_memory(10**5, 10**4, nnz=10**6, **base)
    assert sparse < dense / 10
    # the exact kNN's float64 copies of X grow with the features
    _, p64 = _memory.estimate_fit_memory(4000, 64, n_neighbors=15, n_components=2, n_clusters=5)
    _, p784 = _memory.estimate_fit_memory(4000, 784, n_neighbors=15, n_components=2, n_clusters=5)
    assert p784["largest stage: kNN search"] > p64["largest stage: kNN search"] + 16 * 4000 * 700


@pytest.mark.parametrize("init", ["spectral", "pca"])
def test_estimate_bounds_the_memory_a_real_fit_allocates(init):
    # numpy's allocations are traced by tracemalloc (the C++ core's are not, but they are a
    # small part); the estimate is a realistic peak: above what is measured, not far above.
    n, f = 3000, 32
    X = X_of(n, f)
    UEC(n_clusters=2, n_epochs=2, random_state=0).fit(X[:200])  # first-call set-up of libraries
    model = UEC(n_clusters=8, n_epochs=50, init=init, random_state=0, n_jobs=1)
    tracemalloc.start()
    try:
        model.fit(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est, _ = _memory.estimate_fit_memory(n, f, n_neighbors=15, n_components=2, n_clusters=8,
                                         init=init, x_allocated=True)
    assert peak <= est <= 2.5 * peak, (peak, est)


@pytest.mark.parametrize("params, shape", [
    ({"n_clusters": 5}, (3000, 20)),                       # identifiable: a whitened start
    ({"n_clusters": 5}, (300, 20)),                        # 5 x 230 + 4 parameters > 300 rows
    ({"n_clusters": 5, "refine": None}, (3000, 20)),
    ({"n_clusters": 5, "metric": "manhattan"}, (3000, 20)),
    ({"n_clusters": 5, "union_metric": "cosine"}, (3000, 20)),
    ({"n_clusters": 5, "variant": "comma"}, (3000, 20)),   # the centre stage: no refinement
    ({}, (3000, 20)),                                      # k estimated: one start
])
def test_memory_model_counts_the_whitened_view_when_the_fit_builds_it(params, shape):
    est = UEC(**params)
    X = X_of(*shape)
    # what the fit does: the whitened view's graph is built inside graph_partition
    built = []
    real = uec.clusters.view_graph
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(uec.clusters, "view_graph", lambda *a, **k: built.append(1) or real(*a, **k))
        est.fit(X)
    assert _memory._whitened(est, shape[0], shape[1], None) == bool(built)
    assert not _memory._whitened(est, shape[0], shape[1], shape[0] * 3)  # sparse X: never


def test_the_whitened_view_is_counted_on_the_em_sample_only():
    # above REFINE_SAMPLE rows the whitened view is built on EM's sample: its graph does not
    # grow with n, where the data's own graph does
    from uec.refine import REFINE_SAMPLE

    def parts(n):
        return _memory.estimate_fit_memory(n, 20, n_neighbors=15, n_components=2,
                                           n_clusters=5, x_allocated=True,
                                           whitened_view=True)[1]

    small, big = parts(2 * REFINE_SAMPLE), parts(8 * REFINE_SAMPLE)
    assert big["graph (CSR)"] > 3.9 * small["graph (CSR)"]
    assert big["whitened clustering graph"] == pytest.approx(small["whitened clustering graph"],
                                                             rel=1e-3)
    below = parts(REFINE_SAMPLE // 2)  # every row below the sample's size
    assert below["whitened clustering graph"] == pytest.approx(below["graph (CSR)"], rel=1e-3)
