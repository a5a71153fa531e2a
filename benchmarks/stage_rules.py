"""Clustering-stage rules compared on the graph alone: which partition of UEC's fuzzy graph at
the true k, by which rule, scores best on the suite's sets.

    python benchmarks/stage_rules.py                              # every real set, seeds 0 1 2
    python benchmarks/stage_rules.py --sets iris olive-area --seeds 0
    python benchmarks/stage_rules.py --suite benchmarks/out/suite.json   # + the best baseline

The default graph stage labels the points from the fuzzy kNN graph only (the layout does not
enter), so a rule can be compared without a fit: for each set (``_data.py``) and seed the
graph is built as ``UEC`` builds it (``uec.graph.build_graph``, 15 neighbours, the fit's
pruning) and each rule partitions it into k clusters:

- ``current``: ``uec.community.cluster_graph`` (Leiden at resolution 1, merged along the graph
  by ``uec.merge``), the default stage.
- ``modularity-k``: Leiden (modularity), resolution bisected geometrically in [1e-3, 1e2]
  until there are k communities (more than k left over: merged as ``current`` merges).
- ``cpm-k``: the same with the constant Potts model (resolution-limit free), in [1e-7, 1].
- ``spectral-groups``: the Leiden communities at resolution 1 clustered by spectral
  clustering of the graph between them (k-means, weighted by volume, on the top k
  eigenvectors of D^-1/2 W D^-1/2, rows normalised).
- ``greedy-gamma``: the same communities merged greedily by modularity gain at the resolution
  (bisected) at which the merges stop at k, then no rule.
- ``cosine``: ``current`` on the graph of the cosine distance (another view of the same data).
- ``union-max``: ``current`` on the elementwise maximum of the euclidean and cosine graphs.
- ``union-max-cpm-k``: ``cpm-k`` on that graph.
- ``ratio``: the Leiden communities at resolution 1 merged by ``uec.merge.ratio_merge`` alone
  (observed over expected weight between groups, no modularity and no other rule).
- ``view-modularity``: ``current`` on the euclidean or the cosine graph, whichever partition
  at k has the higher modularity on its own graph (an internal criterion to choose the view).

Printed: ACC per set (means over seeds), the mean over the real sets, and the
leave-one-set-out choice among the rules (chosen by the mean over the other real sets). With
``--suite``, the best baseline of each set from a suite JSON (its peers' mean ACC) is shown
beside. JSON to benchmarks/out/stage_rules.json (``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import HOLDOUT, REAL, available  # noqa: E402
from suite import loso_choices  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "stage_rules.json"
RULES = ("current", "modularity-k", "cpm-k", "spectral-groups", "greedy-gamma", "cosine",
         "union-max", "union-max-cpm-k", "ratio", "view-modularity")
COSINE_RULES = {"cosine", "union-max", "union-max-cpm-k", "view-modularity"}
BASELINES = ("umap2d-gmm", "n2d", "leiden", "spectral", "evoc")
BISECTION_STEPS = 40


def graph_of(X, seed, metric="euclidean"):
    from uec.graph import build_graph

    n = X.shape[0]
    graph, _, _ = build_graph(np.asarray(X, dtype=np.float32), min(15, n - 1),
                              500 if n <= 10_000 else 200, metric=metric,
                              random_state=np.random.RandomState(seed), n_jobs=1)
    return scipy.sparse.csr_matrix(graph, dtype=np.float64)


def leiden_at(g, objective, resolution, seed):
    from uec.community import leiden

    return leiden(None, resolution, seed, _g=g, objective=objective)


def cpm_k(graph, k, seed):
    """The constant Potts model's partition at k, as the refinement's second start makes it
    (``uec.community.cpm_partition``: resolution bisected in [1e-7, 1])."""
    from uec.community import cpm_partition

    sub, mapping, _ = cpm_partition(graph, k, seed)
    return mapping[sub]


def bisected(graph, k, seed, objective, lo, hi):
    """The partition with k communities by ``objective``, the resolution bisected in log scale
    (the closest count above k merged down by uec.merge when k is not hit)."""
    from uec.community import _CSR
    from uec.merge import merge_subclusters

    g = _CSR(graph)
    lo, hi = np.log(lo), np.log(hi)
    seen = []
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        labels = leiden_at(g, objective, np.exp(mid), seed)
        c = int(labels.max()) + 1
        if c == k:
            return labels
        seen.append((abs(c - k), c < k, labels))
        if c > k:
            hi = mid
        else:
            lo = mid
    above = [s for s in seen if not s[1]]
    labels = min(above or seen, key=lambda s: s[0])[2]
    if labels.max() + 1 > k:
        labels = merge_subclusters(labels, graph, k)[labels]
    return labels


def spectral_groups(graph, k, seed):
    from sklearn.cluster import KMeans

    from uec.community import leiden
    from uec.merge import _group_weights

    groups = leiden(graph, 1.0, seed)
    c = int(groups.max()) + 1
    if c <= k:
        return groups
    W = _group_weights(groups, graph, c)
    d = W.sum(axis=1)
    d = np.where(d > 0, d, 1.0)
    _, V = np.linalg.eigh(W / np.sqrt(np.outer(d, d)))
    U = V[:, ::-1][:, :k]
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
    km = KMeans(k, n_init=10, random_state=seed).fit(U, sample_weight=d)
    return km.labels_[groups]


def _greedy_stop(W, gamma):
    """Greedy merges by modularity gain at ``gamma`` while some gain is positive."""
    c = W.shape[0]
    W = W.copy()
    vol = W.sum(axis=1)
    m2 = vol.sum()
    alive = np.ones(c, dtype=bool)
    root = np.arange(c)
    while alive.sum() > 1:
        idx = np.flatnonzero(alive)
        S = W[np.ix_(idx, idx)] - gamma * np.outer(vol[idx], vol[idx]) / m2
        np.fill_diagonal(S, -np.inf)
        i, j = np.unravel_index(int(np.argmax(S)), S.shape)
        if S[i, j] <= 0:
            break
        a, b = idx[i], idx[j]
        W[a] += W[b]
        W[:, a] += W[:, b]
        vol[a] += vol[b]
        alive[b] = False
        root[root == b] = a
    return np.unique(root, return_inverse=True)[1]


def greedy_gamma(graph, k, seed):
    from uec.community import leiden
    from uec.merge import _group_weights

    groups = leiden(graph, 1.0, seed)
    c = int(groups.max()) + 1
    if c <= k:
        return groups
    W = _group_weights(groups, graph, c)
    lo, hi = 1e-4, 1.0
    mapping = _greedy_stop(W, hi)
    if mapping.max() + 1 <= k:
        return mapping[groups]
    for _ in range(50):
        mid = float(np.sqrt(lo * hi))
        mapping = _greedy_stop(W, mid)
        if mapping.max() + 1 == k:
            break
        if mapping.max() + 1 > k:
            hi = mid
        else:
            lo = mid
    else:
        mapping = _greedy_stop(W, hi)
    return mapping[groups]


def current(graph, k, seed):
    from uec.community import cluster_graph

    sub, mapping, _ = cluster_graph(graph, k, random_state=seed)
    return mapping[sub]


def ratio(graph, k, seed):
    from uec.community import communities
    from uec.merge import _group_weights, ratio_merge

    groups, _ = communities(graph, k, random_state=seed)
    c = int(groups.max()) + 1
    if c <= k:
        return groups
    return ratio_merge(_group_weights(groups, graph, c), k)[groups]


def view_by_modularity(G, Gc, k, seed):
    from uec.community import modularity

    on_euclidean, on_cosine = current(G, k, seed), current(Gc, k, seed)
    return on_euclidean if modularity(G, on_euclidean) >= modularity(Gc, on_cosine) else on_cosine


def run_set(X, y, seeds, rules):
    from uec.metrics import clustering_accuracy

    k = len(np.unique(y))
    out = {r: [] for r in rules}
    for seed in seeds:
        G = graph_of(X, seed)
        Gc = graph_of(X, seed, "cosine") if COSINE_RULES & set(rules) else None
        Gu = scipy.sparse.csr_matrix(G.maximum(Gc)) if Gc is not None else None
        make = {
            "current": lambda: current(G, k, seed),
            "modularity-k": lambda: bisected(G, k, seed, "modularity", 1e-3, 1e2),
            "cpm-k": lambda: cpm_k(G, k, seed),
            "spectral-groups": lambda: spectral_groups(G, k, seed),
            "greedy-gamma": lambda: greedy_gamma(G, k, seed),
            "cosine": lambda: current(Gc, k, seed),
            "union-max": lambda: current(Gu, k, seed),
            "union-max-cpm-k": lambda: cpm_k(Gu, k, seed),
            "ratio": lambda: ratio(G, k, seed),
            "view-modularity": lambda: view_by_modularity(G, Gc, k, seed),
        }
        for r in rules:
            t0 = time.perf_counter()
            labels = make[r]()
            out[r].append({"seed": seed, "acc": float(clustering_accuracy(y, labels)),
                           "seconds": time.perf_counter() - t0})
    return out


def best_baselines(path):
    """Each set's best baseline mean ACC in a suite JSON (``suite.py``)."""
    data = json.loads(Path(path).read_text())
    best = {}
    for name, entry in data["sets"].items():
        means = []
        for m in BASELINES:
            accs = [r["acc"] for r in entry["runs"] if r.get("method") == m and "acc" in r]
            if accs:
                means.append(float(np.mean(accs)))
        if means:
            best[name] = max(means)
    return best


