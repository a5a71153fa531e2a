"""Bad and unusual input through the public API (fit, fit_predict, fit_transform): each case gets
a correct result or a clear error that names the problem; never a crash, a hang, or NaN/Inf in
the outputs. What "correct" means is checked against the obvious answer: the same bits as an
equivalent clean input where the library promises them, the true clusters where they are beyond
doubt (far-apart blobs)."""

import warnings

import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from uec import UEC

FAST = dict(n_epochs=30, random_state=0, n_jobs=1)
ENTRIES = ("fit", "fit_predict", "fit_transform")


def blobs(n=90, f=5, centers=3, std=0.5, seed=0):
    X, y = make_blobs(n, n_features=f, centers=centers, cluster_std=std, random_state=seed)
    return X, y


def run(entry, X, **kw):
    """Call one public entry point; return the model and check what it returned."""
    params = dict(FAST)
    params.update(kw)
    model = UEC(**params)
    out = getattr(model, entry)(X)
    if entry == "fit":
        assert out is model
    elif entry == "fit_predict":
        np.testing.assert_array_equal(out, model.labels_)
    else:
        np.testing.assert_array_equal(out, model.embedding_)
    return model


def assert_sane(model, n, n_clusters, n_components=2):
    Z, M, labels = model.embedding_, model.cluster_centers_, model.labels_
    assert Z.shape == (n, n_components) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert M.shape == (n_clusters, n_components) and np.isfinite(M).all()
    assert labels.shape == (n,) and labels.min() >= 0 and labels.max() < n_clusters
    assert 1 <= model.n_iter_ <= model.n_epochs_


def assert_same_fit(a, b):
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


# -- values that cannot be embedded -----------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("value,match", [
    (np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity"),
    (1e39, "too large for dtype\\('float32'\\)"),  # finite in float64, not in float32
])
def test_non_finite_values_are_refused(entry, value, match):
    X, _ = blobs()
    X[7, 2] = value
    with pytest.raises(ValueError, match=match):
        run(entry, X, n_clusters=3)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("shape,match", [
    ((0, 5), "0 sample"), ((0, 0), "0 sample"), ((10, 0), "0 feature"),
    ((1, 5), "1 sample"), ((2, 5), "at least 3 samples"),
])
def test_empty_and_too_few_samples(entry, shape, match):
    with pytest.raises(ValueError, match=match):
        run(entry, np.ones(shape), n_clusters=1, n_neighbors=2)


def test_complex_and_text_are_refused():
    X, _ = blobs()
    with pytest.raises(ValueError, match="[Cc]omplex"):
        UEC(n_clusters=3, **FAST).fit(X + 1j)
    with pytest.raises(ValueError, match="convert"):
        UEC(n_clusters=3, **FAST).fit(np.array([["a", "b"]] * 10, dtype=object))


# -- the smallest problems and the parameter limits they set -----------------------------------


@pytest.mark.parametrize("n_clusters", [1, 2, 3])
def test_three_samples_is_the_minimum_that_fits(n_clusters):
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    model = run("fit", X, n_clusters=n_clusters, n_neighbors=2)
    assert_sane(model, 3, n_clusters)


def test_one_cluster_takes_every_point():
    X, _ = blobs()
    model = run("fit", X, n_clusters=1)
    assert_sane(model, 90, 1)
    assert (model.labels_ == 0).all()


