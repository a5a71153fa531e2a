"""The UEC estimator: a scikit-learn front end over the compiled core (docs/design.md §2)."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from . import _core
from ._degenerate import warn_duplicates, warn_empty_clusters, warn_few_distinct
from ._device import optimizer, resolve_device
from ._modes import CENTRE_UPDATE, CLIP, SCHEDULE
from ._memory import check_estimator_memory, check_fit_memory
from ._progress import EpochProgress, reports, stage
from ._validation import (check_choice, check_float, check_int, check_limits, check_numeric_input,
                          check_unchanged_since_fit)
from .graph import build_graph, epochs_per_sample, find_ab_params
from .neighbours import check_metric_kwds, knn_backend
from .centres import initial_centres
from .initialization import initial_embedding
from .community import ClusterHierarchy, cluster_graph, estimate_n_clusters
from .merge import merge_subclusters, split_disconnected

logger = logging.getLogger(__name__)

VARIANTS = ("plus", "light_plus", "comma", "ce")
CLUSTERINGS = ("graph", "centres")
_MODE = {
    "ce": _core.MODE_CE,
    "comma": _core.MODE_COMMA,
    "light_plus": _core.MODE_LIGHT_PLUS,
    "plus": _core.MODE_PLUS,
}
_CLIP, _SCHEDULE, _CENTRE_UPDATE = CLIP, SCHEDULE, CENTRE_UPDATE
_INITS = ("spectral", "pca", "random")
_CENTRE_INITS = ("kmeans", "gmm", "random", "spectral")
# The default sub-cluster count is 3 per cluster, raised on large data to one per this many
# points, up to 6 per cluster (docs/results/previous_default.md: finer sub-clusters are purer, and
# the merge joins them along the graph; the clustering term costs O(n * n_subclusters)).
SUBCLUSTER_POINTS = 1000
# cluster_centers_ are medoids in the embedding: exact up to this many members, else the medoid
# of a fixed-seed sample of this many (O(MEDOID_SAMPLE^2) distances per cluster)
MEDOID_SAMPLE = 1000
# Column names of the embedding (get_feature_names_out): uec0, uec1, ..., as uec.dask names them
COMPONENT_PREFIX = "uec"
# outlier_scores_ compare a point's kNN radius with the dense part of its connected mass: the
# median radius of the denser half of its connected component of the graph
REFERENCE_PERCENTILE = 25


class UEC(ClusterMixin, TransformerMixin, BaseEstimator):
    """Unified Embedding and Clustering.

    Learns an embedding ``Z`` (n x n_components) of ``X`` with UMAP's fuzzy cross-entropy and,
    at the same time, ``n_clusters`` centres in it with a DEC-style KL(T || S) clustering loss.

    Parameters
    ----------
    n_clusters : int or None, default=None
        Number of clusters. None (or "auto"): chosen from the data, by the eigengap of the
        graph between its Leiden communities (``uec.community.estimate_n_clusters``); the
        count found is ``n_clusters_``, and ``labels_at`` gives the partition at any other.
    n_subclusters : int or None, default=None
        With ``clustering="centres"`` only: number of centres the clustering term optimises;
        the sub-clusters are then cut into their connected pieces of the kNN graph and merged
        into ``n_clusters`` along it (``uec.merge``). None: ``3 * n_clusters``, raised on
        large data to one per ``SUBCLUSTER_POINTS`` (1,000) points up to ``6 * n_clusters``.
        ``n_subclusters=n_clusters`` is the paper's form (one centre per cluster, no merge).
    variant : {"ce", "comma", "plus", "light_plus"}, default="ce"
        How the embedding is optimised: "ce", UMAP's cross-entropy alone (the default; the
        labels then come from the graph, see ``clustering``); or jointly with the clustering
        loss: "plus" (exact gradient through the target T), "light_plus" (T constant within
        an epoch), "comma" (CE step then clustering step each epoch). What each measures is in
        docs/results/quality.md.
    clustering : {"graph", "centres"} or None, default=None
        Where the labels come from. "graph": Leiden communities of the fuzzy kNN graph
        (modularity at resolution 1, raised until there are at least ``n_clusters``), merged
        along the graph into ``n_clusters`` (``uec.community``); needs ``variant="ce"``.
        "centres": the clustering term's sub-cluster centres in the embedding, merged along
        the graph (the joint variants' stage). None: "graph" for ``variant="ce"``, "centres"
        otherwise.
    n_components : int, default=2
        Dimension of the embedding.
    n_neighbors : int, default=15
        Size of the neighbourhood of the kNN graph (>= 2). Clipped to n_samples - 1 with a
        UserWarning when the data have no more samples, as umap-learn does (the value used is
        ``n_neighbors_``).
    metric : str, default="euclidean"
        Metric of the kNN search (any metric scikit-learn/pynndescent accept).
    metric_kwds : dict or None, default=None
        Keyword arguments of the metric, for example ``{"p": 3}`` with ``metric="minkowski"``
        (scikit-learn's ``metric_params`` for the brute-force search, pynndescent's
        ``metric_kwds`` for NN-descent, and the same for new points). With any, the search is
        pynndescent's.
    min_dist, spread : float, default=0.1, 1.0
        Shape of the embedding similarity 1 / (1 + a r^b), fitted as UMAP does.
    alpha, beta : float, default=1.0
        Weights of the embedding (CE) and clustering (KL) losses.
    target_power : float, default=2.0
        Sharpening power p of the target distribution T (1 in the paper's Eq. 7, 2 in DEC).
    n_epochs : int or None, default=None
        Total epochs (warm-up plus joint). None: 500 for up to 10,000 samples, else 200.
    warmup_epochs : int or None, default=None
        Epochs of CE alone before the centres are initialised (k-means on the layout so far).
        None: three quarters of ``n_epochs``. With sub-clusters this was better than starting
        the clustering term at the spectral layout (MNIST 0.93-0.95 against 0.77-0.89) and than
        half the epochs (MNIST 0.944 against 0.872 over 3 seeds, same kNN; docs/results/previous_default.md).
    learning_rate : float, default=1.0
        Initial learning rate of the embedding.
    centre_lr : float, default=1.0
        Learning rate of the centres for ``centre_update="gradient"`` (same schedule).
    centre_update : {"fixed_point", "gradient", "mean"}, default="fixed_point"
        Centre step: "gradient", the paper's gradient step (Eq. 11, normalised by the
        cluster's mass); "mean", the T-weighted mean of the points (EM-style); or
        "fixed_point", the stationary point of KL with T held constant over the cluster's own
        points (the mean of the points whose argmax T is k, weighted by T_ik * phi(r_ik)), so
        the points of other clusters never drag a centre.
    negative_sample_rate : int, default=5
    repulsion_strength : float, default=1.0
    lr_schedule : {"linear", "step"}, default="linear"
        UMAP's linear decay, or the paper's division by 10 every 10 epochs.
    clip : {"norm", "umap", "scaled"}, default="norm"
        Gradient clipping: per coordinate to [-4, 4]; the paper's scaled form (CE clipped to
        [-4, 4] then divided by 4, KL clipped to [-1, 1]); or CE as UMAP and each point's
        clustering step rescaled to length <= 1.
    init : {"spectral", "pca", "random"} or ndarray of shape (n_samples, n_components)
    centre_init : {"kmeans", "gmm", "random", "spectral"} or ndarray (n_subclusters, n_components)
        An array gives the sub-cluster centres; with ``n_subclusters=None`` it must have
        ``n_clusters`` rows (one centre per cluster, no merge).
    tol : float, default=1e-3
        Stop when the fraction of points whose argmax T changed in an epoch falls below tol,
        once the learning rate has decayed to a tenth of its start (the last 10% of the linear
        schedule): before that the layout has not settled, and stopping leaves stray points.
    min_joint_epochs : int, default=10
        Clustering epochs always run before the tolerance may stop the fit.
    labels_from : {"S", "T"}, default="S"
        Sub-cluster labels of the fit are argmax of the soft assignment S (nearest centre) or of
        the target T (before the graph cut and the merge; see ``subcluster_labels_``).
    knn : tuple (indices, distances) or None
        A precomputed kNN of X, each of shape (n_samples, >= n_neighbors), self first.
    random_state : int, RandomState or None
        Seed. With the same seed the results are identical bit for bit, whatever ``n_jobs``.
    n_jobs : int, default=-1
        Threads of the core and the kNN search (-1: all cores).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the epochs run: "cuda" needs the CUDA module (built when nvcc is found) and a
        GPU, and raises ValueError saying which is missing; "auto" uses CUDA only when a GPU
        is usable. The graph, initialisation and final labels are computed on the CPU.
    noise_threshold : float in (0, 1) or None, default=None
        None: every point keeps a cluster. A float: points whose ``outlier_scores_`` exceed it
        are labelled -1 (noise) in ``labels_``, ``labels_at`` and ``predict``.
    verbose : bool, default=False
        Progress bars (tqdm) and logging of each stage.

    Attributes
    ----------
    embedding_ : ndarray (n_samples, n_components), float32
    cluster_centers_ : ndarray (n_clusters, n_components), float32
        Medoid of each cluster in the embedding: the cluster's point whose summed distance to
        its other points is least (exact up to ``MEDOID_SAMPLE`` = 1,000 points, else over a
        fixed-seed sample of 1,000 of them), so a centre lies on its cluster even when the
        cluster is drawn as several islands; ``plot_embedding`` marks these. With
        ``clustering="centres"`` and ``n_subclusters == n_clusters`` (the paper's form, no
        merge): the optimised centres themselves. ``labels_`` and ``predict`` do not use them (the labels come from
        the graph, and ``predict`` from the votes of a point's training neighbours), so the
        nearest centre can disagree with a point's label.
    labels_ : ndarray (n_samples,), int
        Cluster of each point, 0 to ``n_clusters_ - 1``; -1 for noise (``noise_threshold``).
    n_clusters_ : int
        Number of clusters: ``n_clusters``, or the count chosen when it is None.
    n_neighbors_ : int
        n_neighbors of the fit: ``n_neighbors``, or n_samples - 1 when that was smaller.
    n_features_in_ : int
    feature_names_in_ : ndarray of str (n_features_in_,)
        Column names of X when it was a DataFrame with string column names (then
        ``predict``/``transform`` require the same columns in the same order, as scikit-learn's
        estimators do); absent otherwise.
    cluster_hierarchy_ : uec.community.ClusterHierarchy
        The fit's groups and their merges: ``labels_at(k)`` reads it.
    probabilities_ : ndarray (n_samples,), float64
        Share of each point's graph weight that ties it to its own cluster (1: all its
        neighbours' memberships are in its cluster).
    outlier_scores_ : ndarray (n_samples,), float64
        How much sparser each point's neighbourhood is than the dense part of the data it is
        connected to: ``1 - ref / r_i`` clipped to [0, 1], ``r_i`` the distance to the point's
        ``n_neighbors``-th neighbour (itself included) and ``ref`` the 25th percentile of r over
        its connected component of the kNN graph (0: at least as dense as that; towards 1:
        far from every dense region).
    subcluster_centers_ : ndarray (n_subclusters + n_pieces, n_components), float32
        The ``n_subclusters`` centres the clustering term optimised, then one row per piece cut
        off a sub-cluster (its mean embedding; see ``subcluster_labels_``).
    subcluster_labels_ : ndarray (n_samples,), int
        With ``clustering="graph"``: the Leiden community of each point (the communities are
        the sub-clusters; ``subcluster_centers_`` holds their means in the embedding).
        With ``clustering="centres"``: the sub-cluster of each point: its nearest centre (argmax S, or argmax T), except that a
        sub-cluster whose points fall into several connected pieces of the kNN graph is cut into
        them before the merge. The largest piece keeps the sub-cluster's index; another piece of
        at least ``n_neighbors`` points becomes a new sub-cluster (index ``n_subclusters`` on);
        a smaller fragment joins the piece it shares most graph weight with. (The clustering
        term can draw two unconnected sheets into one blob around one centre; the graph still
        tells them apart.) Not done when ``n_subclusters == n_clusters`` (the paper's form).
    n_subclusters_ : int
        Number of centres the clustering term optimised (the first rows of
        ``subcluster_centers_``).
    subcluster_to_cluster_ : ndarray (len(subcluster_centers_),), int
        Cluster of each sub-cluster (``labels_ == subcluster_to_cluster_[subcluster_labels_]``).
    n_iter_ : int
        Epochs run (warm-up plus clustering epochs).
    resolution_ : float or None
        Modularity resolution of the Leiden communities (``clustering="graph"``), else None.
    timings_ : dict
        Wall seconds of each stage: "knn", "graph" (fuzzy union and pruning), "init", then
        "layout" and "clustering" (``clustering="graph"``) or "warmup", "centre_init",
        "joint" and "merge" (``clustering="centres"``).
    """

    def __init__(
        self,
        n_clusters=None,
        *,
        n_subclusters=None,
        variant="ce",
        clustering=None,
        n_components=2,
        n_neighbors=15,
        metric="euclidean",
        metric_kwds=None,
        min_dist=0.1,
        spread=1.0,
        alpha=1.0,
        beta=1.0,
        target_power=2.0,
        n_epochs=None,
        warmup_epochs=None,
        learning_rate=1.0,
        centre_lr=1.0,
        centre_update="fixed_point",
        negative_sample_rate=5,
        repulsion_strength=1.0,
        lr_schedule="linear",
        clip="norm",
        init="spectral",
        centre_init="kmeans",
        tol=1e-3,
        min_joint_epochs=10,
        labels_from="S",
        knn=None,
        random_state=None,
        n_jobs=-1,
        device="auto",
        noise_threshold=None,
        verbose=False,
    ):
        self.n_clusters = n_clusters
        self.n_subclusters = n_subclusters
        self.variant = variant
        self.clustering = clustering
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.metric_kwds = metric_kwds
        self.min_dist = min_dist
        self.spread = spread
        self.alpha = alpha
        self.beta = beta
        self.target_power = target_power
        self.n_epochs = n_epochs
        self.warmup_epochs = warmup_epochs
        self.learning_rate = learning_rate
        self.centre_lr = centre_lr
        self.centre_update = centre_update
        self.negative_sample_rate = negative_sample_rate
        self.repulsion_strength = repulsion_strength
        self.lr_schedule = lr_schedule
        self.clip = clip
        self.init = init
        self.centre_init = centre_init
        self.tol = tol
        self.min_joint_epochs = min_joint_epochs
        self.labels_from = labels_from
        self.knn = knn
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.noise_threshold = noise_threshold
        self.verbose = verbose

    # -- validation --------------------------------------------------------------------------

    def _check_params(self, n_samples):
        check_choice("variant", self.variant, VARIANTS)
        if self.clustering is not None:
            check_choice("clustering", self.clustering, CLUSTERINGS)
            if self.clustering == "graph" and self.variant != "ce":
                raise ValueError(
                    f"clustering='graph' with variant={self.variant!r}: the graph stage labels "
                    f"the kNN graph and would ignore the clustering term's centres; use "
                    f"variant='ce' with it, or clustering='centres' (or None) with a joint variant"
                )
        if self._auto_k():
            if self.n_subclusters is not None:
                raise ValueError(
                    f"n_subclusters={self.n_subclusters!r} needs an integer n_clusters (got "
                    f"{self.n_clusters!r}): the sub-clusters are counted per cluster")
            if not isinstance(self.centre_init, str) and self._resolved_clustering() != "graph":
                raise ValueError(
                    f"n_clusters={self.n_clusters!r} with given centres (centre_init array): "
                    f"the number of clusters is the number of centres; pass it as n_clusters")
        else:
            check_int("n_clusters", self.n_clusters, low=1)
        if not self._auto_k() and self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters={self.n_clusters} must be <= n_samples={n_samples}"
            )
        if self.noise_threshold is not None:
            t = check_float("noise_threshold", self.noise_threshold)
            if not 0.0 < t < 1.0:
                raise ValueError(f"noise_threshold={t} must be between 0 and 1 (exclusive), "
                                 f"or None to keep every point in a cluster")
        if self.n_subclusters is not None:
            check_int("n_subclusters", self.n_subclusters, low=1)
            if not self.n_clusters <= self.n_subclusters <= n_samples:
                raise ValueError(
                    f"n_subclusters={self.n_subclusters} must be between n_clusters="
                    f"{self.n_clusters} and n_samples={n_samples}, or None"
                )
        check_int("n_components", self.n_components, low=1)
        check_int("n_neighbors", self.n_neighbors, low=2)
        if n_samples < 3:
            raise ValueError(
                f"n_samples={n_samples} is too few: the kNN graph needs n_neighbors >= 2 "
                f"neighbours besides each point, so at least 3 samples"
            )
        if not isinstance(self.metric, str) and not callable(self.metric):
            raise ValueError(f"metric={self.metric!r} must be a metric name or a callable")
        check_metric_kwds(self.metric, self.metric_kwds)
        check_float("spread", self.spread, low=0.0, low_open=True)
        check_float("min_dist", self.min_dist, low=0.0, high=self.spread)
        check_float("alpha", self.alpha, low=0.0)
        check_float("beta", self.beta, low=0.0)
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha=0 and beta=0: at least one of the two losses must have a positive weight")
        check_float("target_power", self.target_power, low=0.0, low_open=True, high=10.0)
        n_epochs = check_int("n_epochs", self.n_epochs, low=1, allow_none=True)
        warm = check_int("warmup_epochs", self.warmup_epochs, low=0, allow_none=True)
        if n_epochs is not None and warm is not None and warm >= n_epochs and self.variant != "ce":
            raise ValueError(
                f"warmup_epochs={warm} must be < n_epochs={n_epochs} so that clustering epochs remain"
            )
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float("centre_lr", self.centre_lr, low=0.0)
        check_choice("centre_update", self.centre_update, tuple(_CENTRE_UPDATE))
        check_int("negative_sample_rate", self.negative_sample_rate, low=1)
        check_float("repulsion_strength", self.repulsion_strength, low=0.0)
        check_choice("lr_schedule", self.lr_schedule, tuple(_SCHEDULE))
        check_choice("clip", self.clip, tuple(_CLIP))
        if isinstance(self.init, str):
            check_choice("init", self.init, _INITS)
        if isinstance(self.centre_init, str):
            check_choice("centre_init", self.centre_init, _CENTRE_INITS)
        check_float("tol", self.tol, low=0.0, high=1.0)
        check_int("min_joint_epochs", self.min_joint_epochs, low=0)
        check_choice("labels_from", self.labels_from, ("S", "T"))
        if self.n_jobs is not None:
            check_int("n_jobs", self.n_jobs, high=1024)
            if self.n_jobs == 0:
                raise ValueError("n_jobs=0 is not allowed; use a positive count or -1 for all cores")
        if not isinstance(self.verbose, (bool, np.bool_, int)):
            raise ValueError(f"verbose={self.verbose!r} must be a bool")
        check_limits(self, n_samples)  # upper bounds: memory, float32 range, divergence
        return resolve_device(self.device)

    def _resolved_neighbors(self, n_samples):
        """n_neighbors for a fit on n_samples: clipped to n_samples - 1 with a warning, as
        umap-learn does (the kNN of a point holds at most the n_samples - 1 others)."""
        k = int(self.n_neighbors)
        if k >= n_samples:
            warnings.warn(
                f"n_neighbors={k} is not below n_samples={n_samples} (allowed: 2 to "
                f"{n_samples - 1}): the fit uses n_neighbors={n_samples - 1} (n_neighbors_)",
                UserWarning, stacklevel=4)
            k = n_samples - 1
        return k

    def _seeded_threads(self):
        """With a seed, the NumPy/SciPy/scikit-learn stages (exact kNN, initial layout, initial
        centres) run on one BLAS/OpenMP thread: a multi-threaded BLAS sums in an order that
        depends on its thread count, which changed the bits of the graph and the spectral layout
        between OMP_NUM_THREADS=1 and 2. The compiled epochs do not need this."""
        if self.random_state is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1)

    def _auto_k(self):
        """n_clusters=None or "auto": the count is chosen by the fit."""
        return self.n_clusters is None or (isinstance(self.n_clusters, str)
                                           and self.n_clusters == "auto")

    def _resolved_subclusters(self, n_samples, n_clusters=None):
        if self.n_subclusters is not None:
            return int(self.n_subclusters)
        k = int(self.n_clusters if n_clusters is None else n_clusters)
        if not isinstance(self.centre_init, str):
            return k  # the user's centres, one per cluster
        if k == 1:
            return 1
        return min(n_samples, max(3 * k, min(6 * k, n_samples // SUBCLUSTER_POINTS)))

    def _resolved_clustering(self):
        if self.clustering is not None:
            return self.clustering
        return "graph" if self.variant == "ce" else "centres"

    def _resolved_epochs(self, n_samples):
        if self.n_epochs is not None:
            return int(self.n_epochs)
        return 500 if n_samples <= 10_000 else 200

    # -- fitting -----------------------------------------------------------------------------

    @reports
    def fit(self, X, y=None):
        """Fit the embedding and the clusters of X (n_samples, n_features). y is ignored.

        X may be a dense array (any real dtype, any memory order; converted to float32) or a
        scipy sparse matrix (converted to float32 CSR; the kNN is searched on it directly, as
        umap-learn does)."""
        check_numeric_input(X)
        check_estimator_memory(self, X)  # before X is converted (copied)
        X_given = X  # its column names become feature_names_in_ at the end
        X = check_array(X, dtype=np.float32, order="C", ensure_min_samples=2,
                        accept_sparse="csr", input_name="X")
        if scipy.sparse.issparse(X) and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()  # sorted, without repeated entries (pynndescent needs this)
        n = X.shape[0]
        device = self._check_params(n)
        k = self._resolved_neighbors(n)
        check_fit_memory(
            n, X.shape[1], n_neighbors=k, n_components=self.n_components,
            n_clusters=1 if self._auto_k() else self._resolved_subclusters(n), nnz=X.nnz if scipy.sparse.issparse(X) else None,
            knn_given=self.knn is not None, init=self.init, centre_init=self.centre_init,
            x_allocated=True,
        )
        rs = check_random_state(self.random_state)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        n_epochs = self._resolved_epochs(n)
        if self.variant == "ce":
            warmup = 0
        elif self.warmup_epochs is None:
            warmup = (3 * n_epochs) // 4
        else:
            warmup = int(self.warmup_epochs)
        if warmup >= n_epochs:
            raise ValueError(f"warmup_epochs={warmup} must be < n_epochs={n_epochs}")
        n_clusters = None if self._auto_k() else int(self.n_clusters)
        clustering = self._resolved_clustering()
        times = {}

        t0 = time.perf_counter()
        # pynndescent's result depends on its thread count (17 of 6,000 rows differed between 1
        # and 2 threads): with a seed it runs on one thread, as in umap-learn, so that a seeded
        # fit is the same whatever n_jobs. Our own NN-descent (dense euclidean data), the exact
        # search and the epochs do not need this.
        knn_jobs = n_threads
        if (self.random_state is not None and self.knn is None
                and knn_backend(X, self.metric, metric_kwds=self.metric_kwds) == "pynndescent"):
            knn_jobs = 1
            logger.info("random_state is set: pynndescent's kNN search runs on one thread")
        with stage("kNN graph", self.verbose), self._seeded_threads():
            graph, knn_indices, knn_dists, search_index = build_graph(
                X, k, n_epochs, metric=self.metric, knn=self.knn,
                metric_kwds=self.metric_kwds,
                random_state=rs, n_jobs=knn_jobs, return_index=True, timings=times,
            )
        times["graph"] = time.perf_counter() - t0 - times["knn"]
        if n_clusters is None and clustering == "centres":
            # the centres need the count before the epochs: read off the graph now
            n_clusters, _ = estimate_n_clusters(graph, int(rs.randint(0, 2**31 - 1)))
            check_fit_memory(
                n, X.shape[1], n_neighbors=k, n_components=self.n_components,
                n_clusters=self._resolved_subclusters(n, n_clusters),
                nnz=X.nnz if scipy.sparse.issparse(X) else None, knn_given=self.knn is not None,
                init=self.init, centre_init=self.centre_init, x_allocated=True)
        n_sub = None if n_clusters is None else self._resolved_subclusters(n, n_clusters)
        if n_clusters is not None:
            warn_few_distinct(X, knn_dists, n_clusters)
        warn_duplicates(knn_dists, k)
        a, b = find_ab_params(self.spread, self.min_dist)

        t0 = time.perf_counter()
        with stage("init embedding", self.verbose), self._seeded_threads():
            Z = initial_embedding(self.init, X, graph, int(self.n_components), rs)
        Z = np.ascontiguousarray(Z, dtype=np.float32)
        if Z.shape != (n, int(self.n_components)):
            raise ValueError(
                f"init has shape {Z.shape}, expected ({n}, {self.n_components})"
            )
        times["init"] = time.perf_counter() - t0

        indptr = graph.indptr.astype(np.int64)
        indices = graph.indices.astype(np.int32)
        eps = epochs_per_sample(graph.data, n_epochs).astype(np.float32)
        next_sample = eps.copy()
        next_negative = (eps / float(self.negative_sample_rate)).astype(np.float32)

        params = _core.EpochParams()
        params.a, params.b = float(a), float(b)
        params.gamma = float(self.repulsion_strength)
        params.negative_sample_rate = float(self.negative_sample_rate)
        params.alpha = float(self.alpha)
        params.beta = float(self.beta)
        params.learning_rate = float(self.learning_rate)
        params.centre_lr = float(self.centre_lr)
        params.target_power = float(self.target_power)
        params.clip_mode = _CLIP[self.clip]
        params.schedule = _SCHEDULE[self.lr_schedule]
        params.centre_update = _CENTRE_UPDATE[self.centre_update]
        params.n_epochs_total = n_epochs
        params.attract_scale = 1.0
        params.seed = int(rs.randint(0, 2**31 - 1)) * 2654435761 + 1
        params.tol = float(self.tol)
        params.min_joint_epochs = max(int(self.min_joint_epochs),
                                      _first_settled_epoch(params) - warmup + 1)
        params.n_threads = n_threads

        progress = _Progress(n_epochs, self.verbose, show_change=self.variant != "ce")
        optimize = optimizer(device)  # _core.optimize or _cuda.optimize: same arguments
        t0 = time.perf_counter()
        n_iter = 0
        M = None
        try:
            if warmup > 0 or self.variant == "ce":
                params.mode = _core.MODE_CE
                stop = n_epochs if self.variant == "ce" else warmup
                res = optimize(Z, None, indptr, indices, eps, next_sample, next_negative,
                              None, None, params, 0, stop, progress.callback)
                n_iter += res["epochs_run"]
            if clustering == "graph":
                times["layout"] = time.perf_counter() - t0
            else:
                times["warmup"] = time.perf_counter() - t0
                M, n_joint = self._joint_epochs(Z, graph, n_sub, rs, optimize, params, warmup,
                                                n_epochs, (indptr, indices, eps, next_sample,
                                                           next_negative), progress, times)
                n_iter += n_joint
        finally:
            progress.close()

        if not (np.isfinite(Z).all() and (M is None or np.isfinite(M).all())):
            raise FloatingPointError(
                "the optimisation produced non-finite values; lower learning_rate or beta"
            )
        t1 = time.perf_counter()
        if clustering == "graph":
            with stage("graph clustering", self.verbose):
                out = self._graph_stage(Z, graph, n_clusters, rs)
            times["clustering"] = time.perf_counter() - t1
        else:
            out = self._centre_stage(Z, M, graph, n_clusters, n_sub, a, b, n_threads, k)
            times["merge"] = time.perf_counter() - t1
        centres, labels, sub_centres, n_sub, sub_labels, mapping, resolution, hierarchy = out
        n_clusters = centres.shape[0]
        probabilities = _own_cluster_share(graph, labels)
        outliers, radius = _outlier_scores(knn_dists[:, -1], labels, n_clusters, graph)
        partition = labels
        if self.noise_threshold is not None:
            labels = np.where(outliers > float(self.noise_threshold), -1, labels)

        # Every fitted attribute is set here, at the end, so that an interrupted fit
        # (KeyboardInterrupt from the core) leaves nothing half-written.
        self.embedding_ = Z
        self.cluster_centers_ = centres
        self.labels_ = labels.astype(np.intp)
        self._partition = partition.astype(np.intp)  # labels_ before noise: predict's votes
        self.n_clusters_ = int(n_clusters)
        self.cluster_hierarchy_ = hierarchy
        self.probabilities_ = probabilities
        self.outlier_scores_ = outliers
        self._cluster_radius = radius  # median_c(r): predict scores new points against it
        self.subcluster_centers_ = sub_centres
        self.n_subclusters_ = int(n_sub)
        self.subcluster_labels_ = sub_labels
        self.subcluster_to_cluster_ = mapping
        self.resolution_ = resolution
        self.n_iter_ = int(n_iter)
        self.n_epochs_ = n_epochs
        self.a_, self.b_ = float(a), float(b)
        self.graph_ = graph
        self.device_ = device
        self.n_features_in_ = X.shape[1]
        self.n_neighbors_ = k
        _check_feature_names(self, X_given, reset=True)  # feature_names_in_ for a DataFrame
        self.timings_ = times
        # kept to place new points (transform/predict), as umap-learn keeps its raw data and
        # NN-descent index (None when the kNN was brute force or given)
        self._raw_data = X
        self._knn_search_index = search_index
        logger.info("fit: %s", ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        return self

    def _joint_epochs(self, Z, graph, n_sub, rs, optimize, params, warmup, n_epochs, edges,
                      progress, times):
        """Centres initialised on the layout so far, then the clustering epochs of the joint
        variant (none for "ce"). Returns the centres and the epochs run."""
        t1 = time.perf_counter()
        with stage("init centres", self.verbose), self._seeded_threads():
            M = initial_centres(self.centre_init, Z, n_sub, rs, graph=graph)
        M = np.ascontiguousarray(M, dtype=np.float32)
        if M.shape != (n_sub, int(self.n_components)):
            raise ValueError(
                f"centre_init has shape {M.shape}, expected (n_subclusters={n_sub}, "
                f"n_components={self.n_components})"
            )
        times["centre_init"] = time.perf_counter() - t1

        t1 = time.perf_counter()
        n_run = 0
        if self.variant != "ce":
            params.mode = _MODE[self.variant]
            labels_t = np.full(Z.shape[0], -1, dtype=np.int32)
            res = optimize(Z, M, *edges, labels_t, None, params, warmup, n_epochs,
                           progress.callback)
            n_run = res["epochs_run"]
            logger.info("joint epochs: %d, last change %.4g, converged %s",
                        res["joint_epochs"], res["last_change"], res["converged"])
        times["joint"] = time.perf_counter() - t1
        return M, n_run

    def _graph_stage(self, Z, graph, n_clusters, rs):
        """Labels from ``uec.community``: Leiden communities of the fuzzy graph merged along it
        into ``n_clusters`` (None: the count read off the communities' eigengap); the
        communities are the sub-clusters, placed at their points' mean in the embedding."""
        seed = int(rs.randint(0, 2**31 - 1))
        first = None
        if n_clusters is None:
            n_clusters, first = estimate_n_clusters(graph, seed)
        sub_labels, mapping, resolution = cluster_graph(graph, n_clusters, random_state=seed,
                                                        labels=first)
        n_comm = mapping.shape[0]
        sub_centres = _subcluster_positions(Z, sub_labels, np.zeros((0, Z.shape[1])), n_comm)
        sub_centres = np.ascontiguousarray(sub_centres, dtype=np.float32)
        labels = mapping[sub_labels]
        centres = _cluster_medoids(Z, labels, n_clusters, sub_centres, mapping)
        warn_empty_clusters(labels, n_clusters, None)
        hierarchy = ClusterHierarchy(sub_labels, graph, seed)
        return (centres, labels, sub_centres, n_comm, sub_labels, mapping, float(resolution),
                hierarchy)

    def _centre_stage(self, Z, M, graph, n_clusters, n_sub, a, b, n_threads, n_neighbors):
        """Labels from the optimised centres: each point's nearest sub-cluster centre (argmax
        S or T), sub-clusters cut into their connected pieces of the graph, then merged along
        it into ``n_clusters`` (``uec.merge``)."""
        labels_s, labels_tt, _, _ = _core.soft_assign(Z, M, a, b, float(self.target_power),
                                                      False, n_threads)
        sub_labels = (labels_s if self.labels_from == "S" else labels_tt).astype(np.intp)
        sub_centres = M
        if n_sub > n_clusters:
            # the cut and the merge both sum float64 weights: one conversion for both
            weights = scipy.sparse.csr_matrix(graph, dtype=np.float64)
            # sub-clusters whose points the graph does not connect are cut into their pieces
            sub_labels, parent = split_disconnected(sub_labels, weights, n_sub,
                                                    min_size=int(n_neighbors))
            positions = _subcluster_positions(Z, sub_labels, M, parent.size)
            if parent.size > n_sub:
                # a piece cut off gets its points' mean as its centre
                sub_centres = np.concatenate([M, positions[n_sub:].astype(np.float32)])
                logger.info("%d sub-clusters were not connected in the kNN graph; %d pieces "
                            "added", len(np.unique(parent[n_sub:])), parent.size - n_sub)
        else:
            weights, positions = graph, None
        mapping = merge_subclusters(sub_labels, weights, n_clusters, sub_centres.shape[0],
                                    positions=positions)
        hierarchy = ClusterHierarchy(sub_labels, graph, 0, positions=positions,
                                     n_groups=sub_centres.shape[0])
        labels = mapping[sub_labels]
        if n_sub == n_clusters:
            centres = M
        else:
            centres = _cluster_medoids(Z, labels, n_clusters, sub_centres, mapping)
        warn_empty_clusters(labels, n_clusters, self.labels_from)
        return centres, labels, sub_centres, n_sub, sub_labels, mapping, None, hierarchy

    def labels_at(self, n_clusters):
        """Cluster of each training point with ``n_clusters`` clusters, from the fitted
        hierarchy (``cluster_hierarchy_``), without a refit: at ``n_clusters_`` the fitted
        labels. Below the fit's number of groups (``subcluster_to_cluster_``) the groups are
        merged by the fit's own rule; above it each group is split into its own communities
        (computed at the first such call). Points labelled noise by the fit stay -1."""
        check_is_fitted(self, "embedding_")
        labels = self.cluster_hierarchy_.labels_at(n_clusters)
        if self.noise_threshold is not None:
            labels = np.where(self.labels_ < 0, -1, labels)
        return labels

    def fit_predict(self, X, y=None):
        """Fit and return the cluster labels of X."""
        return self.fit(X).labels_

    def fit_transform(self, X, y=None):
        """Fit and return the embedding of X (``embedding_``; see ``transform`` for how it
        differs from ``fit(X).transform(X)``)."""
        return self.fit(X).embedding_

    @reports
    def transform(self, X):
        """Place new points X (m, n_features) against the fitted embedding, as umap-learn's
        transform does: kNN into the training data, start at the membership-weighted mean of
        the neighbours' embedding, then a few CE epochs with the training embedding fixed
        (see ``uec._transform``). Returns (m, n_components) float32. Deterministic for a given
        fitted model and X, and row by row: a row's random stream is keyed by the row (its
        training neighbours and weights), not by its position, and its edges are sampled
        against the largest possible weight (1), not the call's strongest edge, so
        ``transform(X[idx]) == transform(X)[idx]`` bit for bit (umap-learn's transform depends
        on the other rows of the call). With a pandas output (``set_output``) the columns are
        ``get_feature_names_out()``.

        ``fit_transform(X)`` returns ``embedding_`` (the layout optimised with all training
        points), whereas ``fit(X).transform(X)`` places the training rows again against that
        fixed layout, as new points: close to their ``embedding_`` rows, not on them.
        scikit-learn's checks of that identity are declared expected failures
        (tests/test_sklearn_checks.py). ``predict`` labels each row on its own too."""
        from . import _transform

        X = self._check_new(X)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        return _transform.transform(self, X, n_threads=n_threads, verbose=self.verbose)

    def predict(self, X):
        """Cluster of each new point, from its ``n_neighbors`` nearest training points: each
        votes for its cluster (``labels_``) with its membership weight, as the fit's graph
        would connect them; ties go to the nearest neighbour's cluster.

        The clusters are made along the kNN graph (``uec.merge``), so the graph, not the
        embedding, decides: clusters that are not convex or that touch in the embedding (two
        moons, nested rings) are predicted as they were fitted, where the nearest centre of
        ``transform(X)`` was not (ACC 0.96-0.99 against 1.000 on held-out moons and rings;
        equal on digits and MNIST). No epochs run, and a row's label does not depend on the
        other rows of the call. For positions, use ``transform``."""
        from . import _transform

        X = self._check_new(X)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        if self.noise_threshold is None:
            return _transform.neighbour_vote(self, X, n_threads=n_threads)
        labels, distances = _transform.neighbour_vote(self, X, n_threads=n_threads,
                                                      return_distances=True)
        # the training radius r counts the point itself among its n_neighbors: a new point's
        # is the distance to its (n_neighbors - 1)-th training neighbour
        r = np.asarray(distances, dtype=np.float64)[:, max(_fitted_neighbors(self) - 2, 0)]
        scores, _ = _outlier_scores(r, labels, self.n_clusters_, ref=self._cluster_radius)
        return np.where(scores > float(self.noise_threshold), -1, labels)

    def predict_proba(self, X):
        """Share of each new point's vote per cluster (m, n_clusters_), float64, rows summing to
        1: the membership weights of its ``n_neighbors`` nearest training points (``predict``'s
        votes) summed per cluster and normalised. ``predict`` is the largest share (a tie goes
        to the nearest neighbour's cluster, as there); a row whose weights all underflowed, or
        one far outside the training data, is one-hot on its label. Noise (``noise_threshold``)
        is not a column: ``predict`` marks it."""
        from . import _transform

        X = self._check_new(X)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        _, shares = _transform.neighbour_vote(self, X, n_threads=n_threads, return_shares=True)
        return shares

    def _check_new(self, X):
        check_is_fitted(self, "embedding_")
        check_unchanged_since_fit(self)
        if not hasattr(self, "_raw_data"):
            raise ValueError("this UEC was fitted without keeping its training data; refit it to "
                             "use transform/predict")
        # a DataFrame's columns must be the fit's, in its order (as scikit-learn's estimators)
        _check_feature_names(self, X, reset=False)
        check_numeric_input(X)
        # new rows take the training data's form, so that the kNN search compares like with like
        X = check_array(X, dtype=np.float32, order="C", accept_sparse="csr", input_name="X")
        if scipy.sparse.issparse(self._raw_data) != scipy.sparse.issparse(X):
            X = scipy.sparse.csr_matrix(X) if scipy.sparse.issparse(self._raw_data) else X.toarray()
        if scipy.sparse.issparse(X) and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but UEC is expecting "
                             f"{self.n_features_in_} features as input (those of the fit)")
        return X

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding's columns, ``"uec0", "uec1", ...`` (as ``uec.dask.transform``
        names them), so that ``set_output(transform="pandas")`` gives a DataFrame.
        ``input_features``, if given, must be the fit's column names (``feature_names_in_``) or,
        without them, have ``n_features_in_`` entries."""
        check_is_fitted(self, "embedding_")
        from sklearn.utils.validation import _check_feature_names_in

        _check_feature_names_in(self, input_features, generate_names=False)
        return np.asarray([f"{COMPONENT_PREFIX}{j}" for j in range(self.embedding_.shape[1])],
                          dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # fit, predict and transform take scipy sparse (CSR) data
        tags.transformer_tags.preserves_dtype = ["float32"]  # the embedding is float32
        return tags

    def soft_assignments(self):
        """Soft assignments S and targets T (n_samples, n_clusters) of the training data: those
        of the sub-clusters (``subcluster_centers_``) summed over each cluster's sub-clusters
        (T stays normalised), and for S the largest of the cluster's sub-cluster kernels (the
        nearest of its centres), so that argmax S is the label when ``labels_from="S"``, except
        for points the graph cut moved (``subcluster_labels_``)."""
        check_is_fitted(self, "embedding_")
        _, _, S, T = _core.soft_assign(self.embedding_, self.subcluster_centers_, self.a_,
                                       self.b_, float(self.target_power), True, 1)
        mapping = self.subcluster_to_cluster_
        if mapping.shape[0] == int(self.n_clusters_):
            return S, T
        C = int(self.n_clusters_)
        P = np.zeros((mapping.shape[0], C), dtype=T.dtype)
        P[np.arange(mapping.shape[0]), mapping] = 1
        S_max = np.zeros((S.shape[0], C), dtype=S.dtype)
        for j in range(C):
            S_max[:, j] = S[:, mapping == j].max(axis=1)
        return S_max, T @ P


def _check_feature_names(est, X, reset):
    """scikit-learn's own check of a DataFrame's column names: with ``reset`` (fit) they become
    ``feature_names_in_`` (removed for data without string names); else renamed or reordered
    columns raise ValueError and a change between named and unnamed data warns, as KMeans does."""
    try:
        from sklearn.utils.validation import _check_feature_names as check
    except ImportError:  # scikit-learn < 1.6: a method of BaseEstimator
        return est._check_feature_names(X, reset=reset)
    return check(est, X, reset=reset)


def _fitted_neighbors(model):
    """n_neighbors of the fit (``n_neighbors_``: clipped to n_samples - 1); the parameter for
    a model pickled before ``n_neighbors_`` existed."""
    return int(getattr(model, "n_neighbors_", model.n_neighbors))


def _own_cluster_share(graph, labels):
    """Share of each point's graph weight (float64) that goes to points of its own cluster."""
    G = scipy.sparse.coo_matrix(graph)
    w = G.data.astype(np.float64)
    deg = np.bincount(G.row, weights=w, minlength=G.shape[0])
    own = np.bincount(G.row, weights=w * (labels[G.row] == labels[G.col]), minlength=G.shape[0])
    return np.divide(own, deg, out=np.ones_like(own), where=deg > 0)


def _outlier_scores(r, labels, n_clusters, graph=None, ref=None):
    """``(scores, ref)``: ``1 - ref / r_i`` clipped to [0, 1], ``r_i`` the distance of point i
    to its farthest kNN neighbour, and ``ref`` per cluster the ``REFERENCE_PERCENTILE``-th
    percentile of r over the connected component of ``graph`` that holds most of the cluster:
    a point is scored against the dense part of the mass it belongs to, so that sparse points
    that form a cluster of their own between dense ones are still scored as sparse. Given
    ``ref`` (predict), each point is scored against its cluster's."""
    r = np.asarray(r, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.intp)
    if ref is None:
        _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
        n_comp = int(comp.max()) + 1
        ref_comp = np.array([np.percentile(r[comp == q], REFERENCE_PERCENTILE)
                             for q in range(n_comp)])
        counts = np.zeros((n_clusters, n_comp))
        np.add.at(counts, (labels, comp), 1.0)
        ref = ref_comp[counts.argmax(axis=1)]
        point_ref = ref_comp[comp]
    else:
        point_ref = np.asarray(ref)[labels]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - point_ref / r
    return np.clip(np.where(r > 0, score, 0.0), 0.0, 1.0), ref


def _subcluster_positions(Z, labels, centres, n_groups):
    """Mean embedding (float64) of the points of each group ``0 <= g < n_groups``; the row of
    ``centres`` for a group without points (only optimised sub-clusters can be empty: the
    pieces cut off have points)."""
    counts = np.bincount(labels, minlength=n_groups)[:n_groups]
    sums = np.stack([np.bincount(labels, weights=Z[:, j], minlength=n_groups)[:n_groups]
                     for j in range(Z.shape[1])], axis=1)
    pos = np.zeros((n_groups, Z.shape[1]), dtype=np.float64)
    pos[:len(centres)] = centres
    has = counts > 0
    pos[has] = sums[has] / counts[has, None]
    return pos


def _medoid(P):
    """Row of P (m, d) whose summed euclidean distance (float64) to the other rows is least;
    ties to the first. Squared distances from the Gram matrix (one BLAS product per block of
    rows), clipped at 0 against rounding."""
    P = np.asarray(P, dtype=np.float64)
    m = P.shape[0]
    sq = np.einsum("ij,ij->i", P, P)
    total = np.empty(m, dtype=np.float64)
    step = max(1, (1 << 22) // max(1, m))
    for s in range(0, m, step):
        d2 = sq[s:s + step, None] + sq[None, :] - 2.0 * (P[s:s + step] @ P.T)
        total[s:s + step] = np.sqrt(np.maximum(d2, 0.0)).sum(axis=1)
    return int(np.argmin(total))


def _cluster_medoids(Z, labels, n_clusters, sub_centres, mapping):
    """Medoid of each cluster in the embedding (float32): the member whose summed distance to
    the cluster's other members is least, so the centre is a point of the cluster even when the
    cluster is drawn as several islands (where the mean can fall in the empty space between
    them). Exact for clusters of up to ``MEDOID_SAMPLE`` members; for a larger one, the medoid of
    a uniform sample of ``MEDOID_SAMPLE`` members drawn with a fixed seed (the cluster's index),
    so the fit's random stream is not touched. A cluster without points gets the mean of its
    sub-clusters' centres."""
    labels = np.asarray(labels, dtype=np.intp)
    centres = np.empty((n_clusters, Z.shape[1]), dtype=np.float32)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    for j in range(n_clusters):
        members = order[bounds[j]:bounds[j + 1]]
        if members.size == 0:
            centres[j] = sub_centres[mapping == j].astype(np.float64).mean(axis=0)
            continue
        if members.size > MEDOID_SAMPLE:
            pick = np.random.default_rng(j).choice(members.size, MEDOID_SAMPLE, replace=False)
            members = members[np.sort(pick)]
        centres[j] = Z[members[_medoid(Z[members])]]
    return centres


def _first_settled_epoch(params):
    """First epoch at which the learning-rate factor is <= 0.1 (linear: 0.9 of the schedule;
    step: after the first step). Measured on far-apart blobs, whose labels are trivially right:
    a stop at 80% of the schedule still left stray points mislabelled, at 90% none."""
    if params.schedule == _SCHEDULE["step"]:
        return max(int(params.step_every), 1)
    return int(np.ceil(0.9 * params.n_epochs_total))


# epochs progress: a bar on a terminal, plain lines otherwise (uec._progress)
_Progress = EpochProgress
