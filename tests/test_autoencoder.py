"""uec.AutoEncoder: the optional torch feature stage."""

import importlib
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

torch = pytest.importorskip("torch")

import uec  # noqa: E402
from uec import UEC, AutoEncoder  # noqa: E402
from uec._torch import corrupt  # noqa: E402
from uec.metrics import clustering_accuracy  # noqa: E402

SMALL = dict(hidden_dims=(32, 32, 64), batch_size=64)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Timing and bitwise equality below assume one torch thread (the CI box has two cores).
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def _forward_numpy(seq, X):
    """float64 forward pass of an nn.Sequential of Linear/ReLU layers."""
    h = X.astype(np.float64)
    for layer in seq:
        if isinstance(layer, torch.nn.Linear):
            h = h @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
        elif isinstance(layer, torch.nn.ReLU):
            h = np.maximum(h, 0.0)
        else:  # pragma: no cover
            raise AssertionError(f"unexpected layer {layer}")
    return h


@pytest.mark.parametrize("name", ["AutoEncoder", "ReprNet"])
def test_missing_torch_gives_install_hint(monkeypatch, name):
    # Simulate an environment without torch: `import torch` raises ImportError.
    monkeypatch.setitem(sys.modules, "torch", None)
    for mod in ("uec._torch", "uec.autoencoder", "uec.reprnet"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    for attr in ("AutoEncoder", "ReprNet"):
        if attr in vars(uec):  # cached by an earlier import (hasattr would import it)
            monkeypatch.delattr(uec, attr)
    with pytest.raises(ImportError, match=r"pip install 'uec\[torch\]'"):
        exec(f"from uec import {name}", {})
    # The rest of the package does not need torch.
    assert importlib.import_module("uec.metrics").clustering_accuracy([0, 1], [1, 0]) == 1.0


def test_default_architecture_and_forward_pass():
    default = AutoEncoder(n_components=4)
    encoder, decoder = default._build(30, default.hidden_dims, "cpu", 0)
    enc = [m for m in encoder if isinstance(m, torch.nn.Linear)]
    dec = [m for m in decoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in enc] == [(30, 500), (500, 500), (500, 2000), (2000, 4)]
    assert [(m.in_features, m.out_features) for m in dec] == [(4, 2000), (2000, 500), (500, 500), (500, 30)]
    # ReLU after every hidden layer, none after the bottleneck nor the output
    assert isinstance(encoder[-1], torch.nn.Linear) and isinstance(decoder[-1], torch.nn.Linear)
    assert sum(isinstance(m, torch.nn.ReLU) for m in encoder) == 3
    assert sum(isinstance(m, torch.nn.ReLU) for m in decoder) == 3

    X = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    ae = AutoEncoder(n_components=4, n_epochs=1, random_state=0, **SMALL).fit(X)
    F = ae.transform(X)
    np.testing.assert_allclose(F, _forward_numpy(ae.encoder_, X), rtol=1e-4, atol=1e-5)
    # mse: linear output; bce: sigmoid output
    np.testing.assert_allclose(ae.inverse_transform(F), _forward_numpy(ae.decoder_, F), rtol=1e-4, atol=1e-5)
    bce = AutoEncoder(n_components=4, loss="bce", n_epochs=1, random_state=0, **SMALL).fit(X)
    Fb = bce.transform(X)
    np.testing.assert_allclose(bce.inverse_transform(Fb),
                               1 / (1 + np.exp(-_forward_numpy(bce.decoder_, Fb))), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_reconstruction_loss_falls(digits, loss):
    X, _ = digits
    X = X[:600]
    first = AutoEncoder(5, loss=loss, n_epochs=1, random_state=0, **SMALL).fit(X)
    ae = AutoEncoder(5, loss=loss, n_epochs=15, random_state=0, **SMALL).fit(X)
    assert len(ae.loss_curve_) == ae.n_iter_ == 15
    assert ae.loss_curve_[-1] < 0.6 * ae.loss_curve_[0]
    assert ae.reconstruction_error(X) < 0.7 * first.reconstruction_error(X)
    # the reported criterion is the per-sample sum over features, averaged over samples
    R = ae.inverse_transform(ae.transform(X)).astype(np.float64)
    if loss == "mse":
        ref = ((R - X) ** 2).sum(1).mean()
    else:
        R = np.clip(R, 1e-7, 1 - 1e-7)
        ref = -(X * np.log(R) + (1 - X) * np.log(1 - R)).sum(1).mean()
    np.testing.assert_allclose(ae.reconstruction_error(X), ref, rtol=2e-3)


def test_shapes_and_dtypes(digits):
    X, _ = digits
    ae = AutoEncoder(7, n_epochs=2, random_state=0, **SMALL).fit(X[:300].astype(np.float64))
    F = ae.transform(X[:50].tolist())
    assert F.shape == (50, 7) and F.dtype == np.float32 and F.flags.c_contiguous
    assert ae.fit_transform(X[:300]).shape == (300, 7)
    assert ae.inverse_transform(F).shape == (50, 64)
    assert ae.n_features_in_ == 64 and ae.device_ == "cpu"
    assert set(ae.timings_) == {"train"}


def test_same_seed_same_bits_different_seed_differs(digits):
    X, _ = digits
    X = X[:400]
    kw = dict(n_epochs=3, noise=0.2, random_state=3, **SMALL)
    a = AutoEncoder(6, **kw).fit_transform(X)
    b = AutoEncoder(6, **kw).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    c = AutoEncoder(6, **{**kw, "random_state": 4}).fit_transform(X)
    assert not np.allclose(a, c)


def test_warm_start_continues_exactly(digits):
    # Two fits of 2 epochs with warm_start are the same computation as one fit of 4 epochs:
    # weights, Adam state and random streams all carry over.
    X, _ = digits
    X = X[:300]
    one = AutoEncoder(5, n_epochs=4, noise=0.1, random_state=1, **SMALL).fit(X)
    two = AutoEncoder(5, n_epochs=2, noise=0.1, warm_start=True, random_state=1, **SMALL)
    two.fit(X).fit(X)
    assert two.n_iter_ == 4
    np.testing.assert_array_equal(one.transform(X), two.transform(X))
    np.testing.assert_array_equal(one.loss_curve_, two.loss_curve_)


def test_corruption_is_applied():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 50, generator=gen)
    np.testing.assert_array_equal(corrupt(x, "gaussian", 0.0, gen), x)
    noise = (corrupt(x, "gaussian", 0.3, gen) - x).numpy().astype(np.float64)
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.01
    masked = corrupt(x, "mask", 0.25, gen)
    zeroed = (masked == 0).float().mean().item()
    assert abs(zeroed - 0.25) < 0.01
    kept = masked != 0
    np.testing.assert_array_equal(masked[kept], x[kept])


@pytest.mark.parametrize("noise_type", ["gaussian", "mask"])
def test_encoder_sees_corrupted_input_during_fit(digits, noise_type):
    X, _ = digits
    X = X[:128]
    rows = {r.tobytes() for r in X}
    ae = AutoEncoder(4, n_epochs=1, noise=0.3, noise_type=noise_type, warm_start=True,
                     random_state=0, **SMALL).fit(X)
    seen = []
    handle = ae.encoder_[0].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    try:
        ae.fit(X)  # one more (warm) epoch, recorded
    finally:
        handle.remove()
    batch = torch.cat(seen).numpy()
    assert batch.shape == X.shape
    assert not any(r.tobytes() in rows for r in batch)  # every training input was corrupted
    # and without noise the encoder sees the clean rows
    ae.set_params(noise=0.0)
    seen.clear()
    handle = ae.encoder_[0].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    try:
        ae.fit(X)
    finally:
        handle.remove()
    assert all(r.tobytes() in rows for r in torch.cat(seen).numpy())


def test_save_load_round_trip(digits, tmp_path):
    X, _ = digits
    ae = AutoEncoder(6, loss="bce", n_epochs=2, random_state=0, **SMALL).fit(X[:300])
    path = tmp_path / "ae.pt"
    ae.save(path)
    # the file holds tensors and plain values only
    state = torch.load(path, weights_only=True)
    assert state["params"]["n_components"] == 6
    loaded = AutoEncoder.load(path)
    assert loaded.get_params() == ae.get_params()
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))
    np.testing.assert_array_equal(loaded.inverse_transform(ae.transform(X[:5])),
                                  ae.inverse_transform(ae.transform(X[:5])))
    assert loaded.loss_curve_ == ae.loss_curve_ and loaded.n_features_in_ == 64
    # pickling works too
    again = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))
    with pytest.raises(NotFittedError):
        AutoEncoder().save(tmp_path / "x.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a file written by AutoEncoder.save"):
        AutoEncoder.load(tmp_path / "other.pt")


