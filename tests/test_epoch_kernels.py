"""The OpenMP epochs' four CE paths, and the r**b they all use.

Every head's CE updates can run head after head (serial: edge_updates, also what the CUDA
kernels run), several heads in turn in plain C++ (interleaved), eight 2-D or 3-D heads in the
lanes of AVX2 registers (avx2), or sixteen in AVX-512's, with the schedule recorded in AVX-512
too (avx512, the default where it runs). They must take the same updates in the same
order with the same arithmetic, so every output must have the same bits, whatever the mode,
clipping, dimension, tail or thread count. UEC_EPOCH_KERNEL picks the path (read at each call).
"""

import platform

import numpy as np
import pytest
from sklearn.datasets import load_digits

from uec import _core
from uec.graph import build_graph, epochs_per_sample, find_ab_params
from uec.init import initial_centres, initial_embedding

MODES = {"ce": _core.MODE_CE, "comma": _core.MODE_COMMA,
         "light_plus": _core.MODE_LIGHT_PLUS, "plus": _core.MODE_PLUS}
KERNELS = ["serial", "interleaved", "avx2", "avx512"]
# x86-64's baseline has no FMA and the core is built with -ffp-contract=off: same bits. Elsewhere
# there is no avx2 path (it falls back to interleaved) and the same C++ runs, so also the same bits;
# avx512 falls back to avx2 on x86-64 CPUs without AVX-512F and AVX-512DQ.
N_EPOCHS_TOTAL = 200


@pytest.fixture(scope="module")
def problem():
    X, _ = load_digits(return_X_y=True)
    X = X[:600].astype(np.float32)
    graph, _, _ = build_graph(X, 15, N_EPOCHS_TOTAL, random_state=0)
    a, b = find_ab_params(1.0, 0.1)
    out = dict(X=X, indptr=graph.indptr.astype(np.int64), indices=graph.indices.astype(np.int32),
               eps=epochs_per_sample(graph.data, N_EPOCHS_TOTAL).astype(np.float32), a=a, b=b)
    for d in (2, 3):
        Z = np.ascontiguousarray(initial_embedding("pca", X, graph, d, 0), dtype=np.float32)
        out[f"Z{d}"] = Z
        out[f"M{d}"] = np.ascontiguousarray(initial_centres("kmeans", Z, 7, 0), dtype=np.float32)
    return out


def run(pb, kernel, monkeypatch, mode="ce", d=2, tail=False, threads=1, epochs=(0, 15),
        nn_shift=0.0, **kw):
    monkeypatch.setenv("UEC_EPOCH_KERNEL", kernel)
    p = _core.EpochParams()
    p.a, p.b = pb["a"], pb["b"]
    p.mode, p.n_epochs_total, p.seed, p.tol, p.min_joint_epochs = MODES[mode], N_EPOCHS_TOTAL, 7, 0.0, 0
    p.n_threads = threads
    for k, v in kw.items():
        setattr(p, k, v)
    Z0, M = pb[f"Z{d}"], pb[f"M{d}"].copy()
    if tail:
        # transform's shape of call: 200 new heads (the first points, shifted) against a fixed tail
        Z = np.ascontiguousarray(Z0[:200] + 0.25, dtype=np.float32)
        indptr = pb["indptr"][:201].copy()
        indices, eps = pb["indices"][: indptr[-1]], pb["eps"][: indptr[-1]]
        tail_arr = Z0
    else:
        Z, indptr, indices, eps, tail_arr = Z0.copy(), pb["indptr"], pb["indices"], pb["eps"], None
    ns, nn = eps.copy(), (eps / 5.0 - nn_shift).astype(np.float32)
    nn = np.maximum(nn, 0.0).astype(np.float32)
    labels = np.full(len(Z), -1, np.int32)
    clustering = mode != "ce"
    res = _core.optimize(Z, M if clustering else None, indptr, indices, eps, ns, nn,
                         labels if clustering else None, tail_arr, p, epochs[0], epochs[1], None)
    return dict(Z=Z, M=M, labels=labels, next_sample=ns, next_negative=nn, res=res)


def assert_same_bits(runs):
    base = runs[0]
    for other in runs[1:]:
        for key in ("Z", "M", "labels", "next_sample", "next_negative"):
            np.testing.assert_array_equal(other[key], base[key], err_msg=key)
        assert other["res"] == base["res"]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("clip_mode", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 3])
def test_every_path_gives_the_same_bits(problem, monkeypatch, mode, clip_mode, d):
    runs = [run(problem, k, monkeypatch, mode=mode, clip_mode=clip_mode, d=d) for k in KERNELS]
    assert not np.array_equal(runs[0]["Z"], problem[f"Z{d}"])  # the epochs moved the points
    assert_same_bits(runs)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("tail", [False, True])
