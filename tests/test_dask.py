"""uec.dask: fit on a sample of a Dask collection, predict / transform chunk by chunk, locally
and on a real dask.distributed cluster (worker processes on the loopback interface)."""

import copy
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402  (a dependency of dask)
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import uec.dask as ud  # noqa: E402
from uec import UEC  # noqa: E402
from uec.datasets import make_manifold_clusters  # noqa: E402

PARAMS = dict(n_clusters=6, n_epochs=60, random_state=0, n_jobs=1)
BATCH = 1000


@pytest.fixture(scope="module")
def data():
    X, y = make_manifold_clusters(5000, 6, 10, random_state=0)
    return X[:2000], X[2000:]


@pytest.fixture(scope="module")
def est(data):
    Xtr, _ = data
    return ud.DaskUEC(**PARAMS, sample_size=None, batch_size=BATCH).fit(
        da.from_array(Xtr, chunks=600))


def batched(model, X, method, batch=BATCH):
    """The in-memory reference: ``model.<method>`` of consecutive batches of ``batch`` rows."""
    return np.concatenate([getattr(model, method)(X[s : s + batch])
                           for s in range(0, X.shape[0], batch)])


def model_holders(collection, model):
    """Keys of the graph whose value, pickled on its own, is at least as large as the model:
    the places the model would be shipped from."""
    size = len(cloudpickle.dumps(model))
    graph = dict(collection.__dask_graph__())
    return [k for k, v in graph.items() if len(cloudpickle.dumps(v)) >= size], graph


# -- import hygiene ------------------------------------------------------------------------


def test_import_uec_does_not_import_dask():
    code = ("import sys, uec; from uec import UEC; import uec.datasets, uec.metrics; "
            "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, "
            "sorted(m for m in sys.modules if 'dask' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_dask_names_the_extra():
    code = ("import sys; sys.modules['dask'] = None\n"
            "try:\n    import uec.dask\nexcept ImportError as e:\n    print(e)\n"
            "else:\n    raise SystemExit('no ImportError')")
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                         capture_output=True, text=True).stdout
    assert 'pip install "uec[dask]"' in out, out


# -- in memory (local threaded scheduler) --------------------------------------------------


def test_fit_on_all_rows_equals_in_memory_fit(est, data):
    Xtr, _ = data
    ref = UEC(**PARAMS).fit(Xtr)
    np.testing.assert_array_equal(est.model_.embedding_, ref.embedding_)
    np.testing.assert_array_equal(est.sample_indices_, np.arange(2000))
    assert est.n_features_in_ == 10 and est.cluster_centers_.shape == (6, 2)
    assert set(est.timings_) == {"sample", "fit"}
    assert est.n_clusters_ == 6


def test_unknown_k_on_the_sample_and_noise_in_predict(data):
    """n_clusters=None (the default, as UEC's): the count is chosen on the sample; with
    noise_threshold the tasks' labels are the in-memory model's, -1 included."""
    Xtr, Xte = data
    params = {**PARAMS, "n_clusters": None, "noise_threshold": 0.5}
    fitted = ud.DaskUEC(**params, sample_size=None, batch_size=BATCH).fit(
        da.from_array(Xtr, chunks=700))
    ref = UEC(**params).fit(Xtr)
    assert ud.DaskUEC().n_clusters is None
    assert fitted.n_clusters_ == ref.n_clusters_
    far = np.vstack([Xte[:200], Xte[:50] * 50.0]).astype(Xte.dtype)
    labels = fitted.predict(da.from_array(far, chunks=100)).compute()
    np.testing.assert_array_equal(labels, ref.predict(far))
    assert (labels[200:] == -1).all()


def test_predict_transform_equal_in_memory_whatever_the_chunking(est, data):
    _, Xnew = data
    model = est.model_
    labels_ref = batched(model, Xnew, "predict")
    z_ref = batched(model, Xnew, "transform")
    for chunks in [(700, 10), ((1000, 500, 1500), 10), (250, 4)]:  # (250, 4): 3 column chunks
        X = da.from_array(Xnew, chunks=chunks)
        labels = est.predict(X)
        Z = est.transform(X)
        assert labels.dtype == np.intp and labels.chunks == (X.chunks[0],)
        assert Z.dtype == np.float32 and Z.chunks == (X.chunks[0], (2,))
        np.testing.assert_array_equal(labels.compute(), labels_ref)
        np.testing.assert_array_equal(Z.compute(), z_ref)  # bit for bit
    assert labels_ref.dtype == model.predict(Xnew[:5]).dtype


