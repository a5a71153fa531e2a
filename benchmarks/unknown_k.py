"""Unknown number of clusters and noise: UEC(n_clusters=None) against HDBSCAN and EVoC with
their own counts, in one run.

    python benchmarks/unknown_k.py                      # every real set, seeds 0 1 2, + noise
    python benchmarks/unknown_k.py --sets iris digits --seeds 0 --parts k
    python benchmarks/unknown_k.py --reuse benchmarks/out/suite.json   # HDBSCAN runs reused

Part ``k`` (the suite's real sets, ``_data.py``): no method is told k.

- ``uec-auto``: ``UEC(random_state=seed, n_jobs=n_jobs)`` (n_clusters=None, the default).
- ``hdbscan``: ``hdbscan.HDBSCAN(min_samples=10, min_cluster_size=max(10, n // 100))`` on
  umap-learn's 2-d embedding (as in ``suite.py``); noise counts as one more cluster.
- ``evoc-auto``: ``evoc.EVoC(random_state=seed)`` with its defaults; noise likewise.

For each set: the true k, each method's count k_found (mean over seeds), the share of seeds
with |k_found - k| / k <= 0.25, and ARI; then the means over the sets. For uec-auto also the
seconds of ``labels_at(k)`` for every k from 2 to 3 x k_found, against the fit's seconds.

Part ``criteria`` (not run by default): the rule that chooses the count, compared on the
graph UEC builds for each set and seed (``uec.graph.build_graph``, 15 neighbours): the count
of Leiden communities at resolution 1 (modularity's optimum), the eigengap of the graph
between those communities (the default, ``uec.community.estimate_n_clusters``), and the same
eigengap between the communities each of them splits into (bounded by the first count); each
count is then clustered by ``uec.community.cluster_graph`` and scored by ARI, with the
leave-one-set-out check of the choice among the three.

Part ``noise``: 1,500 points of 4 blobs (``make_blobs``, 2-d and 10-d) plus 500 points
uniform over their bounding box, seeds 0 1 2: the share of the noise points and of the blob
points each method labels -1 (UEC with ``noise_threshold=0.5``; HDBSCAN and EVoC with their
defaults, on X), and the ARI of the blob points' labels. Beside them, the bound no method can
beat: the share of the noise that the likelihood ratio of the true densities flags when it
flags 5% of the blob points (the issue's bar), and when it flags as many as UEC did.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import REAL, available  # noqa: E402
from suite import Shared, fit, hdbscan_method, reusable, thread_limit  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "unknown_k.json"


def uec_auto(X, k, seed, n_jobs, shared):
    from uec import UEC

    model = UEC(random_state=seed, n_jobs=n_jobs)
    t0 = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for kk in range(2, 3 * model.n_clusters_ + 1):
        model.labels_at(kk)
    return model.labels_, {"labels_at_s": time.perf_counter() - t0, "fit_s": fit_s}


def evoc_auto(X, k, seed, n_jobs, shared):
    import evoc

    return evoc.EVoC(random_state=seed).fit_predict(X), {}


METHODS = {"uec-auto": uec_auto, "hdbscan": hdbscan_method, "evoc-auto": evoc_auto}


def part_k(sets, seeds, n_jobs, previous):
    results = {}
    for name, X, y in available(sets):
        k = int(y.max()) + 1
        old = reusable(previous, name, X, k)
        runs = []
        for seed in seeds:
            shared = Shared(X, seed)
            for method, run in METHODS.items():
                if method == "hdbscan" and (method, seed) in old:
                    runs.append({**old[(method, seed)], "reused": True})
                    continue
                with thread_limit(n_jobs):
                    runs.append(fit(method, run, X, y, k, seed, n_jobs, shared))
        results[name] = {"k": k, "n": int(X.shape[0]), "runs": runs}
        print(k_table({name: results[name]}, header=name == next(iter(results))), flush=True)
    return results


def _stats(entry, method):
    runs = [r for r in entry["runs"] if r["method"] == method and "error" not in r]
    if not runs:
        return None
    k = entry["k"]
    found = [r["k_found"] + (1 if r.get("noise") else 0) for r in runs]
    return {"k_found": float(np.mean(found)),
            "within": float(np.mean([abs(f - k) / k <= 0.25 for f in found])),
            "ari": float(np.mean([r["ari"] for r in runs])),
            "labels_at_share": (float(np.mean([r["labels_at_s"] / r["fit_s"] for r in runs]))
                                if "labels_at_s" in runs[0] else None)}


def k_table(results, header=True):
    lines = []
    if header:
        lines += ["| set | k | " + " | ".join(f"{m} k_found | {m} ARI" for m in METHODS)
                  + " | uec labels_at / fit |",
                  "|---|---|" + "---|---|" * len(METHODS) + "---|"]
    for name, entry in results.items():
        cells = [name, str(entry["k"])]
        for m in METHODS:
            s = _stats(entry, m)
            cells += ["-", "-"] if s is None else [f"{s['k_found']:.1f}", f"{s['ari']:.3f}"]
        s = _stats(entry, "uec-auto")
        cells.append("-" if s is None or s["labels_at_share"] is None
                     else f"{100 * s['labels_at_share']:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def k_summary(results):
    lines = ["", "| method | sets with abs(k_found - k) / k <= 0.25 (share of seeds, summed) "
             "| mean ARI |", "|---|---|---|"]
    for m in METHODS:
        stats = [s for s in (_stats(e, m) for e in results.values()) if s is not None]
        if not stats:
            lines.append(f"| {m} | no runs | - |")
            continue
        lines.append(f"| {m} | {sum(s['within'] for s in stats):.2f} of {len(stats)} | "
                     f"{np.mean([s['ari'] for s in stats]):.3f} |")
    return "\n".join(lines)


def _criteria_counts(graph, seed):
    import scipy.sparse
    import scipy.sparse.csgraph

    from uec.community import ClusterHierarchy, leiden, spectral_count
    from uec.merge import _group_weights

    G = scipy.sparse.csr_matrix(graph, dtype=np.float64)
    labels = leiden(G, 1.0, seed)
    c = int(labels.max()) + 1
    n_comp = scipy.sparse.csgraph.connected_components(G, directed=False)[0]
    eigengap = spectral_count(_group_weights(labels, G, c), floor=n_comp)
    h = ClusterHierarchy(labels, G, seed)
    h._split()
    pieces = h.piece_labels
    finer = min(c, spectral_count(_group_weights(pieces, G, int(pieces.max()) + 1),
                                  floor=n_comp))
    return {"modularity optimum": c, "eigengap (default)": eigengap,
            "eigengap of the split communities": finer}


def part_criteria(sets, seeds):
    from uec.community import cluster_graph
    from uec.graph import build_graph
    from uec.metrics import ari

    rows = {}
    for name, X, y in available(sets):
        k = int(y.max()) + 1
        runs = []
        for seed in seeds:
            n_epochs = 500 if X.shape[0] <= 10_000 else 200
            G = build_graph(X, 15, n_epochs, random_state=np.random.RandomState(seed),
                            n_jobs=1)[0]
            for rule, kk in _criteria_counts(G, seed).items():
                sub, mapping, _ = cluster_graph(G, kk, seed)
                runs.append({"rule": rule, "seed": seed, "k_found": int(kk),
                             "ari": float(ari(y, mapping[sub]))})
        rows[name] = {"k": k, "runs": runs}
        print("  " + name + ": " + ", ".join(
            f"{rule} k {np.mean([r['k_found'] for r in runs if r['rule'] == rule]):.1f} ARI "
            f"{np.mean([r['ari'] for r in runs if r['rule'] == rule]):.3f}"
            for rule in dict.fromkeys(r["rule"] for r in runs)), flush=True)
    return rows


def criteria_table(rows):
    rules = list(dict.fromkeys(r["rule"] for e in rows.values() for r in e["runs"]))
    ari_of = {(name, rule): np.mean([r["ari"] for r in e["runs"] if r["rule"] == rule])
              for name, e in rows.items() for rule in rules}
    lines = ["| set | k | " + " | ".join(f"{r}: k_found, ARI" for r in rules) + " |",
             "|---|---|" + "---|" * len(rules)]
    for name, e in rows.items():
        cells = [f"{np.mean([r['k_found'] for r in e['runs'] if r['rule'] == rule]):.1f}, "
                 f"{ari_of[(name, rule)]:.3f}" for rule in rules]
        lines.append(f"| {name} | {e['k']} | " + " | ".join(cells) + " |")
    means = [np.mean([ari_of[(n, rule)] for n in rows]) for rule in rules]
    lines.append("| **mean ARI** | | " + " | ".join(f"**{m:.3f}**" for m in means) + " |")
    lines += ["", "Leave one set out (the rule with the best mean ARI on the other sets, "
              "and its loss on the set left out against the best rule there):", ""]
    for name in rows:
        others = [n for n in rows if n != name]
        chosen = max(rules, key=lambda rule: np.mean([ari_of[(n, rule)] for n in others]))
        best = max(ari_of[(name, rule)] for rule in rules)
        loss = best - ari_of[(name, chosen)]
        lines.append(f"- {name}: {chosen}, loss {loss:.3f}" + (" (> 0.02)" if loss > 0.02 else ""))
    return "\n".join(lines)


def noisy_blobs(seed, n_features):
    from sklearn.datasets import make_blobs

    Xb, yb = make_blobs(1500, n_features=n_features, centers=4, random_state=seed)
    rng = np.random.RandomState(seed)
    Xn = rng.uniform(Xb.min(0), Xb.max(0), size=(500, n_features))
    return (np.vstack([Xb, Xn]).astype(np.float32),
            np.r_[np.zeros(1500, bool), np.ones(500, bool)], yb)


def likelihood_ratio_bound(seed, n_features, blob_share):
    """The share of the noise points that the most powerful test flags when it flags
    ``blob_share`` of the blob points: the likelihood ratio of the true densities (the
    uniform box against the four unit-variance blobs of ``make_blobs``), which no method can
    beat in expectation (Neyman-Pearson). The noise density is constant over the box, so the
    test flags the points of lowest blob density."""
    from scipy.special import logsumexp
    from sklearn.datasets import make_blobs

    X, noise, _ = noisy_blobs(seed, n_features)
    _, _, centres = make_blobs(1500, n_features=n_features, centers=4, random_state=seed,
                               return_centers=True)
    d2 = ((X.astype(np.float64)[:, None, :] - centres[None]) ** 2).sum(axis=-1)
    score = -logsumexp(-0.5 * d2, axis=1)  # minus the blob density's log, up to a constant
    threshold = np.quantile(score[~noise], 1.0 - blob_share)
    return float((score[noise] > threshold).mean())


def part_noise(seeds, n_jobs):
    import evoc
    import hdbscan
    from sklearn.metrics import adjusted_rand_score

    from uec import UEC

    rows = []
    for dim in (2, 10):
        for seed in seeds:
            X, noise, yb = noisy_blobs(seed, dim)
            fits = {
                "uec noise_threshold=0.5": lambda: UEC(noise_threshold=0.5, random_state=seed,
                                                       n_jobs=n_jobs).fit(X).labels_,
                "hdbscan": lambda: hdbscan.HDBSCAN().fit_predict(X),
                "evoc": lambda: evoc.EVoC(random_state=seed).fit_predict(X),
            }
            for method, f in fits.items():
                try:
                    with warnings.catch_warnings(), thread_limit(n_jobs):
                        warnings.simplefilter("ignore")
                        labels = np.asarray(f())
                except Exception as e:  # noqa: BLE001 - EVoC refuses 2-d input
                    rows.append({"dim": dim, "seed": seed, "method": method,
                                 "error": f"{type(e).__name__}: {str(e)[:120]}"})
                    print(f"  dim {dim} seed {seed} {method}: {rows[-1]['error']}", flush=True)
                    continue
                blob = labels[:1500]
                rows.append({"dim": dim, "seed": seed, "method": method,
                             "noise_flagged": float((labels[noise] < 0).mean()),
                             "blob_flagged": float((blob < 0).mean()),
                             "blob_ari": float(adjusted_rand_score(yb, blob))})
                r = rows[-1]
                print(f"  dim {dim} seed {seed} {method}: noise -1 {r['noise_flagged']:.3f}, "
                      f"blob -1 {r['blob_flagged']:.3f}, blob ARI {r['blob_ari']:.3f}",
                      flush=True)
            uec_share = next((r.get("blob_flagged") for r in rows[::-1] if r["dim"] == dim
                              and r["seed"] == seed and r["method"].startswith("uec")), None)
            for label, share in (("bound at 5% of the blob points", 0.05),
                                 ("bound at uec's share of the blob points", uec_share)):
                if share is not None:
                    rows.append({"dim": dim, "seed": seed, "method": label,
                                 "noise_flagged": likelihood_ratio_bound(seed, dim, share),
                                 "blob_flagged": float(share), "blob_ari": None})
    return rows


def noise_table(rows):
    lines = ["| dim | method | noise points labelled -1 | blob points labelled -1 | "
             "blob ARI |", "|---|---|---|---|---|"]
    for dim in (2, 10):
        for m in dict.fromkeys(r["method"] for r in rows):
            rs = [r for r in rows if r["dim"] == dim and r["method"] == m]
            if rs and all("error" in r for r in rs):
                lines.append(f"| {dim} | {m} | failed: {rs[0]['error']} | | |")
                continue
            rs = [r for r in rs if "error" not in r]
            if rs:
                lines.append(f"| {dim} | {m} | {np.mean([r['noise_flagged'] for r in rs]):.3f} "
                             f"| {np.mean([r['blob_flagged'] for r in rs]):.3f} "
                             + (f"| {np.mean([r['blob_ari'] for r in rs]):.3f} |"
                                if rs[0]["blob_ari"] is not None else "| — |"))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(REAL), choices=list(REAL), metavar="SET")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--parts", nargs="+", default=["k", "noise"],
                    choices=["k", "noise", "criteria"])
    ap.add_argument("--reuse", type=Path, help="a suite.py JSON whose HDBSCAN runs are reused")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args(argv)
    previous = json.loads(args.reuse.read_text()) if args.reuse else None
    out = {"command": " ".join([sys.executable, *sys.argv]), "seeds": args.seeds}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if "k" in args.parts:
        out["k"] = part_k(args.sets, args.seeds, args.n_jobs, previous)
        print(k_summary(out["k"]), flush=True)
        args.json.write_text(json.dumps(out, indent=1))
    if "criteria" in args.parts:
        sets = [s for s in args.sets if s != "mnist"]  # 70k left out: its 20k sample stays
        out["criteria"] = part_criteria(sets, args.seeds)
        print("\n" + criteria_table(out["criteria"]), flush=True)
        args.json.write_text(json.dumps(out, indent=1))
    if "noise" in args.parts:
        out["noise"] = part_noise(args.seeds, args.n_jobs)
        print("\n" + noise_table(out["noise"]), flush=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
