"""benchmarks/quality.py's feature stacking: several autoencoders' codes side by side."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_blocks_weigh_the_same(quality):
    rng = np.random.default_rng(0)
    a = rng.normal(0, 30.0, (500, 10)).astype(np.float32)        # a wide code
    b = rng.normal(5, 0.1, (500, 4)) * np.arange(1, 5)           # a narrow one, float64
    F = quality.stack_features([a, b])
    assert F.dtype == np.float32 and F.shape == (500, 14) and F.flags.c_contiguous
    # float64 reference: each block over the square root of its summed column variances
    ref = np.hstack([a / np.sqrt(a.astype(np.float64).var(0).sum()), b / np.sqrt(b.var(0).sum())])
    np.testing.assert_allclose(F, ref, rtol=1e-6, atol=1e-6)
    assert F[:, :10].var(0).sum() == pytest.approx(1.0, rel=1e-5)
    assert F[:, 10:].var(0).sum() == pytest.approx(1.0, rel=1e-5)
    # distances: each block now contributes the same mean squared distance
    i, j = rng.integers(0, 500, (2, 2000))
    da = ((F[i, :10] - F[j, :10]) ** 2).sum(1).mean()
    db = ((F[i, 10:] - F[j, 10:]) ** 2).sum(1).mean()
    assert da == pytest.approx(db, rel=0.15)


def test_single_block_is_unscaled_and_constant_block_kept(quality):
    a = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.testing.assert_array_equal(quality.stack_features([a]), a.astype(np.float32))
    F = quality.stack_features([a, np.ones((6, 1))])
    np.testing.assert_array_equal(F[:, 2], 1.0)                 # no 0/0 for a constant block
    assert np.isfinite(F).all()


def test_mnist_ae_needs_features(quality):
    with pytest.raises(SystemExit, match="--features"):
        list(quality.data_sets(["mnist-ae"], None, 100))