@parametrize_with_checks([AutoEncoder(2, hidden_dims=(8,), n_epochs=2, batch_size=16, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_clone_and_params():
    ae = AutoEncoder(3, hidden_dims=(8, 4), noise=0.1)
    c = clone(ae)
    assert c.get_params() == ae.get_params()
    with pytest.raises(NotFittedError):
        ae.transform(np.zeros((2, 3)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components=0 must be >= 1"),
        ({"hidden_dims": ()}, "hidden_dims=.* non-empty sequence of positive integers"),
        ({"hidden_dims": (10, -1)}, "hidden_dims=.* positive integers"),
        ({"hidden_dims": 5}, "hidden_dims=5 must be a sequence"),
        ({"loss": "l1"}, "loss='l1' is not supported; allowed: 'mse', 'bce'"),
        ({"noise": -0.1}, "noise=-0.1 must be >= 0"),
        ({"noise_type": "salt"}, "noise_type='salt' is not supported"),
        ({"noise": 1.5, "noise_type": "mask"}, "noise=1.5 must be <= 1"),
        ({"n_epochs": 0}, "n_epochs=0 must be >= 1"),
        ({"batch_size": 0}, "batch_size=0 must be >= 1"),
        ({"learning_rate": 0.0}, "learning_rate=0.0 must be > 0"),
        ({"device": "tpu"}, "device='tpu' is not supported; use 'auto', 'cpu' or 'cuda'"),
    ],
)
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).random((10, 4))
    with pytest.raises(ValueError, match=match):
        AutoEncoder(**{"n_components": 2, "n_epochs": 1, **SMALL, **params}).fit(X)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"loss='bce' needs them in \[0, 1\]"):
        AutoEncoder(2, loss="bce", n_epochs=1, **SMALL).fit(rng.random((10, 4)) * 255)
    ae = AutoEncoder(2, n_epochs=1, **SMALL).fit(rng.random((10, 4)))
    with pytest.raises(ValueError, match="X has 5 features, but AutoEncoder is expecting 4 features as input"):
        ae.transform(rng.random((3, 5)))
    with pytest.raises(ValueError, match="too few"):
        AutoEncoder(2, n_epochs=1).fit(rng.random((1, 4)))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but torch sees no CUDA"):
            AutoEncoder(2, device="cuda").fit(rng.random((10, 4)))


class _Poison:
    """Stands for labels; any attempt to read it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"labels were accessed ({name})")

    def __len__(self):
        raise AssertionError("labels were accessed (len)")

    def __iter__(self):
        raise AssertionError("labels were accessed (iter)")

    def __array__(self, *args, **kwargs):
        raise AssertionError("labels were accessed (array)")


def test_pipeline_with_uec_and_no_labels(digits):
    X, y = digits
    X, y = X[:500], y[:500]
    pipe = make_pipeline(
        AutoEncoder(10, loss="bce", n_epochs=30, random_state=0, **SMALL),
        UEC(n_clusters=10, n_epochs=100, random_state=0, n_jobs=1),
    )
    labels = pipe.fit_predict(X)
    assert labels.shape == (500,)
    # far above chance (about 0.2) on features of a tiny net trained for a second (0.60 measured)
    assert clustering_accuracy(y, labels) > 0.5
    # the labels argument of fit never reaches the autoencoder: same features with poison
    ae = AutoEncoder(10, loss="bce", n_epochs=3, random_state=0, **SMALL)
    np.testing.assert_array_equal(ae.fit(X, _Poison()).transform(X),
                                  clone(ae).fit(X).transform(X))
