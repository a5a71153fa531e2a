"""UEC against scikit-learn's estimator checks, and the contract those checks stand for (issue 27
items 2, 3 and 10): small data, sparse tag, transform row by row, DataFrame column names and
set_output, cluster_centers_ as medoids."""

import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits, make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from uec import UEC
from uec.estimator import COMPONENT_PREFIX, MEDOID_SAMPLE, _cluster_medoids

# Checks UEC cannot pass, with the reason (scikit-learn's expected-failure mechanism).
_TRANSFORM_VS_FIT = (
    "fit_transform returns embedding_, the layout the fit optimised for every training point "
    "together; transform places rows against that fixed layout (umap-learn's transform), so a "
    "training point's transform lands near, not on, its embedding_ row (docs/guide.md, "
    "'New points')"
)
_PROBA_OF_A_CLUSTERER = (
    "the sparse-input checks read classifier_tags.multi_class whenever predict_proba exists "
    "(AttributeError on None for a clusterer) and expect 2 or 4 columns; UEC's predict_proba "
    "has one column per cluster (as GaussianMixture's). Sparse fit, predict and transform are "
    "tested in test_sparse_fit_predict_proba_below and tests/test_transform.py"
)
EXPECTED_FAILED = {
    "check_transformer_general": _TRANSFORM_VS_FIT,
    "check_transformer_data_not_an_array": _TRANSFORM_VS_FIT,
    "check_estimator_sparse_array": _PROBA_OF_A_CLUSTERER,
    "check_estimator_sparse_matrix": _PROBA_OF_A_CLUSTERER,
}


def _expected_failed(estimator):
    return EXPECTED_FAILED


@parametrize_with_checks(
    [UEC(n_clusters=3, n_epochs=20, n_jobs=1, random_state=0)],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' tiny data: duplicates, clipped n_neighbors
        check(estimator)


def test_expected_failures_still_fail():
    # if one of the declared checks starts to pass, the declaration (and its reason) must go
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(UEC(n_clusters=3, n_epochs=20, n_jobs=1, random_state=0),
                                  on_fail=None, expected_failed_checks=EXPECTED_FAILED)
    status = {}
    for r in results:
        status.setdefault(r["check_name"], set()).add(r["status"])
    for name in EXPECTED_FAILED:
        assert status[name] == {"xfail"}, (name, status[name])
    assert not any("failed" in s for s in status.values()), status


# -- item 2: small data, sparse tag, transform row by row --------------------------------------


def test_n_neighbors_is_clipped_to_n_samples_minus_one_with_a_warning():
    X, _ = make_blobs(12, n_features=3, centers=2, random_state=0)
    model = UEC(n_clusters=2, n_neighbors=15, n_epochs=20, n_jobs=1, random_state=0)
    with pytest.warns(UserWarning, match=r"n_neighbors=15 is not below n_samples=12 "
                                         r"\(allowed: 2 to 11\): the fit uses n_neighbors=11"):
        model.fit(X)
    assert model.n_neighbors == 15 and model.n_neighbors_ == 11  # the parameter is untouched
    assert model.labels_.shape == (12,) and np.isfinite(model.embedding_).all()
    assert model.predict(X).shape == (12,) and model.transform(X).shape == (12, 2)
    # no warning when it fits
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fitted = UEC(n_clusters=2, n_neighbors=11, n_epochs=20, n_jobs=1,
                     random_state=0).fit(X)
    assert fitted.n_neighbors_ == 11
    np.testing.assert_array_equal(fitted.embedding_, model.embedding_)


def test_sparse_input_tag():
    tags = UEC().__sklearn_tags__()
    assert tags.input_tags.sparse is True
    X, _ = make_blobs(60, n_features=5, centers=3, random_state=0)
    X = scipy.sparse.csr_matrix(np.abs(X))
    model = UEC(n_clusters=3, n_epochs=20, n_jobs=1, random_state=0).fit(X)
    assert model.predict(X).shape == (60,)


@pytest.fixture(scope="module")
def digits_model():
    X = load_digits().data
    model = UEC(n_clusters=10, n_epochs=60, n_jobs=1, random_state=0).fit(X[:1200])
    return model, X[1200:]


def test_transform_of_a_row_does_not_depend_on_the_other_rows(digits_model):
    model, X = digits_model
    Z = model.transform(X)
    rng = np.random.default_rng(0)
    perm = rng.permutation(X.shape[0])
    np.testing.assert_array_equal(model.transform(X[perm]), Z[perm])  # sample order
    subset = np.sort(rng.choice(X.shape[0], 40, replace=False))
    np.testing.assert_array_equal(model.transform(X[subset]), Z[subset])  # subsets
    for i in (0, 17, 300):  # one row at a time
        np.testing.assert_array_equal(model.transform(X[i:i + 1])[0], Z[i])
    # duplicated rows land on the same point
    twice = model.transform(np.vstack([X[:5], X[:5]]))
    np.testing.assert_array_equal(twice[:5], twice[5:])
    # whatever the threads
    model.set_params(n_jobs=2)
    try:
        np.testing.assert_array_equal(model.transform(X), Z)
    finally:
        model.set_params(n_jobs=1)


# -- item 3: DataFrames ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame_model():
    pd = pytest.importorskip("pandas")
    X, _ = make_blobs(150, n_features=4, centers=3, random_state=1)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = UEC(n_clusters=3, n_epochs=30, n_jobs=1, random_state=0).fit(df)
    return model, df


def test_feature_names_in_from_a_dataframe(frame_model):
    model, df = frame_model
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert model.feature_names_in_.dtype == object
    # an array fit has none (and a refit on an array drops them)
    refit = UEC(n_clusters=3, n_epochs=30, n_jobs=1, random_state=0).fit(df)
    refit.fit(df.to_numpy())
    assert not hasattr(refit, "feature_names_in_")


def test_renamed_or_reordered_columns_are_refused(frame_model):
    model, df = frame_model
    reordered = df[["b", "a", "c", "d"]]
    renamed = df.rename(columns={"a": "x"})
    for method in (model.predict, model.transform):
        with pytest.raises(ValueError, match="Feature names must be in the same order"):
            method(reordered)
        with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- x"):
            method(renamed)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but UEC was "
                                         "fitted with feature names"):
        unnamed = model.predict(df.to_numpy())
    np.testing.assert_array_equal(model.predict(df), unnamed)


