"""The graph stage's partition made beside the epochs (uec.optimize._beside): the core's stop
flag (an int32 array as `callback`, read without the GIL), the epochs running while another
thread holds the GIL, exceptions from either side, and fits equal to the sequential ones."""

import ctypes
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

import uec.optimize as uo
from uec import UEC, _core
from uec.graph import build_graph, epochs_per_sample, find_ab_params
from uec.init import initial_embedding

N_EPOCHS = 500


@pytest.fixture(scope="module")
def problem():
    X = load_digits().data[:400].astype(np.float32)
    graph, _, _ = build_graph(X, 15, N_EPOCHS, random_state=0)
    Z = np.ascontiguousarray(initial_embedding("pca", X, graph, 2, 0), dtype=np.float32)
    return graph, Z


def epochs_call(problem, stop=N_EPOCHS):
    """A CE run's arguments, fresh state each time: (optimize(callback), state arrays)."""
    graph, Z0 = problem
    a, b = find_ab_params(1.0, 0.1)
    eps = epochs_per_sample(graph.data, N_EPOCHS).astype(np.float32)
    state = dict(Z=Z0.copy(), ns=eps.copy(), nn=(eps / 5).astype(np.float32))
    p = _core.EpochParams()
    p.a, p.b, p.mode, p.n_epochs_total, p.seed, p.n_threads = a, b, _core.MODE_CE, N_EPOCHS, 3, 1

    def run(callback):
        return _core.optimize(state["Z"], None, graph.indptr.astype(np.int64),
                              graph.indices.astype(np.int32), eps, state["ns"], state["nn"],
                              None, None, p, 0, stop, callback)
    return run, state


def test_stop_flag_runs_to_the_end_when_clear_and_stops_when_set(problem):
    ref_run, ref = epochs_call(problem)
    assert ref_run(None)["epochs_run"] == N_EPOCHS
    run, got = epochs_call(problem)
    res = run(np.zeros(1, np.int32))
    assert res["epochs_run"] == N_EPOCHS and not res["interrupted"]
    np.testing.assert_array_equal(got["Z"], ref["Z"])  # the flag changes nothing else
    run, _ = epochs_call(problem)
    res = run(np.ones(1, np.int32))  # set before the start: the first epoch's end stops it
    assert res["epochs_run"] == 1 and res["interrupted"]


def test_stop_flag_must_be_one_int32(problem):
    run, _ = epochs_call(problem)
    with pytest.raises(TypeError, match="callback \\(a stop flag\\) must be a C-contiguous int32"):
        run(np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="exactly one element, got 2"):
        run(np.zeros(2, np.int32))


def test_epochs_with_the_flag_never_wait_for_the_gil(problem):
    # Once the epochs run, the main thread holds the GIL for 1.5 s (libc's usleep through a
    # PyDLL, which keeps it): epochs that call back into Python stop at the end of the epoch
    # under way until it is released; with the stop flag all of them (milliseconds of work) are
    # done by then, which the sampling state, written by the core as it goes, shows.
    ref_run, ref = epochs_call(problem)
    ref_run(None)
    libc = ctypes.PyDLL(None)
    libc.usleep.argtypes = [ctypes.c_uint]
    for callback, done in ((lambda e, c: True, False), (np.zeros(1, np.int32), True)):
        run, got = epochs_call(problem)
        start = got["ns"].copy()
        thread = threading.Thread(target=run, args=(callback,))
        thread.start()
        while np.array_equal(got["ns"], start):  # the core is in its first epochs
            time.sleep(0.0002)
        libc.usleep(1_500_000)
        finished = np.array_equal(got["ns"], ref["ns"])  # read before the thread can move on
        thread.join()
        assert finished == done
        np.testing.assert_array_equal(got["ns"], ref["ns"])


def test_an_error_beside_stops_the_epochs_and_is_raised(problem):
    run, _ = epochs_call(problem, stop=10**6)
    results = []

    def epochs(flag):
        results.append(run(flag))
        return results[-1]

    def work():
        raise RuntimeError("from the partition")

    with pytest.raises(RuntimeError, match="from the partition"):
        uo._beside(epochs, work)
    assert len(results) == 1 and results[0]["interrupted"]
    assert results[0]["epochs_run"] < 10**6


def test_an_error_in_the_epochs_is_raised_after_the_work(problem):
    done = []

    def epochs(flag):
        raise FloatingPointError("from the epochs")

    with pytest.raises(FloatingPointError, match="from the epochs"):
        uo._beside(epochs, lambda: done.append(1))
    assert done == [1]


@pytest.mark.parametrize("data, n_clusters", [("digits", 10), ("digits", None), ("blobs", 4)])
def test_fits_beside_and_in_turn_agree_bit_for_bit(monkeypatch, data, n_clusters):
    # blobs: a mixture EM identifies, so the refinement (EM, its checks) runs beside too
    if data == "digits":
        X = load_digits().data[:800]
    else:
        from sklearn.datasets import make_blobs

        X, _ = make_blobs(1200, n_features=4, centers=4, cluster_std=[1.0, 1.5, 2.0, 2.5],
                          random_state=0)
    calls = []
    original = uo._beside

    def counting(epochs, work):
        calls.append(1)
        return original(epochs, work)

    monkeypatch.setattr(uo, "_beside", counting)
    kw = dict(n_clusters=n_clusters, n_epochs=80, random_state=5)
    beside = UEC(n_jobs=2, **kw).fit(X)
    assert calls == [1]  # two threads, the graph stage, not verbose: made beside the epochs
    in_turn = UEC(n_jobs=1, **kw).fit(X)
    assert calls == [1]
    for name in ("embedding_", "labels_", "cluster_centers_", "subcluster_labels_",
                 "probabilities_", "outlier_scores_"):
        np.testing.assert_array_equal(getattr(beside, name), getattr(in_turn, name), name)
    np.testing.assert_array_equal(beside.labels_at(4), in_turn.labels_at(4))
    assert (beside.cluster_hierarchy_.refined is not None) == (data == "blobs")
    assert set(beside.timings_) == set(in_turn.timings_)
