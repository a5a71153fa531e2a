"""UEC on features that are themselves an embedding (PCA scores, an autoencoder's codes): the
default (``refine="auto"``) against the graph's labels alone (``refine=None``), with BIC's
gain from two Gaussians per cluster (``uec.refine.split_gain``) that decides whether the
refinement runs (docs/design.md §2.6 step 6).

    PYTHONPATH=benchmarks python benchmarks/embedded_features.py [--cases ...] [--seeds 0 1 2]
        [--json PATH]

Cases: ``mnist-pca50`` (MNIST 70k as 50 PCA scores), ``mnist20k-pca{50,20,10}`` (the suite's
20k rows), ``digits-pca{10,20}``, ``coil20-pca10``, ``digits-ae`` (``AutoEncoder(n_epochs=35,
random_state=seed)`` codes, 10-d). PCA is scikit-learn's ``PCA(m, svd_solver="full")`` on the
set as ``_data.load`` gives it. Sets that cannot be loaded (MNIST, ../shared) are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import numpy as np

from _data import Unavailable, load

CASES = ("mnist-pca50", "mnist20k-pca50", "mnist20k-pca20", "mnist20k-pca10", "digits-pca10",
         "digits-pca20", "coil20-pca10", "digits-ae")


def features(case, seed):
    """X (float64) and y of a case; the autoencoder's codes depend on ``seed``."""
    base, _, kind = case.rpartition("-")
    X, y = load(base)
    X = np.asarray(X, dtype=np.float64)
    if kind == "ae":
        from uec import AutoEncoder

        return AutoEncoder(n_epochs=35, random_state=seed).fit_transform(X), y
    from sklearn.decomposition import PCA

    return PCA(int(kind[3:]), svd_solver="full").fit_transform(X), y


def run_case(case, seeds, n_jobs):
    from uec import UEC, refine
    from uec.metrics import clustering_accuracy

    rows = []
    for seed in seeds:
        X, y = features(case, seed)
        k = int(np.unique(y).size)
        record = {"case": case, "seed": seed, "n": int(X.shape[0]), "d": int(X.shape[1])}
        for name, params in (("graph", {"refine": None}), ("default", {})):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = UEC(n_clusters=k, random_state=seed, n_jobs=n_jobs, **params).fit(X)
            record[name] = float(clustering_accuracy(y, model.labels_))
            record[name + "_s"] = time.perf_counter() - t0
            if name == "graph":
                start = model.labels_
        record["gain"] = (refine.split_gain(X, start, k, 0) if refine.startable(X, start, k)
                          else None)
        rows.append(record)
        logging.info("%s seed %d: graph %.3f (%.1f s), default %.3f (%.1f s), gain %s", case,
                     seed, record["graph"], record["graph_s"], record["default"],
                     record["default_s"], record["gain"])
    return rows


def table(rows):
    lines = ["| features | n x d | `refine=None` | default | default s | BIC gain / row |",
             "|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        rs = [r for r in rows if r["case"] == case]
        gains = [r["gain"] for r in rs if r["gain"] is not None]
        gain = f"{min(gains):+.2f} .. {max(gains):+.2f}" if gains else "not identifiable"
        lines.append(f"| {case} | {rs[0]['n']:,} x {rs[0]['d']} | "
                     f"{np.mean([r['graph'] for r in rs]):.3f} | "
                     f"{np.mean([r['default'] for r in rs]):.3f} | "
                     f"{np.mean([r['default_s'] for r in rs]):.1f} | {gain} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for case in args.cases:
        try:
            rows += run_case(case, args.seeds, args.n_jobs)
        except Unavailable as exc:
            logging.info("%s skipped: %s", case, exc)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
