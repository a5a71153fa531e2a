"""Out-of-core UEC with Dask: fit on a sample, predict every row, with bounded memory per worker.

    OMP_WAIT_POLICY=passive python benchmarks/dask_scale.py --rows 5000000 --features 50 \\
        --chunk-rows 131072 --workers 2 --threads-per-worker 1 --sample-size 50000

The data (``--rows`` x ``--features`` float32, ``--clusters`` clusters on curved 2-d manifolds:
the model of ``uec.datasets.make_manifold_clusters``) is never in one process: each chunk is
generated inside its task from its own seed, with the cluster geometry drawn once from
``--seed``. A ``distributed.LocalCluster`` of worker processes runs the graph.

Stages: the sample (``uec.dask.sample``: chosen global rows gathered from the chunks, which are
generated for it), the fit of ``uec.UEC`` on it in this process, a warm-up (the model reaches
every worker and a first small predict there, which compiles the NN-descent query), and the
predict of all rows, reduced on the workers to a true x predicted contingency table, so the
labels never come back here. Reported: seconds per stage, rows per second, ACC, the size of the
pickled model (what every worker receives once), the chunk size, and each worker's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the worker process, its true high-water
mark, before and after the predict). Output: a table on stdout and ``--json``
(default ``benchmarks/out/dask_scale.json``).
"""

import argparse
import json
import os
import pickle
import platform
import sys
import time

import numpy as np

def geometry(n_clusters, n_features, seed, intrinsic_dim=2, separation=3.0):
    """Centres, sheets and bends of the clusters (small arrays, drawn once)."""
    from uec.datasets import manifold_geometry

    return manifold_geometry(np.random.default_rng([seed, 0]), n_clusters, n_features,
                             intrinsic_dim, separation)


def chunk_labels(i, rows, n_clusters, seed):
    """True clusters of chunk i (uniform), from the chunk's own stream."""
    return np.random.default_rng([seed, 1, i]).integers(0, n_clusters, size=rows)


def chunk_points(i, rows, geom, seed, extent=4.0, curvature=2.0, noise=0.05):
    """Chunk i as float32: x = c_k + A_k u + curvature B_k sin(W_k u + phi_k) + noise."""
    centres, A, B, W, phi = geom
    y = chunk_labels(i, rows, centres.shape[0], seed)
    rng = np.random.default_rng([seed, 2, i])
    lat = rng.uniform(-0.5 * extent, 0.5 * extent, size=(rows, A.shape[1]))
    out = np.empty((rows, centres.shape[1]), dtype=np.float32)
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        u = lat[idx]
        out[idx] = centres[k] + u @ A[k] + curvature * (np.sin(u @ W[k] + phi[k]) @ B[k])
    eps = rng.standard_normal(size=out.shape, dtype=np.float32)  # float32: one chunk's size
    eps *= np.float32(noise)
    out += eps
    return out


def lazy_data(n_rows, n_features, n_clusters, chunk_rows, seed):
    """(X, y) as dask arrays whose chunks are generated in their own tasks."""
    import dask
    import dask.array as da

    geom = dask.delayed(geometry(n_clusters, n_features, seed), pure=True)  # one key
    xs, ys = [], []
    for i, start in enumerate(range(0, n_rows, chunk_rows)):
        rows = min(chunk_rows, n_rows - start)
        xs.append(da.from_delayed(dask.delayed(chunk_points, pure=True)(i, rows, geom, seed),
                                  shape=(rows, n_features), dtype=np.float32))
        ys.append(da.from_delayed(dask.delayed(chunk_labels, pure=True)(i, rows, n_clusters, seed),
                                  shape=(rows,), dtype=np.int64))
    return da.concatenate(xs), da.concatenate(ys)


def block_counts(y, labels, n_true, n_pred):
    return np.bincount(y * n_pred + labels, minlength=n_true * n_pred)[None, :]


def worker_memory():
    """Peak (ru_maxrss) and current RSS of this process, MiB."""
    import resource

    import psutil

    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_mib": psutil.Process().memory_info().rss / 2**20}


