"""Initialization stage: every sample's starting coordinates, from a spectral layout of the fuzzy
graph (:func:`spectral_layout`), PCA of the input (:func:`pca_layout`), uniformly at random
(:func:`random_layout`) or given by the user (:func:`initial_embedding`, docs/design.md §2.4).
The initial cluster centres in that embedding are the next stage (``uec.centres``).

Everything here is deterministic for a fixed ``random_state``.
"""

from __future__ import annotations

import logging
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits

from ._progress import stage
from ._validation import _as_float_matrix, _check_graph, _check_positive_int, _check_random_state

logger = logging.getLogger(__name__)

__all__ = ["initial_embedding", "spectral_layout", "pca_layout", "random_layout", "INIT_METHODS"]

INIT_METHODS = ("spectral", "pca", "random")
# Components with at most this many vertices are solved with a dense eigensolver (LAPACK's
# O(n^3) reduction); larger ones by ARPACK. Measured on fuzzy kNN graphs (15 neighbours) of
# one component, 1 thread: dense 1.4 / 3.5 / 7.3 / 19 / 51 ms against ARPACK 1.5 / 2.7 / 2.8
# / 7.3 / 10 ms at 200 / 300 / 500 / 700 / 1000 vertices.
_DENSE_CUTOFF = 256
# Stopping tolerance of ARPACK.
_EIGSH_TOL = 1e-4
# Final coordinates of the non-array initialisations lie in [0, _MAX_COORD].
_MAX_COORD = 10.0
# Standard deviation of the jitter added after scaling (absolute, in [0, 10] units).
_NOISE = 1e-4
# Half-width of the box a connected component is scaled into, in units of the spacing
# between component positions (< 0.5 keeps the boxes disjoint).
_BOX_HALF_WIDTH = 0.3


# --------------------------------------------------------------------------------------
# spectral layout
# --------------------------------------------------------------------------------------


def _fix_signs(V):
    """Make the entry of largest magnitude of every column positive (deterministic signs)."""
    if V.shape[0] == 0:
        return V
    rows = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[rows, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def _arpack_top(N, u0, dim, v0):
    """The top ``dim`` eigenpairs of ``N - 3 u0 u0^T`` by ARPACK (float64 results).

    Solved in single precision first: the products with the graph, most of the time, read half
    the memory (MNIST's graph: 0.43 s against 0.74 s, the vectors' cosines with the double
    precision ones above 0.9999), and ARPACK's tolerance (1e-4, relative) lies far above float32
    rounding. If that run does not converge or gives non-finite vectors, it is repeated in
    float64; a failure there is raised."""
    n = N.shape[0]
    for dtype in (np.float32, np.float64):
        Nd, ud = N.astype(dtype, copy=False), u0.astype(dtype, copy=False)  # float64: N itself

        def matvec(x, Nd=Nd, ud=ud):
            x = np.asarray(x, dtype=ud.dtype).ravel()
            # elementwise product + sum rather than a BLAS dot: a threaded ddot on a busy
            # machine can be orders of magnitude slower than this
            return Nd @ x - (3.0 * np.multiply(ud, x).sum()) * ud

        op = LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=dtype)
        try:
            evals, evecs = eigsh(op, k=dim, which="LA", v0=v0.astype(dtype), tol=_EIGSH_TOL,
                                 maxiter=max(5 * n, 1000))
        except (ArpackNoConvergence, ArpackError):
            if dtype is np.float64:
                raise
            continue
        if np.all(np.isfinite(evecs)):
            break
    evecs = np.asarray(evecs, dtype=np.float64)
    return np.asarray(evals, dtype=np.float64), evecs / np.linalg.norm(evecs, axis=0)


