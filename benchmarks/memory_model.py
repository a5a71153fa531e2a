"""Peak memory of real fits against the estimate of uec._memory.

Each configuration runs in a fresh subprocess: the data are made and every library is loaded
(and, for the NN-descent rows, pynndescent's JIT compiled on a small input) first; then the peak
resident set is reset (Linux /proc/self/clear_refs), the fit runs, and the growth of the peak
over the resident set at the start of the fit, and the peak of the memory numpy allocates during
the fit (tracemalloc, which misses the C++ core's buffers and BLAS/ARPACK work space, but not
pages that the resident set never touches), are compared with the estimate.

    python benchmarks/memory_model.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    cfg = json.loads(sys.argv[1])
    from uec import UEC
    from uec._memory import estimate_fit_memory
    from uec.graph import nearest_neighbors
    rng = np.random.default_rng(0)
    n, f = cfg["n"], cfg["f"]
    centres = rng.normal(scale=6.0, size=(10, f))
    X = (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, f))).astype(np.float32)
    knn = None
    if cfg["knn"] == "given":
        knn = nearest_neighbors(X, cfg["k"], exact=True, n_jobs=1)
    if cfg["knn"] == "nnd":
        UEC(n_clusters=2, n_epochs=2, random_state=0).fit(  # compile NN-descent first
            rng.normal(size=(5000, f)).astype(np.float32))
    UEC(n_clusters=2, n_epochs=2, random_state=0).fit(X[:300])  # load every module
    UEC(n_clusters=2, n_epochs=4, variant=cfg["variant"], random_state=0).fit(X[:300])

    def rss(field):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024

    import tracemalloc
    opts = dict(n_clusters=cfg["C"], n_neighbors=cfg["k"], n_components=cfg["d"],
                init=cfg["init"], knn=knn, random_state=0, n_jobs=1, variant=cfg["variant"],
                n_epochs=cfg.get("n_epochs"))
    model = UEC(**opts)
    tracemalloc.start()
    model.fit(X)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del model
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current resident set
    start = rss("VmRSS")
    model = UEC(**opts)
    model.fit(X)
    peak = rss("VmHWM") - start
    est, parts = estimate_fit_memory(n, f, n_neighbors=cfg["k"], n_components=cfg["d"],
                                     n_clusters=model.n_subclusters_,  # as fit checks it
                                     knn_given=knn is not None,
                                     exact_knn=cfg["knn"] == "exact", init=cfg["init"],
                                     x_allocated=True,  # X exists before the fit, as in fit
                                     variant=cfg["variant"], n_final_clusters=cfg["C"],
                                     n_threads=1)
    print(json.dumps({"measured": max(peak, traced), "rss": peak, "traced": traced,
                      "estimate": est, "parts": parts}))
    """
)

# variant "comma" (the rows measured since 2026-11-22; the default until 2026-12-01), the
# joint variants with one centre per point (n = C = 12,000: the core's n x C caches, one for
# comma, two for plus; 20 epochs, as memory does not depend on their number) and the default
# graph stage ("ce").
CONFIGS = [
    dict(n=4000, f=64, k=15, d=2, C=10, init="spectral", knn="exact", variant="comma"),
    dict(n=4000, f=784, k=15, d=2, C=10, init="pca", knn="exact", variant="comma"),
    dict(n=20000, f=32, k=15, d=2, C=10, init="spectral", knn="given", variant="comma"),
    dict(n=20000, f=32, k=30, d=5, C=20, init="random", knn="given", variant="comma"),
    dict(n=60000, f=16, k=15, d=2, C=10, init="spectral", knn="given", variant="comma"),
    dict(n=30000, f=64, k=15, d=2, C=10, init="spectral", knn="nnd", variant="comma"),
    dict(n=12000, f=16, k=15, d=2, C=12000, init="spectral", knn="given", variant="comma",
         n_epochs=20),
    dict(n=12000, f=16, k=15, d=2, C=12000, init="spectral", knn="given", variant="plus",
         n_epochs=20),
    dict(n=20000, f=32, k=15, d=2, C=10, init="spectral", knn="given", variant="ce"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the NN-descent row (JIT compile)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'n':>6} {'f':>4} {'k':>3} {'d':>2} {'C':>5} {'variant':>7} {'init':>8} {'knn':>6} "
          f"{'RSS MiB':>8} {'traced MiB':>10} {'estimate MiB':>13} {'est/max':>8}")
    for cfg in CONFIGS:
        if args.quick and cfg["knn"] == "nnd":
            continue
        # a fixed mmap threshold: large arrays go back to the system when freed, so memory
        # freed before the fit does not hide the fit's own growth of the resident set
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True,
                             text=True, check=True, env=env)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res.update(cfg)
        if cfg["knn"] == "nnd":
            # pynndescent's update buffers (np.empty, 1-3 GB) are traced but barely touched:
            # only the resident set means anything here
            res["measured"] = res["rss"]
        rows.append(res)
        m, e = res["measured"] / 2**20, res["estimate"] / 2**20
        r, t = res["rss"] / 2**20, res["traced"] / 2**20
        print(f"{cfg['n']:>6} {cfg['f']:>4} {cfg['k']:>3} {cfg['d']:>2} {cfg['C']:>5} {cfg['variant']:>7} "
              f"{cfg['init']:>8} {cfg['knn']:>6} {r:>8.1f} {t:>10.1f} {e:>13.1f} {e / max(m, 1e-9):>8.2f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
