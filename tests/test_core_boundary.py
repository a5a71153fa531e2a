"""The compiled core checks what it is given: shapes, dtypes and index ranges raise ValueError."""

import numpy as np
import pytest

from uec import _core


def _graph(n=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    indices = rng.integers(0, n, size=n * k).astype(np.int32)
    eps = np.ones(n * k, dtype=np.float32)
    return indptr, indices, eps


def _params(mode=_core.MODE_CE):
    p = _core.EpochParams()
    p.mode = mode
    p.n_epochs_total = 10
    return p


def _run(Z, indptr, indices, eps, M=None, labels=None, mode=_core.MODE_CE, tail=None):
    return _core.optimize(Z, M, indptr, indices, eps, eps.copy(), eps / 5, labels, tail,
                          _params(mode), 0, 5)


def test_valid_call_runs():
    Z = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    res = _run(Z, *_graph())
    assert res["epochs_run"] == 5 and np.isfinite(Z).all()


@pytest.mark.parametrize("bad", [-1, 20, 10**6])
def test_out_of_range_index_raises(bad):
    Z = np.zeros((20, 2), dtype=np.float32)
    indptr, indices, eps = _graph()
    indices[7] = bad
    with pytest.raises(ValueError, match="indices"):
        _run(Z, indptr, indices, eps)


def test_bad_indptr_and_eps_raise():
    Z = np.zeros((20, 2), dtype=np.float32)
    indptr, indices, eps = _graph()
    with pytest.raises(ValueError, match="indptr"):
        _run(Z, indptr[:-1].copy(), indices, eps)
    bad = indptr.copy()
    bad[5] = bad[6] + 1
    with pytest.raises(ValueError, match="indptr"):
        _run(Z, bad, indices, eps)
    e2 = eps.copy()
    e2[0] = 0.0
    with pytest.raises(ValueError, match="epochs_per_sample"):
        _run(Z, indptr, indices, e2)


def test_wrong_dtype_or_order_is_refused_not_copied():
    indptr, indices, eps = _graph()
    with pytest.raises(TypeError):
        _run(np.zeros((20, 2), dtype=np.float64), indptr, indices, eps)
    with pytest.raises(TypeError):
        _run(np.asfortranarray(np.zeros((20, 2), dtype=np.float32)), indptr, indices, eps)
    with pytest.raises(TypeError):
        _run(np.zeros((20, 2), dtype=np.float32), indptr.astype(np.int32), indices, eps)


def test_clustering_mode_checks_centres_and_labels():
    Z = np.zeros((20, 2), dtype=np.float32)
    indptr, indices, eps = _graph()
    M = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="centres"):
        _run(Z, indptr, indices, eps, M=M, labels=np.zeros(20, np.int32), mode=_core.MODE_PLUS)
    M = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="labels"):
        _run(Z, indptr, indices, eps, M=M, labels=np.zeros(19, np.int32), mode=_core.MODE_PLUS)


def test_tail_mode_indices_checked_against_tail():
    # transform-style: heads attracted to a fixed tail embedding of another size
    Z = np.zeros((20, 2), dtype=np.float32)
    indptr, indices, eps = _graph()
    tail = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="outside"):
        _run(Z, indptr, indices, eps, tail=tail)
    tail = np.random.default_rng(1).normal(size=(30, 2)).astype(np.float32)
    res = _run(Z, indptr, indices, eps, tail=tail)
    assert res["epochs_run"] == 5


def test_core_functions_check_shapes():
    Z = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="centres"):
        _core.cluster_gradients(Z, np.zeros((2, 3), np.float32), 1.0, 1.0, 2.0, _core.MODE_PLUS)
    with pytest.raises(ValueError, match="a must be"):
        _core.cluster_stats(Z, np.zeros((2, 2), np.float32), -1.0, 1.0, 2.0, True)
    with pytest.raises(ValueError, match="mode"):
        _core.cluster_gradients(Z, np.zeros((2, 2), np.float32), 1.0, 1.0, 2.0, 7)
