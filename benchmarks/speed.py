"""Speed against umap-learn on the same work, measured side by side in one run.

Parts (choose with --parts):
  1. layout alone: the same fuzzy graph and initial embedding fed to our CE-only epochs and to
     umap-learn's optimize_layout_euclidean (JIT warmed up, move_other=True), equal epochs and
     negative-sample rate, per thread count: ns per edge sample, the ratio, trustworthiness.
  2. end to end: UEC.fit_predict against umap-learn UMAP.fit_transform + KMeans and EVoC, wall
     time and peak RSS (VmHWM), each in its own process, on the synthetic generator and on
     MNIST; UEC and EVoC first fit 2,000 rows untimed (EVoC's JIT, UEC's first imports).
  3. cold start: a new interpreter that imports the package and clusters digits, timed as a
     whole process, against umap-learn + KMeans.
  4. scale: make_manifold_clusters at --sizes (50-d, 20 clusters): time per stage, peak RSS, a
     PNG of time against n, and ns per edge-epoch of the CE epochs (linear in the edges?).

Every measurement runs in a child interpreter whose thread counts are pinned before any import
(OMP_NUM_THREADS, NUMBA_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, plus threadpoolctl);
the counts each child really saw are printed and written to the JSON.

    python benchmarks/speed.py [--parts 1 2 3 4] [--threads 1 2] [--sizes 10000 100000 1000000]
                               [--e2e-data synthetic mnist] [--quick] [--out benchmarks/out/speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# -- helpers shared by parent and children ------------------------------------------------------

def peak_rss_mb():
    """Peak resident set size of this process (VmHWM) in MiB; None where /proc is absent."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


WAIT_POLICY = None  # set from --omp-wait-policy


def child_env(threads):
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = str(threads)
    if WAIT_POLICY:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return env


def thread_info(threads):
    """Pin BLAS/OpenMP pools with threadpoolctl and report what the process really has."""
    info = {v: os.environ.get(v) for v in THREAD_VARS}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(threads)
        info["threadpools"] = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
    except ImportError:
        info["threadpools"] = ["threadpoolctl not installed"]
    if "numba" in sys.modules:
        import numba

        info["numba_threads"] = numba.get_num_threads()
    return info


def run_child(args, threads, timeout=None):
    """Run this script as a child with pinned threads; returns (json result, process wall s)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(HERE), "--_worker", *args, "--_result", str(out),
               "--threads", str(threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=child_env(threads), capture_output=True, text=True,
                              timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"child {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text()), wall


def machine():
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy
    import sklearn

    try:
        from importlib.metadata import version

        umap_v, numba_v = version("umap-learn"), version("numba")
    except Exception:  # noqa: BLE001 - only for the report
        umap_v = numba_v = None
    return dict(cpu=cpu, cpus=os.cpu_count(), mem_gib=mem, loadavg_at_start=load,
                python=platform.python_version(), numpy=numpy.__version__,
                sklearn=sklearn.__version__, umap_learn=umap_v, numba=numba_v)


# -- part 1: layout alone -----------------------------------------------------------------------

def umap_sample_counts(eps, n_epochs, neg_rate):
    """Edge and negative samples umap-learn's epochs take (its loop, replayed in float64)."""
    import numpy as np

    eps = eps.astype(np.float64)
    epn = eps / neg_rate
    nxt, nneg = eps.copy(), epn.copy()
    pos = neg = 0
    for n in range(n_epochs):
        due = np.flatnonzero(nxt <= n)
        pos += due.size
        nxt[due] += eps[due]
        k = ((n - nneg[due]) / epn[due]).astype(np.int64)
        neg += int(k.sum())
        nneg[due] += k * epn[due]
    return int(pos), int(neg)


