"""Data sets for examples, tests and benchmarks.

- :func:`load_digits`: scikit-learn's 8x8 digits (1,797 points, 10 classes; ships with scikit-learn).
- :func:`load_mnist`: the 70,000 MNIST images from a file the user gives (``.npz`` or the four
  original ``idx`` files, gzipped or not). Nothing is downloaded.
- :func:`make_manifold_clusters`: clusters that lie on curved low-dimensional manifolds in a
  high-dimensional space, with ground truth, generated in blocks so that millions of points fit.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["load_digits", "load_mnist", "find_mnist", "make_manifold_clusters"]


def load_digits(*, dtype=np.float32):
    """scikit-learn's handwritten digits: ``X`` (1797, 64) with values 0..16, ``y`` (1797,) int64."""
    from sklearn.datasets import load_digits as _load

    X, y = _load(return_X_y=True)
    return np.ascontiguousarray(X, dtype=dtype), y.astype(np.int64)


_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_mnist(path=None):
    """Where MNIST is: ``path`` if given, else ``$UEC_MNIST``, else ``../shared/data/mnist.npz``
    seen from the working directory or from this package's source checkout. ``None`` when absent."""
    candidates = []
    if path is not None:
        return Path(path)
    if os.environ.get("UEC_MNIST"):
        candidates.append(Path(os.environ["UEC_MNIST"]))
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *here.parents]:
        candidates.append(base / ".." / "shared" / "data" / "mnist.npz")
    for c in candidates:
        if c.exists():
            return c.resolve()
    return None


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4:
        raise ValueError(f"{path} is not an idx file: only {len(data)} bytes")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = Path(directory) / name
        if p.exists():
            return p
    raise FileNotFoundError(f"MNIST directory {directory} has no {stem}[.gz]")


def load_mnist(path=None, *, scale=True, deskew=False, dtype=np.float32):
    """Load all 70,000 MNIST images (train then test) as ``X`` (70000, 784) and ``y`` (70000,).

    Parameters
    ----------
    path : str or Path, optional
        A ``.npz`` with arrays ``X`` and ``y`` (or Keras-style ``x_train``, ``y_train``,
        ``x_test``, ``y_test``), or a directory with the four original idx files. When omitted,
        ``$UEC_MNIST`` and then ``../shared/data/mnist.npz`` are tried.
    scale : bool
        Divide the pixels by 255 (values in [0, 1]); otherwise keep 0..255.
    deskew : bool
        Centre and de-slant each image by its moments (:func:`uec.preprocessing.deskew`;
        label-free, per image). Values stay in the same range.
    """
    p = find_mnist(path)
    if p is None or not Path(p).exists():
        raise FileNotFoundError(
            f"MNIST not found (path={path!r}); pass the path of an .npz with X and y or of a "
            "directory with the idx files, or set UEC_MNIST"
        )
    p = Path(p)
    if p.is_dir():
        parts = {k: _read_idx(_find_idx(p, v)) for k, v in _IDX_FILES.items()}
        X = np.concatenate([parts["train_images"], parts["test_images"]])
        y = np.concatenate([parts["train_labels"], parts["test_labels"]])
    else:
        with np.load(p) as d:
            if "X" in d.files and "y" in d.files:
                X, y = d["X"], d["y"]
            elif {"x_train", "y_train", "x_test", "y_test"} <= set(d.files):
                X = np.concatenate([d["x_train"], d["x_test"]])
                y = np.concatenate([d["y_train"], d["y_test"]])
            else:
                raise ValueError(
                    f"{p} holds arrays {sorted(d.files)}; expected X and y, or x_train, y_train, "
                    "x_test and y_test"
                )
    X = np.asarray(X).reshape(len(X), -1)
    if X.shape[0] != len(y):
        raise ValueError(f"{p}: {X.shape[0]} images but {len(y)} labels")
    if deskew:
        from .preprocessing import deskew as _deskew

        X = _deskew(X.astype(np.float32))  # rows of 784 values: 28 x 28 images
    out = X.astype(dtype)
    if scale:
        out /= dtype(255.0) if np.dtype(dtype).kind == "f" else 1
    return out, np.asarray(y).astype(np.int64)


CURVE_TERMS = 8  # sine terms that bend each cluster's sheet