def test_set_output_pandas_names_the_components(frame_model):
    model, df = frame_model
    names = model.get_feature_names_out()
    np.testing.assert_array_equal(names, ["uec0", "uec1"])
    model.set_output(transform="pandas")
    try:
        out = model.transform(df.iloc[:20])
        assert list(out.columns) == ["uec0", "uec1"]
        assert out.index.equals(df.index[:20])
        np.testing.assert_array_equal(out.to_numpy(), model.set_output(transform="default")
                                      .transform(df.iloc[:20]))
        model.set_output(transform="pandas")
        fitted = UEC(n_clusters=3, n_epochs=30, n_jobs=1, random_state=0)
        ft = fitted.set_output(transform="pandas").fit_transform(df)
        assert list(ft.columns) == ["uec0", "uec1"]
        np.testing.assert_array_equal(ft.to_numpy(), fitted.embedding_)
    finally:
        model.set_output(transform="default")
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        model.get_feature_names_out(["p", "q", "r", "s"])


def test_component_names_match_uec_dask():
    dask_module = pytest.importorskip("uec.dask")
    assert COMPONENT_PREFIX == dask_module.COMPONENT_PREFIX


# -- item 10: cluster_centers_ are medoids ---------------------------------------------------


def test_medoid_of_a_cluster_drawn_as_two_islands_is_one_of_its_points():
    rng = np.random.default_rng(0)
    left = rng.normal(size=(60, 2)) * 0.3 + [-5.0, 0.0]
    right = rng.normal(size=(40, 2)) * 0.3 + [5.0, 0.0]
    Z = np.vstack([left, right]).astype(np.float32)
    labels = np.zeros(100, dtype=np.intp)
    centres = _cluster_medoids(Z, labels, 1, np.zeros((1, 2), np.float32), np.zeros(1, np.intp))
    # the mean (x ~ -1) is in the empty space between the islands; the medoid is a point of the
    # larger island, the member with the least summed distance to the others
    assert np.abs(Z.mean(axis=0)[0]) < 2 and np.abs(centres[0, 0] + 5.0) < 1.0
    sums = np.sqrt(((Z[:, None, :].astype(np.float64) - Z[None]) ** 2).sum(-1)).sum(1)
    np.testing.assert_array_equal(centres[0], Z[np.argmin(sums)])


def test_medoid_of_a_large_cluster_is_a_member_from_a_fixed_sample():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(MEDOID_SAMPLE + 500, 2)).astype(np.float32)
    labels = np.zeros(Z.shape[0], dtype=np.intp)
    a = _cluster_medoids(Z, labels, 1, np.zeros((1, 2), np.float32), np.zeros(1, np.intp))
    b = _cluster_medoids(Z, labels, 1, np.zeros((1, 2), np.float32), np.zeros(1, np.intp))
    np.testing.assert_array_equal(a, b)
    assert (Z == a[0]).all(axis=1).any()
    assert np.linalg.norm(a[0]) < 0.3  # near the centre of the gaussian


def test_cluster_centers_are_points_of_their_cluster(digits_model):
    model, _ = digits_model
    Z, labels = model.embedding_, model.labels_
    for j in range(model.n_clusters_):
        members = Z[labels == j]
        assert (members == model.cluster_centers_[j]).all(axis=1).any(), j
    # the paper's form keeps its optimised centres
    X = load_digits().data[:300]
    paper = UEC(n_clusters=3, n_subclusters=3, variant="comma", n_epochs=40, n_jobs=1,
                random_state=0).fit(X)
    np.testing.assert_array_equal(paper.cluster_centers_, paper.subcluster_centers_)


def test_sparse_fit_predict_proba_below():
    """What the two declared sparse checks would cover, with UEC's own shapes: a fit on CSR and
    on the same rows dense give the same labels; predict and predict_proba take CSR rows."""
    import scipy.sparse

    X, _ = make_blobs(120, n_features=6, centers=3, random_state=0)
    X = np.abs(X).astype(np.float32)
    dense = UEC(n_clusters=3, n_epochs=20, n_jobs=1, random_state=0).fit(X)
    sparse = UEC(n_clusters=3, n_epochs=20, n_jobs=1, random_state=0).fit(
        scipy.sparse.csr_matrix(X))
    assert sparse.predict(scipy.sparse.csr_matrix(X)).shape == (120,)
    P = sparse.predict_proba(scipy.sparse.csr_matrix(X[:10]))
    assert P.shape == (10, 3) and np.allclose(P.sum(axis=1), 1.0)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(dense.labels_, sparse.labels_) == 1.0