def prepare_layout(path, n, n_epochs, seed):
    """Graph, initial embedding and a trustworthiness subsample, saved for the children."""
    import numpy as np

    from uec.datasets import make_manifold_clusters
    from uec.graph import build_graph, epochs_per_sample, find_ab_params
    from uec.init import initial_embedding

    X, _ = make_manifold_clusters(n, 20, 50, random_state=seed)
    graph, _, _ = build_graph(X, 15, n_epochs, random_state=seed)
    assert (graph.data > 0).all()
    Z0 = np.ascontiguousarray(initial_embedding("spectral", X, graph, 2, seed), dtype=np.float32)
    a, b = find_ab_params(1.0, 0.1)
    sub = np.random.default_rng(seed).choice(n, size=min(n, 3000), replace=False)
    coo = graph.tocoo()
    np.savez(path, X_sub=X[sub], sub=sub, Z0=Z0, indptr=graph.indptr.astype(np.int64),
             indices=graph.indices.astype(np.int32), head=coo.row.astype(np.int32),
             tail=coo.col.astype(np.int32), eps=epochs_per_sample(graph.data, n_epochs),
             eps_coo=epochs_per_sample(coo.data, n_epochs), a=a, b=b, n_epochs=n_epochs)
    return dict(data="make_manifold_clusters(n, 20 clusters, 50-d)", n=n, edges=int(graph.nnz),
                n_epochs=n_epochs, negative_sample_rate=5, init="spectral", dim=2)


def worker_layout(args):
    import numpy as np
    import numba
    from sklearn.manifold import trustworthiness
    from umap.layouts import optimize_layout_euclidean

    from uec import _core

    info = thread_info(args.threads)
    numba.set_num_threads(args.threads)
    info["numba_threads"] = numba.get_num_threads()
    d = np.load(args.input)
    n_epochs, a, b = int(d["n_epochs"]), float(d["a"]), float(d["b"])
    neg_rate = 5
    Z0, eps, eps_coo = d["Z0"], d["eps"], d["eps_coo"]
    n = Z0.shape[0]
    parallel = args.threads > 1

    def run_umap(Z, head, tail, e64, epochs):
        rng_state = np.array([12345, 67890, 13579], dtype=np.int64)
        optimize_layout_euclidean(Z, Z, head, tail, epochs, Z.shape[0], e64, a, b, rng_state,
                                  gamma=1.0, initial_alpha=1.0, negative_sample_rate=neg_rate,
                                  parallel=parallel, move_other=True)

    # JIT warm-up on a tiny input of the same dtypes
    wz = np.random.default_rng(0).uniform(0, 10, (50, 2)).astype(np.float32)
    wh = np.repeat(np.arange(50, dtype=np.int32), 2)
    wt = ((wh + np.tile(np.array([1, 2], np.int32), 50)) % 50).astype(np.int32)
    run_umap(wz, wh, wt, np.ones(100), 3)

    def run_ours(Z):
        ns, nn = eps.copy(), (eps / neg_rate).astype(np.float32)
        ns0, nn0 = ns.copy(), nn.copy()
        p = _core.EpochParams()
        p.a, p.b, p.gamma = a, b, 1.0
        p.negative_sample_rate = float(neg_rate)
        p.alpha, p.beta, p.learning_rate = 1.0, 0.0, 1.0
        p.clip_mode, p.schedule, p.n_epochs_total = 0, 0, n_epochs
        p.attract_scale, p.seed, p.n_threads, p.mode = 1.0, 12345, args.threads, _core.MODE_CE
        p.tol, p.min_joint_epochs = 0.0, 0
        t = time.perf_counter()
        _core.optimize(Z, None, d["indptr"], d["indices"], eps, ns, nn, None, None, p, 0, n_epochs)
        el = time.perf_counter() - t
        pos = int(np.rint((ns - ns0) / eps).sum())
        neg = int(np.rint((nn - nn0) / (eps / neg_rate)).sum())
        return el, pos, neg

    e64 = eps_coo.astype(np.float64)
    res = dict(threads=args.threads, thread_info=info, uec_s=[], umap_s=[])
    for rep in range(args.repeats):
        Z = Z0.copy()
        el, pos, neg = run_ours(Z)
        res["uec_s"].append(el)
        if rep == 0:
            Zu = Z
        Z = Z0.copy()
        t = time.perf_counter()
        run_umap(Z, d["head"], d["tail"], e64, n_epochs)
        res["umap_s"].append(time.perf_counter() - t)
        if rep == 0:
            Zm = Z
    upos, uneg = umap_sample_counts(eps_coo, n_epochs, neg_rate)
    res.update(uec_samples=pos, uec_neg_samples=neg, umap_samples=upos, umap_neg_samples=uneg)
    best_u, best_m = min(res["uec_s"]), min(res["umap_s"])
    res["uec_ns_per_sample"] = best_u / pos * 1e9
    res["umap_ns_per_sample"] = best_m / upos * 1e9
    res["speedup"] = res["umap_ns_per_sample"] / res["uec_ns_per_sample"]
    sub = d["sub"]
    res["trust_uec"] = float(trustworthiness(d["X_sub"], Zu[sub], n_neighbors=15))
    res["trust_umap"] = float(trustworthiness(d["X_sub"], Zm[sub], n_neighbors=15))
    res["finite"] = bool(np.isfinite(Zu).all() and np.isfinite(Zm).all())
    return res


