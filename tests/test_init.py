"""Tests of uec.initialization and uec.centres (through their old path uec.init): spectral / PCA /
random initial embeddings and initial centres."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import subspace_angles
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.neighbors import kneighbors_graph

from uec import centres as ucentres
from uec import init as uinit
from uec import initialization as ulayout


def knn_graph(X, k=10):
    G = kneighbors_graph(X, k, mode="connectivity", include_self=False)
    G = G.maximum(G.T).tocsr()
    return G.astype(np.float32)


def two_blobs(n=300, seed=0):
    X, y = make_blobs(
        n_samples=n, centers=[[-20, 0], [20, 0]], cluster_std=1.0, random_state=seed
    )
    return X.astype(np.float32), y


def normalised_laplacian_reference(G):
    A = np.asarray(G.toarray(), dtype=np.float64)
    d = A.sum(axis=1)
    Dm = np.diag(1.0 / np.sqrt(d))
    L = np.eye(A.shape[0]) - Dm @ A @ Dm
    return np.linalg.eigh(L)


def same_partition(a, b):
    """True when the two labellings define the same partition."""
    a = np.asarray(a)
    b = np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def bridged_blobs(n=300, seed=0, bridge_weight=0.05):
    """kNN graph of two separated blobs plus a few weak edges joining them (connected)."""
    X, y = two_blobs(n, seed)
    G = knn_graph(X).tolil()
    i0 = np.flatnonzero(y == 0)[:3]
    i1 = np.flatnonzero(y == 1)[:3]
    for a, b in zip(i0, i1):
        G[a, b] = bridge_weight
        G[b, a] = bridge_weight
    return X, y, G.tocsr()


# ---------------------------------------------------------------------------------------
# spectral layout
# ---------------------------------------------------------------------------------------


def test_spectral_separates_two_blobs_disconnected():
    X, y = two_blobs()
    G = knn_graph(X)
    n_comp = sp.csgraph.connected_components(G)[0]
    assert n_comp == 2  # the two blobs are separate components
    L = uinit.spectral_layout(G, 2, random_state=0)
    assert L.shape == (300, 2) and np.all(np.isfinite(L))
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(L)
    assert same_partition(labels, y)


@pytest.mark.parametrize("dense_cutoff", [1000, 0])
def test_spectral_separates_two_blobs_connected(monkeypatch, dense_cutoff):
    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", dense_cutoff)  # 0 forces ARPACK
    X, y, G = bridged_blobs()
    assert sp.csgraph.connected_components(G)[0] == 1
    L = uinit.spectral_layout(G, 2, random_state=0)
    # the first coordinate is the Fiedler vector: its sign is the blob label
    assert same_partition(L[:, 0] > 0, y)


@pytest.mark.parametrize("dense_cutoff", [1000, 0])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_spectral_columns_are_laplacian_eigenvectors(monkeypatch, dense_cutoff, dim):
    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", dense_cutoff)
    rng = np.random.default_rng(1)
    # points in a 1 x 2.3 rectangle: well separated low Laplacian eigenvalues
    P = rng.uniform(size=(400, 2)) * np.array([1.0, 2.3])
    G = kneighbors_graph(P, 12, mode="distance")
    G.data = np.exp(-((G.data / G.data.mean()) ** 2))
    G = G.maximum(G.T).tocsr().astype(np.float32)
    assert sp.csgraph.connected_components(G)[0] == 1
    evals, evecs = normalised_laplacian_reference(G)
    assert evals[dim + 1] - evals[dim] > 1e-3  # the reference subspace is well defined
    ref = evecs[:, 1 : dim + 1]
    L = uinit.spectral_layout(G, dim, random_state=0)
    assert L.dtype == np.float64 and L.shape == (400, dim)
    # unit-norm columns spanning the same subspace ...
    np.testing.assert_allclose(np.linalg.norm(L, axis=0), 1.0, rtol=1e-6)
    assert np.max(subspace_angles(L, ref)) < 0.02
    # ... and, eigenvalue by eigenvalue, the same vectors up to sign
    for j in range(dim):
        corr = abs(np.corrcoef(L[:, j], ref[:, j])[0, 1])
        assert corr > 0.999
    # they are eigenvectors: residual of L_sym v = lambda v is small
    A = G.toarray().astype(np.float64)
    d = A.sum(1)
    Lsym = np.eye(400) - A / np.sqrt(np.outer(d, d))
    for j in range(dim):
        v = L[:, j]
        lam = v @ Lsym @ v
        assert np.linalg.norm(Lsym @ v - lam * v) < 1e-2
        np.testing.assert_allclose(lam, evals[j + 1], atol=1e-4)


def test_spectral_trivial_vector_not_returned():
    X, y, G = bridged_blobs()
    L = uinit.spectral_layout(G, 2, random_state=0)
    d = np.asarray(G.sum(axis=1)).ravel()
    u0 = np.sqrt(d) / np.linalg.norm(np.sqrt(d))
    assert np.all(np.abs(u0 @ L) < 1e-6)


def make_components_graph():
    """4 connected components of different sizes plus one isolated vertex."""
    blocks = []
    rng = np.random.default_rng(3)
    for size in (120, 60, 30, 5):
        P = rng.normal(size=(size, 3))
        blocks.append(knn_graph(P, k=4))
    blocks.append(sp.csr_matrix((1, 1), dtype=np.float32))  # isolated vertex
    G = sp.block_diag(blocks, format="csr").astype(np.float32)
    labels = np.repeat(np.arange(5), [120, 60, 30, 5, 1])
    # shuffle the vertex order so that components are not contiguous
    perm = rng.permutation(G.shape[0])
    G = G[perm][:, perm].tocsr()
    return G, labels[perm]


def boxes_disjoint(L, labels):
    comps = np.unique(labels)
    lo = {c: L[labels == c].min(axis=0) for c in comps}
    hi = {c: L[labels == c].max(axis=0) for c in comps}
    for i, a in enumerate(comps):
        for b in comps[i + 1 :]:
            overlap_all_dims = np.all((lo[a] <= hi[b]) & (lo[b] <= hi[a]))
            if overlap_all_dims:
                return False
    return True


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_spectral_disconnected_with_isolated_vertex(dim):
    G, labels = make_components_graph()
    assert sp.csgraph.connected_components(G)[0] == 5
    L = uinit.spectral_layout(G, dim, random_state=0)
    assert L.shape == (G.shape[0], dim)
    assert np.all(np.isfinite(L))
    assert boxes_disjoint(L, labels)
    E = uinit.initial_embedding("spectral", None, G, dim, random_state=0)
    assert np.all(np.isfinite(E))
    assert boxes_disjoint(E, labels)


def test_spectral_few_components_on_axes():
    # 3 components in 2-D: placed on the axes, still disjoint
    G, labels = make_components_graph()
    keep = labels < 3
    G3 = G[keep][:, keep].tocsr()
    L = uinit.spectral_layout(G3, 2, random_state=0)
    assert boxes_disjoint(L, labels[keep])


def test_spectral_tiny_and_empty_graphs():
    # fewer vertices than dim + 2 -> random layout, no crash
    G = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    L = uinit.spectral_layout(G, 2, random_state=0)
    assert L.shape == (3, 2) and np.all(np.isfinite(L))
    # graph without any edge
    E = uinit.initial_embedding("spectral", None, sp.csr_matrix((7, 7), dtype=np.float32), 2, 0)
    assert E.shape == (7, 2) and np.all(np.isfinite(E))
    assert np.unique(E, axis=0).shape[0] == 7


def test_spectral_eigsh_failure_falls_back(monkeypatch, caplog):
    def failing_eigsh(*args, **kwargs):
        raise ulayout.ArpackNoConvergence("no convergence", np.empty(0), np.empty((0, 0)))

    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", 0)
    monkeypatch.setattr(ulayout, "eigsh", failing_eigsh)
    X, y, G = bridged_blobs()
    with caplog.at_level("WARNING", logger="uec.initialization"):
        L = uinit.spectral_layout(G, 2, random_state=0)
    assert L.shape == (300, 2) and np.all(np.isfinite(L))
    assert any("random layout" in r.getMessage() for r in caplog.records)


def test_spectral_single_precision_failure_retried_in_double(monkeypatch, caplog):
    # ARPACK runs in float32 first; when that run fails, the float64 run gives the eigenmap
    # (no random layout, no warning), equal to the one of a float64-only solve.
    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", 0)
    real = ulayout.eigsh
    dtypes = []

    def single_fails(op, *args, **kwargs):
        dtypes.append(np.dtype(op.dtype))
        if op.dtype == np.float32:
            raise ulayout.ArpackNoConvergence("no convergence", np.empty(0), np.empty((0, 0)))
        return real(op, *args, **kwargs)

    X, y, G = bridged_blobs()
    monkeypatch.setattr(ulayout, "eigsh", single_fails)
    with caplog.at_level("WARNING", logger="uec.initialization"):
        L = uinit.spectral_layout(G, 2, random_state=0)
    assert dtypes == [np.float32, np.float64]
    assert not any("random layout" in r.getMessage() for r in caplog.records)
    assert same_partition(L[:, 0] > 0, y)
    # the float32 run (the default) spans the same eigenvectors as the float64 one
    monkeypatch.setattr(ulayout, "eigsh", real)
    L32 = uinit.spectral_layout(G, 2, random_state=0)
    for j in range(2):
        assert abs(np.corrcoef(L32[:, j], L[:, j])[0, 1]) > 0.999


@pytest.mark.parametrize("fail_second", [False, True])
def test_spectral_components_in_threads_give_the_same_bits(monkeypatch, fail_second):
    # Components solved by ARPACK (the cutoff lowered) in threads: the same draws and the same
    # bits as one after the other, also when one component's eigensolver fails (its random
    # layout is drawn after every start vector, in component order).
    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", 20)
    G, labels = make_components_graph()
    sizes = np.bincount(labels)
    assert (sizes > 20).sum() >= 3
    real = ulayout.eigsh
    calls = []

    def maybe_failing(*args, **kwargs):
        calls.append(1)
        if fail_second and args[0].shape[0] == np.sort(sizes)[-2]:
            raise ulayout.ArpackNoConvergence("no convergence", np.empty(0), np.empty((0, 0)))
        return real(*args, **kwargs)

    monkeypatch.setattr(ulayout, "eigsh", maybe_failing)
    one = uinit.spectral_layout(G, 2, random_state=4, n_jobs=1)
    two = uinit.spectral_layout(G, 2, random_state=4, n_jobs=2)
    np.testing.assert_array_equal(one, two)
    # a failed component is tried in float32, then in float64 (_arpack_top)
    assert len(calls) == 2 * ((sizes > 20).sum() + fail_second)
    assert boxes_disjoint(one, labels)
    E1 = uinit.initial_embedding("spectral", None, G, 2, random_state=4, n_jobs=1)
    E2 = uinit.initial_embedding("spectral", None, G, 2, random_state=4, n_jobs=3)
    np.testing.assert_array_equal(E1, E2)


def test_spectral_rejects_bad_graphs():
    with pytest.raises(ValueError, match="graph"):
        uinit.spectral_layout(sp.csr_matrix(np.ones((3, 4))), 2)
    with pytest.raises(ValueError, match="graph"):
        uinit.spectral_layout(sp.csr_matrix(-np.ones((3, 3))), 2)
    with pytest.raises(ValueError, match="dim"):
        uinit.spectral_layout(sp.eye(5, format="csr"), 0)


# ---------------------------------------------------------------------------------------
# initial_embedding
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["spectral", "pca", "random"])
def test_initial_embedding_format_and_range(init):
    X, y, G = bridged_blobs()
    E = uinit.initial_embedding(init, X, G, 2, random_state=0)
    assert E.dtype == np.float32
    assert E.flags["C_CONTIGUOUS"]
    assert E.shape == (300, 2)
    assert np.all(np.isfinite(E))
    assert E.min() >= 0.0 and E.max() <= 10.0
    # every column spans (nearly) the whole range
    np.testing.assert_allclose(E.min(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(E.max(axis=0), 10.0, atol=1e-3)
    # no two points coincide
    assert np.unique(E, axis=0).shape[0] == 300


@pytest.mark.parametrize("init", ["spectral", "pca", "random"])
def test_initial_embedding_reproducible(init):
    X, y, G = bridged_blobs()
    a = uinit.initial_embedding(init, X, G, 3, random_state=42)
    b = uinit.initial_embedding(init, X, G, 3, random_state=42)
    np.testing.assert_array_equal(a, b)
    c = uinit.initial_embedding(init, X, G, 3, random_state=np.random.RandomState(42))
    np.testing.assert_array_equal(a, c)
    d = uinit.initial_embedding(init, X, G, 3, random_state=43)
    assert not np.array_equal(a, d)


def test_initial_embedding_spectral_reproducible_large(monkeypatch):
    monkeypatch.setattr(ulayout, "_DENSE_CUTOFF", 0)
    X, y, G = bridged_blobs(n=600)
    a = uinit.initial_embedding("spectral", None, G, 2, random_state=7)
    b = uinit.initial_embedding("spectral", None, G, 2, random_state=7)
    np.testing.assert_array_equal(a, b)


def test_initial_embedding_pca_matches_sklearn():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 6)) * np.array([5, 3, 2, 1, 0.5, 0.1])).astype(np.float32)
    E = uinit.initial_embedding("pca", X, None, 3, random_state=0)
    P = PCA(n_components=3).fit_transform(X.astype(np.float64))
    for j in range(3):
        assert abs(np.corrcoef(E[:, j], P[:, j])[0, 1]) > 0.99999
    raw = uinit.pca_layout(X, 3, random_state=0)
    for j in range(3):
        assert abs(np.corrcoef(raw[:, j], P[:, j])[0, 1]) > 0.99999
        np.testing.assert_allclose(np.abs(raw[:, j]), np.abs(P[:, j]), rtol=1e-4, atol=1e-4)


def test_pca_more_components_than_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)).astype(np.float32)
    raw = uinit.pca_layout(X, 4, random_state=0)
    assert raw.shape == (50, 4)
    assert raw[:, 2:].std() < 1e-3 * raw[:, :2].std()
    E = uinit.initial_embedding("pca", X, None, 4, random_state=0)
    assert E.shape == (50, 4) and E.min() >= 0 and E.max() <= 10
    assert E[:, 2:].max() < 1e-2  # padded columns stay (almost) constant
    assert np.unique(E, axis=0).shape[0] == 50


def test_initial_embedding_pca_without_X():
    X, y, G = bridged_blobs()
    with pytest.raises(ValueError, match="X"):
        uinit.initial_embedding("pca", None, G, 2, random_state=0)


def test_initial_embedding_random_layout():
    R = uinit.random_layout(1000, 3, random_state=0)
    assert R.shape == (1000, 3)
    assert R.min() >= -10 and R.max() <= 10 and R.min() < -9 and R.max() > 9


def test_initial_embedding_constant_column():
    # one-dimensional data padded by PCA -> constant column must not divide by zero
    X = np.repeat(np.arange(10, dtype=np.float32)[:, None], 1, axis=1)
    E = uinit.initial_embedding("pca", X, None, 2, random_state=0)
    assert np.all(np.isfinite(E)) and E.min() >= 0 and E.max() <= 10


def test_initial_embedding_user_array():
    X, y, G = bridged_blobs()
    arr = np.random.default_rng(0).normal(size=(300, 2)) * 100
    E = uinit.initial_embedding(arr, X, G, 2, random_state=0)
    assert E.dtype == np.float32 and E.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(E, arr.astype(np.float32))  # no rescaling
    assert E is not arr
    F = uinit.initial_embedding(np.asfortranarray(arr), X, G, 2, random_state=0)
    assert F.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "bad",
    [
        "umap",
        "Spectral",
        None,
        np.zeros((300, 3)),
        np.zeros((299, 2)),
        np.zeros(600),
        np.full((300, 2), np.nan),
        np.full((300, 2), np.inf),
        [["a", "b"]] * 300,
    ],
)
def test_initial_embedding_bad_init(bad):
    X, y, G = bridged_blobs()
    with pytest.raises(ValueError, match="init"):
        uinit.initial_embedding(bad, X, G, 2, random_state=0)


def test_initial_embedding_bad_arguments():
    X, y, G = bridged_blobs()
    with pytest.raises(ValueError, match="n_components"):
        uinit.initial_embedding("random", X, G, 0, random_state=0)
    with pytest.raises(ValueError, match="graph"):
        uinit.initial_embedding("spectral", X[:100], G, 2, random_state=0)
    with pytest.raises(ValueError, match="graph"):
        uinit.initial_embedding("spectral", X, None, 2, random_state=0)
    with pytest.raises(ValueError, match="random_state"):
        uinit.initial_embedding("random", X, G, 2, random_state="seed")


def test_initial_embedding_accepts_generator():
    X, y, G = bridged_blobs()
    a = uinit.initial_embedding("random", X, G, 2, random_state=np.random.default_rng(5))
    b = uinit.initial_embedding("random", X, G, 2, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# initial centres
# ---------------------------------------------------------------------------------------


def three_blobs(n=450, seed=0):
    centers = [[0, 0], [30, 0], [0, 30]]
    X, y = make_blobs(n_samples=n, centers=centers, cluster_std=1.0, random_state=seed)
    return X.astype(np.float32), y, np.asarray(centers, dtype=np.float64)


def one_centre_per_blob(C, centers):
    d = np.linalg.norm(C[:, None, :] - centers[None, :, :], axis=2)
    nearest = d.argmin(axis=1)
    return sorted(nearest.tolist()) == list(range(len(centers))) and d.min(axis=1).max() < 5


@pytest.mark.parametrize("method", ["kmeans", "gmm", "random", "spectral"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_initial_centres_shape_dtype(method, k):
    X, y, centers = three_blobs()
    G = knn_graph(X)
    C = uinit.initial_centres(method, X, k, random_state=0, graph=G)
    assert C.shape == (k, 2)
    assert C.dtype == np.float32 and C.flags["C_CONTIGUOUS"]
    assert np.all(np.isfinite(C))
    assert np.unique(C, axis=0).shape[0] == k
    C2 = uinit.initial_centres(method, X, k, random_state=0, graph=G)
    np.testing.assert_array_equal(C, C2)


@pytest.mark.parametrize("method", ["kmeans", "gmm", "spectral"])
def test_initial_centres_find_three_blobs(method):
    X, y, centers = three_blobs()
    G = knn_graph(X)
    C = uinit.initial_centres(method, X, 3, random_state=0, graph=G)
    assert one_centre_per_blob(C, centers)


def test_initial_centres_spectral_connected_graph():
    # blobs joined by weak edges (one connected component) with very unequal sizes, where
    # plain k-means on coordinates would not matter but the graph structure does
    X, y, centers = three_blobs()
    G = knn_graph(X).tolil()
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        ia = np.flatnonzero(y == a)[:2]
        ib = np.flatnonzero(y == b)[:2]
        for i, j in zip(ia, ib):
            G[i, j] = G[j, i] = 0.05
    G = G.tocsr()
    assert sp.csgraph.connected_components(G)[0] == 1
    C = uinit.initial_centres("spectral", X, 3, random_state=0, graph=G)
    assert one_centre_per_blob(C, centers)


def test_initial_centres_spectral_matches_graph_not_coordinates():
    # the embedding Z says nothing (random), the graph has the clusters: the centres are
    # the means of Z over the graph's groups
    X, y, centers = three_blobs()
    G = knn_graph(X)
    Z = np.random.default_rng(0).normal(size=(X.shape[0], 2)).astype(np.float32)
    C = uinit.initial_centres("spectral", Z, 3, random_state=0, graph=G)
    means = np.array([Z[y == c].mean(axis=0) for c in range(3)])
    d = np.linalg.norm(C[:, None, :] - means[None], axis=2)
    assert sorted(d.argmin(axis=1).tolist()) == [0, 1, 2]
    assert d.min(axis=1).max() < 1e-5


def test_initial_centres_random_are_rows():
    X, y, centers = three_blobs()
    C = uinit.initial_centres("random", X, 10, random_state=0)
    for c in C:
        assert np.any(np.all(X == c, axis=1))
    assert np.unique(C, axis=0).shape[0] == 10


@pytest.mark.parametrize("method", ["kmeans", "gmm", "random", "spectral"])
def test_initial_centres_more_clusters_than_distinct_points(method):
    Z = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [2, 2], [0, 0]], dtype=np.float32)
    G = sp.csr_matrix(np.ones((6, 6), dtype=np.float32) - np.eye(6, dtype=np.float32))
    for k in (4, 6, 9):
        C = uinit.initial_centres(method, Z, k, random_state=0, graph=G)
        assert C.shape == (k, 2) and np.all(np.isfinite(C))
        assert np.unique(C, axis=0).shape[0] == k  # jittered, never coinciding


def test_initial_centres_user_array():
    X, y, centers = three_blobs()
    C = uinit.initial_centres(centers, X, 3, random_state=0)
    assert C.dtype == np.float32 and C.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(C, centers.astype(np.float32))


@pytest.mark.parametrize(
    "bad",
    ["kmeans++", "umap", None, np.zeros((2, 2)), np.zeros((3, 3)), np.full((3, 2), np.nan)],
)
def test_initial_centres_bad_method(bad):
    X, y, centers = three_blobs()
    with pytest.raises(ValueError, match="centre_init"):
        uinit.initial_centres(bad, X, 3, random_state=0)


def test_initial_centres_spectral_needs_graph():
    X, y, centers = three_blobs()
    with pytest.raises(ValueError, match="graph"):
        uinit.initial_centres("spectral", X, 3, random_state=0)
    with pytest.raises(ValueError, match="n_clusters"):
        uinit.initial_centres("kmeans", X, 0, random_state=0)


def test_kmeans_centres_on_a_sample_above_the_threshold(monkeypatch):
    # Above KMEANS_SAMPLE rows the restarts run on a sample and the best is refined on all rows:
    # the centres must be (up to k-means' stopping tolerance) a fixed point of Lloyd's step on
    # the full data, the optimum that ten restarts on all rows find, and as good.
    grid = np.array([(10.0 * i, 10.0 * j) for i in range(4) for j in range(3)])
    X, _ = make_blobs(6000, n_features=2, centers=grid, cluster_std=1.0, random_state=3)
    full = KMeans(12, n_init=10, random_state=0).fit(X)
    monkeypatch.setattr(ucentres, "KMEANS_SAMPLE", 800)
    C = uinit.initial_centres("kmeans", X, 12, random_state=0).astype(np.float64)
    nearest = ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
    means = np.array([X[nearest == j].mean(0) for j in range(12)])
    np.testing.assert_allclose(C, means, atol=0.05)  # blobs of std 1
    match = ((C[:, None, :] - full.cluster_centers_[None]) ** 2).sum(-1)
    assert sorted(match.argmin(1).tolist()) == list(range(12)) and match.min(1).max() < 0.1 ** 2
    inertia = ((X - C[nearest]) ** 2).sum()
    assert inertia <= 1.01 * full.inertia_
    # and the sample path really ran: with the threshold above n the result is the full one
    monkeypatch.setattr(ucentres, "KMEANS_SAMPLE", 10_000)
    C_full = uinit.initial_centres("kmeans", X, 12, random_state=0)
    assert not np.array_equal(C_full, C.astype(np.float32))
