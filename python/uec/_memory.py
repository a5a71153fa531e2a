"""Memory model of a fit, and the fail-fast check made before anything large is allocated.

The estimate is the persistent part of a fit plus its largest stage; ``UEC_MAX_MEMORY`` sets the
memory available (bytes, or with a K/M/G/T suffix) and ``UEC_MAX_MEMORY=off`` disables the
check. What is counted and how it was checked: docs/design.md §2.10 and the guide's table
(docs/results/memory.md has the measured fits).
"""

from __future__ import annotations

import logging
import os
import re

from .initialization import _DENSE_CUTOFF  # the largest component solved by a dense eigh
from .refine import REFINE_SAMPLE

logger = logging.getLogger(__name__)

ENV_VAR = "UEC_MAX_MEMORY"

# Edges of the symmetrised fuzzy graph per kNN entry: between 1 (all neighbourhoods mutual) and
# 2 (none); 1.50-1.55 measured on clustered data, digits and MNIST.
_EDGES_PER_KNN_ENTRY = 1.6
# Bytes per kNN entry (n * k of them) while the graph is built: the directed strengths as COO,
# their CSR and its transpose, the product P o P^T, the union and its float32 copy, the pruned
# copy, plus the float32 row temporaries of the membership computation (measured: 50).
_GRAPH_BYTES_PER_KNN_ENTRY = 55
# Exact kNN (brute force, n <= 4096): scikit-learn's float64 upcast of X and our float64 copy
# for the direct distances (16 B per value), the gathered rows and their differences in chunks
# of at most 4 Mi doubles each (2 x 32 MiB), and per entry float64 distances, int64 indices,
# the re-sorting and the self-first reordering. (Measured with tracemalloc, after a first call:
# 62 MiB for 4000 x 64, 121 MiB for 4000 x 784.)
_EXACT_CHUNK_BYTES = 8 << 22
_EXACT_KNN_BYTES_PER_ENTRY = 100
# NN-descent (pynndescent, low_memory): heaps of neighbours and of new/old candidates
# (max_candidates = 60), under 1 KB per point resident, plus the random-projection forest. (Its
# update buffers reserve 1-3 GB of address space that is barely touched: not counted.)
_NND_BYTES_PER_POINT = 800
_NND_BYTES_PER_POINT_PER_TREE = 8
# The compiled epochs (csrc/cpu/epochs.cpp, run_epochs) of a joint variant keep, for the whole
# run, each point's u_k = a r^b for every centre (n x C doubles), and for "plus" with
# target_power != 1 also log S_k (another n x C): with n = C = 12,000 that is 1.07 GiB each,
# which the model left out (plus was estimated at 1.08 GiB and peaked at 2.21 GiB). Besides,
# per block of points (at most 1,024 blocks of at least 256 points) the centre reductions'
# partials, C (4 d + 2) + 1 doubles each; per thread a row scratch of 6 C doubles and the block
# recorder of the CE updates (csrc/cpu/lanes.hpp): per due edge its two pulls and about
# negative_sample_rate pushes, 8 bytes each.
_JOINT_VARIANTS = ("comma", "light_plus", "plus")
_BLOCK_MIN_POINTS = 256
_MAX_BLOCKS = 1024
# After the epochs, the centre stage's merge (uec.merge) and the cluster hierarchy
# (uec.community.ClusterHierarchy, cluster_hierarchy_, built whatever n_subclusters) hold the
# dense float64 matrix of graph weight between the C sub-clusters and a copy of it: two C x C
# at the peak (measured: 2,204 MiB at n = C = 12,000 with variant comma, 2 x 1,099 MiB).
_MERGE_DENSE_COPIES = 2
# The graph stage (uec.community): per stored entry of the symmetric graph, its float64 CSR
# copy and the prepared int32 index + float64 weight arrays (12 bytes each), the core Leiden's
# own graph (12) and its first aggregated level (at most 12): 48 (read off the code).
_LEIDEN_BYTES_PER_EDGE = 48


