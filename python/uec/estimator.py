"""The UEC estimator: a scikit-learn front end over the stages of a fit, each in its own module:
neighbours and graph, initialization, optimize (with the centres), clusters (docs/design.md §2)."""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from . import _core, _transform
from ._degenerate import warn_duplicates, warn_few_distinct
from ._memory import check_estimator_memory, check_fit_memory
from ._params import UECParams
from ._progress import EpochProgress, reports, stage
from ._validation import check_numeric_input
from ._transform import _check_feature_names, _fitted_neighbors
from .clusters import fit_clusters, graph_partition, soft_assignments
from .community import estimate_n_clusters
from .graph import find_ab_params, fit_graph
from .initialization import fit_layout
from .optimize import run_epochs

# names of the estimator's module before its stages moved out (still importable from here)
from ._params import (_CENTRE_INITS, _CENTRE_UPDATE, _CLIP, _INITS, _SCHEDULE,  # noqa: F401
                      CLUSTERINGS, SUBCLUSTER_POINTS, VARIANTS)
from .clusters import (MEDOID_SAMPLE, REFERENCE_PERCENTILE, _cluster_medoids,  # noqa: F401
                       _medoid, _outlier_scores, _own_cluster_share, _subcluster_positions)
from .optimize import MODE as _MODE, first_settled_epoch as _first_settled_epoch  # noqa: F401

logger = logging.getLogger(__name__)

# Column names of the embedding (get_feature_names_out): uec0, uec1, ..., as uec.dask names them
COMPONENT_PREFIX = "uec"


