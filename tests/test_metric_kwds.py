"""metric_kwds: keyword arguments of the kNN metric, in the fit (brute force and pynndescent)
and for new points; refused with a message naming it when malformed."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from uec import UEC
from uec.graph import nearest_neighbors

FAST = dict(n_epochs=20, random_state=0, n_jobs=1)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(3, 5))
    X = np.concatenate([c + rng.normal(size=(60, 5)) for c in centres])
    return X


def _reference(X, k, p):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="minkowski", p=p).fit(X)
    return nn.kneighbors(X)


def test_minkowski_p_reaches_the_exact_search(blobs):
    model = UEC(n_clusters=3, metric="minkowski", metric_kwds={"p": 3}, **FAST).fit(blobs)
    dist, idx = _reference(blobs, 15, 3)
    assert model.labels_.shape == (180,)
    ind, d = nearest_neighbors(blobs, 15, metric="minkowski", metric_kwds={"p": 3}, exact=True)
    np.testing.assert_allclose(d, dist, rtol=1e-5, atol=1e-5)
    # p = 3 is not p = 2: the distances differ from the euclidean ones
    _, d2 = nearest_neighbors(blobs, 15, metric="euclidean", exact=True)
    assert not np.allclose(d, d2)
    # p = 1 through metric_kwds is the manhattan metric
    a = UEC(n_clusters=3, metric="minkowski", metric_kwds={"p": 1}, **FAST).fit(blobs)
    b = UEC(n_clusters=3, metric="manhattan", **FAST).fit(blobs)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    # new points go through the same metric
    np.testing.assert_array_equal(a.predict(blobs[:20]), b.predict(blobs[:20]))
    np.testing.assert_array_equal(a.transform(blobs[:20]), b.transform(blobs[:20]))
    assert a.get_params()["metric_kwds"] == {"p": 1}


def test_metric_kwds_reach_pynndescent(blobs, monkeypatch):
    # pynndescent compiles each metric with numba on first use (a minute for minkowski): a
    # stand-in that records its arguments and answers by brute force checks the plumbing
    import pynndescent

    seen = {}

    class Recorder:
        def __init__(self, X, n_neighbors, metric, metric_kwds=None, **kw):
            seen.update(metric=metric, metric_kwds=metric_kwds)
            dist, idx = _reference(X, n_neighbors, metric_kwds["p"])
            self.neighbor_graph = (idx, dist)

    monkeypatch.setattr(pynndescent, "NNDescent", Recorder)
    ind, d = nearest_neighbors(blobs, 10, metric="minkowski", metric_kwds={"p": 3}, exact=False,
                               random_state=0, n_jobs=1)
    assert seen == {"metric": "minkowski", "metric_kwds": {"p": 3}}
    np.testing.assert_allclose(d, _reference(blobs, 10, 3)[0], rtol=1e-5, atol=1e-5)
    # a euclidean search with keywords goes to pynndescent too (ours takes none)
    from uec.graph import knn_backend

    big = np.zeros((5000, 2))
    assert knn_backend(big, "euclidean") == "nn_descent"
    assert knn_backend(big, "minkowski", metric_kwds={"p": 3}) == "pynndescent"


@pytest.mark.parametrize("kwds, needle", [
    ("p=3", "metric_kwds='p=3' must be None or a dict"),
    ({3: 1}, "must be None or a dict"),
    ({"q": 3}, "metric_kwds={'q': 3} is not accepted by metric='minkowski'"),
])
def test_bad_metric_kwds_name_the_parameter(blobs, kwds, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace("{", r"\{")):
        UEC(n_clusters=3, metric="minkowski", metric_kwds=kwds, **FAST).fit(blobs)