def _epoch_blocks(n):
    size = max(_BLOCK_MIN_POINTS, -(-n // _MAX_BLOCKS))
    return size, (-(-n // size) if n else 0)


def core_epoch_bytes(n, d, C, k, variant, target_power=2.0, negative_sample_rate=5, n_threads=1):
    """Bytes the compiled epochs allocate on top of the state passed to them (which the
    "optimiser state" part counts): the epoch-start snapshot of Z, the block recorder, and for
    a joint variant the n x C caches and the centre partials."""
    size, blocks = _epoch_blocks(n)
    edges_per_block = _EDGES_PER_KNN_ENTRY * k * size
    recorder = int(n_threads) * int(edges_per_block * (3 + float(negative_sample_rate)) * 8)
    total = 4 * n * d + recorder  # snapshot of Z
    if isinstance(variant, str) and variant in _JOINT_VARIANTS:
        caches = 2 if variant == "plus" and float(target_power) != 1.0 else 1
        partial = C * (4 * d + 2) + 1 + 8  # doubles, padded to whole cache lines
        total += caches * 8 * n * C + 8 * blocks * partial + int(n_threads) * 8 * (6 * C + 3 * d)
    return total


def estimate_fit_memory(n_samples, n_features, *, n_neighbors, n_components, n_clusters,
                        nnz=None, knn_given=False, exact_knn=None, init="spectral",
                        centre_init="kmeans", n_trees=None, x_allocated=False, variant="ce",
                        target_power=2.0, negative_sample_rate=5, n_threads=1,
                        n_final_clusters=None, clustering=None, union_view=False,
                        whitened_view=False):
    """Estimated peak memory of ``UEC.fit`` in bytes, and its parts (a dict, in bytes).

    ``nnz`` is the number of stored values when X is sparse (None: dense). With
    ``x_allocated`` the float32 copy of X is left out (it exists already when the check runs,
    and the available memory has shrunk by it). ``n_clusters`` is the number of centres the
    clustering term optimises (the sub-clusters); ``n_final_clusters`` the number they are
    merged into (not needed by the model: the cluster hierarchy holds the C x C group weights
    even without a merge). ``variant``, ``target_power``, ``negative_sample_rate`` and
    ``n_threads`` size the compiled epochs' buffers (``core_epoch_bytes``); ``clustering``
    ("graph" or "centres"; None: "graph" for variant "ce", else "centres") says which labelling
    stage follows them; ``union_view`` whether the graph stage joins a second metric's graph
    (``union_metric``): its kNN search (on a unit-length copy of X), its graph, and the joined
    graph the clusters are found on (at most both graphs' edges); ``whitened_view`` whether it
    also partitions a whitened copy of X (``refine="auto"``'s second start: the copy, its kNN
    search and graph, kept beside the first until the refinement chooses).
    """
    if clustering is None:
        clustering = "graph" if variant == "ce" else "centres"
    n, f, k, d, C = (int(n_samples), int(n_features), int(n_neighbors), int(n_components),
                     int(n_clusters))
    if exact_knn is None:
        exact_knn = n <= 4096
    x_values = int(nnz) if nnz is not None else n * f
    x_bytes = 8 * x_values + 4 * (n + 1) if nnz is not None else 4 * x_values  # CSR: data+index
    edges = int(_EDGES_PER_KNN_ENTRY * n * k)

    persistent = {} if x_allocated else {"X (float32 copy)": x_bytes}
    persistent.update({
        "kNN (indices, distances)": 8 * n * k,
        "graph (CSR)": 8 * edges + 4 * (n + 1),
        # indptr (int64); indices, epochs_per_sample, next_sample, next_negative (4 B each);
        # Z and its epoch-start snapshot; labels of the core, of S and of T, labels_ (intp)
        "optimiser state": 8 * (n + 1) + 16 * edges + 8 * n * d + 4 * 3 * n + 8 * n,
    })

    stages = {}
    if not knn_given:
        if exact_knn:
            # float64 copy of X for the direct distances (densified chunks when sparse)
            dense_values = x_values if nnz is None else 0
            stages["kNN search"] = (16 * dense_values + 2 * min(_EXACT_CHUNK_BYTES, 8 * n * k * f)
                                    + _EXACT_KNN_BYTES_PER_ENTRY * n * k)
        else:
            trees = n_trees if n_trees is not None else min(64, 5 + int(round(n**0.5 / 20.0)))
            stages["kNN search"] = (x_bytes + n * (_NND_BYTES_PER_POINT
                                                   + _NND_BYTES_PER_POINT_PER_TREE * trees)
                                    + 24 * n * k)
    stages["graph"] = _GRAPH_BYTES_PER_KNN_ENTRY * n * k

    if isinstance(init, str) and init == "spectral":
        if n <= _DENSE_CUTOFF:
            stages["initial layout"] = 32 * n * n  # dense normalised adjacency and its copies
        else:
            ncv = max(2 * d + 1, 20)  # Lanczos vectors of ARPACK
            # D^-1/2 A D^-1/2 and its intermediate products (measured: 48 B per edge), and its
            # single-precision copy for ARPACK (uec.initialization._arpack_top: 8 B per edge)
            stages["initial layout"] = 8 * ncv * n + 56 * edges
    elif isinstance(init, str) and init == "pca":
        dense_x = 4 * n * f if nnz is not None else 0  # PCA densifies small sparse inputs
        stages["initial layout"] = dense_x + 3 * 4 * n * f if nnz is None else dense_x + 8 * x_values
    else:
        stages["initial layout"] = 16 * n * d

    if isinstance(centre_init, str) and centre_init == "gmm":
        stages["initial centres"] = 8 * n * C * (3 + d)
    elif isinstance(centre_init, str) and centre_init == "spectral":
        ncv = max(2 * C + 1, 20)
        stages["initial centres"] = 8 * ncv * n + 16 * n * C + 48 * edges
    else:  # k-means on Z (chunked Lloyd iterations, k-means++ trials), or an array
        stages["initial centres"] = 8 * n * (d + C + 4)
    stages["epochs"] = core_epoch_bytes(n, d, C, k, variant, target_power, negative_sample_rate,
                                        n_threads)
    if clustering == "graph":
        stages.pop("initial centres")  # no centres: Leiden on the graph
        clustered_edges = edges
        if union_view:
            clustered_edges = 2 * edges
            persistent["clustering graph (union view)"] = 8 * clustered_edges + 4 * (n + 1)
            stages["union view (kNN and graph)"] = (x_bytes + stages.get("kNN search", 0)
                                                    + 8 * n * k + stages["graph"])
        if whitened_view:
            # built on the rows EM is fitted on (uec.refine.sample_rows): a share m / n of the
            # rows, and of the search's and the graph's memory
            m = min(n, REFINE_SAMPLE)
            share = m / n
            persistent["whitened clustering graph"] = int(8 * edges * share) + 4 * (m + 1)
            stages["whitened view (kNN and graph)"] = int(
                4 * m * f + share * (stages.get("kNN search", 0) + stages["graph"]) + 8 * m * k)
        stages["graph clustering"] = _LEIDEN_BYTES_PER_EDGE * clustered_edges
    else:
        stages["merge and hierarchy"] = _MERGE_DENSE_COPIES * 8 * C * C

    parts = dict(persistent)
    peak_stage = max(stages, key=stages.get)
    parts[f"largest stage: {peak_stage}"] = stages[peak_stage]
    return sum(parts.values()), parts


def _parse_bytes(text):
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise ValueError(
            f"{ENV_VAR}={text!r} is not a size: give bytes, a size with a K/M/G/T suffix "
            f"(e.g. '8G'), or 'off' to disable the memory check"
        )
    power = "kmgt".find(m.group(2).lower()) + 1 if m.group(2) else 0
    return int(float(m.group(1)) * 1024**power)


def _cgroup_available():
    """Memory left under this process's cgroup limit (containers), or None."""
    for limit_path, usage_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        try:
            with open(limit_path) as fh:
                limit = fh.read().strip()
            with open(usage_path) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
            return None
        return max(int(limit) - usage, 0)
    return None


def available_memory():
    """Bytes a fit may use: ``UEC_MAX_MEMORY`` if set, else what the machine (and its cgroup
    limit) has available; None when unknown or when the check is disabled."""
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        if env.strip().lower() in ("off", "none", "no", "false"):
            return None
        return _parse_bytes(env)
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unsupported platform
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
        if avail is None:
            try:
                avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError, AttributeError):
                avail = None
    cg = _cgroup_available()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def _fmt(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024.0
    return f"{nbytes} B"  # pragma: no cover


def check_fit_memory(n_samples, n_features, **kwargs):
    """Raise MemoryError, before anything large is allocated, when the estimated peak of the fit
    exceeds the available memory. Returns the estimate (bytes)."""
    total, parts = estimate_fit_memory(n_samples, n_features, **kwargs)
    avail = available_memory()
    logger.info("estimated peak memory of the fit: %s (available: %s)", _fmt(total),
                "unknown" if avail is None else _fmt(avail))
    if avail is not None and total > avail:
        detail = ", ".join(f"{name} {_fmt(v)}" for name, v in parts.items())
        raise MemoryError(
            f"UEC.fit needs about {_fmt(total)} for n_samples={n_samples}, n_features={n_features}, "
            f"n_neighbors={kwargs.get('n_neighbors')}, n_components={kwargs.get('n_components')}, "
            f"n_clusters={kwargs.get('n_clusters')} ({detail}), but only {_fmt(avail)} is available. "
            f"Use fewer samples or neighbours, or set {ENV_VAR} (e.g. {ENV_VAR}=64G, or 'off') if "
            f"the estimate is wrong for this machine."
        )
    return total


def _input_size(X):
    """(n_samples, n_features, nnz or None, whether fit's conversion copies X) read off X without
    converting it, or None when X has no 2-D shape to read (a list: its conversion is the data
    itself)."""
    import numpy as np
    import scipy.sparse

    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    n, f = int(shape[0]), int(shape[1])
    if scipy.sparse.issparse(X):
        copies = not (X.format == "csr" and X.dtype == np.float32 and X.has_canonical_format)
        return n, f, int(X.nnz), copies
    copies = not (isinstance(X, np.ndarray) and X.dtype == np.float32
                  and X.flags.c_contiguous)
    return n, f, None, copies


def check_estimator_memory(est, X):
    """The memory check of ``UEC.fit`` for X as given, before it is converted: a float64 array
    (or memmap) is copied to float32 by the conversion, so the copy is counted here instead of
    being made first (a 1.8 GiB copy of a memmap was made before the check ran). The estimate
    covers the variant's core buffers (``core_epoch_bytes``). Parameters that are not valid
    are left to the estimator's own checks (nothing is estimated then). Returns the estimate
    (bytes) or None."""
    size = _input_size(X)
    if size is None:
        return None
    n, f, nnz, copies = size
    if n < 1 or f < 1:
        return None
    try:
        # a parameter the estimator refuses is reported by its own check, in its order (an
        # out-of-range negative_sample_rate would otherwise be "estimated" first)
        est._check_params(n)
    except ValueError:
        return None
    try:
        from . import _core

        auto_k = getattr(est, "_auto_k", None)
        n_sub = 1 if (auto_k is not None and auto_k()) else int(est._resolved_subclusters(n))
        n_final = None if (auto_k is not None and auto_k()) else int(est.n_clusters)
        kwargs = dict(
            n_neighbors=int(est.n_neighbors), n_components=int(est.n_components),
            n_clusters=n_sub, nnz=nnz, knn_given=est.knn is not None, init=est.init,
            centre_init=est.centre_init, x_allocated=not copies, variant=str(est.variant),
            target_power=float(est.target_power),
            negative_sample_rate=float(est.negative_sample_rate),
            n_threads=_core.resolve_threads(-1 if est.n_jobs is None else int(est.n_jobs)),
            n_final_clusters=n_final, clustering=est._resolved_clustering(),
            union_view=est._union_view(est._resolved_clustering()) is not None,
            whitened_view=_whitened(est, n, f, nnz),
        )
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
    return check_fit_memory(n, f, **kwargs)


def _whitened(est, n, f, nnz):
    """Whether the fit's graph stage will also partition X whitened, by the fit's own rule
    (``uec.clusters.whitened_start``) on X's size."""
    from .clusters import whitened_start

    clustering = est._resolved_clustering()
    return clustering == "graph" and est.n_clusters is not None and whitened_start(
        est, n, f, nnz is not None, est._union_view(clustering), int(est.n_clusters))