def part_layout(a, report):
    n, epochs = (1000, 40) if a.quick else (a.layout_n, a.layout_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "layout.npz")
        meta = prepare_layout(path, n, epochs, seed=0)
        rows = []
        for t in a.threads:
            r, _ = run_child(["layout", "--_input", path, "--_repeats", str(a.repeats)], t)
            rows.append(r)
    print(f"\n[1] layout alone: {meta['data']}, n={n}, edges={meta['edges']}, "
          f"{epochs} epochs, negative_sample_rate 5, best of {a.repeats}")
    print(f"{'threads':>7} {'uec ns/sample':>14} {'umap ns/sample':>15} {'speedup':>8} "
          f"{'uec s':>7} {'umap s':>7} {'samples uec/umap':>18} {'trust uec':>10} {'trust umap':>11}")
    for r in rows:
        print(f"{r['threads']:>7} {r['uec_ns_per_sample']:>14.1f} {r['umap_ns_per_sample']:>15.1f} "
              f"{r['speedup']:>7.2f}x {min(r['uec_s']):>7.2f} {min(r['umap_s']):>7.2f} "
              f"{r['uec_samples'] / r['umap_samples']:>18.3f} {r['trust_uec']:>10.4f} "
              f"{r['trust_umap']:>11.4f}")
        print(f"        pinned: {r['thread_info']}")
    report["layout"] = dict(meta, rows=rows)


# -- part 2: end to end -------------------------------------------------------------------------

def load_data(name, n, seed=0):
    import numpy as np

    if name == "mnist":
        from uec.datasets import load_mnist

        X, y = load_mnist()
        return X, y, 10
    if name == "digits":
        from uec.datasets import load_digits

        X, y = load_digits()
        return X, y, 10
    from uec.datasets import make_manifold_clusters

    X, y = make_manifold_clusters(n, 20, 50, random_state=seed)
    return np.ascontiguousarray(X), y, 20


def _has_evoc():
    import importlib.util

    return importlib.util.find_spec("evoc") is not None


def worker_e2e(args):
    from sklearn.metrics import adjusted_rand_score

    info = thread_info(args.threads)
    X, y, k = load_data(args.data, args.n)
    base = rss_mb()
    t = time.perf_counter()
    if args.method in ("uec", "uec-auto"):
        from uec import UEC

        # "uec-auto": the default n_clusters=None, the count chosen from the data
        def model():
            return UEC(n_clusters=k if args.method == "uec" else None, random_state=0,
                       n_jobs=args.threads)

        # first use in a process (igraph's import, ~0.9 s; scikit-learn's modules) warmed on
        # a sample, as EVoC's JIT is: the fit's own cost is timed (process s has both)
        model().fit(X[:2000])
        t = time.perf_counter()
        est = model()
        labels = est.fit_predict(X)
        stages = {s: round(v, 3) for s, v in est.timings_.items()}
    elif args.method == "evoc":
        import evoc

        # numba compiles on first use: warmed on a sample, then timed
        evoc.EVoC(approx_n_clusters=k, random_state=0).fit_predict(X[:2000])
        t = time.perf_counter()
        labels = evoc.EVoC(approx_n_clusters=k, random_state=0).fit_predict(X)
        stages = {}
    else:
        import umap
        from sklearn.cluster import KMeans

        # no random_state: umap-learn then runs its parallel (fastest) path
        Z = umap.UMAP(n_jobs=args.threads).fit_transform(X)
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(Z)
        stages = {}
    fit_s = time.perf_counter() - t
    return dict(method=args.method, data=args.data, n=int(X.shape[0]), d=int(X.shape[1]),
                threads=args.threads, fit_s=fit_s, peak_rss_mb=peak_rss_mb(), rss_after_load_mb=base,
                ari=float(adjusted_rand_score(y, labels)), stages=stages, thread_info=info,
                k_found=len(set(int(v) for v in labels if v >= 0)))


