"""deskew / Deskew against an independent float64 reference (moments by explicit sums,
resampling by scipy.ndimage.affine_transform) and by what de-slanting must do to a slanted stroke."""

import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from uec.datasets import find_mnist, load_digits, load_mnist
from uec.preprocessing import Deskew, deskew


def reference_deskew(img):
    h, w = img.shape
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    I = img.astype(np.float64)
    m = I.sum()
    cy, cx = (I * r).sum() / m, (I * c).sum() / m
    vy = (I * (r - cy) ** 2).sum() / m
    cxy = (I * (r - cy) * (c - cx)).sum() / m
    a = cxy / vy
    oy, ox = (h - 1) / 2, (w - 1) / 2
    # output (r, c) reads input (r + cy - oy, a r + c + cx - ox - a oy)
    return ndimage.affine_transform(I, [[1.0, 0.0], [a, 1.0]], offset=[cy - oy, cx - ox - a * oy],
                                    order=1, mode="grid-constant", cval=0.0)


def moments(img):
    h, w = img.shape
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    m = img.sum()
    cy, cx = (img * r).sum() / m, (img * c).sum() / m
    return (cy, cx, (img * (r - cy) * (c - cx)).sum() / m, (img * (c - cx) ** 2).sum() / m,
            (img * (r - cy) ** 2).sum() / m)


def slanted_strokes(n, h=20, w=16, seed=0):
    """Thick line segments through random points with random slants (columns per row)."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((n, h, w))
    slants = rng.uniform(-0.5, 0.5, n)
    for i in range(n):
        r0, c0 = rng.uniform(h * 0.4, h * 0.6), rng.uniform(w * 0.35, w * 0.65)
        dist = np.abs((c - c0) - slants[i] * (r - r0)) / np.sqrt(1 + slants[i] ** 2)
        out[i] = np.clip(1.5 - dist, 0, 1) * (np.abs(r - r0) < h * 0.3)
    return out, slants


def test_matches_reference_on_digits_and_random_images():
    X, _ = load_digits()
    imgs = X[:60].reshape(-1, 8, 8).astype(np.float64)
    rng = np.random.default_rng(1)
    rand = rng.uniform(0, 1, size=(20, 9, 13)) * (rng.uniform(size=(20, 9, 13)) < 0.3)
    for batch in (imgs, rand):
        got = deskew(batch)
        assert got.dtype == np.float64 and got.shape == batch.shape
        ref = np.stack([reference_deskew(b) for b in batch])
        np.testing.assert_allclose(got, ref, atol=1e-10)
    # flat rows with an explicit shape, float32, small blocks: the same numbers
    flat = rand.reshape(20, -1).astype(np.float32)
    got32 = deskew(flat, (9, 13), block=3)
    assert got32.dtype == np.float32 and got32.shape == flat.shape
    ref32 = np.stack([reference_deskew(b) for b in flat.astype(np.float64).reshape(20, 9, 13)])
    np.testing.assert_allclose(got32.reshape(20, 9, 13), ref32, atol=1e-5)


def test_slanted_strokes_become_upright_and_centred():
    imgs, slants = slanted_strokes(40)
    out = deskew(imgs)
    h, w = imgs.shape[1:]
    for before, after in zip(imgs, out):
        cy, cx, cxy, vx, _ = moments(after)
        _, _, cxy0, vx0, vy0 = moments(before)
        assert abs(cy - (h - 1) / 2) < 0.05 and abs(cx - (w - 1) / 2) < 0.05
        # the row/column covariance (the slant) is gone, up to the bilinear resampling
        assert abs(cxy) < 0.05 * max(abs(cxy0), 0.2)
        # the shear removes cxy0^2 / vy0 of column variance; linear interpolation adds < 1/4 px^2
        assert vx <= vx0 - cxy0**2 / vy0 + 0.25
    # a stroke that was strongly slanted gets much narrower columns
    strong = np.abs(slants) > 0.3
    assert strong.sum() >= 5
    narrow = [moments(a)[3] < 0.5 * moments(b)[3] for a, b in zip(out[strong], imgs[strong])]
    assert all(narrow)


def test_upright_centred_image_is_unchanged_and_blank_stays_blank():
    img = np.zeros((7, 7))
    img[1:6, 3] = 1.0  # vertical bar through the centre column, rows centred
    img[3, 2:5] = 0.5  # symmetric cross-piece keeps cxy = 0
    out = deskew(img[None])[0]
    np.testing.assert_allclose(out, img, atol=1e-12)
    blank = np.zeros((2, 5, 5))
    np.testing.assert_array_equal(deskew(blank), blank)
    # a single horizontal line: no row spread, so it is only moved to the centre row
    line = np.zeros((1, 5, 5))
    line[0, 0, 1:4] = 1.0
    moved = deskew(line)[0]
    assert moved[2, 1:4].tolist() == [1.0, 1.0, 1.0] and moved.sum() == 3.0


def test_integer_input_and_3d_shape():
    X = (np.random.default_rng(2).uniform(size=(5, 6, 6)) * 255).astype(np.uint8)
    out = deskew(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out, deskew(X.astype(np.float64)), atol=1e-3)


@pytest.mark.parametrize(
    "X, shape, match",
    [
        (np.ones((2, 10)), None, r"image_shape=None .* 10 values"),
        (np.ones((2, 12)), (3, 5), r"image_shape=\(3, 5\) does not fit rows of 12"),
        (np.ones((2, 12)), (3, 4, 1), r"image_shape=\(3, 4, 1\) is not allowed"),
        (np.ones((2, 12)), (0, 12), r"image_shape=\(0, 12\) is not allowed"),
        (np.ones((2, 3, 4)), (4, 3), r"does not match X of shape"),
        (-np.ones((2, 9)), None, r"negative pixel"),
        (np.full((2, 9), np.nan), None, r"NaN"),
        (np.ones(9), None, r"expected \(n_samples"),
    ],
)
def test_bad_input(X, shape, match):
    with pytest.raises(ValueError, match=match):
        deskew(X, shape)


def test_transformer_in_a_pipeline():
    X, _ = load_digits()
    t = Deskew((8, 8))
    out = t.fit_transform(X[:50])
    np.testing.assert_allclose(out, deskew(X[:50], (8, 8)), atol=1e-6)
    assert clone(t).get_params() == {"image_shape": (8, 8)}
    pipe = make_pipeline(Deskew(), "passthrough")
    np.testing.assert_allclose(pipe.fit_transform(X[:10]), deskew(X[:10]), atol=1e-6)
    with pytest.raises(ValueError, match="features"):
        t.transform(X[:5, :60])
    with pytest.raises(ValueError, match=r"image_shape=\(7, 8\) does not fit"):
        Deskew((7, 8)).fit(X)


@pytest.mark.skipif(find_mnist() is None, reason="MNIST not found (../shared/data/mnist.npz or $UEC_MNIST)")
def test_load_mnist_deskew_equals_deskew_of_the_pixels():
    X, y = load_mnist()
    Xd, yd = load_mnist(deskew=True)
    np.testing.assert_array_equal(y, yd)
    np.testing.assert_allclose(Xd[:500], deskew(X[:500], (28, 28)), atol=1e-6)
    assert Xd.dtype == np.float32 and Xd.min() >= 0 and Xd.max() <= 1 + 1e-6
