"""kNN search of UEC.fit: our NN-descent (uec._knn) against pynndescent with the same settings
uec.graph used for it (n_trees, n_iters, max_candidates=60), on the same data and threads.

For each data set and thread count: wall time (best of --repeats, the two alternating) and
recall@15 against exact brute force on 1,000 random rows (a returned neighbour counts when its
true distance is within the true 15th smallest, the point itself included). pynndescent's
numba JIT compile time, paid once per process, is measured separately by a warm-up call on tiny
data, and the ratios are given with and without it. Then the search for new points (MNIST:
60,000 training rows, 2,000 new ones): our graph search against pynndescent's query (epsilon
0.12, as uec's transform used), first call (search graph, and for pynndescent its compile and
prepare) and best of the next ones.

    python benchmarks/knn.py [--data mnist,manifold] [--threads 1,2] [--repeats 2]
                             [--out benchmarks/out/knn.json]

The machine may be shared: the load average is recorded before and after, and only ratios
measured in the same run are meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from uec import _knn
from uec.datasets import find_mnist, load_mnist, make_manifold_clusters
from uec.graph import nearest_neighbors

K = 15


def load(name):
    if name == "mnist":
        path = find_mnist()
        if path is None or not Path(path).exists():
            raise SystemExit("MNIST not found (set UEC_MNIST or put it in ../shared/data/mnist.npz)")
        X, _ = load_mnist(path)
        return np.ascontiguousarray(X, dtype=np.float32)
    if name == "manifold":
        X, _ = make_manifold_clusters(100_000, 20, 50, random_state=0)
        return np.ascontiguousarray(X, dtype=np.float32)
    raise SystemExit(f"unknown data set {name!r}")


def exact_kth(X, rows, k=K, chunk=250):
    """True squared distance of the k-th nearest point (the point itself included) of X[rows]."""
    Xd = X.astype(np.float64)
    sq = (Xd**2).sum(1)
    out = np.empty(len(rows))
    for s in range(0, len(rows), chunk):
        q = Xd[rows[s : s + chunk]]
        d2 = (q**2).sum(1)[:, None] + sq[None] - 2.0 * q @ Xd.T
        d2[np.arange(len(q)), rows[s : s + chunk]] = 0.0
        out[s : s + chunk] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return out


def recall(X, indices, rows, kth):
    Xd = X.astype(np.float64)
    found = ((Xd[rows, None, :] - Xd[indices[rows]]) ** 2).sum(-1)
    return float(np.mean(found <= kth[:, None] * (1 + 1e-5) + 1e-9))


def pynndescent_knn(X, seed, n_jobs):
    """What uec.graph.nearest_neighbors ran for dense euclidean data before uec._knn."""
    import pynndescent

    n = X.shape[0]
    index = pynndescent.NNDescent(
        X, n_neighbors=K, metric="euclidean", random_state=seed,
        n_trees=min(64, 5 + int(round(n**0.5 / 20.0))), n_iters=max(5, int(round(np.log2(n)))),
        max_candidates=60, low_memory=True, n_jobs=n_jobs, compressed=False, verbose=False,
    )
    return index.neighbor_graph[0], index


def ours_knn(X, seed, n_jobs):
    indices, _, index = nearest_neighbors(X, K, random_state=seed, n_jobs=n_jobs, exact=False,
                                          return_index=True)
    return indices, index


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def machine():
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist,manifold")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--no-search", action="store_true", help="skip the new-point search part")
    ap.add_argument("--out", default="benchmarks/out/knn.json")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    import numba
    import pynndescent

    result = {"machine": machine(), "load_before": os.getloadavg(), "pynndescent": pynndescent.__version__,
              "numba": numba.__version__, "rows": [], "search": None}

    # pynndescent's JIT: a warm-up on tiny data compiles what the NN-descent uses
    tiny = np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32)
    compile_s, _ = timed(pynndescent_knn, tiny, 0, 1)
    result["pynndescent_compile_s"] = compile_s
    print(f"pynndescent JIT compile (warm-up on 300 x 10): {compile_s:.1f} s")

    for name in args.data.split(","):
        X = load(name)
        rows = np.sort(np.random.default_rng(0).choice(X.shape[0], args.queries, replace=False))
        kth = exact_kth(X, rows)
        for t in threads:
            times = {"ours": [], "pynndescent": []}
            recalls = {}
            for _ in range(args.repeats):
                for method, fn in (("ours", ours_knn), ("pynndescent", pynndescent_knn)):
                    el, (indices, _) = timed(fn, X, 0, t)
                    times[method].append(el)
                    recalls[method] = recall(X, np.asarray(indices), rows, kth)
            row = {"data": name, "n": X.shape[0], "d": X.shape[1], "threads": t,
                   "ours_s": min(times["ours"]), "pynndescent_s": min(times["pynndescent"]),
                   "ours_all_s": times["ours"], "pynndescent_all_s": times["pynndescent"],
                   "recall_ours": recalls["ours"], "recall_pynndescent": recalls["pynndescent"]}
            row["ratio"] = row["pynndescent_s"] / row["ours_s"]
            row["ratio_with_compile"] = (row["pynndescent_s"] + compile_s) / row["ours_s"]
            result["rows"].append(row)
            print(f"{name:9s} {X.shape[0]:>7d} x {X.shape[1]:<4d} threads {t}: ours {row['ours_s']:.2f} s "
                  f"(recall {row['recall_ours']:.4f}), pynndescent {row['pynndescent_s']:.2f} s "
                  f"(recall {row['recall_pynndescent']:.4f}): x{row['ratio']:.2f}, "
                  f"x{row['ratio_with_compile']:.2f} with its compile", flush=True)

    if not args.no_search and "mnist" in args.data.split(","):
        X = load("mnist")
        train, new = X[:60_000], np.ascontiguousarray(X[60_000:62_000])
        t = max(threads)
        Td, Nd = train.astype(np.float64), new.astype(np.float64)
        d2 = (Nd**2).sum(1)[:, None] + (Td**2).sum(1)[None] - 2.0 * Nd @ Td.T
        kth_new = np.partition(d2, K - 1, axis=1)[:, K - 1]
        del d2
        _, (_, ours_index) = timed(ours_knn, train, 0, t)
        _, (_, pynn_index) = timed(pynndescent_knn, train, 0, t)
        search = {"train": train.shape[0], "new": new.shape[0], "threads": t}
        for method, query in (
            ("ours", lambda: ours_index.query(train, new, K, n_jobs=t)[0]),
            ("pynndescent", lambda: pynn_index.query(new, k=K, epsilon=0.12)[0]),
        ):
            first, indices = timed(query)
            later = min(timed(query)[0] for _ in range(3))
            found = ((Nd[:, None, :] - Td[np.asarray(indices)]) ** 2).sum(-1)
            rec = float(np.mean(found <= kth_new[:, None] * (1 + 1e-5) + 1e-9))
            search[method] = {"first_s": first, "s": later, "recall": rec}
            print(f"search {method:11s}: first call {first:.2f} s, then {later:.3f} s, recall {rec:.4f}")
        search["ratio"] = search["pynndescent"]["s"] / search["ours"]["s"]
        search["ratio_first"] = search["pynndescent"]["first_s"] / search["ours"]["first_s"]
        result["search"] = search

    result["load_after"] = os.getloadavg()
    print()
    print("| data | n x d | threads | ours (s) | pynndescent (s) | ratio | ratio incl. JIT | recall ours | recall pynndescent |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['data']} | {r['n']:,} x {r['d']} | {r['threads']} | {r['ours_s']:.2f} | "
              f"{r['pynndescent_s']:.2f} | {r['ratio']:.2f} | {r['ratio_with_compile']:.1f} | "
              f"{r['recall_ours']:.4f} | {r['recall_pynndescent']:.4f} |")
    print(f"\npynndescent JIT compile: {compile_s:.1f} s; load average before {result['load_before']}, "
          f"after {result['load_after']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