def part_e2e(a, report):
    from uec.datasets import find_mnist

    t = max(a.threads)
    rows, notes = [], []
    for name in a.e2e_data:
        if name == "mnist" and find_mnist() is None:
            notes.append("MNIST absent (set UEC_MNIST or put ../shared/data/mnist.npz): skipped")
            continue
        n = 2000 if a.quick else a.e2e_n
        pair = {}
        for method in ("uec", "uec-auto", "umap", *(("evoc",) if _has_evoc() else ())):
            r, wall = run_child(["e2e", "--_method", method, "--_data", name, "--_n", str(n)], t)
            r["process_s"] = wall
            pair[method] = r
            rows.append(r)
        if "evoc" not in pair:
            notes.append("evoc not installed (pip install evoc): its row is missing")
        pair["uec"]["time_ratio"] = pair["uec"]["fit_s"] / pair["umap"]["fit_s"]
        pair["uec"]["rss_ratio"] = pair["uec"]["peak_rss_mb"] / pair["umap"]["peak_rss_mb"]
        if "evoc" in pair:
            for m in ("uec", "uec-auto"):
                pair[m]["time_ratio_evoc"] = pair[m]["fit_s"] / pair["evoc"]["fit_s"]
    print(f"\n[2] end to end, {t} threads, each method in its own process "
          f"(UEC(n_clusters=k).fit_predict and UEC() with the count chosen, 'uec k=...', vs "
          f"UMAP().fit_transform + KMeans(k, n_init=10) and "
          f"EVoC(approx_n_clusters=k); UEC and EVoC warmed on 2,000 rows first (EVoC's JIT, "
          f"UEC's first imports); ratio: UEC / umap+kmeans, and UEC / EVoC's time)")
    print(f"{'data':<10} {'n':>7} {'method':<12} {'fit s':>8} {'process s':>10} "
          f"{'peak RSS MiB':>13} {'after load':>11} {'ARI':>6} {'ratio t / RSS':>14}")
    for r in rows:
        ratio = (f"{r['time_ratio']:.2f} / {r['rss_ratio']:.2f}" if "time_ratio" in r else "")
        if "time_ratio_evoc" in r:
            ratio += f"; {r['time_ratio_evoc']:.2f}x EVoC"
        label = {"uec": "uec", "uec-auto": f"uec k={r['k_found']}",
                 "evoc": "evoc"}.get(r["method"], "umap+kmeans")
        print(f"{r['data']:<10} {r['n']:>7} {label:<12} {r['fit_s']:>8.2f} {r['process_s']:>10.2f} "
              f"{r['peak_rss_mb']:>13.0f} {r['rss_after_load_mb']:>11.0f} {r['ari']:>6.3f} {ratio:>14}")
    for r in rows:
        if r["stages"]:
            print(f"  {r['method']} stages on {r['data']}: {r['stages']}")
    for s in notes:
        print("  note:", s)
    report["end_to_end"] = dict(threads=t, rows=rows, notes=notes)


# -- part 3: cold start -------------------------------------------------------------------------

COLD = {
    "uec": ("from uec import UEC\n"
            "from uec.datasets import load_digits\n"
            "X, y = load_digits()\n"
            "labels = UEC(n_clusters=10, random_state=0, n_jobs={t}).fit_predict(X)\n"),
    "umap": ("import umap\n"
             "from sklearn.cluster import KMeans\n"
             "from sklearn.datasets import load_digits\n"
             "X, y = load_digits(return_X_y=True)\n"
             "Z = umap.UMAP(n_jobs={t}).fit_transform(X)\n"
             "labels = KMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(Z)\n"),
}
COLD_TAIL = ("from sklearn.metrics import adjusted_rand_score\n"
             "import json; print(json.dumps(dict(ari=float(adjusted_rand_score(y, labels)))))\n")