def test_one_batch_equals_predict_on_the_whole_array(est, data):
    _, Xnew = data
    X = da.from_array(Xnew, chunks=800)
    labels = ud.predict(est.model_, X, batch_size=len(Xnew))
    assert labels.chunks == X.chunks[:1]
    np.testing.assert_array_equal(labels.compute(), est.model_.predict(Xnew))
    np.testing.assert_array_equal(ud.transform(est, X, batch_size=len(Xnew)).compute(),
                                  est.model_.transform(Xnew))


def test_batch_size_none_places_each_chunk_in_one_call(est, data):
    _, Xnew = data
    X = da.from_array(Xnew, chunks=900)
    labels = ud.predict(est.model_, X, batch_size=None).compute()
    np.testing.assert_array_equal(labels, batched(est.model_, Xnew, "predict", 900))


def test_aligned_chunks():
    assert ud.aligned_chunks((1000, 1000), 500) == (1000, 1000)
    assert ud.aligned_chunks((700, 700, 700), 500) == (500, 1000, 600)  # 700, 1400 -> 500, 1500
    assert ud.aligned_chunks((300,), 500) == (300,)
    assert ud.aligned_chunks((100, 100, 100), 1000) == (300,)


def test_model_is_in_the_local_graph_once(est, data):
    _, Xnew = data
    X = da.from_array(Xnew, chunks=500)
    labels, Z = est.predict(X), est.transform(X)
    holders, graph = model_holders(labels, est.model_)
    assert len(holders) == 1, holders
    tasks = [k for k in graph if isinstance(k, tuple) and k[0].startswith("uec-predict")]
    # one predict task per chunk of X (predict does not realign chunks to batch boundaries)
    assert len(tasks) == len(X.chunks[0]) == 6
    assert all(holders[0] in graph[k].dependencies for k in tasks)
    # predict and transform of one DaskUEC share the key, so a joint compute ships it once
    assert [k for k in dict(Z.__dask_graph__()) if str(k).startswith("uec-model-")] == holders
    lab, z = dask.compute(labels, Z)
    np.testing.assert_array_equal(lab, batched(est.model_, Xnew, "predict"))


def test_dataframe_in_series_and_frame_out(est, data):
    _, Xnew = data
    pdf = pd.DataFrame(Xnew, columns=[f"f{i}" for i in range(10)],
                       index=pd.RangeIndex(10_000, 13_000, name="id"))
    ddf = dd.from_pandas(pdf, npartitions=4)
    fitted = ud.DaskUEC(**PARAMS, sample_size=None, batch_size=BATCH).fit(ddf)
    assert list(fitted.feature_names_in_) == list(pdf.columns)
    labels = fitted.predict(ddf)
    assert isinstance(labels, dd.Series) and labels.name == "label"
    assert labels.dtype == np.intp and labels.npartitions == 4
    Z = fitted.transform(ddf)
    assert list(Z.columns) == ["uec0", "uec1"] and (Z.dtypes == np.float32).all()
    lab, z = dask.compute(labels, Z)
    assert lab.index.equals(pdf.index) and z.index.equals(pdf.index)
    np.testing.assert_array_equal(lab.to_numpy(), batched(fitted.model_, Xnew, "predict"))
    np.testing.assert_array_equal(z.to_numpy(), batched(fitted.model_, Xnew, "transform"))
    # batch_size=None: map_partitions, one call per partition, same meta
    per_part = ud.predict(fitted, ddf, batch_size=None)
    assert per_part.name == "label" and per_part.dtype == np.intp
    sizes = ddf.map_partitions(len).compute().tolist()
    ref = np.concatenate([fitted.model_.predict(p) for p in np.split(Xnew, np.cumsum(sizes)[:-1])])
    np.testing.assert_array_equal(per_part.compute().to_numpy(), ref)
    with pytest.raises(ValueError, match=r"columns \['g0'"):
        fitted.predict(ddf.rename(columns={f"f{i}": f"g{i}" for i in range(10)}))
    with pytest.raises(ValueError, match=r"non-numeric columns \['s'\]"):
        fitted.predict(ddf.assign(s="a"))


# -- the sample ----------------------------------------------------------------------------


