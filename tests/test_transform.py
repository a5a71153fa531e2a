"""New points: UEC.transform / UEC.predict against references, held-out accuracy, pickling."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse
from scipy.optimize import brentq
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

from uec import UEC, _transform
from uec.metrics import clustering_accuracy


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(split):
    Xtr, _, _, _ = split
    return UEC(n_clusters=10, random_state=0, n_jobs=1).fit(Xtr)


def test_holdout_accuracy_close_to_fit(fitted, split):
    # The bar: on an 80/20 split of digits, predict on the held-out 20% within 0.03 of
    # the training ACC. Measured (seeds 0/1/2): train 0.898/0.935/0.949, held out
    # 0.892/0.953/0.925.
    _, Xte, ytr, yte = split
    acc_train = clustering_accuracy(ytr, fitted.labels_)
    pred = fitted.predict(Xte)
    assert pred.shape == (Xte.shape[0],) and pred.min() >= 0 and pred.max() < 10
    acc_test = clustering_accuracy(yte, pred)
    assert acc_test >= acc_train - 0.03, (acc_train, acc_test)


def test_transform_of_training_data_lands_close(fitted):
    # Measured: median displacement 0.127, 95th percentile 0.30 in a layout 16.6 wide;
    # predicting the training points agrees with labels_ on 0.997-0.999 of them.
    Z = fitted.transform(fitted._raw_data)
    assert Z.shape == fitted.embedding_.shape and Z.dtype == np.float32
    span = np.ptp(fitted.embedding_, axis=0).max()
    dist = np.linalg.norm(Z - fitted.embedding_, axis=1)
    assert np.median(dist) < 0.025 * span and np.percentile(dist, 95) < 0.06 * span
    agree = np.mean(fitted.predict(fitted._raw_data) == fitted.labels_)
    assert agree >= 0.98, agree


def test_transform_is_deterministic_whatever_the_threads(fitted, split):
    _, Xte, _, _ = split
    Xte = Xte[:100]
    a = fitted.transform(Xte)
    np.testing.assert_array_equal(a, fitted.transform(Xte))
    other = pickle.loads(pickle.dumps(fitted))
    other.n_jobs = 2
    np.testing.assert_array_equal(a, other.transform(Xte))


def test_membership_weights_match_a_float64_reference(fitted, split):
    # sigma solves sum_{j >= 1} exp(-d_j / sigma) = log2(k) (rho = 0 for new points); the
    # weights are exp(-d / sigma). Reference: scipy's root finder in float64.
    _, Xte, _, _ = split
    k = fitted.n_neighbors
    idx, dist = _transform.query_training_neighbours(fitted, Xte[:40].astype(np.float32), k, 1)
    brute = np.linalg.norm(Xte[:40, None, :] - fitted._raw_data[None].astype(np.float64), axis=2)
    # the k smallest distances (digits has ties, so compare distances, not indices)
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :k], rtol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(brute, idx, axis=1), dist, rtol=1e-6)
    w = _transform.bipartite_memberships(dist, k)
    for i in range(dist.shape[0]):
        d = dist[i].astype(np.float64)
        sigma = brentq(lambda s: np.exp(-d[1:] / s).sum() - np.log2(k), 1e-6, 1e6, xtol=1e-12)
        np.testing.assert_allclose(w[i], np.exp(-d / sigma), rtol=2e-4, atol=1e-6)


def test_graph_and_start_match_umap_learn():
    # umap-learn's transform builds the same bipartite graph (local_connectivity - 1 = 0) and
    # starts each point at the graph-weighted mean of its neighbours (or on a coincident one).
    umap_ = pytest.importorskip("umap.umap_")
    rng = np.random.default_rng(3)
    k, m, n = 10, 60, 200
    dist = np.sort(rng.gamma(2.0, 1.0, size=(m, k)), axis=1).astype(np.float32)
    dist[:5, 0] = 0.0  # new points that coincide with a training point
    idx = np.stack([rng.choice(n, size=k, replace=False) for _ in range(m)]).astype(np.int32)
    emb = rng.normal(size=(n, 2)).astype(np.float32)
    sig, rho = umap_.smooth_knn_dist(dist, float(k), local_connectivity=0.0)
    rows, cols, vals, _ = umap_.compute_membership_strengths(idx, dist, sig, rho, bipartite=True)
    ref = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(m, n)).tocsr()
    ours = _transform.bipartite_memberships(dist, k)
    ours_sp = scipy.sparse.csr_matrix((ours.ravel(), (np.repeat(np.arange(m), k), idx.ravel())),
                                      shape=(m, n))
    np.testing.assert_allclose(ours_sp.toarray(), ref.toarray(), rtol=1e-6, atol=0)
    ref.eliminate_zeros()
    start_ref = umap_.init_graph_transform(ref, emb)
    np.testing.assert_allclose(_transform.initial_positions(idx, ours, emb), start_ref,
                               rtol=1e-5, atol=1e-6)


def test_predict_is_the_membership_weighted_vote(fitted, split, monkeypatch):
    _, Xte, _, _ = split
    X = Xte[:60].astype(np.float32)
    k, C = fitted.n_neighbors, fitted.n_clusters
    idx, dist = _transform.query_training_neighbours(fitted, X, k, 1)
    w = _transform.bipartite_memberships(dist, k).astype(np.float64)
    ref = []
    for i in range(X.shape[0]):
        score = np.zeros(C)
        for j in range(k):
            score[fitted.labels_[idx[i, j]]] += w[i, j]
        near = fitted.labels_[idx[i, 0]]
        ref.append(near if score[near] == score.max() else int(np.argmax(score)))
    np.testing.assert_array_equal(fitted.predict(X), ref)
    # ties and underflow go to the nearest neighbour's cluster (here cluster 1, which a plain
    # argmax would not pick): three rows with crafted neighbours of clusters 1, 0, 1, 0 (a tie
    # of equal weights; all weights underflowed) and 0, 1, 1, 0 (a majority against the nearest)
    labels = np.zeros(fitted.embedding_.shape[0], dtype=np.intp)
    labels[1:3] = 1
    fake_idx = np.array([[1, 3, 2, 0], [1, 3, 2, 0], [3, 1, 2, 0]], dtype=np.int32)
    fake_dist = np.array([[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [0.1, 0.2, 0.2, 9.0]],
                         dtype=np.float32)
    fake_w = np.array([[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0], [1.0, 0.9, 0.9, 0.1]])
    model = pickle.loads(pickle.dumps(fitted))
    model.labels_, model.n_neighbors = labels, 4
    model._partition = labels  # the votes read the partition before any noise label
    monkeypatch.setattr(_transform, "query_training_neighbours",
                        lambda *a, **kw: (fake_idx, fake_dist))
    monkeypatch.setattr(_transform, "bipartite_memberships", lambda d, k: fake_w)
    np.testing.assert_array_equal(_transform.neighbour_vote(model, X[:3]), [1, 1, 1])


def test_predict_does_not_depend_on_the_other_rows(fitted, split):
    _, Xte, _, _ = split
    whole = fitted.predict(Xte)
    parts = np.concatenate([fitted.predict(Xte[:37]), fitted.predict(Xte[37:200]),
                            fitted.predict(Xte[200:])])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(fitted.predict(Xte[::-1]), whole[::-1])


def test_predict_follows_the_graph_on_moons():
    # Two interleaved moons: the fit finds them exactly (tests/test_merge.py); new points are
    # predicted as the fit's graph connects them. The nearest centre of transform() scored
    # ACC 0.975-0.988 on this split (seeds 0/1).
    from sklearn.datasets import make_moons

    X, y = make_moons(3000, noise=0.06, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    model = UEC(n_clusters=2, random_state=0, n_jobs=2).fit(Xtr)
    assert clustering_accuracy(ytr, model.labels_) == 1.0
    assert clustering_accuracy(yte, model.predict(Xte)) == 1.0


def test_transform_epochs_follow_umap_learn(split):
    Xtr = split[0][:300]
    model = UEC(n_clusters=4, n_epochs=31, random_state=0, n_jobs=1).fit(Xtr)
    assert _transform.transform_epochs(model) == 10
    model.n_epochs = None
    assert _transform.transform_epochs(model) == 100


def test_transform_errors(fitted, split):
    with pytest.raises(NotFittedError):
        UEC(n_clusters=3).predict(split[1])
    with pytest.raises(ValueError, match="X has 5 features, but UEC is expecting 64 features as input"):
        fitted.transform(split[1][:, :5])
    bad = split[1][:3].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(bad)


def test_pickle_round_trip_in_a_new_process(fitted, split, tmp_path):
    _, Xte, _, _ = split
    Xte = Xte[:150]
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(fitted))
    np.save(tmp_path / "x.npy", Xte)
    code = textwrap.dedent(f"""
        import pickle, numpy as np
        model = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "z.npy")!r}, model.transform(X))
        np.save({str(tmp_path / "p.npy")!r}, model.predict(X))
        np.save({str(tmp_path / "labels.npy")!r}, model.labels_)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), fitted.transform(Xte))
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), fitted.predict(Xte))
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), fitted.labels_)


