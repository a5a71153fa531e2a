"""Clusters stage: the labels of a fit, from the optimised centres (each point's nearest centre,
sub-clusters cut into their connected pieces of the graph, then merged along it: uec.merge) or
from the graph's Leiden communities (uec.community); the clusters' medoids, each point's own
cluster share of its graph weight and its outlier score (docs/design.md §2.6)."""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from . import _core
from ._degenerate import warn_empty_clusters
from ._progress import stage
from . import refine
from .community import (ClusterHierarchy, cluster_graph, cpm_partition, estimate_n_clusters,
                        union_view, view_graph)
from .merge import merge_subclusters, split_disconnected
from .refine import (choose_partition, identifiable_shape, sample_rows, split_gain, startable,
                     whiten)

logger = logging.getLogger(__name__)

# cluster_centers_ are medoids in the embedding: exact up to this many members, else the medoid
# of a fixed-seed sample of this many (O(MEDOID_SAMPLE^2) distances per cluster)
MEDOID_SAMPLE = 1000
# outlier_scores_ compare a point's kNN radius with the dense part of its connected mass: the
# median radius of the denser half of its connected component of the graph
REFERENCE_PERCENTILE = 25


def fit_clusters(model, Z, M, graph, knn_dists, n_clusters, n_sub, a, b, n_threads,
                 n_neighbors, rs, clustering, times, X=None, n_epochs=None, partition=None):
    """The clusters of a fit, as the estimator's fitted attributes (a dict, in the order they
    are set): centres, labels (noise -1 with ``noise_threshold``; ``_partition`` before it),
    the sub-clusters and their mapping, the hierarchy, probabilities and outlier scores.
    ``X`` and ``n_epochs``: the fit's data and epochs, for the graph stage's second view
    (``union_metric``). ``partition``: the graph stage's :func:`graph_partition` when it was
    already made (beside the layout: it does not read it)."""
    if clustering == "graph":
        if partition is None:
            partition = graph_partition(model, graph, X, n_clusters, n_neighbors, n_epochs,
                                        n_threads, rs, times)
        t1 = time.perf_counter()
        clustering_graph = partition["graph"]
        out = graph_labels(Z, partition, partition["refined"])
        times["clustering"] += time.perf_counter() - t1
    else:
        clustering_graph = graph
        t1 = time.perf_counter()
        out = centre_labels(model, Z, M, graph, n_clusters, n_sub, a, b, n_threads,
                            n_neighbors)
        times["merge"] = time.perf_counter() - t1
    centres, labels, sub_centres, n_sub, sub_labels, mapping, resolution, hierarchy = out
    probabilities = _own_cluster_share(clustering_graph, labels)
    outliers, radius = _outlier_scores(knn_dists[:, -1], labels, centres.shape[0], graph)
    partition = labels
    if model.noise_threshold is not None:
        labels = np.where(outliers > float(model.noise_threshold), -1, labels)
    return {
        "cluster_centers_": centres,
        "labels_": labels.astype(np.intp),
        "_partition": partition.astype(np.intp),  # labels_ before noise: predict's votes
        "n_clusters_": int(centres.shape[0]),
        "cluster_hierarchy_": hierarchy,
        "probabilities_": probabilities,
        "outlier_scores_": outliers,
        "_cluster_radius": radius,  # median_c(r): predict scores new points against it
        "subcluster_centers_": sub_centres,
        "n_subclusters_": int(n_sub),
        "subcluster_labels_": sub_labels,
        "subcluster_to_cluster_": mapping,
        "resolution_": resolution,
        "clustering_graph_": clustering_graph,
    }


