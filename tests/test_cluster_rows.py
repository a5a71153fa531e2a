"""The joint epochs' clustering step in AVX-512 rows against the scalar rows.

For 2-D embeddings, every joint variant and target power 1 or 2, the CPU epochs take the
clustering step eight points at a time in vectors of doubles (csrc/cpu/cluster_avx512.cpp),
the F pass sixteen at a time, and plus's c pass eight at a time. They repeat the scalar rows'
operations in their order and add each point's share of every sum in point order, so every
output must have the same bits as UEC_CLUSTER_KERNEL=scalar: positions, centres, labels, edge
states and the run's result. Other powers and dimensions always run the scalar rows. The CUDA
emulation, which runs the scalar rows, is compared with the CPU epochs in
tests/test_cuda_emulation.py.
"""

import platform

import numpy as np
import pytest
from sklearn.datasets import load_digits

from uec import _core
from uec.graph import build_graph, epochs_per_sample, find_ab_params
from uec.init import initial_centres, initial_embedding

MODES = {"comma": _core.MODE_COMMA, "light_plus": _core.MODE_LIGHT_PLUS, "plus": _core.MODE_PLUS}
N_EPOCHS_TOTAL = 200
# 597 points: blocks of 256, 256 and 85, so the last block ends in a group of 5 (and the F pass's
# sixteen-point groups in one of 5).
N_POINTS = 597


@pytest.fixture(scope="module")
def problem():
    X, _ = load_digits(return_X_y=True)
    X = X[:N_POINTS].astype(np.float32)
    graph, _, _ = build_graph(X, 15, N_EPOCHS_TOTAL, random_state=0)
    a, b = find_ab_params(1.0, 0.1)
    Z = np.ascontiguousarray(initial_embedding("pca", X, graph, 2, 0), dtype=np.float32)
    out = dict(Z=Z, indptr=graph.indptr.astype(np.int64), indices=graph.indices.astype(np.int32),
               eps=epochs_per_sample(graph.data, N_EPOCHS_TOTAL).astype(np.float32), a=a, b=b)
    for C in (7, 23):
        out[f"M{C}"] = np.ascontiguousarray(initial_centres("kmeans", Z, C, 0), dtype=np.float32)
    return out


def run(pb, rows, monkeypatch, mode, C=7, threads=1, epochs=(0, 12), tail=False, **kw):
    monkeypatch.setenv("UEC_CLUSTER_KERNEL", rows)
    p = _core.EpochParams()
    p.a, p.b = pb["a"], pb["b"]
    p.mode, p.n_epochs_total, p.seed, p.tol, p.min_joint_epochs = MODES[mode], N_EPOCHS_TOTAL, 3, 0.0, 0
    p.n_threads = threads
    for k, v in kw.items():
        setattr(p, k, v)
    M = pb[f"M{C}"].copy()
    if tail:
        # new heads (the first 203 points, shifted) against the fixed embedding
        Z = np.ascontiguousarray(pb["Z"][:203] + 0.3, dtype=np.float32)
        indptr = pb["indptr"][:204].copy()
        indices, eps = pb["indices"][: indptr[-1]], pb["eps"][: indptr[-1]]
        tail_arr = pb["Z"]
    else:
        Z, indptr, indices, eps, tail_arr = pb["Z"].copy(), pb["indptr"], pb["indices"], pb["eps"], None
    ns, nn = eps.copy(), (eps / 5.0).astype(np.float32)
    labels = np.full(len(Z), -1, np.int32)
    res = _core.optimize(Z, M, indptr, indices, eps, ns, nn, labels, tail_arr, p,
                         epochs[0], epochs[1], None)
    return dict(Z=Z, M=M, labels=labels, next_sample=ns, next_negative=nn, res=res)


