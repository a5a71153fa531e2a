"""The real CUDA module: it imports without a GPU, device selection says why CUDA is unusable,
and, where a GPU is present, its kernels agree with the OpenMP core.

The kernels' logic is checked on every machine by tests/test_cuda_emulation.py (the same block
programs run serially on the CPU). The tests here that need a device skip with the CUDA
runtime's reason when there is none.
"""

import glob
import shutil

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score

import uec
from uec import UEC, _core, _device
from uec.graph import build_graph, epochs_per_sample, find_ab_params
from uec.init import initial_centres, initial_embedding
from uec.metrics import clustering_accuracy

_cuda = _device._cuda
NOT_BUILT = "uec was built without the CUDA module (no CUDA compiler found, or UEC_CUDA=OFF)"
needs_module = pytest.mark.skipif(_cuda is None, reason=NOT_BUILT)


def _no_device_reason():
    if _cuda is None:
        return NOT_BUILT
    n, why = _cuda.device_status()
    return None if n > 0 else f"no CUDA device: {why}"


needs_gpu = pytest.mark.skipif(_no_device_reason() is not None,
                               reason=_no_device_reason() or "")


def _machine_has_nvidia_gpu():
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


# ---- everywhere ----------------------------------------------------------------------------

def test_device_selection_without_the_module(monkeypatch):
    monkeypatch.setattr(_device, "_cuda", None)
    assert not _device.cuda_available() and _device.cuda_device_count() == 0
    assert _device.resolve_device("auto") == "cpu"
    assert _device.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="built without CUDA"):
        _device.resolve_device("cuda")
    with pytest.raises(ValueError, match="device='gpu'"):
        _device.resolve_device("gpu")
    assert _device.optimizer("cpu") is _core.optimize


def test_cuda_available_is_exported():
    assert uec.cuda_available() == _device.cuda_available()
    assert uec.cuda_available() == (_cuda is not None and _cuda.device_count() > 0)


@needs_module
def test_module_imports_and_reports_devices():
    n = _cuda.device_count()
    count, why = _cuda.device_status()
    assert isinstance(n, int) and n == count >= 0
    assert _cuda.runtime_version() >= 11080  # CUDA 11.8 is the oldest with sm_90
    assert _cuda.BLOCK_DIM == 256
    if not _machine_has_nvidia_gpu():
        # the static runtime imports fine here and reports no device, with the runtime's reason
        assert n == 0 and why
        assert _device.resolve_device("auto") == "cpu"
        with pytest.raises(ValueError, match="no CUDA device is usable"):
            _device.resolve_device("cuda")
    else:  # pragma: no cover - GPU machines
        assert n > 0 and _device.resolve_device("auto") == "cuda"
        assert _cuda.device_name(0)


@pytest.mark.skipif(_no_device_reason() is None, reason="a CUDA device is present")
def test_estimator_device_cuda_without_a_device_says_why():
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match="device='cuda'"):
        UEC(n_clusters=2, device="cuda", n_epochs=5).fit(X)
    model = UEC(n_clusters=2, device="auto", n_epochs=5, random_state=0).fit(X)
    assert model.device_ == "cpu"


@needs_module
@pytest.mark.skipif(_no_device_reason() is None, reason="a CUDA device is present")
def test_optimize_without_a_device_raises_a_clear_error():
    Z = np.zeros((4, 2), np.float32)
    indptr = np.zeros(5, np.int64)
    e_i, e_f = np.zeros(0, np.int32), np.zeros(0, np.float32)
    p = _core.EpochParams()
    p.mode = _core.MODE_CE
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        _cuda.optimize(Z, None, indptr, e_i, e_f, e_f.copy(), e_f.copy(), None, None, p, 0, 1)


# ---- on a GPU ------------------------------------------------------------------------------

MODES = {"ce": _core.MODE_CE, "comma": _core.MODE_COMMA,
         "light_plus": _core.MODE_LIGHT_PLUS, "plus": _core.MODE_PLUS}