def table(results, rules, best=None):
    lines = ["| set | " + " | ".join(rules) + (" | best baseline |" if best else " |"),
             "|---" * (len(rules) + 1 + bool(best)) + "|"]
    means = {r: [] for r in rules}
    for name, runs in results.items():
        row = {r: float(np.mean([x["acc"] for x in runs[r]])) for r in rules}
        for r in rules:
            means[r].append(row[r])
        top = max(row.values())
        cells = [f"**{row[r]:.3f}**" if row[r] == top else f"{row[r]:.3f}" for r in rules]
        extra = f" | {best[name]:.3f}" if best and name in best else (" | —" if best else "")
        lines.append(f"| {name} | " + " | ".join(cells) + extra + " |")
    lines.append("| **mean** | " + " | ".join(f"{np.mean(means[r]):.3f}" for r in rules)
                 + (f" | {np.mean([best[n] for n in results if n in best]):.3f}" if best else "")
                 + " |")
    return "\n".join(lines)


def loso(results, rules):
    acc = {n: {r: float(np.mean([x["acc"] for x in runs[r]])) for r in rules}
           for n, runs in results.items()}
    lines = ["| held-out set | chosen on the others | its ACC | best rule on it | ACC | loss |",
             "|---|---|---|---|---|---|"]
    losses = []
    for name, chosen, top, loss in loso_choices(acc, rules):
        row = acc[name]
        losses.append(loss)
        lines.append(f"| {name} | {chosen} | {row[chosen]:.3f} | {top} | {row[top]:.3f} | "
                     f"{losses[-1]:.3f} |")
    lines.append(f"\nMean loss {np.mean(losses):.4f}, largest {max(losses):.3f}; "
                 f"{sum(loss > 0.02 for loss in losses)} of {len(losses)} sets lose more than 0.02.")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(REAL), metavar="SET",
                    help="default: the real sets; the held-out sets: " + " ".join(HOLDOUT))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES, metavar="RULE")
    ap.add_argument("--suite", metavar="PATH", help="suite JSON for the best baseline per set")
    ap.add_argument("--json", default=str(OUT))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    results = {}
    for name, X, y in available(args.sets):
        t0 = time.perf_counter()
        results[name] = run_set(X, np.asarray(y), args.seeds, args.rules)
        print(f"{name}: " + ", ".join(
            f"{r} {np.mean([x['acc'] for x in results[name][r]]):.3f}" for r in args.rules)
            + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"seeds": args.seeds, "sets": results}, indent=1))
    best = best_baselines(args.suite) if args.suite else None
    print("\n**ACC at the true k, by rule (means over seeds " +
          ", ".join(map(str, args.seeds)) + ")**\n")
    print(table(results, args.rules, best))
    print("\n**Leave-one-set-out choice among the rules**\n")
    print(loso(results, args.rules))


if __name__ == "__main__":
    main()