def test_same_bits_in_any_dimension_with_a_fixed_tail_and_threads(problem, monkeypatch, d, tail):
    runs = [run(problem, k, monkeypatch, mode="plus", d=d, tail=tail, threads=t,
                attract_scale=0.5, gamma=1.5, negative_sample_rate=3.0)
            for k in KERNELS for t in (1, 2)]
    assert_same_bits(runs)


def test_late_epochs_and_sparse_schedules(problem, monkeypatch):
    # Later epochs: most edges are not due, many heads have no update at all in an epoch.
    runs = [run(problem, k, monkeypatch, mode="comma", epochs=(150, 200)) for k in KERNELS]
    assert_same_bits(runs)


@pytest.mark.parametrize("rate", [1.0, 13.0, 37.0])
def test_many_negatives_per_take(problem, monkeypatch, rate):
    # Edges whose negative-sampling state lags far behind (next_negative 0 at epoch 40): a
    # take draws every negative it is owed, from about 40 to a few thousand (drawn eight at a
    # time: full groups and a partial one), then rate per epoch.
    runs = [run(problem, k, monkeypatch, mode="ce", epochs=(40, 44), negative_sample_rate=rate,
                nn_shift=1e3) for k in KERNELS]
    assert not np.array_equal(runs[0]["Z"], problem["Z2"])
    assert_same_bits(runs)


def test_unknown_kernel_is_refused(problem, monkeypatch):
    with pytest.raises(ValueError, match="UEC_EPOCH_KERNEL must be 'serial', 'interleaved', 'avx2' or 'avx512'.*'fast'"):
        run(problem, "fast", monkeypatch)


def test_pow_pos_against_float64():
    rng = np.random.default_rng(0)
    r = np.concatenate([10.0 ** rng.uniform(-44, 38, 300_000), rng.uniform(0, 4, 100_000),
                        [1.0, 2.0, 0.5, 4.0, np.sqrt(0.5), np.sqrt(2.0), 3.4e38, 1.2e-38]])
    r = r.astype(np.float32)
    r = r[r > 0]
    for b in (2.0 ** -10, 0.1, 0.5, 0.7915, 0.8951, 1.0, 1.5, 2.0, 4.0):
        b32 = np.float32(b)
        ref = r.astype(np.float64) ** np.float64(b32)
        got = _core.pow_pos(r, b32).astype(np.float64)
        ok = (ref > 2.0 ** -124) & (ref < 3e38)   # no flush to 0, no overflow
        assert ok.sum() > 100_000
        rel = np.abs(got[ok] - ref[ok]) / ref[ok]
        assert rel.max() < 4e-7, (b, rel.max(), r[ok][np.argmax(rel)])   # a few float ulps
        assert (got[ref >= 3.5e38] == np.inf).all()


def test_pow_pos_edges():
    tiny = np.array([1e-40, 3e-39, 1e-45], np.float32)   # subnormals: scaled, then exact-ish
    ref = tiny.astype(np.float64) ** np.float64(np.float32(0.25))
    np.testing.assert_allclose(_core.pow_pos(tiny, np.float32(0.25)), ref, rtol=1e-6)
    # below 2^-125 the result flushes to 0; overflow gives inf; inf and NaN come back as they are
    assert _core.pow_pos(np.array([1e-30], np.float32), np.float32(5.0))[0] == 0.0
    assert _core.pow_pos(np.array([1e30], np.float32), np.float32(2.0))[0] == np.inf
    np.testing.assert_allclose(_core.pow_pos(np.array([3e38], np.float32), np.float32(1.0)), 3e38, rtol=1e-6)
    out = _core.pow_pos(np.array([np.inf, np.nan], np.float32), np.float32(0.9))
    assert out[0] == np.inf and np.isnan(out[1])
    with pytest.raises(ValueError, match="b must be a finite number > 0, got -1"):
        _core.pow_pos(np.ones(3, np.float32), -1.0)


def test_avx2_path_exists_on_x86():
    # The fast path must not silently be the fallback on the machines it is written for.
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("avx2 is an x86-64 path")
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    if " avx2" not in flags:
        pytest.skip("this CPU has no AVX2")
    wide = " avx512f" in flags and " avx512dq" in flags
    assert _core.epoch_kernel(2, 1000) == ("avx512" if wide else "avx2")
    assert _core.epoch_kernel(3, 1000) == ("avx512" if wide else "avx2")
    assert _core.epoch_kernel(4, 1000) == "interleaved"