def manifold_geometry(rng, n_clusters, n_features, intrinsic_dim=2, separation=3.0):
    """Centres ``(k, D)``, orthonormal sheets ``A (k, m, D)``, bend directions ``B (k, h, D)``,
    frequencies ``W (k, m, h)`` and phases ``phi (k, h)`` of ``make_manifold_clusters``, drawn
    from the NumPy Generator ``rng`` in a fixed order (the out-of-core benchmark draws the same
    geometry once and makes its chunks apart)."""
    m, D, h = intrinsic_dim, n_features, CURVE_TERMS
    centres = rng.normal(0.0, separation / np.sqrt(2 * D), size=(n_clusters, D))
    A = np.empty((n_clusters, m, D))
    for k in range(n_clusters):
        q, _ = np.linalg.qr(rng.normal(size=(D, m)))
        A[k] = q.T
    B = rng.normal(0.0, 1.0 / np.sqrt(h * D), size=(n_clusters, h, D))
    W = rng.normal(0.0, 2.0, size=(n_clusters, m, h))
    phi = rng.uniform(0.0, 2 * np.pi, size=(n_clusters, h))
    return centres, A, B, W, phi


def make_manifold_clusters(
    n_samples=10_000,
    n_clusters=20,
    n_features=50,
    *,
    intrinsic_dim=2,
    extent=4.0,
    curvature=2.0,
    separation=3.0,
    noise=0.05,
    weights=None,
    dtype=np.float32,
    random_state=None,
):
    """Clusters on curved ``intrinsic_dim``-dimensional manifolds in ``n_features`` dimensions.

    Cluster ``k`` is the image of latent points ``u`` uniform in
    ``[-extent/2, extent/2]^intrinsic_dim`` under
    ``x = c_k + A_k u + curvature * B_k sin(W_k u + phi_k)``: a linear sheet bent by a smooth
    random map, so neighbourhoods are curved (k-means on the input is not enough) while the
    cluster stays connected. The sheet spans ``extent`` along each latent axis, the bend has
    amplitude about ``0.7 * curvature``, centres are Gaussian and lie about ``separation`` apart,
    and isotropic Gaussian ``noise`` (per coordinate) is added.

    Points are generated in blocks so that the only large allocation is the output
    (``n_samples * n_features * itemsize`` bytes; 200 MB for 1M x 50 float32).

    Returns ``X`` (n_samples, n_features) and ``y`` (n_samples,) int64, in random order.
    """
    for name, val, lo in (("n_samples", n_samples, 1), ("n_clusters", n_clusters, 1),
                          ("n_features", n_features, 1), ("intrinsic_dim", intrinsic_dim, 1)):
        if not isinstance(val, (int, np.integer)) or val < lo:
            raise ValueError(f"{name}={val!r} is not allowed; expected an integer >= {lo}")
    if intrinsic_dim > n_features:
        raise ValueError(f"intrinsic_dim={intrinsic_dim} is not allowed; expected <= n_features={n_features}")
    for name, val in (("extent", extent), ("curvature", curvature), ("separation", separation), ("noise", noise)):
        if not np.isfinite(val) or val < 0:
            raise ValueError(f"{name}={val!r} is not allowed; expected a finite number >= 0")
    rng = np.random.default_rng(random_state)
    if weights is None:
        w = np.full(n_clusters, 1.0 / n_clusters)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_clusters,) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"weights={weights!r} is not allowed; expected {n_clusters} non-negative numbers")
        w = w / w.sum()
    # Cluster sizes: exact largest-remainder split, so the counts are deterministic.
    raw = w * n_samples
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n_samples - counts.sum()]] += 1
    y = np.repeat(np.arange(n_clusters, dtype=np.int64), counts)
    y = y[rng.permutation(n_samples)]

    m, D = intrinsic_dim, n_features
    centres, A, B, W, phi = manifold_geometry(rng, n_clusters, D, m, separation)
    h = B.shape[1]

    X = np.empty((n_samples, D), dtype=dtype)
    base = int(rng.integers(0, 2**63 - 1))
    # Points are made in fixed blocks whose random stream is keyed by the block index, so the
    # temporaries stay a few tens of MB whatever n_samples is.
    block = 65_536
    for b, start in enumerate(range(0, n_samples, block)):
        stop = min(start + block, n_samples)
        brng = np.random.default_rng([base, b])
        lat = brng.uniform(-0.5 * extent, 0.5 * extent, size=(stop - start, m))
        out = np.empty((stop - start, D))
        yk = y[start:stop]
        for k in np.unique(yk):
            idx = np.flatnonzero(yk == k)
            u = lat[idx]
            v = centres[k] + u @ A[k]
            if curvature > 0:
                v += curvature * (np.sin(u @ W[k] + phi[k]) @ B[k])
            out[idx] = v
        if noise > 0:
            out += noise * brng.normal(0.0, 1.0, size=out.shape)
        X[start:stop] = out
    return X, y
