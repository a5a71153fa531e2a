"""The merges past modularity's optimum among groups that are not communities: Ward's
criterion on the sub-clusters' positions in the embedding (uec.merge.ward_merge)."""

import logging

import numpy as np
import pytest
import scipy.cluster.hierarchy
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.preprocessing import StandardScaler

from uec import UEC
from uec.merge import MIXED_WEIGHT, merge_subclusters, ward_merge
from uec.metrics import clustering_accuracy

from test_merge import MNIST_COUNTS, MNIST_W, _block_graph

# A breast-cancer fit (standardised features, UEC(n_clusters=2, random_state=3)): its six
# sub-clusters' graph weights, sizes, mean positions in the embedding and classes
# (malignant, benign). Sub-clusters 0 and 4 are an arm of malignant samples off a large
# benign blob; every merge of two sub-clusters lowers modularity, and modularity's balance
# term made the greedy merge cut the blob in half (ACC 0.571).
CANCER_W = np.array([
    [708.8, 1.7, 6.1, 0.0, 35.9, 9.9],
    [1.7, 639.0, 17.8, 66.7, 0.1, 46.8],
    [6.1, 17.8, 485.4, 67.6, 32.4, 31.0],
    [0.0, 66.7, 67.6, 490.0, 0.0, 22.0],
    [35.9, 0.1, 32.4, 0.0, 368.2, 3.0],
    [9.9, 46.8, 31.0, 22.0, 3.0, 343.3]])
CANCER_COUNTS = np.array([116, 113, 104, 99, 66, 71])
CANCER_POS = np.array([[9.65, 1.09], [2.75, -2.93], [4.3, -0.27], [2.47, -0.83], [7.09, 0.98],
                       [4.8, -2.96]])
CANCER_CLASSES = np.array([[116, 2, 13, 1, 64, 16], [0, 111, 91, 98, 2, 55]])


def _same_partition(a, b):
    return ari(a, b) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_ward_merge_equals_scipy_ward_on_the_groups_points(seed):
    # With every pair linked, ward_merge is Ward's agglomeration of the groups as point
    # masses: scipy's Ward linkage of each group's position repeated size times (the
    # repeats join at distance 0 first) cut at k clusters gives the same partition.
    rng = np.random.default_rng(seed)
    g = 9
    pos = rng.normal(size=(g, 2)) * 3
    sizes = rng.integers(1, 6, size=g)
    W = np.ones((g, g))
    points = np.repeat(pos, sizes, axis=0)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    link = scipy.cluster.hierarchy.linkage(points, method="ward")
    for k in range(1, g + 1):
        ref = scipy.cluster.hierarchy.fcluster(link, k, criterion="maxclust")[first]
        got = ward_merge(pos, sizes.astype(float), W, k)
        assert len(np.unique(got)) == k
        assert _same_partition(got, ref), (k, got, ref)


def test_ward_merge_joins_connected_pairs_first():
    # Groups at x = 0, 1, 10, 11; only 0 and 2 share graph weight. They join first although
    # they are the farthest apart of the near pairs; then no linked pair is left and Ward's
    # criterion alone decides: {0, 2} (size 2 at x = 5) with 1 costs 2/3 * 16, with 3 costs
    # 2/3 * 36, and 1 with 3 costs 1/2 * 100.
    pos = np.array([[0.0], [1.0], [10.0], [11.0]])
    sizes = np.ones(4)
    W = np.eye(4)
    W[0, 2] = W[2, 0] = 1.0
    assert list(ward_merge(pos, sizes, W, 3)) == [0, 1, 0, 2]
    assert list(ward_merge(pos, sizes, W, 2)) == [0, 0, 0, 1]
    # with every pair linked, geometry alone: {0, 1} and {2, 3}
    assert list(ward_merge(pos, sizes, np.ones((4, 4)), 2)) == [0, 0, 1, 1]


def test_ward_merge_group_without_points_costs_nothing():
    pos = np.array([[0.0], [5.0], [100.0]])
    got = ward_merge(pos, np.array([3.0, 0.0, 2.0]), np.ones((3, 3)), 2)
    # the empty group joins at zero cost wherever it lies; the two real groups stay apart
    assert got[0] != got[2]