def _connected_eigenmap(A, dim, random_state, v0=None):
    """Laplacian eigenmap of a *connected* graph with ``A.shape[0] >= dim + 2`` vertices.

    Returns the ``dim`` eigenvectors of the symmetric normalised Laplacian
    ``L = I - D^-1/2 A D^-1/2`` with the smallest non-zero eigenvalues (equivalently the
    largest non-trivial eigenvalues of ``N = D^-1/2 A D^-1/2``), ordered from the smallest
    eigenvalue of ``L`` on, or ``None`` if the eigensolver failed. ``v0``: ARPACK's start
    vector (n uniform draws in [-1, 1]) when already drawn, else drawn from ``random_state``
    (only for more than ``_DENSE_CUTOFF`` vertices).

    The trivial eigenvector ``u0 = sqrt(deg) / ||sqrt(deg)||`` (eigenvalue 1 of ``N``) is known
    exactly, so it is deflated out: the top-``dim`` eigenpairs of ``N - 3 u0 u0^T`` are
    computed, in which ``u0`` has eigenvalue -2, below the whole spectrum of ``N`` (which lies in
    [-1, 1]).  This avoids any confusion between the trivial vector and a nearly trivial one
    (weakly connected clusters have eigenvalues very close to 1).
    """
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1), dtype=np.float64).ravel()
    deg = np.maximum(deg, np.finfo(np.float64).tiny)
    inv_sqrt = 1.0 / np.sqrt(deg)
    # N = D A D with D = diag(inv_sqrt), scaled entry by entry: the same products in the same
    # order as the two sparse products (d_i a_ij, then times d_j), without building them
    if not A.has_sorted_indices:  # A is CSR (spectral_layout's callers)
        A = A.sorted_indices()
    rows = np.repeat(np.arange(n), np.diff(A.indptr))
    N = sp.csr_matrix(((inv_sqrt[rows] * A.data) * inv_sqrt[A.indices], A.indices, A.indptr),
                      shape=A.shape)
    u0 = np.sqrt(deg)
    u0 /= np.linalg.norm(u0)

    try:
        if n <= _DENSE_CUTOFF:
            Nd = N.toarray()
            Nd -= 3.0 * np.outer(u0, u0)
            Nd = 0.5 * (Nd + Nd.T)
            evals, evecs = scipy.linalg.eigh(Nd, subset_by_index=[n - dim, n - 1])
        else:
            if v0 is None:
                v0 = random_state.uniform(-1.0, 1.0, size=n)
            evals, evecs = _arpack_top(N, u0, dim, v0)
    except (ArpackNoConvergence, ArpackError, np.linalg.LinAlgError) as exc:
        logger.warning(
            "spectral layout: the eigensolver failed on a component with %d vertices (%s); "
            "falling back to a random layout for it",
            n,
            exc,
        )
        return None
    if not np.all(np.isfinite(evecs)):
        logger.warning(
            "spectral layout: non-finite eigenvectors on a component with %d vertices; "
            "falling back to a random layout for it",
            n,
        )
        return None
    order = np.argsort(-evals, kind="stable")
    return _fix_signs(evecs[:, order])


