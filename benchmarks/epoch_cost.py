"""Cost of one epoch of each variant on the same graph, initial embedding and centres.

Prints a table of milliseconds per epoch and the ratio to light plus, and writes JSON. The plus
variant's exact gradient costs one extra O(n*C) stats pass per epoch; the published
implementation's plus was 10-20x slower than its light plus.

    python benchmarks/epoch_cost.py [--data digits|mnist|synthetic] [--n 20000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from uec import _core
from uec._modes import CENTRE_UPDATE
from uec.graph import build_graph, epochs_per_sample, find_ab_params
from uec.init import initial_centres, initial_embedding

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist.npz"


def load(name, n, seed):
    if name == "digits":
        from sklearn.datasets import load_digits

        X, _ = load_digits(return_X_y=True)
        return X.astype(np.float32), 10
    if name == "mnist":
        if not MNIST.exists():
            raise SystemExit(f"MNIST not found at {MNIST} (it lives in ../shared/data beside the checkout)")
        with np.load(MNIST) as f:
            X = f["X"][:n].astype(np.float32) / 255.0
        return X, 10
    rng = np.random.default_rng(seed)
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=50, centers=20, cluster_std=2.0, random_state=seed)
    return X.astype(np.float32) + rng.normal(scale=0.1, size=X.shape).astype(np.float32), 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", choices=["digits", "mnist", "synthetic"])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-components", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--centre-update", default="fixed_point", choices=sorted(CENTRE_UPDATE),
                    help="the joint variants' centre update (default: UEC's, fixed_point)")
    ap.add_argument("--out", default="benchmarks/out/epoch_cost.json")
    args = ap.parse_args()

    X, C = load(args.data, args.n, 0)
    n_total = 200
    graph, _, _ = build_graph(X, 15, n_total, random_state=0)
    a, b = find_ab_params(1.0, 0.1)
    Z0 = initial_embedding("spectral", X, graph, args.n_components, 0)
    M0 = initial_centres("kmeans", Z0, C, 0)
    eps = epochs_per_sample(graph.data, n_total).astype(np.float32)
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int32)

    variants = [("ce", _core.MODE_CE), ("comma", _core.MODE_COMMA),
                ("light_plus", _core.MODE_LIGHT_PLUS), ("plus", _core.MODE_PLUS)]
    rows = {name: np.inf for name, _ in variants}
    # every repeat runs each variant once, in turn, so that a slower spell of a shared machine
    # reaches all of them alike; the best of the repeats is kept
    for _ in range(args.repeats):
        for name, mode in variants:
            Z, M = Z0.copy(), M0.copy()
            lab = np.full(len(Z), -1, np.int32)
            p = _core.EpochParams()
            p.a, p.b, p.mode, p.n_epochs_total, p.seed = a, b, mode, n_total, 1
            p.n_threads, p.tol, p.min_joint_epochs = args.threads, 0.0, 0
            p.centre_update = CENTRE_UPDATE[args.centre_update]
            t = time.perf_counter()
            _core.optimize(Z, M if mode else None, indptr, indices, eps, eps.copy(), eps / 5,
                           lab if mode else None, None, p, 0, args.epochs)
            rows[name] = min(rows[name], (time.perf_counter() - t) / args.epochs * 1e3)

    print(f"data={args.data} n={X.shape[0]} edges={graph.nnz} clusters={C} "
          f"dim={args.n_components} threads={args.threads} epochs={args.epochs} "
          f"(best of {args.repeats}); machine: {platform.machine()}, {os.cpu_count()} cpus")
    print(f"centre update of the joint variants: {args.centre_update}; clustering rows: "
          f"{_core.cluster_kernel(args.n_components, _core.MODE_COMMA, 2.0)}")
    print(f"{'variant':<12}{'ms/epoch':>10}{'vs ce':>8}{'vs light plus':>15}")
    for name, ms in rows.items():
        print(f"{name:<12}{ms:>10.2f}{ms / rows['ce']:>8.2f}{ms / rows['light_plus']:>15.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(args=vars(args), n=int(X.shape[0]), edges=int(graph.nnz),
                                   ms_per_epoch=rows,
                                   over_ce={k: v / rows["ce"] for k, v in rows.items()},
                                   plus_over_light_plus=rows["plus"] / rows["light_plus"]), indent=2))


if __name__ == "__main__":
    main()
