"""The UEC estimator's parameters: their checks (``_check_params``, with the upper bounds of
uec._validation.check_limits) and the values a fit resolves them to (sub-clusters, epochs,
warm-up, clustering stage), as a mixin of uec.estimator.UEC."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from ._device import resolve_device
from ._modes import CENTRE_UPDATE, CLIP, SCHEDULE
from ._validation import check_choice, check_float, check_int, check_limits
from .neighbours import check_metric_kwds

VARIANTS = ("plus", "light_plus", "comma", "ce")
CLUSTERINGS = ("graph", "centres")
_CLIP, _SCHEDULE, _CENTRE_UPDATE = CLIP, SCHEDULE, CENTRE_UPDATE
_INITS = ("spectral", "pca", "random")
_CENTRE_INITS = ("kmeans", "gmm", "random", "spectral")
# The default sub-cluster count is 3 per cluster, raised on large data to one per this many
# points, up to 6 per cluster (docs/results/previous_default.md: finer sub-clusters are purer, and
# the merge joins them along the graph; the clustering term costs O(n * n_subclusters)).
SUBCLUSTER_POINTS = 1000


class UECParams:
    """Checks and resolved values of UEC's parameters (the estimator's ``__init__`` stores them)."""

    def _union_view(self, clustering):
        """The second metric whose graph the graph stage joins to the fit's, or None."""
        view = getattr(self, "union_metric", None)  # None in models pickled before it existed
        if clustering != "graph" or view is None or self.knn is not None or view == self.metric:
            return None
        return view

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
        if self.refine is not None and not (isinstance(self.refine, str) and self.refine == "auto"):
            raise ValueError(f"refine={self.refine!r} must be 'auto' (the graph stage's labels "
                             f"refined by a Gaussian mixture where one is identifiable) or None")
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
        if self.union_metric is not None and not isinstance(self.union_metric, str):
            raise ValueError(f"union_metric={self.union_metric!r} must be a metric name (for "
                             f"example 'cosine') or None")
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

    def _resolved_warmup(self, n_epochs):
        """CE epochs before the clustering term starts: none for "ce", else ``warmup_epochs``
        (default three quarters of ``n_epochs``); must leave clustering epochs."""
        if self.variant == "ce":
            warmup = 0
        elif self.warmup_epochs is None:
            warmup = (3 * n_epochs) // 4
        else:
            warmup = int(self.warmup_epochs)
        if warmup >= n_epochs:
            raise ValueError(f"warmup_epochs={warmup} must be < n_epochs={n_epochs}")
        return warmup