def _component_positions(n_comp, dim):
    """Well-separated positions (spacing >= 1) for ``n_comp`` component boxes in ``dim`` dims.

    Row ``i`` is meant for the ``i``-th largest component.  Up to ``2 * dim`` components sit on
    the axes (``+e0, -e0, +e1, -e1, ...``, at distance 1 from the origin); more components sit
    on a centred integer grid, avoiding the grid's centre cell (the origin) when possible.
    No position is ever at the origin except possibly the last one, so that the largest
    components have a well-defined direction (used by the spectral clustering of
    :func:`initial_centres`).
    """
    if n_comp <= 2 * dim:
        pos = np.zeros((n_comp, dim))
        for i in range(n_comp):
            pos[i, i // 2] = 1.0 if i % 2 == 0 else -1.0
        return pos
    side = 2
    while side**dim < n_comp:
        side += 1
    total = side**dim
    n_cells = min(total, n_comp + 1)
    idx = np.arange(n_cells, dtype=np.int64)
    cells = np.empty((n_cells, dim))
    rem = idx.copy()
    for j in range(dim):
        cells[:, j] = rem % side
        rem //= side
    cells -= (side - 1) / 2.0
    is_centre = np.all(cells == 0.0, axis=1)
    cells = np.concatenate([cells[~is_centre], cells[is_centre]])
    return cells[:n_comp]


def spectral_layout(graph, dim, random_state=None, n_jobs=1):
    """Laplacian-eigenmap layout of a (symmetric, non-negative) fuzzy graph.

    Parameters
    ----------
    graph : sparse matrix, shape (n, n)
        Symmetric weighted adjacency matrix.
    dim : int
        Number of coordinates.
    random_state : None, int, RandomState or Generator
    n_jobs : int
        Components solved at once (threads; ARPACK and the sparse products release the GIL
        for much of their time). The result does not depend on it.

    Returns
    -------
    ndarray, float64, shape (n, dim)
        For a connected graph with at least ``dim + 2`` vertices the columns are the
        eigenvectors of the symmetric normalised Laplacian ``I - D^-1/2 A D^-1/2`` belonging to
        its ``dim`` smallest non-zero eigenvalues (the trivial eigenvector is dropped), ordered
        by eigenvalue, each with unit norm and its largest-magnitude entry positive.

        A disconnected graph is laid out component by component: each component of at least
        ``dim + 2`` vertices gets its own eigenmap, smaller ones (including isolated vertices)
        a uniform random layout; every component is scaled into an axis-aligned box of
        half-width 0.3 around its own position (see ``_component_positions``: the axes
        ``+-e_j`` for up to ``2 * dim`` components, a grid with spacing 1 otherwise, larger
        components first), so the boxes of different components are disjoint.
    """
    dim = _check_positive_int(dim, "dim")
    rs = _check_random_state(random_state)
    A = _check_graph(graph)
    n = A.shape[0]

    n_comp, labels = connected_components(A, directed=False)
    if n_comp == 1:
        if n < dim + 2:
            logger.info(
                "spectral layout: graph has %d vertices, fewer than dim + 2 = %d; using a "
                "random layout",
                n,
                dim + 2,
            )
            return random_layout(n, dim, rs)
        emb = _connected_eigenmap(A, dim, rs)
        if emb is None:
            return random_layout(n, dim, rs)
        return emb

    logger.info(
        "spectral layout: graph has %d connected components; laying them out separately",
        n_comp,
    )
    sizes = np.bincount(labels, minlength=n_comp)
    # largest component first; ties broken by component label (deterministic)
    comp_order = np.argsort(-sizes, kind="stable")
    positions = _component_positions(n_comp, dim)
    h = _BOX_HALF_WIDTH

    # Permute the vertices so that every component is a contiguous block.
    rank = np.empty(n_comp, dtype=np.int64)
    rank[comp_order] = np.arange(n_comp)
    vertex_order = np.argsort(rank[labels], kind="stable")
    A_perm = A[vertex_order][:, vertex_order].tocsr()
    starts = np.concatenate([[0], np.cumsum(sizes[comp_order])])

    emb_perm = np.empty((n, dim), dtype=np.float64)
    # The draws in component order first (each eigenmap's start vector, each small component's
    # random layout), then the eigenmaps, in threads when n_jobs > 1, then the random layouts
    # of components whose eigensolver failed, in component order: the same draws whatever
    # n_jobs.
    todo = []  # (rank, start, end, v0 or None)
    for r in range(n_comp):
        s, e = starts[r], starts[r + 1]
        m = e - s
        if m >= dim + 2:
            todo.append((r, s, e, rs.uniform(-1.0, 1.0, size=m) if m > _DENSE_CUTOFF else None))
        else:
            emb_perm[s:e] = rs.uniform(-h, h, size=(m, dim)) + positions[r]

    def solve(job):
        r, s, e, v0 = job
        return _connected_eigenmap(A_perm[s:e, s:e].tocsr(), dim, rs, v0=v0)

    big = sum(v0 is not None for *_, v0 in todo)
    if int(n_jobs) > 1 and big > 1:
        # one BLAS thread per solver: ARPACK's BLAS pools side by side oversubscribed the cores
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
            maps = list(pool.map(solve, todo))
    else:
        maps = [solve(job) for job in todo]
    for (r, s, e, _), local in zip(todo, maps):
        if local is not None:
            local = local - 0.5 * (local.max(axis=0) + local.min(axis=0))
            scale = np.abs(local).max()
            local = local * (h / scale) if scale > 0 else np.zeros_like(local)
        else:
            local = rs.uniform(-h, h, size=(e - s, dim))
        emb_perm[s:e] = local + positions[r]
    emb = np.empty_like(emb_perm)
    emb[vertex_order] = emb_perm
    return emb


# --------------------------------------------------------------------------------------
# PCA and random layouts
# --------------------------------------------------------------------------------------


def _pca_coords(X, dim, random_state):
    """The first ``min(dim, n_samples, n_features)`` principal components of X (float64)."""
    from sklearn.decomposition import PCA, TruncatedSVD

    from .neighbours import _SAFE_EXPONENT_X, _max_abs, _power_of_two_scale, _times_power_of_two

    n, f = X.shape
    k = min(dim, n, f)
    if n < 2:
        return np.zeros((n, k))
    # PCA's float32 covariance overflows for values of 1e30 (and underflows for 1e-30): work at
    # unit magnitude, exactly (a power of two); the layout is min-max scaled afterwards anyway.
    scale = _power_of_two_scale(_max_abs(X), _SAFE_EXPONENT_X)
    if scale != 1.0:
        X = _times_power_of_two(X, 1.0 / scale)
    if sp.issparse(X):
        if k < min(n, f):
            try:
                pca = PCA(n_components=k, svd_solver="arpack", random_state=random_state)
                return np.asarray(pca.fit_transform(X), dtype=np.float64)
            except TypeError:  # scikit-learn < 1.4: no PCA on sparse input
                logger.info("pca layout: sparse input; using TruncatedSVD (no centring)")
                svd = TruncatedSVD(n_components=k, random_state=random_state)
                return np.asarray(svd.fit_transform(X), dtype=np.float64)
        X = X.toarray()
    # "auto" picks an exact solver for small or tall inputs and the randomized one for
    # large inputs when few components are wanted.
    pca = PCA(n_components=k, svd_solver="auto", random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero-variance inputs
        coords = pca.fit_transform(X)
    coords = np.asarray(coords, dtype=np.float64)
    coords[~np.isfinite(coords)] = 0.0
    return coords


def pca_layout(X, dim, random_state=None):
    """PCA projection of ``X`` onto ``dim`` components (float64, shape (n, dim)).

    If ``dim`` exceeds ``min(n_samples, n_features)`` the missing columns are filled with
    small gaussian noise (standard deviation 1e-4 times the largest standard deviation of the
    computed components, or 1e-4 if that is zero).
    """
    dim = _check_positive_int(dim, "dim")
    rs = _check_random_state(random_state)
    X = _as_float_matrix(X, "X", allow_sparse=True)
    if X.shape[0] < 1:
        raise ValueError(f"X with shape {X.shape} is not valid; it has no samples")
    coords = _pca_coords(X, dim, rs)
    k = coords.shape[1]
    if k < dim:
        scale = float(coords.std(axis=0).max()) if k and coords.shape[0] > 1 else 0.0
        scale = 1e-4 * (scale if scale > 0 else 1.0)
        pad = rs.normal(scale=scale, size=(coords.shape[0], dim - k))
        coords = np.hstack([coords, pad])
    return coords


def random_layout(n, dim, random_state=None):
    """Uniform random coordinates in [-10, 10]^dim (float64, shape (n, dim))."""
    n = _check_positive_int(n, "n")
    dim = _check_positive_int(dim, "dim")
    rs = _check_random_state(random_state)
    return rs.uniform(-10.0, 10.0, size=(n, dim))


# --------------------------------------------------------------------------------------
# initial embedding
# --------------------------------------------------------------------------------------


def _noisy_scale(coords, random_state, max_coord=_MAX_COORD, noise=_NOISE):
    """Min-max scale every column to [0, max_coord], add tiny noise, keep inside the range.

    A constant column maps to 0.  The noise is reflected at the borders (``|x|`` below 0,
    ``2 * max_coord - x`` above ``max_coord``), which keeps points distinct, unlike clipping.
    """
    coords = np.asarray(coords, dtype=np.float64)
    lo = coords.min(axis=0)
    span = coords.max(axis=0) - lo
    safe = np.where(span > 0, span, 1.0)
    scaled = (coords - lo) * (max_coord / safe)
    scaled += random_state.normal(scale=noise, size=scaled.shape)
    scaled = np.abs(scaled)
    scaled = max_coord - np.abs(max_coord - scaled)
    out = np.ascontiguousarray(scaled, dtype=np.float32)
    np.clip(out, 0.0, max_coord, out=out)  # float32 rounding only
    return out


def initial_embedding(init, X, graph, n_components, random_state=None, n_jobs=1):
    """Initial coordinates of all samples.

    Parameters
    ----------
    init : {"spectral", "pca", "random"} or array of shape (n_samples, n_components)
        "spectral": :func:`spectral_layout` of ``graph``; "pca": :func:`pca_layout` of ``X``
        (missing components when ``n_components > n_features`` are constant, i.e. they end up
        as tiny noise around 0 after scaling); "random": :func:`random_layout`.
        These three are then min-max scaled per column to [0, 10] with gaussian noise of
        standard deviation 1e-4 added (reflected at the borders, so the result stays in
        [0, 10]).  An array is used as given (float32 copy, no rescaling).
    X : array (n_samples, n_features) or None
        Input data; only needed for "pca".
    graph : sparse matrix (n_samples, n_samples) or None
        Symmetric fuzzy graph; only needed for "spectral".
    n_components : int
        Embedding dimension.
    random_state : None, int, RandomState or Generator
    n_jobs : int
        Threads for "spectral" (:func:`spectral_layout`); the result does not depend on it.

    Returns
    -------
    ndarray, float32, C-contiguous, shape (n_samples, n_components)
    """
    n_components = _check_positive_int(n_components, "n_components")
    rs = _check_random_state(random_state)

    n = None
    if X is not None:
        # only the shape is needed unless init == "pca" (no copy of a large X here)
        shape = X.shape if hasattr(X, "shape") else np.shape(X)
        if len(shape) != 2:
            raise ValueError(f"X with shape {shape} is not valid; expected a 2-D array")
        n = shape[0]
    if graph is not None:
        gshape = getattr(graph, "shape", None)
        if gshape is None or len(gshape) != 2 or gshape[0] != gshape[1]:
            raise ValueError(
                f"graph with shape {gshape} is not valid; expected a square sparse matrix"
            )
        if n is not None and gshape[0] != n:
            raise ValueError(
                f"graph with shape {gshape} does not match X with {n} samples; expected "
                f"shape ({n}, {n})"
            )
        n = gshape[0]

    if isinstance(init, str):
        if init not in INIT_METHODS:
            raise ValueError(
                f"init={init!r} is not valid; expected one of {list(INIT_METHODS)} or an "
                "array of shape (n_samples, n_components)"
            )
        if n is None:
            raise ValueError(
                f"init={init!r} needs the data: X and graph are both None"
            )
        if n < 1:
            raise ValueError(f"init={init!r}: there are no samples to embed")
        if init == "spectral":
            if graph is None:
                raise ValueError("init='spectral' needs the fuzzy graph, but graph is None")
            coords = spectral_layout(graph, n_components, rs, n_jobs=n_jobs)
        elif init == "pca":
            if X is None:
                raise ValueError(
                    "init='pca' needs the input data X, but X is None (only a kNN graph was "
                    "given); use init='spectral' or 'random'"
                )
            X_checked = _as_float_matrix(X, "X", allow_sparse=True)
            coords = _pca_coords(X_checked, n_components, rs)
            if coords.shape[1] < n_components:
                pad = np.zeros((coords.shape[0], n_components - coords.shape[1]))
                coords = np.hstack([coords, pad])
        else:
            coords = random_layout(n, n_components, rs)
        return _noisy_scale(coords, rs)

    if init is None:
        raise ValueError(
            f"init=None is not valid; expected one of {list(INIT_METHODS)} or an array of "
            "shape (n_samples, n_components)"
        )
    try:
        arr = np.array(init, dtype=np.float32, copy=True)
    except (TypeError, ValueError):
        raise ValueError(
            f"init of type {type(init).__name__} is not valid; expected one of "
            f"{list(INIT_METHODS)} or a numeric array of shape (n_samples, n_components)"
        ) from None
    expected = (n if n is not None else "n_samples", n_components)
    if arr.ndim != 2 or arr.shape[1] != n_components or (n is not None and arr.shape[0] != n):
        raise ValueError(
            f"init array with shape {arr.shape} is not valid; expected shape "
            f"({expected[0]}, {expected[1]})"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("init array contains NaN or infinite values; all values must be finite")
    return np.ascontiguousarray(arr)


def fit_layout(model, X, graph, rs, times, n_threads=1):
    """The initialization stage of a fit of ``model`` (a UEC): the layout the epochs start
    from, float32 (n, n_components), checked; ``times`` gets its seconds under "init"."""
    t0 = time.perf_counter()
    with stage("init embedding", model.verbose), model._seeded_threads():
        Z = initial_embedding(model.init, X, graph, int(model.n_components), rs,
                              n_jobs=n_threads)
    Z = np.ascontiguousarray(Z, dtype=np.float32)
    if Z.shape != (X.shape[0], int(model.n_components)):
        raise ValueError(
            f"init has shape {Z.shape}, expected ({X.shape[0]}, {model.n_components})"
        )
    times["init"] = time.perf_counter() - t0
    return Z