@pytest.mark.parametrize("variant", ["plus", "light_plus", "comma", "ce"])
def test_as_many_clusters_as_samples(variant):
    # Allowed, as in scikit-learn's KMeans; DEC-style clusters may end empty, and then the fit
    # says so instead of returning fewer clusters without a word.
    X, _ = blobs(n=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = run("fit", X, n_clusters=30, n_neighbors=5, variant=variant)
    assert_sane(model, 30, 30)
    used = np.unique(model.labels_).size
    empty_warned = any(issubclass(w.category, ConvergenceWarning) and "empty" in str(w.message)
                       for w in caught)
    assert empty_warned == (used < 30)


def test_more_clusters_than_samples_is_refused():
    X, _ = blobs(n=30)
    with pytest.raises(ValueError, match="n_clusters=31 must be <= n_samples=30"):
        run("fit_predict", X, n_clusters=31, n_neighbors=5)


@pytest.mark.parametrize("entry", ENTRIES)
def test_n_neighbors_up_to_n_minus_one(entry):
    # as umap-learn: n_neighbors >= n_samples is clipped to n_samples - 1 with a warning naming
    # the value and the allowed range (issue 27); the fit is then the one at n_neighbors=19.
    X, _ = blobs(n=20)
    exact = run(entry, X, n_clusters=2, n_neighbors=19)
    assert_sane(exact, 20, 2)
    for k in (20, 25):
        with pytest.warns(UserWarning, match=f"n_neighbors={k} is not below n_samples=20 "
                                             f"\\(allowed: 2 to 19\\): the fit uses n_neighbors=19"):
            model = run(entry, X, n_clusters=2, n_neighbors=k)
        assert_sane(model, 20, 2)
        assert model.n_neighbors == k and model.n_neighbors_ == 19
        np.testing.assert_array_equal(model.embedding_, exact.embedding_)


# -- degenerate data ---------------------------------------------------------------------------


def test_all_identical_points_warn_and_stay_finite():
    X = np.full((40, 4), 3.25)
    warnings.simplefilter("ignore", UserWarning)  # the duplicates' own warning (tested below)
    with pytest.warns(ConvergenceWarning, match="1 distinct samples, fewer than n_clusters=3"):
        model = run("fit", X, n_clusters=3)
    assert_sane(model, 40, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", ConvergenceWarning)  # one cluster: nothing to warn about
        model = run("fit", X, n_clusters=1)
    assert (model.labels_ == 0).all()


def test_fewer_distinct_rows_than_clusters_warns_with_the_count():
    X, _ = blobs(n=6)
    X = np.repeat(X, 8, axis=0)  # 48 rows, 6 distinct
    warnings.simplefilter("ignore", UserWarning)
    with pytest.warns(ConvergenceWarning, match="6 distinct samples, fewer than n_clusters=8"):
        model = run("fit", X, n_clusters=8, n_neighbors=5)
    assert_sane(model, 48, 8)


def test_duplicate_rows_are_exactly_what_deduplication_gives():
    # Copies shrink the fuzzy graph's bandwidth (umap-learn builds the same graph), so many
    # duplicates are warned about, and the remedy the warning names - fit the distinct rows
    # and map back - gives the clusters.
    X, y = blobs(n=60, std=0.3)
    Xd, yd = np.repeat(X, 3, axis=0), np.repeat(y, 3)
    with pytest.warns(UserWarning, match="180 of the 180 samples have exact duplicates"):
        model = run("fit", Xd, n_clusters=3)
    assert_sane(model, 180, 3)
    uniq, inverse = np.unique(Xd, axis=0, return_inverse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = run("fit_predict", uniq, n_clusters=3, n_epochs=None).labels_[inverse.ravel()]
    assert adjusted_rand_score(yd, labels) == 1.0


def test_a_few_duplicates_are_fine():
    X, y = blobs(n=90, std=0.3)
    Xd, yd = np.concatenate([X, X[:3]]), np.concatenate([y, y[:3]])  # 6 of 93 have a copy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = run("fit", Xd, n_clusters=3, n_epochs=None)
    assert adjusted_rand_score(yd, model.labels_) == 1.0


def test_more_copies_than_neighbours_warn():
    # One point 40 times with n_neighbors=15: the neighbourhood of each copy holds only copies.
    X, _ = blobs(n=60, std=0.3)
    Xd = np.concatenate([X, np.repeat(X[:1], 40, axis=0)])
    with pytest.warns(UserWarning, match="41 of them have at least n_neighbors - 1 = 14 copies"):
        model = run("fit", Xd, n_clusters=3)
    assert_sane(model, 100, 3)


def test_constant_features_change_nothing():
    # Constant columns add nothing to any distance: the same kNN, graph and fit, bit for bit.
    X, _ = blobs()
    Xc = np.hstack([X[:, :2], np.full((90, 1), 7.0), X[:, 2:], np.zeros((90, 2))])
    assert_same_fit(run("fit", X, n_clusters=3), run("fit", Xc, n_clusters=3))


# -- magnitude ---------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["spectral", "pca", "random"])
@pytest.mark.parametrize("exponent", [100, -100])
def test_scaling_by_a_power_of_two_gives_the_same_bits(init, exponent):
    # 2^100 ~ 1.3e30 and 2^-100 ~ 7.9e-31: squares overflow / underflow float32, and the
    # bandwidth search could not reach such distances; scaling by a power of two is exact, so
    # the fit must be exactly the same.
    X, _ = blobs()
    X = X.astype(np.float32)
    scaled = X * np.float32(2.0**exponent)
    assert np.isfinite(scaled).all() and (scaled != 0).all()
    assert_same_fit(run("fit", X, n_clusters=3, init=init), run("fit", scaled, n_clusters=3, init=init))


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e-39])
def test_huge_and_tiny_values_find_the_clusters(scale):
    # 1e-39 is below float32's smallest normal: the power-of-two rescaling factor (2**130)
    # itself overflows float32, so it must be applied exactly (np.ldexp), not as a product
    X, y = blobs(std=0.3)
    model = run("fit", (X * scale).astype(np.float32), n_clusters=3, n_epochs=None)
    assert_sane(model, 90, 3)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    # the graph is the unscaled one up to float32 rounding (subnormal inputs keep only about
    # 20 significant bits: a looser bound)
    ref = run("fit", X, n_clusters=3, n_epochs=None)
    assert abs(model.graph_ - ref.graph_).max() < (1e-4 if scale < 1e-38 else 1e-5)


# -- dtypes and memory layouts -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16, np.float64])
def test_dtypes_equal_their_float32_conversion(dtype):
    X, _ = blobs()
    if dtype == np.bool_:
        Xt = X > 0
    elif np.issubdtype(dtype, np.integer):
        Xt = np.clip(np.round(X * 10), 0 if dtype == np.uint8 else -128, 127).astype(dtype)
    else:
        Xt = X.astype(dtype)
    assert_same_fit(run("fit", Xt, n_clusters=3), run("fit", Xt.astype(np.float32), n_clusters=3))


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly", "list"])
def test_memory_layouts_equal_a_c_array(layout):
    X, _ = blobs()
    X = X.astype(np.float32)
    if layout == "fortran":
        Xl = np.asfortranarray(X)
    elif layout == "strided":
        Xl = np.repeat(X, 2, axis=1)[:, ::2]
        assert not Xl.flags.c_contiguous
    elif layout == "readonly":
        Xl = X.copy()
        Xl.setflags(write=False)
    else:
        Xl = X.tolist()
    assert_same_fit(run("fit", X, n_clusters=3), run("fit", Xl, n_clusters=3))


def test_pandas_dataframe():
    pd = pytest.importorskip("pandas")
    X, _ = blobs()
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    assert_same_fit(run("fit", X.astype(np.float32), n_clusters=3), run("fit", df, n_clusters=3))
    mixed = df.assign(c1=df["c1"].astype("float32"), c2=(df["c2"] * 10).round().astype("int64"))
    assert_sane(run("fit_predict", mixed, n_clusters=3), 90, 3)
    with pytest.raises(ValueError, match="convert"):
        run("fit", df.assign(name="x"), n_clusters=3)
    with pytest.raises(ValueError, match="NaN"):
        run("fit", df.assign(c0=pd.array([None] + [1] * 89, dtype="Int64")), n_clusters=3)


# -- sparse input: supported, as in umap-learn (the kNN is searched on the sparse matrix) --------


def sparse_blobs(n=90, f=30, centers=3, seed=0):
    """Clusters on disjoint blocks of features: sparse, and separated beyond doubt."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % centers
    X = np.zeros((n, f))
    block = f // centers
    for c in range(centers):
        rows = np.flatnonzero(y == c)
        X[np.ix_(rows, np.arange(c * block, (c + 1) * block))] = rng.uniform(1, 2, size=(rows.size, block))
    X[rng.random(X.shape) < 0.5] = 0.0
    return X, y


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_matrix_matches_dense(fmt):
    from uec.graph import nearest_neighbors

    X, y = sparse_blobs()
    S = scipy.sparse.csr_matrix(X).asformat(fmt)
    idx_d, dist_d = nearest_neighbors(X.astype(np.float32), 15)
    idx_s, dist_s = nearest_neighbors(scipy.sparse.csr_matrix(X, dtype=np.float32), 15)
    np.testing.assert_array_equal(idx_s, idx_d)
    np.testing.assert_allclose(dist_s, dist_d, rtol=1e-6)
    model = run("fit", S, n_clusters=3, n_epochs=None)
    assert_sane(model, 90, 3)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert adjusted_rand_score(y, run("fit", X, n_clusters=3, n_epochs=None).labels_) == 1.0


@pytest.mark.parametrize("init", ["pca", "random"])
def test_sparse_with_other_inits(init):
    X, y = sparse_blobs()
    model = run("fit_predict", scipy.sparse.csr_matrix(X), n_clusters=3, init=init, n_epochs=None)
    assert_sane(model, 90, 3)
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_non_canonical_sparse_equals_canonical():
    # unsorted column indices and repeated entries (summed) are put in canonical form on a copy
    X, _ = sparse_blobs()
    S = scipy.sparse.csr_matrix(X)
    coo = S.tocoo()
    half = coo.data / 2
    messy = scipy.sparse.csr_matrix(
        (np.concatenate([half, half])[::-1],
         (np.concatenate([coo.row, coo.row])[::-1], np.concatenate([coo.col, coo.col])[::-1])),
        shape=S.shape)
    messy.has_canonical_format = False
    before = messy.copy()
    assert_same_fit(run("fit", S, n_clusters=3), run("fit", messy, n_clusters=3))
    np.testing.assert_array_equal(messy.data, before.data)  # the user's matrix is untouched


# -- disconnected graphs -----------------------------------------------------------------------


def far_blobs(n_blobs, per_blob=25, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1e4, 1e4, size=(n_blobs, 4))
    return make_blobs([per_blob] * n_blobs, centers=centres, cluster_std=1.0, random_state=seed)


@pytest.mark.parametrize("n_components", [2, 3])
@pytest.mark.parametrize("variant", ["plus", "light_plus", "comma", "ce"])
def test_disconnected_components_are_the_clusters(variant, n_components):
    # Three blobs 10^4 apart with 10 neighbours: the graph has exactly three components, and
    # they are the clusters. (Before the tolerance stop was confined to the settled end of the
    # schedule, a stop at 10% of it left stray points mislabelled: ARI 0.81-0.96.)
    X, y = far_blobs(3)
    model = run("fit", X, n_clusters=3, n_neighbors=10, variant=variant,
                n_components=n_components, n_epochs=None)
    assert connected_components(model.graph_)[0] == 3
    assert_sane(model, 75, 3, n_components)
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_many_disconnected_components():
    X, y = far_blobs(9, per_blob=20, seed=1)
    model = run("fit", X, n_clusters=9, n_neighbors=8, n_epochs=None)
    assert connected_components(model.graph_)[0] == 9
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_one_dimensional_embedding_of_disconnected_blobs_stays_sane():
    # A known limit shared with umap-learn: in one dimension the early repulsive steps can push
    # a component through another, so the labels are not asserted, only their sanity.
    X, _ = far_blobs(3)
    assert_sane(run("fit", X, n_clusters=3, n_neighbors=10, n_components=1), 75, 3, 1)


@pytest.mark.parametrize("make", [
    lambda X: X.astype(str),                                    # numeric strings
    lambda X: X.astype(str).astype(object),                     # the same as Python objects
    lambda X: (X * 1e6).astype("datetime64[s]"),                # dates
    lambda X: (X * 1e6).astype("timedelta64[s]"),               # durations
])
def test_text_and_dates_are_refused_naming_X(make):
    X = np.random.default_rng(0).normal(size=(60, 3))
    bad = make(X)
    with pytest.raises(ValueError, match=r"^X .*only numeric data"):
        UEC(n_clusters=2, n_epochs=5, random_state=0).fit(bad)
    model = UEC(n_clusters=2, n_epochs=5, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"^X .*only numeric data"):
        model.predict(bad[:5])


def test_dataframe_with_a_date_column_is_refused_naming_the_column():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(60, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["when"] = pd.date_range("2026-01-01", periods=60)
    with pytest.raises(ValueError, match=r"'when' \(datetime64"):
        UEC(n_clusters=2, n_epochs=5, random_state=0).fit(frame)
    # numbers as objects, and booleans, are still numbers
    UEC(n_clusters=2, n_epochs=5, random_state=0).fit(X.astype(object))
    UEC(n_clusters=2, n_epochs=5, random_state=0).fit(frame[["a", "b"]].assign(flag=X[:, 2] > 0))