def test_sample_is_reproducible_and_independent_of_chunking(data):
    Xtr, Xnew = data
    X = np.concatenate([Xtr, Xnew])
    rows_a, idx_a = ud.sample(da.from_array(X, chunks=333), 1500, random_state=7)
    rows_b, idx_b = ud.sample(da.from_array(X, chunks=(2000, 5)), 1500, random_state=7)
    np.testing.assert_array_equal(idx_a, idx_b)
    np.testing.assert_array_equal(rows_a, rows_b)
    np.testing.assert_array_equal(rows_a, X[idx_a].astype(np.float32))
    assert rows_a.dtype == np.float32 and len(np.unique(idx_a)) == 1500
    assert np.all(np.diff(idx_a) > 0) and idx_a.max() < 5000
    _, idx_c = ud.sample(da.from_array(X, chunks=333), 1500, random_state=8)
    assert not np.array_equal(idx_a, idx_c)
    # larger than the data: all rows (documented)
    rows_all, idx_all = ud.sample(da.from_array(X, chunks=1000), 10**9, random_state=0)
    np.testing.assert_array_equal(idx_all, np.arange(5000))
    # a DataFrame: the same global positions
    ddf = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    rows_d, idx_d = ud.sample(ddf, 1500, random_state=7)
    np.testing.assert_array_equal(idx_d, idx_a)
    np.testing.assert_array_equal(rows_d, rows_a)


def test_same_seed_same_fit_whatever_the_chunking(data):
    Xtr, Xnew = data
    X = np.concatenate([Xtr, Xnew])
    a = ud.DaskUEC(**PARAMS, sample_size=1200).fit(da.from_array(X, chunks=400))
    b = ud.DaskUEC(**PARAMS, sample_size=1200).fit(da.from_array(X, chunks=(3000, 10)))
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    np.testing.assert_array_equal(a.model_.embedding_, b.model_.embedding_)
    np.testing.assert_array_equal(a.model_.labels_, b.model_.labels_)
    ref = UEC(**PARAMS).fit(X[a.sample_indices_])
    np.testing.assert_array_equal(a.model_.embedding_, ref.embedding_)


def test_unknown_chunk_sizes(est, data):
    _, Xnew = data
    X = da.from_array(Xnew, chunks=1000)
    Xu = X[X[:, 0] > -np.inf]  # all rows, chunk sizes unknown (NaN)
    assert np.isnan(Xu.chunks[0][0])
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        ud.DaskUEC(**PARAMS, sample_size=100).fit(Xu)
    # transform groups rows by position: it needs the chunk sizes
    with pytest.raises(ValueError, match="unknown chunk sizes.*batch_size=1000"):
        est.transform(Xu)
    # predict labels each row on its own: no positions needed, any batch size
    np.testing.assert_array_equal(est.predict(Xu).compute(), est.model_.predict(Xnew))
    labels = ud.predict(est, Xu, batch_size=None).compute()  # one call per chunk is fine
    np.testing.assert_array_equal(labels, batched(est.model_, Xnew, "predict"))
    np.testing.assert_array_equal(est.predict(Xu.compute_chunk_sizes()).compute(),
                                  batched(est.model_, Xnew, "predict"))


# -- parameters and errors -----------------------------------------------------------------


def test_parameters_follow_uec(est, data):
    names = set(ud.DaskUEC().get_params())
    assert names == set(UEC().get_params()) | {"sample_size", "batch_size"}
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "model_")
    c.set_params(n_clusters=3, sample_size=50)
    assert (c.n_clusters, c.sample_size) == (3, 50)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['n_cluster'\\]"):
        ud.DaskUEC(n_cluster=3)
    wrapped = ud.DaskUEC.from_model(est.model_, batch_size=BATCH)
    assert wrapped.model_ is est.model_ and wrapped.n_clusters == 6
    X = da.from_array(data[1][:1500], chunks=500)
    first = est.predict(X).compute()  # est now keeps its shipped model (a graph key here)
    again = pickle.loads(pickle.dumps(est))
    assert not hasattr(again, "_shipped")  # a Future or graph key belongs to one session
    np.testing.assert_array_equal(again.predict(X).compute(), first)
    np.testing.assert_array_equal(wrapped.predict(X).compute(), first)