def test_breast_cancer_fit_merges_by_ward_not_by_modularity(caplog):
    A, sub = _block_graph(CANCER_W, CANCER_COUNTS)
    off = CANCER_W.sum() - np.trace(CANCER_W)
    assert off / CANCER_W.sum() > MIXED_WEIGHT  # 0.184: the groups are not communities
    greedy = merge_subclusters(sub, A, 2, 6, refine=False)
    by_modularity = merge_subclusters(sub, A, 2, 6)
    with caplog.at_level(logging.INFO, logger="uec.merge"):
        by_ward = merge_subclusters(sub, A, 2, 6, positions=CANCER_POS)
    assert "by Ward's criterion" in caplog.text
    # the blob cut in half, the arm given to one half; the refinement reaches the partition of
    # highest modularity (0.429 against 0.409 for the classes' one), which still cuts the blob
    assert _same_partition(greedy, [0, 0, 1, 1, 1, 0])
    assert _same_partition(by_modularity, [0, 1, 0, 1, 0, 1])
    assert _same_partition(by_ward, [0, 1, 1, 1, 0, 1])  # the malignant arm apart

    def acc(mapping):
        return clustering_accuracy(np.repeat([0, 1], CANCER_CLASSES.sum(axis=1)),
                                   np.concatenate([np.repeat(mapping, CANCER_CLASSES[c])
                                                   for c in range(2)]))

    assert acc(greedy) < 0.6
    assert acc(by_modularity) < 0.85
    assert acc(by_ward) > 0.93


def test_communities_keep_the_modularity_merge_whatever_the_positions():
    # The MNIST fit's 13 groups share 3% of their weight: positions change nothing.
    A, sub = _block_graph(MNIST_W, MNIST_COUNTS)
    assert (MNIST_W.sum() - np.trace(MNIST_W)) / MNIST_W.sum() < MIXED_WEIGHT
    plain = merge_subclusters(sub, A, 10, 13)
    rng = np.random.default_rng(0)
    for _ in range(3):
        pos = rng.normal(size=(13, 2)) * 10
        assert np.array_equal(merge_subclusters(sub, A, 10, 13, positions=pos), plain)


@pytest.mark.parametrize("share, ward", [(0.09, False), (0.11, True)])
def test_mixed_weight_threshold(share, ward):
    # Three equal groups; every merge lowers modularity (pair weight below the inner weight).
    # Modularity joins 0 and 1 (their pair weight is the largest); Ward joins 0 and 2, the
    # closest. Which one happens depends only on the share of weight between the groups.
    d = 1000.0
    w = d * share / (2.0 * (1.0 - share))  # 6w / (3d + 6w) == share
    Wg = np.array([[d, 1.01 * w, w], [1.01 * w, d, w], [w, w, d]])
    A, sub = _block_graph(Wg, [30, 30, 30])
    pos = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0]])
    got = merge_subclusters(sub, A, 2, 3, positions=pos)
    assert list(got) == ([0, 1, 0] if ward else [0, 0, 1])


@pytest.mark.parametrize("seed", [3, 5, 7])
def test_breast_cancer_end_to_end(seed):
    # The seeds where modularity's merge gave ACC 0.56-0.59; k-means on the same standardised
    # features gives 0.91.
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    labels = UEC(n_clusters=2, random_state=seed, n_jobs=1).fit_predict(X)
    km = KMeans(2, n_init=10, random_state=0).fit_predict(X)
    assert clustering_accuracy(y, labels) > 0.93
    assert clustering_accuracy(y, labels) > clustering_accuracy(y, km)


def test_subcluster_positions_are_means_or_the_centre_of_an_empty_one():
    from uec.estimator import _subcluster_positions

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 3)).astype(np.float32)
    labels = rng.integers(0, 4, size=500)  # sub-cluster 4 has no points
    centres = rng.normal(size=(5, 3)).astype(np.float32)
    labels[:7] = 5  # a piece cut off: group 5, past the centres' rows
    got = _subcluster_positions(Z, labels, centres, 6)
    ref = [Z[labels == g].astype(np.float64).mean(axis=0) for g in (0, 1, 2, 3, 5)]
    assert got.dtype == np.float64 and got.shape == (6, 3)
    np.testing.assert_allclose(got[[0, 1, 2, 3, 5]], ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[4], centres[4].astype(np.float64))
