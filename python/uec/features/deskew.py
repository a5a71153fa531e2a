"""Label-free preprocessing of image rows.

- :func:`deskew` / :class:`Deskew`: the classic moment-based normalisation of handwriting; each
  image is shifted so that its centre of mass sits at the image centre and sheared horizontally
  so that its principal slant becomes vertical. One image at a time, nothing learned.

What it does for MNIST's neighbourhoods: the guide's "Feature stage" section
(docs/results/features.md).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import check_int

__all__ = ["deskew", "Deskew"]


def _check_shape(image_shape, n_features):
    if image_shape is None:
        side = int(round(np.sqrt(n_features)))
        if side * side != n_features:
            raise ValueError(
                f"image_shape=None is not allowed for rows of {n_features} values, which are not "
                "square images; pass image_shape=(height, width) with height * width == "
                f"{n_features}"
            )
        return side, side
    ok = (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 2
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                for s in image_shape)
    )
    if not ok:
        raise ValueError(
            f"image_shape={image_shape!r} is not allowed; expected (height, width), two positive "
            "integers"
        )
    h, w = int(image_shape[0]), int(image_shape[1])
    if h * w != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} does not fit rows of {n_features} values; expected "
            f"height * width == {n_features}"
        )
    return h, w


def deskew(X, image_shape=None, *, block=8192):
    """Centre and de-slant each image (row of ``X``) by its intensity moments.

    Parameters
    ----------
    X : array-like of shape (n_samples, height * width) or (n_samples, height, width)
        Non-negative pixel intensities (the weights of the moments).
    image_shape : (height, width), optional
        How a row is laid out (row-major). Inferred for 3-D input and for square rows.
    block : int
        Images processed at a time (bounds the temporaries to about ``40 * block * h * w`` bytes).

    Returns
    -------
    ndarray of the same shape as ``X`` (float32 for float32 or integer input, else float64).

    For an image ``I`` with centre of mass ``(cy, cx)``, variance ``vy`` of the row coordinate
    and covariance ``cxy`` of row and column coordinates, ``a = cxy / vy`` is the slant (columns
    per row). The output pixel at row ``r``, column ``c`` is ``I`` bilinearly sampled at row
    ``r + cy - oy`` and column ``c + cx - ox + a (r - oy)``, where ``(oy, ox)`` is the image
    centre and samples outside the image are 0. Blank images, and images whose rows have no
    spread (``vy = 0``), are only shifted (``a = 0``).
    """
    A = np.asarray(X)
    if A.ndim == 3:
        if image_shape is not None and tuple(image_shape) != A.shape[1:]:
            raise ValueError(
                f"image_shape={image_shape!r} does not match X of shape {A.shape}; expected "
                f"{A.shape[1:]} or None"
            )
        image_shape = A.shape[1:]
        flat = A.reshape(len(A), -1)
    elif A.ndim == 2:
        flat = A
    else:
        raise ValueError(
            f"X has shape {A.shape}; expected (n_samples, height * width) or "
            "(n_samples, height, width)"
        )
    h, w = _check_shape(image_shape, flat.shape[1])
    check_int("block", block, low=1)
    if flat.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {flat.dtype}; expected numbers")
    out_dtype = np.float64 if flat.dtype == np.float64 else np.float32
    out = np.empty(flat.shape, dtype=out_dtype)
    if flat.size and not np.isfinite(flat).all():
        raise ValueError("X holds NaN or infinity; deskew needs finite pixel intensities")
    if flat.size and flat.min() < 0:
        raise ValueError(
            f"X has a negative pixel ({flat.min()!r}); deskew reads pixels as mass and needs "
            "intensities >= 0"
        )
    rows = np.arange(h, dtype=np.float64)
    cols = np.arange(w, dtype=np.float64)
    oy, ox = (h - 1) / 2.0, (w - 1) / 2.0
    grid_r = np.repeat(rows, w)  # row coordinate of each output pixel, row-major
    grid_c = np.tile(cols, h)
    for start in range(0, len(flat), block):
        I = flat[start : start + block].astype(np.float64)
        mass = I.sum(1)
        safe = np.where(mass > 0, mass, 1.0)
        img = I.reshape(-1, h, w)
        row_mass = img.sum(2)  # (b, h)
        col_mass = img.sum(1)  # (b, w)
        cy = np.where(mass > 0, row_mass @ rows / safe, oy)
        cx = np.where(mass > 0, col_mass @ cols / safe, ox)
        dr = rows[None, :] - cy[:, None]
        dc = cols[None, :] - cx[:, None]
        vy = np.einsum("br,br->b", row_mass, dr * dr) / safe
        cxy = np.einsum("brc,br,bc->b", img, dr, dc) / safe
        slant = np.where(vy > 0, cxy / np.where(vy > 0, vy, 1.0), 0.0)
        src_r = grid_r[None, :] + (cy - oy)[:, None]
        src_c = grid_c[None, :] + (cx - ox)[:, None] + slant[:, None] * (grid_r[None, :] - oy)
        out[start : start + block] = _bilinear(I, h, w, src_r, src_c)
    return out.reshape(A.shape)


def _bilinear(I, h, w, src_r, src_c):
    """Sample each row of ``I`` (b, h*w) at (src_r, src_c) (b, p), zeros outside the image."""
    r0 = np.floor(src_r)
    c0 = np.floor(src_c)
    fr = src_r - r0
    fc = src_c - c0
    r0 = r0.astype(np.int64)
    c0 = c0.astype(np.int64)
    b = np.arange(I.shape[0])[:, None]
    acc = np.zeros(src_r.shape)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            rr = r0 + dr
            cc = c0 + dc
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            idx = np.where(inside, rr * w + cc, 0)
            acc += np.where(inside, I[b, idx], 0.0) * wr * wc
    return acc


class Deskew(TransformerMixin, BaseEstimator):
    """scikit-learn transformer for :func:`deskew` (stateless; ``fit`` only checks the shape).

    ``make_pipeline(Deskew((28, 28)), AutoEncoder(...), UEC(...))`` de-slants images before the
    feature stage.

    Parameters
    ----------
    image_shape : (height, width), optional
        How each row is laid out; inferred for square rows.
    """

    def __init__(self, image_shape=None):
        self.image_shape = image_shape

    def fit(self, X, y=None):
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        self.image_shape_ = _check_shape(self.image_shape, X.shape[1])
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but Deskew is expecting {self.n_features_in_} "
                "features as input"
            )
        return deskew(X, self.image_shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.requires_fit = True
        return tags
