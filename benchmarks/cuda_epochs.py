"""Time per epoch of each variant on the GPU (uec._cuda) against the OpenMP core, same inputs.

    python benchmarks/cuda_epochs.py --data mnist                 # MNIST 70,000 points
    python benchmarks/cuda_epochs.py --data synthetic --n 1000000 # 1M points (graph takes a while)
    python benchmarks/cuda_epochs.py --data digits --epochs 50    # quick

Prints the time of each stage (graph, init), then per variant: CPU ms/epoch, GPU ms/epoch
(excluding the one copy to and from the device, reported separately), and the speed-up; writes
JSON. Without the CUDA module or a GPU it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from uec import _core, _device

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist.npz"
MODES = [("ce", _core.MODE_CE), ("comma", _core.MODE_COMMA),
         ("light_plus", _core.MODE_LIGHT_PLUS), ("plus", _core.MODE_PLUS)]


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
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=50, centers=20, cluster_std=2.0, random_state=seed)
    return X.astype(np.float32), 20


def timed_run(fn, mode, Z0, M0, graph_arrays, params, epochs):
    indptr, indices, eps = graph_arrays
    Z, M = Z0.copy(), M0.copy()
    lab = np.full(len(Z), -1, np.int32)
    params.mode = mode
    t = time.perf_counter()
    fn(Z, M if mode else None, indptr, indices, eps, eps.copy(), eps / 5,
       lab if mode else None, None, params, 0, epochs)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", choices=["digits", "mnist", "synthetic"])
    ap.add_argument("--n", type=int, default=70000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-components", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/out/cuda_epochs.json")
    args = ap.parse_args()

    if _device._cuda is None:
        print("uec was built without the CUDA module (no nvcc, or UEC_CUDA=OFF): nothing to time")
        return 0
    n_dev, why = _device._cuda.device_status()
    if n_dev < 1:
        print(f"no CUDA device ({why}): nothing to time")
        return 0
    gpu_name = _device._cuda.device_name(0)

    from uec.graph import build_graph, epochs_per_sample, find_ab_params
    from uec.init import initial_centres, initial_embedding

    stages = {}
    X, C = load(args.data, args.n, 0)
    n_total = 200
    t = time.perf_counter()
    graph, _, _ = build_graph(X, 15, n_total, random_state=0, n_jobs=args.threads)
    stages["graph_s"] = time.perf_counter() - t
    a, b = find_ab_params(1.0, 0.1)
    t = time.perf_counter()
    Z0 = np.ascontiguousarray(initial_embedding("spectral", X, graph, args.n_components, 0), np.float32)
    M0 = np.ascontiguousarray(initial_centres("kmeans", Z0, C, 0), np.float32)
    stages["init_s"] = time.perf_counter() - t
    eps = epochs_per_sample(graph.data, n_total).astype(np.float32)
    arrays = (graph.indptr.astype(np.int64), graph.indices.astype(np.int32), eps)
    print(f"{args.data}: n={len(X)}, edges={graph.nnz}, C={C}; graph {stages['graph_s']:.1f} s, "
          f"init {stages['init_s']:.1f} s; GPU: {gpu_name}; CPU threads: {args.threads}")

    p = _core.EpochParams()
    p.a, p.b, p.n_epochs_total, p.seed = a, b, n_total, 1
    p.n_threads, p.tol, p.min_joint_epochs = args.threads, 0.0, 0
    p.clip_mode, p.centre_update = 2, 2

    rows = {}
    print(f"{'variant':<11} {'CPU ms/ep':>10} {'GPU ms/ep':>10} {'copy ms':>8} {'speed-up':>9}")
    for name, mode in MODES:
        cpu = min(timed_run(_core.optimize, mode, Z0, M0, arrays, p, args.epochs)
                  for _ in range(args.repeats)) / args.epochs
        copy = min(timed_run(_device._cuda.optimize, mode, Z0, M0, arrays, p, 0)
                   for _ in range(args.repeats))
        total = min(timed_run(_device._cuda.optimize, mode, Z0, M0, arrays, p, args.epochs)
                    for _ in range(args.repeats))
        gpu = max(total - copy, 0.0) / args.epochs
        rows[name] = dict(cpu_ms=1e3 * cpu, gpu_ms=1e3 * gpu, copy_ms=1e3 * copy,
                          speedup=cpu / gpu if gpu > 0 else float("inf"))
        r = rows[name]
        print(f"{name:<11} {r['cpu_ms']:>10.2f} {r['gpu_ms']:>10.3f} {r['copy_ms']:>8.1f} "
              f"{r['speedup']:>8.1f}x")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        data=args.data, n=len(X), edges=int(graph.nnz), clusters=C, epochs=args.epochs,
        threads=args.threads, gpu=gpu_name, cuda_runtime=_device._cuda.runtime_version(),
        machine=platform.platform(), stages=stages, per_epoch=rows), indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