@pytest.fixture(scope="module")
def digits_problem():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    graph, _, _ = build_graph(X, 15, 200, random_state=0)
    a, b = find_ab_params(1.0, 0.1)
    Z = initial_embedding("spectral", X, graph, 2, 0).astype(np.float32)
    M = initial_centres("kmeans", Z, 10, 0).astype(np.float32)
    return dict(X=X, y=y, Z=np.ascontiguousarray(Z), M=np.ascontiguousarray(M),
                indptr=graph.indptr.astype(np.int64), indices=graph.indices.astype(np.int32),
                eps=epochs_per_sample(graph.data, 200).astype(np.float32), a=a, b=b)


def _run(fn, pb, mode, end):
    Z, M = pb["Z"].copy(), pb["M"].copy()
    labels = np.full(len(Z), -1, np.int32)
    ns, nn = pb["eps"].copy(), (pb["eps"] / 5).astype(np.float32)
    p = _core.EpochParams()
    p.a, p.b, p.mode, p.n_epochs_total, p.seed = pb["a"], pb["b"], MODES[mode], 200, 99
    p.clip_mode, p.centre_update, p.tol, p.min_joint_epochs, p.n_threads = 2, 2, 0.0, 0, 1
    c = mode != "ce"
    res = fn(Z, M if c else None, pb["indptr"], pb["indices"], pb["eps"], ns, nn,
             labels if c else None, None, p, 0, end)
    return dict(Z=Z, M=M, labels=labels, next_sample=ns, next_negative=nn, res=res)


@needs_gpu
@pytest.mark.parametrize("mode", list(MODES))
def test_gpu_one_epoch_matches_cpu(digits_problem, mode):  # pragma: no cover - GPU machines
    # One epoch: the same samples in the same order; only the device's last-place rounding
    # (powf, log, exp, fused multiply-adds) differs.
    cpu = _run(_core.optimize, digits_problem, mode, 1)
    gpu = _run(_cuda.optimize, digits_problem, mode, 1)
    np.testing.assert_array_equal(gpu["next_sample"], cpu["next_sample"])
    np.testing.assert_array_equal(gpu["next_negative"], cpu["next_negative"])
    np.testing.assert_allclose(gpu["Z"], cpu["Z"], rtol=1e-4, atol=1e-4)
    if mode != "ce":
        np.testing.assert_allclose(gpu["M"], cpu["M"], rtol=1e-4, atol=1e-4)
        assert (gpu["labels"] == cpu["labels"]).mean() > 0.99
    assert gpu["res"]["epochs_run"] == cpu["res"]["epochs_run"] == 1


@needs_gpu
@pytest.mark.parametrize("mode", list(MODES))
def test_gpu_full_run_quality_matches_cpu(digits_problem, mode):  # pragma: no cover
    pb = digits_problem
    cpu = _run(_core.optimize, pb, mode, 200)
    gpu = _run(_cuda.optimize, pb, mode, 200)
    assert np.isfinite(gpu["Z"]).all() and np.isfinite(gpu["M"]).all()
    tw = [trustworthiness(pb["X"], r["Z"], n_neighbors=10) for r in (cpu, gpu)]
    assert abs(tw[0] - tw[1]) < 0.01, tw
    if mode != "ce":
        acc = [clustering_accuracy(pb["y"], ((r["Z"][:, None] - r["M"][None]) ** 2).sum(-1).argmin(1))
               for r in (cpu, gpu)]
        # the joint variants are sensitive to last-place differences (as to the seed): compare
        # quality, not the partition
        assert acc[1] > acc[0] - 0.08, acc


@needs_gpu
def test_estimator_on_gpu(digits_problem):  # pragma: no cover - GPU machines
    X, y = digits_problem["X"], digits_problem["y"]
    cpu = UEC(n_clusters=10, device="cpu", random_state=0).fit(X)
    gpu = UEC(n_clusters=10, device="cuda", random_state=0).fit(X)
    assert gpu.device_ == "cuda" and UEC(n_clusters=10).fit(X[:300]).device_ == "cuda"
    assert clustering_accuracy(y, gpu.labels_) > clustering_accuracy(y, cpu.labels_) - 0.08
    assert adjusted_rand_score(cpu.labels_, gpu.labels_) > 0.6