class UEC(ClusterMixin, TransformerMixin, UECParams, BaseEstimator):
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
    refine : {"auto"} or None, default="auto"
        With the graph stage: "auto" refines its labels by EM of a Gaussian mixture (one full
        covariance per cluster) in the space of X, started at the graph's partition, where the
        mixture is identifiable (dense X, parameters no more than the rows: not images) and BIC
        does not prefer two Gaussians per cluster (not PCA scores of images; ``uec.refine``).
        With a given count EM also starts from the graph's partition by the constant Potts
        model (up to 50,000 rows), taken when both more likely and of higher modularity, and,
        with euclidean rows, from the graph stage's partition of X whitened, taken where
        Vuong's test prefers its mixture (design §2.6 step 6). None: the graph's labels as
        they are.
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
    union_metric : str or None, default=None
        With the graph stage (``clustering="graph"``): the clusters are found on the union
        (elementwise maximum) of the fuzzy graph of ``metric`` and the fuzzy graph of the same
        rows under ``union_metric`` (for example ``"cosine"``, which ignores each row's length),
        so that two points are neighbours when they are near in either view
        (``uec.community.union_view``). What it gains and loses on the quality suite is in
        docs/results/quality.md: it helps where a row's length is a nuisance (images, faces)
        and hurts where the origin means nothing (low-dimensional coordinates). The layout and
        new points use the graph of ``metric`` alone. None (the default), the same metric as
        ``metric``, or a given ``knn``: the graph of ``metric`` alone.
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
    graph_ : scipy.sparse.csr_matrix (n_samples, n_samples)
        The fuzzy kNN graph of ``metric`` (the layout's).
    clustering_graph_ : scipy.sparse.csr_matrix (n_samples, n_samples)
        The graph the clusters were found on: ``graph_`` joined with the ``union_metric`` view
        (see ``union_metric``), the graph of X whitened (see ``refine``), or ``graph_``.
    timings_ : dict
        Wall seconds of each stage: "knn", "graph" (fuzzy union and pruning), "init", then
        "layout", "union_view" (the second view's kNN and graph, when used) and "clustering"
        (``clustering="graph"``) or "warmup", "centre_init",
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
        union_metric=None,
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
        refine="auto",
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
        self.union_metric = union_metric
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
        self.refine = refine
        self.verbose = verbose


    # -- fitting -----------------------------------------------------------------------------

    @reports
    def fit(self, X, y=None):
        """Fit the embedding and the clusters of X (n_samples, n_features). y is ignored.

        X may be a dense array (any real dtype, any memory order; converted to float32) or a
        scipy sparse matrix (converted to float32 CSR; the kNN is searched on it directly, as
        umap-learn does)."""
        check_numeric_input(X)
        checked = check_estimator_memory(self, X)  # before X is converted (copied)
        X_given = X  # its column names become feature_names_in_ at the end
        X = check_array(X, dtype=np.float32, order="C", ensure_min_samples=2,
                        accept_sparse="csr", input_name="X")
        if scipy.sparse.issparse(X) and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()  # sorted, without repeated entries (pynndescent needs this)
        n = X.shape[0]
        device = self._check_params(n)
        k = self._resolved_neighbors(n)
        if checked is None:  # X's size could not be read before its conversion (a list, ...)
            self._check_memory(X, k, n_clusters=1 if self._auto_k() else None)
        rs = check_random_state(self.random_state)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        n_epochs = self._resolved_epochs(n)
        warmup = self._resolved_warmup(n_epochs)
        clustering = self._resolved_clustering()
        times = {}

        graph, knn_dists, search_index = fit_graph(self, X, k, n_epochs, rs, n_threads, times)
        n_clusters, n_sub = self._cluster_count(X, graph, knn_dists, k, clustering, rs)
        a, b = find_ab_params(self.spread, self.min_dist)
        Z = fit_layout(self, X, graph, rs, times, n_threads)
        # the graph stage's partition does not read the layout: made beside the epochs
        beside = None if clustering != "graph" else (
            lambda: graph_partition(self, graph, X, n_clusters, k, n_epochs, n_threads, rs, times))
        M, n_iter, part = run_epochs(self, Z, graph, a, b, n_epochs, warmup, n_sub, clustering,
                                     device, n_threads, rs, times, beside=beside)
        clusters = fit_clusters(self, Z, M, graph, knn_dists, n_clusters, n_sub, a, b, n_threads,
                                k, rs, clustering, times, X=X, n_epochs=n_epochs, partition=part)

        # Every fitted attribute is set here, at the end, so that an interrupted fit
        # (KeyboardInterrupt from the core) leaves nothing half-written.
        fitted = {"embedding_": Z, **clusters, "n_iter_": int(n_iter), "n_epochs_": n_epochs,
                  "a_": float(a), "b_": float(b), "graph_": graph, "device_": device,
                  "n_features_in_": X.shape[1], "n_neighbors_": k}
        for name, value in fitted.items():
            setattr(self, name, value)
        _check_feature_names(self, X_given, reset=True)  # feature_names_in_ for a DataFrame
        self.timings_ = times
        # kept to place new points (transform/predict), as umap-learn keeps its raw data and
        # NN-descent index (None when the kNN was brute force or given)
        self._raw_data = X
        self._knn_search_index = search_index
        logger.info("fit: %s", ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        return self

    def _check_memory(self, X, k, n_clusters=None):
        """The fit's peak memory against what is available (uec._memory), before the stage that
        would allocate it; ``n_clusters``: the centres counted (default: the parameters' count)."""
        check_fit_memory(
            X.shape[0], X.shape[1], n_neighbors=k, n_components=self.n_components,
            n_clusters=n_clusters or self._resolved_subclusters(X.shape[0]),
            nnz=X.nnz if scipy.sparse.issparse(X) else None, knn_given=self.knn is not None,
            init=self.init, centre_init=self.centre_init, x_allocated=True,
            clustering=self._resolved_clustering(),
            union_view=self._union_view(self._resolved_clustering()) is not None)

    def _cluster_count(self, X, graph, knn_dists, k, clustering, rs):
        """``(n_clusters, n_subclusters)`` of the fit; with n_clusters=None and the centres'
        clustering, the count is read off the graph now (the centres need it before the
        epochs); ``(None, None)`` for the graph stage to choose it."""
        n_clusters = None if self._auto_k() else int(self.n_clusters)
        if n_clusters is None and clustering == "centres":
            n_clusters, _ = estimate_n_clusters(graph, int(rs.randint(0, 2**31 - 1)))
            self._check_memory(X, k, self._resolved_subclusters(X.shape[0], n_clusters))
        n_sub = None if n_clusters is None else self._resolved_subclusters(X.shape[0], n_clusters)
        if n_clusters is not None:
            warn_few_distinct(X, knn_dists, n_clusters)
        warn_duplicates(knn_dists, k)
        return n_clusters, n_sub

    def labels_at(self, n_clusters):
        """Cluster of each training point with ``n_clusters`` clusters, from the fitted
        hierarchy (``cluster_hierarchy_``), without a refit: at ``n_clusters_`` the fitted
        labels. Below the fit's number of groups (``subcluster_to_cluster_``) the groups are
        merged by the fit's own rule, as a graph-stage fit with that ``n_clusters`` would
        merge them (each k refined on its own: not always nested in the next); above it each
        group is split into its own communities (computed at the first such call; these
        nest). Points labelled noise by the fit stay -1."""
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
        X = _transform.check_new(self, X)
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
        X = _transform.check_new(self, X)
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
        X = _transform.check_new(self, X)
        n_threads = _core.resolve_threads(-1 if self.n_jobs is None else self.n_jobs)
        _, shares = _transform.neighbour_vote(self, X, n_threads=n_threads, return_shares=True)
        return shares

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
        return soft_assignments(self)


# epochs progress: a bar on a terminal, plain lines otherwise (uec._progress)
_Progress = EpochProgress