def part_cold(a, report):
    t = max(a.threads)
    reps = 1 if a.quick else a.cold_repeats
    res = {m: dict(wall_s=[], ari=None) for m in COLD}
    for _ in range(reps):
        for m, code in COLD.items():
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code.format(t=t) + COLD_TAIL],
                                  env=child_env(t), capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"cold start of {m} failed:\n{proc.stderr[-4000:]}")
            res[m]["wall_s"].append(wall)
            res[m]["ari"] = json.loads(proc.stdout.strip().splitlines()[-1])["ari"]
    for m in res:
        w = sorted(res[m]["wall_s"])
        res[m]["median_s"] = w[len(w) // 2]
    ratio = res["uec"]["median_s"] / res["umap"]["median_s"]
    print(f"\n[3] cold start: new interpreter, import, cluster digits (1797 x 64), {t} threads, "
          f"{reps} run(s) each, interleaved")
    print(f"{'method':<12} {'median s':>9} {'runs s':<30} {'ARI':>6}")
    for m, r in res.items():
        runs = " ".join(f"{w:.2f}" for w in r["wall_s"])
        print(f"{'uec' if m == 'uec' else 'umap+kmeans':<12} {r['median_s']:>9.2f} {runs:<30} {r['ari']:>6.3f}")
    print(f"uec / umap+kmeans: {ratio:.2f}")
    report["cold_start"] = dict(threads=t, repeats=reps, methods=res, ratio=ratio,
                                code={m: c.format(t=t) for m, c in COLD.items()})


# -- part 4: scale ------------------------------------------------------------------------------

def worker_scale(args):
    import numpy as np

    from uec import UEC, _core
    from uec.graph import epochs_per_sample

    info = thread_info(args.threads)
    X, y, k = load_data("synthetic", args.n)
    base = rss_mb()
    est = UEC(n_clusters=k, random_state=0, n_jobs=args.threads)
    t = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - t
    hwm = peak_rss_mb()
    from sklearn.metrics import adjusted_rand_score

    ari = float(adjusted_rand_score(y, est.labels_))
    # A clean probe of the CE epoch cost on the fitted graph: a few epochs, samples counted.
    g = est.graph_
    n_total = est.n_epochs_
    eps = epochs_per_sample(g.data, n_total)
    ns, nn = eps.copy(), (eps / 5.0).astype(np.float32)
    ns0 = ns.copy()
    p = _core.EpochParams()
    p.a, p.b, p.gamma, p.negative_sample_rate = est.a_, est.b_, 1.0, 5.0
    p.alpha, p.beta, p.learning_rate, p.clip_mode, p.schedule = 1.0, 0.0, 1.0, 0, 0
    p.n_epochs_total, p.attract_scale, p.seed, p.mode = n_total, 1.0, 1, _core.MODE_CE
    p.n_threads, p.tol, p.min_joint_epochs = args.threads, 0.0, 0
    Z = est.embedding_.copy()
    probe = min(n_total, 20)
    t = time.perf_counter()
    _core.optimize(Z, None, g.indptr.astype(np.int64), g.indices.astype(np.int32), eps, ns, nn,
                   None, None, p, 0, probe)
    probe_s = time.perf_counter() - t
    samples = int(np.rint((ns - ns0) / eps).sum())
    return dict(n=int(X.shape[0]), threads=args.threads, edges=int(g.nnz), n_epochs=int(n_total),
                n_iter=int(est.n_iter_), fit_s=fit_s, stages=dict(est.timings_),
                peak_rss_mb=hwm, rss_after_load_mb=base, ari=ari, probe_epochs=probe,
                probe_s=probe_s, probe_samples=samples,
                ns_per_edge_epoch=probe_s / (probe * g.nnz) * 1e9,
                ns_per_edge_sample=probe_s / samples * 1e9, thread_info=info)


def part_scale(a, report):
    import numpy as np

    t = max(a.threads)
    sizes = [2000, 6000] if a.quick else a.sizes
    rows = []
    for n in sizes:
        r, wall = run_child(["scale", "--_n", str(n)], t)
        r["process_s"] = wall
        rows.append(r)
    # the stages the fits reported, in the order of the first (the graph stage's "layout" and
    # "clustering", or the joint variants' "warmup", "centre_init", "joint" and "merge")
    stages = list(dict.fromkeys(s for r in rows for s in r["stages"]))
    print(f"\n[4] scale: make_manifold_clusters(n, 20 clusters, 50-d), UEC(n_clusters=20), {t} threads")
    print(f"{'n':>8} {'edges':>9} " + " ".join(f"{s:>11}" for s in stages)
          + f" {'fit s':>8} {'peak MiB':>9} {'ARI':>6} {'CE ms/epoch':>12} {'ns/edge-epoch':>14} "
          f"{'ns/sample':>10}")
    for r in rows:
        print(f"{r['n']:>8} {r['edges']:>9} " + " ".join(f"{r['stages'].get(s, 0):>11.2f}" for s in stages)
              + f" {r['fit_s']:>8.2f} {r['peak_rss_mb']:>9.0f} {r['ari']:>6.3f} "
              f"{r['probe_s'] / r['probe_epochs'] * 1e3:>12.2f} {r['ns_per_edge_epoch']:>14.2f} "
              f"{r['ns_per_edge_sample']:>10.2f}")
    fit = None
    if len(rows) >= 2:
        e = np.log([r["edges"] for r in rows])
        c = np.log([r["probe_s"] / r["probe_epochs"] for r in rows])
        slope = float(np.polyfit(e, c, 1)[0])
        fit = dict(loglog_slope_epoch_time_vs_edges=slope)
        print(f"epoch time ~ edges^{slope:.2f} (1.00 = linear)")
    report["scale"] = dict(threads=t, rows=rows, fit=fit)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  note: matplotlib absent, no PNG")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in rows]
    for s in stages:
        ax.plot(ns, [max(r["stages"].get(s, 0), 1e-3) for r in rows], "o-", label=s)
    ax.plot(ns, [r["fit_s"] for r in rows], "k^-", label="fit (total)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (points)")
    ax.set_ylabel("seconds")
    ax.set_title(f"UEC stages vs n ({t} threads)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = Path(a.out).with_name("speed_scale.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    report["scale"]["png"] = str(png)
    print(f"  wrote {png}")


# -- driver -------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--layout-n", type=int, default=20_000)
    ap.add_argument("--layout-epochs", type=int, default=200)
    ap.add_argument("--e2e-data", nargs="+", default=["synthetic", "mnist"], choices=["synthetic", "mnist"])
    ap.add_argument("--e2e-n", type=int, default=20_000, help="synthetic size of part 2")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per layout (best taken)")
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--omp-wait-policy", choices=["passive", "active"], default=None,
                    help="OMP_WAIT_POLICY of the children (default: unset, the OpenMP default). "
                         "passive stops idle threads spinning, which matters on a loaded machine")
    ap.add_argument("--out", default="benchmarks/out/speed.json")
    # internal: child processes
    ap.add_argument("--_worker", choices=["layout", "e2e", "scale"], help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    ap.add_argument("--_input", help=argparse.SUPPRESS)
    ap.add_argument("--_repeats", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--_method", help=argparse.SUPPRESS)
    ap.add_argument("--_data", help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a._worker:
        w = argparse.Namespace(threads=a.threads[0], input=a._input, repeats=a._repeats,
                               method=a._method, data=a._data, n=a._n)
        fn = {"layout": worker_layout, "e2e": worker_e2e, "scale": worker_scale}[a._worker]
        Path(a._result).write_text(json.dumps(fn(w)))
        return

    global WAIT_POLICY
    WAIT_POLICY = a.omp_wait_policy
    if any(t < 1 for t in a.threads):
        ap.error(f"--threads {a.threads}: every count must be >= 1")
    report = dict(machine=machine(), omp_wait_policy=WAIT_POLICY or "unset", args={k: v for k, v in vars(a).items() if not k.startswith("_")})
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} cpus, {m['mem_gib']} GiB, load {m['loadavg_at_start']}; "
          f"python {m['python']}, umap-learn {m['umap_learn']}, numba {m['numba']}; "
          f"threads {a.threads} (pinned per child: {', '.join(THREAD_VARS)} + threadpoolctl); "
          f"OMP_WAIT_POLICY {WAIT_POLICY or 'unset'}")
    t0 = time.perf_counter()
    parts = {1: part_layout, 2: part_e2e, 3: part_cold, 4: part_scale}
    for p in sorted(set(a.parts)):
        parts[p](a, report)
    report["total_s"] = time.perf_counter() - t0
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out} ({report['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