def test_transform_does_not_depend_on_the_blas_thread_count(fitted, split):
    # digits' pixels are integers: many new points have exact ties at their k-th training
    # neighbour, and the GEMM expansion of the brute-force search breaks them by rounding that
    # depends on the BLAS thread count (a pickled model gave other coordinates in a new process)
    from threadpoolctl import threadpool_limits

    Xte = split[1]
    with threadpool_limits(limits=1):
        one = fitted.transform(Xte)
    with threadpool_limits(limits=2):
        two = fitted.transform(Xte)
    np.testing.assert_array_equal(one, two)
    idx, dist = _transform.query_training_neighbours(fitted, Xte, 15, 1)
    assert (np.diff(dist, axis=1) >= 0).all()
    ties = np.diff(dist, axis=1) == 0
    assert ties.any()  # the case this guards is really there
    assert (np.diff(idx, axis=1)[ties] > 0).all()  # ties in index order


@pytest.mark.parametrize("n", [600, 5000])  # below and above the exact-search threshold (4,096)
def test_sparse_fit_predicts_and_transforms_sparse_and_dense(n):
    import scipy.sparse
    from sklearn.datasets import make_blobs
    from sklearn.neighbors import NearestNeighbors

    from uec._transform import query_training_neighbours

    X, _ = make_blobs(n, n_features=30, centers=3, random_state=0)
    X = np.maximum(X, 0).astype(np.float32)  # non-negative, so the CSR form has zeros
    S = scipy.sparse.csr_matrix(X)
    model = UEC(n_clusters=3, random_state=0, n_jobs=1).fit(S)
    rows = slice(0, 200)
    # the training neighbours of sparse queries against a float64 brute-force reference
    idx, dist = query_training_neighbours(model, S[rows], 15, n_jobs=1)
    ref_d, ref_i = NearestNeighbors(n_neighbors=15).fit(X.astype(np.float64)).kneighbors(
        X[rows].astype(np.float64))
    recall = np.mean([np.isin(i, r).mean() for i, r in zip(idx, ref_i)])
    assert recall >= 0.95
    # where the same neighbour was found, the same distance
    found = np.array([np.isin(i, r) for i, r in zip(idx, ref_i)])
    ref_of = {(q, j): d for q in range(idx.shape[0]) for j, d in zip(ref_i[q], ref_d[q])}
    got = np.array([[ref_of.get((q, j), np.nan) for j in idx[q]] for q in range(idx.shape[0])])
    np.testing.assert_allclose(dist[found], got[found], rtol=1e-5, atol=1e-5)
    labels = model.predict(S[rows])
    np.testing.assert_array_equal(labels, model.predict(X[rows]))  # dense rows, sparse fit
    assert (labels == model.labels_[rows]).mean() >= 0.99
    np.testing.assert_array_equal(model.transform(S[:40]), model.transform(X[:40]))


def test_transform_from_several_threads_on_one_model():
    # a pynndescent index (manhattan, above the exact-search threshold) keeps search state of
    # its own: four threads transforming at once must each get the single-thread answer
    import threading

    from sklearn.datasets import make_blobs

    X, _ = make_blobs(6000, n_features=10, centers=4, random_state=0)
    model = UEC(n_clusters=4, metric="manhattan", n_epochs=30, random_state=0, n_jobs=1).fit(X)
    assert type(model._knn_search_index).__name__ == "NNDescent"
    Q = X[:1200] + 0.01
    expected = model.transform(Q)
    for _ in range(3):
        out = [None] * 4

        def run(i):
            out[i] = model.transform(Q)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got in out:
            np.testing.assert_array_equal(got, expected)