def test_bad_input(est, data):
    _, Xnew = data
    X = da.from_array(Xnew, chunks=1000)
    with pytest.raises(ValueError, match=r"X has 5 features, but the model was fitted with 10"):
        est.predict(X[:, :5])
    with pytest.raises(ValueError, match=r"shape \(3000,\) \(1-D\); expected a 2-D"):
        est.predict(X[:, 0])
    with pytest.raises(ValueError, match="dtype object"):
        est.predict(X.astype(object))
    with pytest.raises(TypeError, match="numpy.ndarray is not supported; expected a dask"):
        est.predict(Xnew)
    with pytest.raises(ValueError, match="dask Series"):
        est.predict(dd.from_pandas(pd.Series(Xnew[:, 0]), npartitions=2))
    with pytest.raises(ValueError, match="sample_size=0 must be >= 1"):
        ud.DaskUEC(sample_size=0).fit(X)
    with pytest.raises(ValueError, match="batch_size=0 must be >= 1"):
        ud.predict(est, X, batch_size=0)
    with pytest.raises(ValueError, match="random_state='a' is not allowed"):
        ud.sample(X, 10, random_state="a")
    with pytest.raises(NotFittedError):
        ud.DaskUEC().predict(X)
    with pytest.raises(TypeError, match="expected a fitted uec.UEC"):
        ud.predict(object(), X)
    bad = Xnew.copy()
    bad[1234, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # raised by the task, at compute
        est.predict(da.from_array(bad, chunks=1000)).compute()


# -- a real dask.distributed cluster -------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=None)
    cl = distributed.Client(cluster)
    cl.wait_for_workers(2, timeout=120)
    yield cl
    cl.close()
    cluster.close()


def test_distributed_equals_in_memory_and_ships_the_model_once(client, data, monkeypatch):
    Xtr, Xnew = data
    scatters = []
    real = client.scatter

    def spy(*args, **kwargs):
        scatters.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "scatter", spy)
    fitted = ud.DaskUEC(**PARAMS, sample_size=None, batch_size=BATCH).fit(
        da.from_array(Xtr, chunks=700))
    X = da.from_array(Xnew, chunks=700)
    labels, Z = fitted.predict(X), fitted.transform(X)
    assert len(scatters) == 1 and scatters[0]["broadcast"] is True
    holders, graph = model_holders(labels, fitted.model_)
    assert holders == []  # the graph refers to the scattered Future, it does not hold the model
    future = fitted._shipped[1]
    key = future.key
    tasks = [k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("uec-predict")]
    assert tasks and all(key in graph[k].dependencies for k in tasks)
    assert set(client.who_has(future)[key]) == set(client.scheduler_info()["workers"])
    lab, z = client.compute([labels, Z], sync=True)
    np.testing.assert_array_equal(lab, batched(fitted.model_, Xnew, "predict"))
    np.testing.assert_array_equal(z, batched(fitted.model_, Xnew, "transform"))
    # and once more: the Future is reused, not scattered again
    np.testing.assert_array_equal(fitted.predict(X[:1000]).compute(), lab[:1000])
    assert len(scatters) == 1
    # a DataFrame through the cluster
    ddf = dd.from_pandas(pd.DataFrame(Xnew), npartitions=3)
    np.testing.assert_array_equal(fitted.predict(ddf).compute().to_numpy(), lab)


def test_worker_killed_mid_job_loses_and_duplicates_no_row(client, est, data):
    _, Xnew = data
    # More transform epochs (n_epochs // 3 = 300) make each 1,000-row task take about half a
    # second here; the kill waits for one task to finish and another to be executing.
    slow = copy.copy(est.model_)
    slow.n_epochs = 900
    X = da.from_array(np.concatenate([Xnew, Xnew[::-1]]), chunks=BATCH)
    n = X.shape[0]
    labels = client.persist(ud.predict(slow, X, batch_size=BATCH))
    futures = distributed.futures_of(labels)
    distributed.wait(futures, timeout=120, return_when="FIRST_COMPLETED")

    def executing(dask_worker):  # defined here so that it pickles by value
        return [str(ts.key) for ts in dask_worker.state.executing]

    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        running = client.run(executing)
        victim = next((w for w, keys in running.items()
                       if any("uec-predict" in k for k in keys)), None)
        if victim is None:
            time.sleep(0.05)
    assert victim is not None, "no worker was running a predict task"
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the worker process, started by this module's cluster
    result = labels.compute()
    assert pid not in client.run(os.getpid).values()  # it did die (the nanny starts a new one)
    assert result.shape == (n,)
    np.testing.assert_array_equal(result, batched(slow, X.compute(), "predict"))
    client.wait_for_workers(2, timeout=120)  # the nanny restarted it