def accuracy(counts):
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(-counts)
    return float(counts[r, c].sum() / counts.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=131_072,
                        help="rows per chunk (a multiple of --batch-size avoids a rechunk)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--sample-size", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--fit-jobs", type=int, default=-1, help="threads of the fit (here)")
    parser.add_argument("--task-jobs", type=int, default=None,
                        help="threads of the core in each task (default: cores / worker threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=os.path.join("benchmarks", "out", "dask_scale.json"))
    args = parser.parse_args()

    import dask.array as da
    from distributed import Client, LocalCluster

    from uec.dask import DaskUEC

    cores = os.cpu_count() or 1
    task_jobs = args.task_jobs or max(1, cores // (args.workers * args.threads_per_worker))
    times = {}
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                           processes=True, host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(args.workers)
    times["cluster start"] = time.perf_counter() - t0

    X, y = lazy_data(args.rows, args.features, args.clusters, args.chunk_rows, args.seed)
    chunk_mb = args.chunk_rows * args.features * 4 / 1e6
    data_mb = args.rows * args.features * 4 / 1e6
    print(f"data: {args.rows:,} x {args.features} float32 = {data_mb:,.0f} MB in "
          f"{X.numblocks[0]} chunks of {args.chunk_rows:,} rows ({chunk_mb:.1f} MB); "
          f"{args.workers} worker processes x {args.threads_per_worker} thread(s), "
          f"core threads per task {task_jobs}", flush=True)

    est = DaskUEC(n_clusters=args.clusters, sample_size=args.sample_size,
                  batch_size=args.batch_size, random_state=args.seed, n_jobs=args.fit_jobs)
    est.fit(X)
    times["sample (generate all chunks, gather)"] = est.timings_["sample"]
    times["fit on the sample (this process)"] = est.timings_["fit"]
    model_mb = len(pickle.dumps(est.model_, protocol=5)) / 1e6
    print(f"fit: sample {est.timings_['sample']:.1f} s, fit {est.timings_['fit']:.1f} s, "
          f"model pickled {model_mb:.1f} MB", flush=True)

    est.set_params(n_jobs=task_jobs)  # the results do not depend on it
    t0 = time.perf_counter()
    warm_rows = args.batch_size * 2 * args.workers
    est.predict(X[:warm_rows].rechunk(args.batch_size)).compute()
    times["warm-up (ship model, first predict per worker)"] = time.perf_counter() - t0
    before = client.run(worker_memory)

    t0 = time.perf_counter()
    labels = est.predict(X)
    n_true = n_pred = args.clusters
    counts = da.map_blocks(block_counts, y, labels, n_true, n_pred, new_axis=1,
                           chunks=((1,) * X.numblocks[0], (n_true * n_pred,)),
                           dtype=np.int64).sum(axis=0)
    counts = counts.compute().reshape(n_true, n_pred)
    t_predict = time.perf_counter() - t0
    times["predict all rows (generate, place, count)"] = t_predict
    after = client.run(worker_memory)
    here = worker_memory()

    acc = accuracy(counts)
    rate = args.rows / t_predict
    print()
    print(f"{'stage':52s} {'s':>9s}")
    for k, v in times.items():
        print(f"{k:52s} {v:9.1f}")
    print(f"rows/s in predict: {rate:,.0f}  (per worker process: {rate / args.workers:,.0f})")
    print(f"ACC against the generated clusters: {acc:.4f}; rows counted {counts.sum():,}")
    print()
    print(f"{'process':28s} {'peak RSS MiB before':>20s} {'after predict':>14s} {'RSS now':>9s}")
    for w in sorted(after):
        print(f"{w:28s} {before[w]['peak_rss_mib']:20.0f} {after[w]['peak_rss_mib']:14.0f} "
              f"{after[w]['rss_mib']:9.0f}")
    print(f"{'client (fit)':28s} {'':20s} {here['peak_rss_mib']:14.0f} {here['rss_mib']:9.0f}")
    print(f"chunk {chunk_mb:.1f} MB, data {data_mb:,.0f} MB, model {model_mb:.1f} MB")

    result = dict(
        command=" ".join(["python", "benchmarks/dask_scale.py"] + sys.argv[1:]),
        machine=dict(cpus=cores, platform=platform.platform(), python=platform.python_version(),
                     omp_wait_policy=os.environ.get("OMP_WAIT_POLICY")),
        args=vars(args), task_jobs=task_jobs, times_s=times, rows_per_s=rate, acc=acc,
        counts=counts.tolist(), chunk_mb=chunk_mb, data_mb=data_mb, model_mb=model_mb,
        workers_before=before, workers_after=after, client=here,
        sample_size=int(est.sample_indices_.shape[0]),
    )
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.json}")
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
