"""New points: UEC.predict on a held-out split against umap-learn's transform + KMeans.predict.

    python benchmarks/transform_holdout.py --seeds 0 1 2 [--threads 1]

For each seed: an 80/20 stratified split of scikit-learn's digits; both models are fitted on
the 80%, then place the 20% with ``transform``. Reports Hungarian-matched ACC on the training
part (fit) and on the held-out part (predict), the displacement of the training points when
transformed again (median and 95th percentile, as a fraction of the layout's width), and the
transform time of the held-out part. umap-learn's clusters are KMeans on its embedding.
"""

import argparse
import json
import os
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def displacement(Z_again, Z):
    span = np.ptp(Z, axis=0).max()
    d = np.linalg.norm(Z_again - Z, axis=1) / span
    return float(np.median(d)), float(np.percentile(d, 95))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))

    import umap

    from uec import UEC
    from uec.metrics import clustering_accuracy as acc

    X, y = load_digits(return_X_y=True)
    rows = []
    for seed in args.seeds:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
        m = UEC(n_clusters=10, random_state=seed, n_jobs=args.threads).fit(Xtr)
        t0 = time.perf_counter()
        pred = m.predict(Xte)
        t_uec = time.perf_counter() - t0
        med, p95 = displacement(m.transform(Xtr[:-1]), m.embedding_[:-1])
        rows.append(dict(model="uec (defaults)", seed=seed, acc_fit=acc(ytr, m.labels_),
                         acc_heldout=acc(yte, pred), disp_median=med, disp_p95=p95,
                         predict_s=t_uec))

        u = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1).fit(Xtr)
        km = KMeans(10, n_init=10, random_state=seed).fit(u.embedding_)
        t0 = time.perf_counter()
        pred_u = km.predict(u.transform(Xte))
        t_umap = time.perf_counter() - t0
        # Xtr[:-1]: umap-learn returns embedding_ unchanged for the exact training array
        med, p95 = displacement(u.transform(Xtr[:-1]), u.embedding_[:-1])
        rows.append(dict(model="umap-learn + KMeans", seed=seed, acc_fit=acc(ytr, km.labels_),
                         acc_heldout=acc(yte, pred_u), disp_median=med, disp_p95=p95,
                         predict_s=t_umap))

    print("| model | seed | ACC fit (80%) | ACC predict (20%) | displacement median / p95 | predict s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['seed']} | {r['acc_fit']:.3f} | {r['acc_heldout']:.3f} | "
              f"{r['disp_median']:.4f} / {r['disp_p95']:.4f} | {r['predict_s']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
