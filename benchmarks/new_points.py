"""Throughput for new points: UEC.predict / UEC.transform against umap-learn's transform and
pynndescent's query, in one run on the same split.

    python benchmarks/new_points.py                       # MNIST: 60,000 fitted, 10,000 new
    python benchmarks/new_points.py --n-train 20000 --n-new 5000 --threads 2

Both models are fitted on the first ``--n-train`` MNIST images (``uec.datasets.load_mnist``;
``UEC(n_clusters=10, random_state=0)`` and ``umap.UMAP(random_state=0)``), untimed, then each
new-point call is timed once after a warm-up call on 200 rows (numba's JIT and our first
imports are not timed): UEC's ``predict`` (kNN search of the training rows and the neighbours'
vote) and ``transform`` (search, then placement epochs), umap-learn's ``transform`` (its
search, then its placement epochs), and pynndescent's ``query`` (the search alone, 15
neighbours, its default epsilon) of an ``NNDescent(n_neighbors=30)`` index of the training
rows, built untimed (umap-learn's transform searches such an index too). Printed: seconds and rows per second of
each, the ratios of UEC's calls to umap-learn's transform and to pynndescent's query, and the
held-out ACC of ``predict`` (labels only score). Threads: ``--threads`` for every library
(numba, OpenMP, BLAS), set before the imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "new_points.json"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=60_000)
    ap.add_argument("--n-new", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(OUT))
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    from uec import UEC
    from uec.datasets import find_mnist, load_mnist
    from uec.metrics import clustering_accuracy

    if find_mnist() is None:
        print("MNIST absent (set UEC_MNIST or put ../shared/data/mnist.npz): nothing to do")
        return 0
    import umap

    X, y = load_mnist()
    X = np.asarray(X, dtype=np.float32)
    train, new = slice(0, args.n_train), slice(args.n_train, args.n_train + args.n_new)
    Xtr, ytr, Xnew, ynew = X[train], y[train], X[new], y[new]

    t0 = time.perf_counter()
    model = UEC(n_clusters=10, random_state=0, n_jobs=args.threads).fit(Xtr)
    uec_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    reducer = umap.UMAP(random_state=0, n_jobs=args.threads).fit(Xtr)
    umap_fit = time.perf_counter() - t0
    import pynndescent

    # pynndescent's own index of the training rows (umap-learn keeps one only above 4,096 rows)
    index = pynndescent.NNDescent(Xtr, n_neighbors=30, random_state=0, n_jobs=args.threads)
    index.prepare()

    calls = {
        "uec predict": lambda A: model.predict(A),
        "uec transform": lambda A: model.transform(A),
        "umap-learn transform": lambda A: reducer.transform(A),
        "pynndescent query": lambda A: index.query(A, k=15),
    }
    rows, outputs = {}, {}
    for name, call in calls.items():
        call(Xnew[:200])  # warm-up: JIT, first imports
        t0 = time.perf_counter()
        outputs[name] = call(Xnew)
        seconds = time.perf_counter() - t0
        rows[name] = dict(seconds=seconds, rows_per_s=len(Xnew) / seconds)
    acc = float(clustering_accuracy(ynew, outputs["uec predict"]))
    print(f"MNIST: {args.n_train} fitted (UEC {uec_fit:.1f} s, umap-learn {umap_fit:.1f} s), "
          f"{args.n_new} new rows, {args.threads} threads")
    print(f"{'call':<22} {'seconds':>8} {'rows/s':>9} {'/ umap transform':>17} "
          f"{'/ pynndescent query':>20}")
    ref_t, ref_q = rows["umap-learn transform"]["seconds"], rows["pynndescent query"]["seconds"]
    for name, r in rows.items():
        print(f"{name:<22} {r['seconds']:>8.2f} {r['rows_per_s']:>9.0f} "
              f"{r['seconds'] / ref_t:>17.2f} {r['seconds'] / ref_q:>20.2f}")
    print(f"held-out ACC of uec predict: {acc:.3f}")
    report = dict(n_train=args.n_train, n_new=args.n_new, threads=args.threads,
                  uec_fit_s=uec_fit, umap_fit_s=umap_fit, calls=rows, predict_acc=acc)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