def assert_same_bits(a, b):
    for key in ("Z", "M", "labels", "next_sample", "next_negative"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["res"] == b["res"]


@pytest.mark.parametrize("mode", ["comma", "light_plus", "plus"])
@pytest.mark.parametrize("centre_update", [0, 1, 2])
@pytest.mark.parametrize("clip_mode", [0, 1, 2])
def test_vector_rows_give_the_scalar_bits(problem, monkeypatch, mode, centre_update, clip_mode):
    kw = dict(mode=mode, centre_update=centre_update, clip_mode=clip_mode, beta=2.0, centre_lr=0.5)
    scalar = run(problem, "scalar", monkeypatch, **kw)
    vector = run(problem, "avx512", monkeypatch, **kw)
    # the step moved points and centres, and labels were assigned (not a vacuous equality)
    assert np.abs(scalar["Z"] - problem["Z"]).max() > 1e-2
    assert np.abs(scalar["M"] - problem["M7"]).max() > 1e-4
    assert (scalar["labels"] >= 0).all() and len(np.unique(scalar["labels"])) > 1
    assert_same_bits(scalar, vector)


@pytest.mark.parametrize("mode", ["comma", "light_plus", "plus"])
@pytest.mark.parametrize("target_power", [1.0, 2.0, 1.5])
def test_many_centres_powers_threads_and_late_epochs(problem, monkeypatch, mode, target_power):
    # 23 centres (three groups of eight lanes' worth of rows, the last partial), p = 1.5 (the
    # scalar rows in both runs), two threads, and a mid-run epoch range with a step schedule.
    kw = dict(mode=mode, C=23, threads=2, epochs=(120, 132), target_power=target_power,
              schedule=1, step_every=4, step_factor=0.5, gamma=0.7, learning_rate=0.9)
    runs = [run(problem, rows, monkeypatch, **kw) for rows in ("scalar", "avx512")]
    assert_same_bits(*runs)
    one = run(problem, "avx512", monkeypatch, **{**kw, "threads": 1})
    assert_same_bits(runs[1], one)


def test_fixed_tail(problem, monkeypatch):
    # New heads against a fixed tail.
    for kw in (dict(mode="light_plus", tail=True), dict(mode="plus", tail=True)):
        assert_same_bits(run(problem, "scalar", monkeypatch, **kw),
                         run(problem, "avx512", monkeypatch, **kw))


def test_unknown_cluster_kernel_is_refused(problem, monkeypatch):
    with pytest.raises(ValueError, match="UEC_CLUSTER_KERNEL must be 'scalar' or 'avx512'.*'fast'"):
        run(problem, "fast", monkeypatch, mode="comma")


def test_fast_log1p_is_close_to_float64():
    # row_g's fast log S = -log1p_pos(u): within 3e-7 of float64's log1p (absolute below 1,
    # relative above), from u = 0 up to float's largest values.
    rng = np.random.default_rng(1)
    u = np.concatenate([[0.0, 1e-30, 1e-8, 0.5, 1.0, 3.0e38],
                        10.0 ** rng.uniform(-12, 38, 200_000), rng.uniform(0, 8, 100_000)])
    u = u.astype(np.float32)
    got = _core.log1p_pos(u).astype(np.float64)
    ref = np.log1p(u.astype(np.float64))
    rel = np.abs(got - ref) / np.maximum(ref, 1.0)
    assert rel.max() < 3e-7
    out = _core.log1p_pos(np.array([np.inf, np.nan], np.float32))
    assert out[0] == np.inf and np.isnan(out[1])


def test_fast_power_is_close_to_the_exact_one(problem):
    # The epochs' u = a r^b (centre_u's fast power: pow_pos in float) against float64, over the
    # squared distances of the fixture's points to its centres: within 1e-6 relative, where the
    # soft assignments the bindings return use pow in double.
    Z, M, a, b = problem["Z"], problem["M7"], problem["a"], problem["b"]
    r = ((Z.astype(np.float64)[:, None, :] - M.astype(np.float64)[None]) ** 2).sum(-1).ravel()
    fast = a * _core.pow_pos(r.astype(np.float32), np.float32(b)).astype(np.float64)
    np.testing.assert_allclose(fast, a * r ** np.float64(b), rtol=1e-6)


def test_vector_rows_are_taken_where_they_run(monkeypatch):
    # The comparisons above must not silently be scalar against scalar on AVX-512 machines.
    monkeypatch.delenv("UEC_CLUSTER_KERNEL", raising=False)
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    wide = (platform.machine().lower() in ("x86_64", "amd64")
            and " avx512f" in flags and " avx512dq" in flags)
    want = "avx512" if wide else "scalar"
    for mode in (_core.MODE_COMMA, _core.MODE_LIGHT_PLUS, _core.MODE_PLUS):
        for p in (1.0, 2.0):
            assert _core.cluster_kernel(2, mode, p) == want
    assert _core.cluster_kernel(3, _core.MODE_COMMA, 2.0) == "scalar"
    assert _core.cluster_kernel(2, _core.MODE_COMMA, 1.5) == "scalar"
    monkeypatch.setenv("UEC_CLUSTER_KERNEL", "scalar")
    assert _core.cluster_kernel(2, _core.MODE_COMMA, 2.0) == "scalar"


@pytest.mark.parametrize("mode", ["comma", "plus"])
def test_blocks_that_are_not_whole_groups(monkeypatch, mode):
    # Above 262,144 points the epochs' blocks hold n / 1024 points, not a multiple of 8: 300,001
    # points make blocks of 293, each ending in a partial group whose cached rows must stay in
    # its own block's region. A sparse random graph (4 edges a point) keeps the run short.
    rng = np.random.default_rng(5)
    n, deg = 300_001, 4
    Z0 = rng.normal(size=(n, 2)).astype(np.float32) * 3.0
    M0 = np.ascontiguousarray(Z0[rng.choice(n, 9, replace=False)] + 0.1, dtype=np.float32)
    indptr = np.arange(0, (n + 1) * deg, deg, dtype=np.int64)
    indices = rng.integers(0, n, size=n * deg).astype(np.int32)
    eps = np.full(n * deg, 2.0, np.float32)
    runs = []
    for rows in ("scalar", "avx512"):
        monkeypatch.setenv("UEC_CLUSTER_KERNEL", rows)
        p = _core.EpochParams()
        p.mode, p.n_epochs_total, p.seed, p.tol, p.min_joint_epochs = MODES[mode], 200, 1, 0.0, 0
        p.n_threads = 2
        Z, M = Z0.copy(), M0.copy()
        labels = np.full(n, -1, np.int32)
        ns, nn = eps.copy(), (eps / 5.0).astype(np.float32)
        res = _core.optimize(Z, M, indptr, indices, eps, ns, nn, labels, None, p, 0, 2, None)
        runs.append(dict(Z=Z, M=M, labels=labels, next_sample=ns, next_negative=nn, res=res))
    assert np.abs(runs[0]["M"] - M0).max() > 1e-4
    assert_same_bits(*runs)