def graph_partition(model, graph, X, n_clusters, n_neighbors, n_epochs, n_threads, rs, times):
    """The part of the graph stage that does not read the layout: the graph clustered (with
    ``union_metric``, the second view's first), its Leiden communities merged along it into
    ``n_clusters`` (None: the count read off the communities' eigengap), then refined
    (:func:`refine_partition`). A dict: ``graph``, ``seed``, ``n_clusters``, ``sub_labels``,
    ``mapping``, ``resolution``, ``refined``; ``times`` gets
    "union_view" and "clustering" (which :func:`fit_clusters` completes). Draws from ``rs``:
    the view's seed, then the communities'."""
    clustering_graph = graph
    view = model._union_view("graph")
    if view is not None and X is not None:
        t1 = time.perf_counter()
        with stage(f"{view} view", model.verbose), model._seeded_threads():
            clustering_graph = union_view(X, graph, n_neighbors, n_epochs, metric=view,
                                          random_state=int(rs.randint(0, 2**31 - 1)),
                                          n_jobs=n_threads)
        times["union_view"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with stage("graph clustering", model.verbose):
        seed = int(rs.randint(0, 2**31 - 1))
        first = None
        if n_clusters is None:
            n_clusters, first = estimate_n_clusters(clustering_graph, seed)
        sub_labels, mapping, resolution = cluster_graph(clustering_graph, n_clusters,
                                                        random_state=seed, labels=first)
    part = {"graph": clustering_graph, "seed": seed, "n_clusters": int(n_clusters),
            "sub_labels": sub_labels, "mapping": mapping, "resolution": float(resolution)}
    # EM can refine this partition (uec.refine), and the clusters are one Gaussian each as far
    # as BIC can tell (not so: EM moves boundaries for the model's sake; design §2.6 step 6):
    # the condition of the refinement and of both alternative starts
    refinable = bool(X is not None and model.refine == "auto"
                     and startable(X, mapping[sub_labels], n_clusters, seed))
    if refinable:
        gain = split_gain(X, mapping[sub_labels], n_clusters, seed)
        refinable = gain <= 0.0
        logger.info("refine: BIC's gain from two Gaussians per cluster %.3g nats a row: %s",
                    gain, "refined" if refinable else "the graph's labels kept")
    part["refinable"] = refinable
    if refinable and model.n_clusters is not None and X.shape[0] <= refine.REFINE_SAMPLE:
        # the refinement's second start on the same graph: its partition at the given count
        # by the constant Potts model, which does not prefer clusters of equal volume; where
        # EM reads every row (above, it would cost several Leiden runs of the whole graph for
        # a start on a sample); at a count found it lowered the mean ARI (unknown_k.md)
        with stage("CPM partition", model.verbose):
            sub_c, map_c, res_c = cpm_partition(clustering_graph, n_clusters, random_state=seed)
        part["cpm"] = dict(part, sub_labels=sub_c, mapping=map_c, resolution=float(res_c))
    if refinable and whitened_start(model, *X.shape, scipy.sparse.issparse(X), view, n_clusters):
        # the second start of the refinement: the same graph stage on X whitened, where no one
        # direction that every feature shares (an overall size) outweighs the rest; on the rows
        # EM is fitted on (above REFINE_SAMPLE rows, a sample: the start is all EM reads)
        rows = sample_rows(X.shape[0], seed)
        sample = rows.shape[0] < X.shape[0]
        with model._seeded_threads():
            white = view_graph(whiten(X[rows] if sample else X), n_neighbors, n_epochs,
                               random_state=seed, n_jobs=n_threads)
        sub_w, map_w, res_w = cluster_graph(white, n_clusters, random_state=seed)
        part["whitened"] = dict(part, graph=white, sub_labels=sub_w, mapping=map_w,
                                resolution=float(res_w), sample=sample)
    part = refine_partition(X, part)
    times["clustering"] = time.perf_counter() - t1
    return part


def refine_partition(X, part):
    """:func:`graph_partition`'s ``part`` refined (uec.refine.choose_partition among its
    starts: the data's partition, the CPM and the whitened ones), as the start taken with its
    refined labels under "refined" (None: the graph's labels as they are). It reads X and the
    partitions, not the layout, so it too runs beside the epochs."""
    refined = None
    if part["refinable"]:
        starts = [(p, rule) for p, rule in ((part, None), (part.get("cpm"), "restart"),
                                            (part.get("whitened"), "view"))
                  if p is not None]
        taken, refined = choose_partition(
            X, [(p["mapping"][p["sub_labels"]], None if p.get("sample") else p["graph"])
                + ((rule,) if rule else ()) for p, rule in starts],
            part["n_clusters"], part["seed"])
        starts = [p for p, _ in starts]
        if not starts[taken].get("sample"):
            # a start on a sample of the rows has no graph of every row: its refined labels
            # are kept on the data's partition (communities cut by them)
            part = starts[taken]
    return dict(part, refined=refined)


def whitened_start(model, n_samples, n_features, sparse, view, n_clusters):
    """Whether the graph stage also partitions X whitened (uec.refine.choose_partition), from
    X's size (the fit's and the memory check's one rule): refine="auto", a given count the
    mixture identifies, and the fit's graph euclidean on the rows of X (no given knn, no
    metric_kwds, no union view ``view``)."""
    return (model.refine == "auto" and view is None and model.knn is None
            and model.n_clusters is not None and model.metric in ("euclidean", "l2")
            and not model.metric_kwds
            and identifiable_shape(n_samples, n_features, n_clusters, sparse))


def graph_labels(Z, part, refined=None):
    """Labels from ``uec.community`` (:func:`graph_partition`'s ``part``): the communities
    are the sub-clusters, placed at their points' mean in the embedding ``Z``. ``refined``:
    the labels after ``uec.refine`` (or None); the sub-clusters are then the communities cut
    by them (each piece in one cluster), and the hierarchy keeps the communities, with the
    refined labels at the fitted count."""
    graph, sub_labels, mapping = part["graph"], part["sub_labels"], part["mapping"]
    n_clusters = part["n_clusters"]
    hierarchy = ClusterHierarchy(sub_labels, graph, part["seed"])
    labels = mapping[sub_labels]
    if refined is not None:
        hierarchy.refined = (int(n_clusters), np.asarray(refined, dtype=np.intp))
        pieces, sub_labels = np.unique(sub_labels * n_clusters + refined, return_inverse=True)
        sub_labels = sub_labels.astype(np.intp)
        mapping = (pieces % n_clusters).astype(np.intp)
        labels = hierarchy.refined[1]
    n_comm = mapping.shape[0]
    sub_centres = _subcluster_positions(Z, sub_labels, np.zeros((0, Z.shape[1])), n_comm)
    sub_centres = np.ascontiguousarray(sub_centres, dtype=np.float32)
    centres = _cluster_medoids(Z, labels, n_clusters, sub_centres, mapping)
    warn_empty_clusters(labels, n_clusters, None)
    return (centres, labels, sub_centres, n_comm, sub_labels, mapping, part["resolution"],
            hierarchy)


def centre_labels(model, Z, M, graph, n_clusters, n_sub, a, b, n_threads, n_neighbors):
    """Labels from the optimised centres: each point's nearest sub-cluster centre (argmax
    S or T), sub-clusters cut into their connected pieces of the graph, then merged along
    it into ``n_clusters`` (``uec.merge``)."""
    labels_s, labels_tt, _, _ = _core.soft_assign(Z, M, a, b, float(model.target_power),
                                                  False, n_threads)
    sub_labels = (labels_s if model.labels_from == "S" else labels_tt).astype(np.intp)
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
    warn_empty_clusters(labels, n_clusters, model.labels_from)
    return centres, labels, sub_centres, n_sub, sub_labels, mapping, None, hierarchy


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


def soft_assignments(model):
    """``UEC.soft_assignments`` of a fitted model: (S, T) per cluster."""
    _, _, S, T = _core.soft_assign(model.embedding_, model.subcluster_centers_, model.a_,
                                   model.b_, float(model.target_power), True, 1)
    mapping = model.subcluster_to_cluster_
    if mapping.shape[0] == int(model.n_clusters_):
        return S, T
    C = int(model.n_clusters_)
    P = np.zeros((mapping.shape[0], C), dtype=T.dtype)
    P[np.arange(mapping.shape[0]), mapping] = 1
    S_max = np.zeros((S.shape[0], C), dtype=S.dtype)
    for j in range(C):
        S_max[:, j] = S[:, mapping == j].max(axis=1)
    return S_max, T @ P
