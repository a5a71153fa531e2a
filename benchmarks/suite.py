"""Clustering quality of UEC and its peers on every data set the project can load, in one run.

    python benchmarks/suite.py                       # every set, every method, seeds 0 1 2
    python benchmarks/suite.py --quick               # only the sets with n <= 3,000
    python benchmarks/suite.py --holdout             # only the held-out sets (a check, not a choice)
    python benchmarks/suite.py --sets iris coil20 --methods uec leiden --seeds 0 --n-jobs 1
    python benchmarks/suite.py --quick --uec 'dim10={"n_components": 10}' --no-uec-variants \\
        --reuse benchmarks/out/suite.json --json benchmarks/out/dim10.json
    python benchmarks/suite.py --from benchmarks/out/dim10.json --loso   # tables only, no runs

The sets are those of ``_data.py`` (real: digits, MNIST and a 20,000-image sample of it,
COIL-20, ISOLET, ORL, iris, wine, breast-cancer, penguins, olive by region and by area, crabs,
diabetes; synthetic: manifold, blobs-overlap; held-out, run only with ``--holdout`` and reported
apart: glass, tissues, nci60, ais-sex, ais-sport, possum-site, leafshape, skulls, auto-origin).
A set whose file or package is missing is
skipped with a note. Every method is told the true number of classes k, except hdbscan.

Methods, each fitted once per seed:

- ``uec``: ``UEC(n_clusters=k, random_state=seed, n_jobs=n_jobs)``, the current default;
  ``uec-plus``, ``uec-light_plus``, ``uec-comma``, ``uec-ce``: the same with ``variant=...``
  (left out with ``--no-uec-variants``); ``uec:NAME``: the same with the parameters of
  ``--uec NAME=JSON`` (a JSON object; its keys override the three above), the way candidate
  defaults are compared.
- ``umap2d-gmm``: umap-learn ``UMAP(n_components=2, random_state=seed)``, then a
  full-covariance ``GaussianMixture(k, random_state=seed)`` on the embedding.
- ``n2d``: the same with a 10-dimensional embedding (N2D's recipe, without its autoencoder).
- ``leiden``: leidenalg's ``RBConfigurationVertexPartition`` on umap-learn's fuzzy graph
  (15 neighbours), its resolution bisected geometrically in [1e-3, 1e2] (at most 30 steps)
  until there are k communities, else the resolution whose count came closest to k.
- ``spectral``: scikit-learn's ``SpectralClustering(k, affinity="precomputed",
  assign_labels="cluster_qr")`` on the same fuzzy graph, with ``eigen_solver="amg"`` when
  pyamg is installed (arpack, its default, took over 7 minutes on 20,000 points).
- ``evoc``: ``evoc.EVoC(approx_n_clusters=k, random_state=seed)`` on the input.
- ``hdbscan``: ``hdbscan.HDBSCAN(min_samples=10, min_cluster_size=max(10, n // 100))`` on the
  2-d umap-learn embedding. It finds its own number of clusters, so it is a reference only.

The baselines, against which UEC's margins are measured ("best baseline": their best ACC on
each set), are umap2d-gmm, n2d, leiden, spectral and evoc. Noise points (label -1, from evoc
and hdbscan) count as one more cluster in the scores; ``k_found`` is the number of clusters
other than noise. Scores are ACC (Hungarian-matched accuracy), NMI and ARI from
``uec.metrics``. Seconds are wall time of the whole method (umap-learn's embedding or fuzzy
graph included; when two methods of one set and seed use the same one it is computed once and
its time counted in both). Each method is run once, untimed, on blobs (500 points; 4,200
before sets of 4,096 points or more, where umap-learn switches to approximate neighbours)
before its first timed fit, so that numba compilation is not timed. BLAS, OpenMP and numba threads are limited to
``--n-jobs`` for every method (umap-learn runs single-threaded anyway once given a seed).

A failed fit records its error and the run goes on. Warnings of the peers are silenced. The
JSON (default benchmarks/out/suite.json) is rewritten after every set, so an interrupted run
keeps what it did. ``--reuse PATH`` takes the runs of the non-UEC methods for the same set
(same n, dim, k) and seed from an earlier JSON instead of fitting them again: the peers do not
change between runs, UEC does.

Printed (Markdown): a table per set (means over seeds, ACC also with its std), then over the
real sets only: each method's mean ACC, mean ARI, mean rank (by mean ACC per set among all
methods but hdbscan, 1 = best) and wins; a table of ACC per set with the best baseline and
each UEC method's margin over it; the mean of the best baseline per set and of the best single
baseline. Synthetic sets get their own ACC table, outside the real-set means. ``--loso`` adds a
leave-one-set-out check of choosing among ``uec`` and the ``uec:NAME`` configurations: for
each real set, the configuration with the best mean ACC on the other real sets against the
best one on that set.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from _data import HOLDOUT, NAMES, QUICK, REAL, SYNTHETIC, available

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "out" / "suite.json"

UEC_VARIANTS = ("plus", "light_plus", "comma", "ce")
BASELINES = ("umap2d-gmm", "n2d", "leiden", "spectral", "evoc")
REFERENCES = ("hdbscan",)  # reported, but not told k: out of the ranks and the best baseline
PEERS = BASELINES + REFERENCES
# umap-learn computes exact neighbours below 4,096 points and approximate ones (pynndescent)
# above, each path compiled by numba on first use: a method warms up on 500 points before its
# first timed fit on a set below the limit, and on 4,200 before its first on a set above.
EXACT_KNN_LIMIT = 4096
LOSS_FLAG = 0.02  # a leave-one-set-out loss above this is flagged
PACKAGES = ("umap-learn", "leidenalg", "igraph", "evoc", "hdbscan", "scikit-learn",
            "numpy")


def is_uec(method):
    return method == "uec" or method.startswith(("uec-", "uec:"))


# ---------------------------------------------------------------------------------------------
# Methods: method(X, k, seed, n_jobs, shared) -> (labels, extra fields of the run record)
# ---------------------------------------------------------------------------------------------

class Shared:
    """What two methods of one set and seed compute identically: umap-learn's 2-d embedding
    (umap2d-gmm, hdbscan) and its fuzzy graph (leiden, spectral). Each is computed once; a
    method that gets it from here is charged the seconds it took (``borrowed``), so its time
    is what it would cost alone."""

    def __init__(self, X, seed):
        self.X, self.seed = X, seed
        self._values = {}
        self.borrowed = 0.0

    def get(self, key, compute):
        if key in self._values:
            value, seconds = self._values[key]
            self.borrowed += seconds
            return value
        t0 = time.perf_counter()
        value = compute(self.X, self.seed)
        self._values[key] = (value, time.perf_counter() - t0)
        return value


def umap_embedding(n_components):
    def compute(X, seed):
        import umap

        return umap.UMAP(n_components=n_components, random_state=seed).fit_transform(X)
    return compute


def fuzzy_graph(X, seed):
    """umap-learn's fuzzy simplicial set of X (15 neighbours), a symmetric CSR matrix."""
    from umap.umap_ import fuzzy_simplicial_set

    graph = fuzzy_simplicial_set(X, n_neighbors=15, random_state=np.random.RandomState(seed),
                                 metric="euclidean")[0]
    return graph.tocsr()


def uec_method(params):
    def run(X, k, seed, n_jobs, shared):
        from uec import UEC

        model = UEC(**{"n_clusters": k, "random_state": seed, "n_jobs": n_jobs, **params})
        labels = model.fit_predict(X)
        timings = getattr(model, "timings_", None)
        return labels, ({"timings": {str(s): float(t) for s, t in timings.items()}}
                        if timings else {})
    return run


def umap_gmm(n_components):
    def run(X, k, seed, n_jobs, shared):
        from sklearn.mixture import GaussianMixture

        Z = shared.get(("umap", n_components), umap_embedding(n_components))
        return GaussianMixture(k, covariance_type="full", random_state=seed).fit(Z).predict(Z), {}
    return run


def leiden(X, k, seed, n_jobs, shared):
    import igraph
    import leidenalg
    from scipy import sparse

    graph = shared.get("fuzzy", fuzzy_graph)
    upper = sparse.triu(graph, k=1).tocoo()
    g = igraph.Graph(n=graph.shape[0], edges=np.column_stack([upper.row, upper.col]).tolist(),
                     edge_attrs={"weight": upper.data.tolist()})
    lo, hi = 1e-3, 1e2
    best = None  # (|k_found - k|, labels, resolution)
    for _ in range(30):
        resolution = float(np.sqrt(lo * hi))
        partition = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition,
                                             weights="weight", resolution_parameter=resolution,
                                             seed=seed)
        labels = np.asarray(partition.membership)
        found = len(partition)
        if best is None or abs(found - k) < best[0]:
            best = (abs(found - k), labels, resolution)
        if found == k:
            break
        if found < k:
            lo = resolution
        else:
            hi = resolution
    return best[1], {"resolution": best[2]}


def spectral(X, k, seed, n_jobs, shared):
    from sklearn.cluster import SpectralClustering

    graph = shared.get("fuzzy", fuzzy_graph)
    try:  # the same eigenvectors (equal labels on digits and ORL); seconds, not minutes, at 20k
        import pyamg  # noqa: F401

        solver = "amg"
    except ImportError:
        solver = "arpack"
    model = SpectralClustering(k, affinity="precomputed", random_state=seed,
                               assign_labels="cluster_qr", eigen_solver=solver)
    return model.fit_predict(graph), {"eigen_solver": solver}


def evoc_method(X, k, seed, n_jobs, shared):
    import evoc

    return evoc.EVoC(approx_n_clusters=k, random_state=seed).fit_predict(X), {}


def hdbscan_method(X, k, seed, n_jobs, shared):
    import hdbscan

    Z = shared.get(("umap", 2), umap_embedding(2))
    model = hdbscan.HDBSCAN(min_samples=10, min_cluster_size=max(10, X.shape[0] // 100))
    return model.fit_predict(Z), {}


PEER_METHODS = {
    "umap2d-gmm": umap_gmm(2),
    "n2d": umap_gmm(10),
    "leiden": leiden,
    "spectral": spectral,
    "evoc": evoc_method,
    "hdbscan": hdbscan_method,
}


def uec_configs(extra, variants=True):
    """Method name -> UEC parameters (beyond n_clusters, random_state, n_jobs)."""
    configs = {"uec": {}}
    if variants:
        configs.update({f"uec-{v}": {"variant": v} for v in UEC_VARIANTS})
    configs.update({f"uec:{name}": params for name, params in extra.items()})
    return configs


def parse_uec(items):
    """``--uec NAME=JSON`` values -> {NAME: params}."""
    configs = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--uec {item!r}: expected NAME=JSON, "
                             "e.g. 'dim10={\"n_components\": 10}'")
        try:
            params = json.loads(text)
        except json.JSONDecodeError as e:
            raise SystemExit(f"--uec {name}: {text!r} is not JSON ({e})") from None
        if not isinstance(params, dict):
            raise SystemExit(f"--uec {name}: expected a JSON object, got {text!r}")
        if name in configs:
            raise SystemExit(f"--uec {name} given twice")
        configs[name] = params
    return configs


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def thread_limit(n):
    """BLAS and OpenMP (threadpoolctl) and numba threads limited to ``n`` for the duration."""
    from threadpoolctl import threadpool_limits

    try:
        import numba
    except ImportError:
        numba = None
    before = numba.get_num_threads() if numba else None
    if numba:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if numba:
            numba.set_num_threads(before)


def fit(method, run, X, y, k, seed, n_jobs, shared):
    """One fit of one method, scored; a failure is recorded as ``error``."""
    from uec.metrics import ari, clustering_accuracy, nmi

    record = {"method": method, "seed": seed}
    shared.borrowed = 0.0
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels, info = run(X, k, seed, n_jobs, shared)
        seconds = time.perf_counter() - t0 + shared.borrowed
        labels = np.asarray(labels).ravel()
        record.update(acc=clustering_accuracy(y, labels), nmi=nmi(y, labels), ari=ari(y, labels),
                      seconds=seconds, k_found=int(np.unique(labels[labels >= 0]).size))
        if (labels < 0).any():
            record["noise"] = float((labels < 0).mean())
        record.update(info)
    except Exception as e:  # noqa: BLE001 - one method's failure must not stop the suite
        record.update(error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
    return record


def warm_up(run, n_jobs, n):
    """One untimed fit on ``n`` blobs: numba compilation and imports out of the timings."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=8, centers=3, random_state=0)
    X = X.astype(np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(X, 3, 0, n_jobs, Shared(X, 0))
    except Exception:  # noqa: BLE001 - the timed fit will record the error
        pass


def reusable(previous, name, X, k):
    """{(method, seed): run} of the non-UEC methods of set ``name`` in an earlier JSON, when it
    was the same set (n, dim, k) and the run did not fail."""
    entry = (previous or {}).get("sets", {}).get(name)
    if not entry or (entry["n"], entry["dim"], entry["k"]) != (X.shape[0], X.shape[1], k):
        return {}
    return {(r["method"], r["seed"]): r for r in entry["runs"]
            if not is_uec(r["method"]) and "error" not in r}


def git_commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions():
    """Versions of UEC (its ``__version__``: it may run from a source tree) and of the peers."""
    import uec

    out = {"uec": uec.__version__}
    for package in PACKAGES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def write_json(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)


def run_suite(sets, methods, configs, seeds, n_jobs, json_path, previous, reuse_path):
    """Fit every method on every set and seed; print as it goes; return the results dict."""
    runners = {**{m: uec_method(p) for m, p in configs.items()}, **PEER_METHODS}
    n_threads = os.cpu_count() if n_jobs == -1 else n_jobs
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version()},
        "versions": versions(),
        "command": shlex.join([sys.executable, *sys.argv]),
        "seeds": seeds, "n_jobs": n_jobs, "methods": methods, "reuse": reuse_path,
        "uec_params": {m: p for m, p in configs.items() if m in methods},
        "sets": {},
    }
    print(f"# suite: commit {results['commit']}, {results['machine']['platform']}, "
          f"{os.cpu_count()} cpus; seeds {seeds}; n_jobs {n_jobs}", flush=True)
    warmed = set()
    for name, X, y in available(sets):
        k = int(y.max()) + 1
        kind = "real" if name in REAL else "holdout" if name in HOLDOUT else "synthetic"
        entry = {"kind": kind, "n": int(X.shape[0]),
                 "dim": int(X.shape[1]), "k": k, "runs": []}
        results["sets"][name] = entry
        old = reusable(previous, name, X, k)
        print(f"\n## {name}: n={X.shape[0]}, dim={X.shape[1]}, k={k}", flush=True)
        for seed in seeds:
            shared = Shared(X, seed)
            for method in methods:
                if (method, seed) in old:
                    record = {**old[(method, seed)], "reused": True}
                else:
                    with thread_limit(n_threads):
                        large = X.shape[0] >= EXACT_KNN_LIMIT
                        if (method, large) not in warmed:
                            warm_up(runners[method], n_jobs, 4200 if large else 500)
                            warmed.add((method, large))
                        record = fit(method, runners[method], X, y, k, seed, n_jobs, shared)
                entry["runs"].append(record)
                print("  " + run_line(record), flush=True)
        write_json(json_path, results)
        print("\n" + set_table(name, entry, methods), flush=True)
    print(f"\n(written to {json_path})", flush=True)
    return results


def run_line(r):
    head = f"{r['method']:<18} seed {r['seed']}: "
    if "error" in r:
        return head + f"FAILED {r['error']}"
    tail = " (reused)" if r.get("reused") else ""
    return (head + f"ACC {r['acc']:.4f} NMI {r['nmi']:.4f} ARI {r['ari']:.4f} "
            f"k {r['k_found']} {r['seconds']:.1f} s{tail}")


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def method_order(results, methods=None):
    """The methods to report: ``methods`` if given (checked against the JSON), else every
    method of the JSON in the order of its runs."""
    present = list(dict.fromkeys(r["method"] for s in results["sets"].values() for r in s["runs"]))
    if methods is None:
        return present
    unknown = [m for m in methods if m not in present]
    if unknown:
        raise SystemExit(f"no runs of {', '.join(unknown)} in the JSON; "
                         f"it has {', '.join(present)}")
    return list(methods)


def stats(entry, method):
    """Means over the seeds that did not fail; None when all failed or none ran."""
    runs = [r for r in entry["runs"] if r["method"] == method]
    ok = [r for r in runs if "error" not in r]
    out = {"runs": len(runs), "ok": len(ok), "errors": [r["error"] for r in runs if "error" in r],
           "reused": sum(bool(r.get("reused")) for r in runs)}
    if ok:
        for key in ("acc", "nmi", "ari", "seconds", "k_found"):
            out[key] = float(np.mean([r[key] for r in ok]))
        out["acc_std"] = float(np.std([r["acc"] for r in ok]))
    return out


def mean_acc(results, names, methods):
    """{set: {method: mean ACC}} for the methods that have a result on that set."""
    table = {}
    for name in names:
        entry = results["sets"][name]
        table[name] = {m: s["acc"] for m in methods if "acc" in (s := stats(entry, m))}
    return table


def set_table(name, entry, methods):
    lines = [f"| {name} (n={entry['n']}, dim={entry['dim']}, k={entry['k']}) | ACC | NMI | ARI "
             "| k found | s | note |", "|---|---|---|---|---|---|---|"]
    for method in methods:
        s = stats(entry, method)
        if not s["runs"]:
            continue
        notes = []
        if s["reused"]:
            notes.append("reused" if s["reused"] == s["runs"] else f"{s['reused']} reused")
        if s["errors"]:
            notes.append(f"{len(s['errors'])}/{s['runs']} failed: {s['errors'][0]}")
        note = "; ".join(notes).replace("|", "/")
        if s["ok"]:
            lines.append(f"| {method} | {s['acc']:.3f} ± {s['acc_std']:.3f} | {s['nmi']:.3f} | "
                         f"{s['ari']:.3f} | {s['k_found']:.3g} | {s['seconds']:.1f} | {note} |")
        else:
            lines.append(f"| {method} | — | — | — | — | — | {note} |")
    return "\n".join(lines)


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _cell(value, signed=False):
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def acc_table(title, acc, methods):
    """ACC per set (rows) and method (columns), the best baseline and each UEC method's
    margin over it, and a row of means over the sets (margins: over the sets with both)."""
    baselines = [m for m in methods if m in BASELINES]
    uecs = [m for m in methods if is_uec(m)] if baselines else []
    margins = [f"{m} − best" for m in uecs]
    head = ["set", *methods, *(["best baseline"] if baselines else []), *margins]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    columns = {m: [] for m in head[1:]}
    for name, row in acc.items():
        best = max((row[b] for b in baselines if b in row), default=None)
        cells = {m: row.get(m) for m in methods}
        if baselines:
            cells["best baseline"] = best
        for m, margin in zip(uecs, margins):
            cells[margin] = row[m] - best if m in row and best is not None else None
        for column, value in cells.items():
            columns[column].append(value)
        lines.append(f"| {name} | " + " | ".join(_cell(v, signed=c in margins)
                                                   for c, v in cells.items()) + " |")
    lines.append("| **mean** | " + " | ".join(_cell(_mean(columns[c]), signed=c in margins)
                                              for c in head[1:]) + " |")
    return "\n".join(lines)


def real_summary(results, acc, methods, title="Real sets"):
    """Mean ACC, mean ARI, mean rank and wins of each method over the real sets."""
    from scipy.stats import rankdata

    compared = [m for m in methods if m not in REFERENCES]
    ranks = {m: [] for m in methods}
    wins = dict.fromkeys(methods, 0)
    for row in acc.values():
        here = [m for m in compared if m in row]
        if not here:
            continue
        values = np.array([row[m] for m in here])
        for m, rank in zip(here, rankdata(-values, method="average")):
            ranks[m].append(float(rank))
        for m in here:
            wins[m] += bool(row[m] == values.max())
    lines = [f"**{title} ({len(acc)}): means over sets; rank by mean ACC among all methods "
             "but hdbscan (1 = best)**", "",
             "| method | mean ACC | mean ARI | mean rank | wins | sets |",
             "|---|---|---|---|---|---|"]
    for m in methods:
        accs = [row[m] for row in acc.values() if m in row]
        aris = [s["ari"] for name in acc if "ari" in (s := stats(results["sets"][name], m))]
        ranked = m in compared and ranks[m]
        rank, win = (f"{_mean(ranks[m]):.2f}", str(wins[m])) if ranked else ("—", "—")
        lines.append(f"| {m} | {_cell(_mean(accs))} | {_cell(_mean(aris))} | {rank} | {win} "
                     f"| {len(accs)}/{len(acc)} |")
    return "\n".join(lines)


def baseline_lines(acc, methods):
    baselines = [m for m in methods if m in BASELINES]
    if not baselines:
        return ""
    per_set = _mean([max((row[b] for b in baselines if b in row), default=None)
                     for row in acc.values()])
    means = {b: _mean([row.get(b) for row in acc.values()]) for b in baselines}
    means = {b: v for b, v in means.items() if v is not None}
    lines = [f"Mean over real sets of the best baseline per set: {_cell(per_set)}"]
    if means:
        top = max(means, key=means.get)
        lines.append(f"Best single baseline: {top}, mean ACC {means[top]:.3f}")
    return "\n".join(lines)


def summarise(results, methods=None, per_set=True):
    """The Markdown tables of a suite's results (the dict of its JSON): each set's table when
    ``per_set``, then the real-set summary and the ACC tables. ``methods``: which to report,
    in that order (default: all in the JSON)."""
    methods = method_order(results, methods)
    parts = []
    if per_set:
        parts += [set_table(name, entry, methods) for name, entry in results["sets"].items()]
    real = [n for n, e in results["sets"].items() if e["kind"] == "real"]
    synthetic = [n for n, e in results["sets"].items() if e["kind"] == "synthetic"]
    holdout = [n for n, e in results["sets"].items() if e["kind"] == "holdout"]
    if real:
        acc = mean_acc(results, real, methods)
        parts += [real_summary(results, acc, methods),
                  acc_table("ACC per real set", acc, methods), baseline_lines(acc, methods)]
    else:
        parts.append("(no real sets: no summary)")
    if synthetic:
        parts.append(acc_table("ACC per synthetic set (not in the real-set means)",
                               mean_acc(results, synthetic, methods), methods))
    if holdout:  # checked, never chosen on
        acc = mean_acc(results, holdout, methods)
        parts += [real_summary(results, acc, methods, title="Held-out sets"),
                  acc_table("ACC per held-out set (not in the real-set means)", acc, methods),
                  baseline_lines(acc, methods).replace("real sets", "held-out sets")]
    return "\n\n".join(p for p in parts if p)


def loso_choices(acc, candidates):
    """Leave-one-set-out over ``acc`` ({set: {candidate: mean ACC}}): for each set, the
    candidate with the best mean ACC on the other sets, the best one on the set itself, and
    what the choice loses there. Returns ``[(set, chosen, best, loss)]`` in ``acc``'s order."""
    out = []
    for name, row in acc.items():
        others = [acc[o] for o in acc if o != name]
        chosen = max(candidates, key=lambda m: np.mean([o[m] for o in others]))
        best = max(candidates, key=row.get)
        out.append((name, chosen, best, row[best] - row[chosen]))
    return out


def loso(results, methods=None):
    """Leave-one-set-out choice among the UEC configurations (``uec``, ``uec-VARIANT`` and
    ``uec:NAME``): for each real set, the one with the best mean ACC on the other real sets,
    against the best one on it."""
    candidates = [m for m in method_order(results, methods) if m.startswith("uec")]
    if len(candidates) < 2:
        return f"(leave-one-set-out needs at least two of uec and uec:NAME; found {candidates})"
    real = [n for n, e in results["sets"].items() if e["kind"] == "real"]
    acc = {n: row for n, row in mean_acc(results, real, candidates).items()
           if all(m in row for m in candidates)}  # the sets on which every candidate ran
    if len(acc) < 2:
        return "(leave-one-set-out needs at least two real sets on which every candidate ran)"
    lines = [f"**Leave-one-set-out choice among {', '.join(candidates)} ({len(acc)} real sets)**",
             "", "| held-out set | chosen on the others | its ACC | best on the set | ACC | loss |",
             "|---|---|---|---|---|---|"]
    losses = []
    for name, chosen, best, loss in loso_choices(acc, candidates):
        row = acc[name]
        losses.append(loss)
        flag = f" **> {LOSS_FLAG}**" if loss > LOSS_FLAG else ""
        lines.append(f"| {name} | {chosen} | {row[chosen]:.3f} | {best} | {row[best]:.3f} "
                     f"| {loss:.3f}{flag} |")
    overall = max(candidates, key=lambda m: np.mean([row[m] for row in acc.values()]))
    flagged = sum(loss > LOSS_FLAG for loss in losses)
    lines += ["", f"Mean loss {np.mean(losses):.4f}, largest {max(losses):.3f}; {flagged} of "
              f"{len(losses)} sets lose more than {LOSS_FLAG}. Chosen on all real sets: {overall}."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="only the sets with n <= 3,000")
    which.add_argument("--sets", nargs="+", choices=NAMES, metavar="SET",
                       help=f"the sets to run (default: every real and synthetic set): "
                            f"{', '.join(NAMES)}")
    which.add_argument("--holdout", action="store_true",
                       help="only the held-out sets (never used to choose; see _data.py): "
                            + ", ".join(HOLDOUT))
    ap.add_argument("--methods", nargs="+", metavar="METHOD",
                    help="the methods to run or report (default all), uec:NAME ones included")
    ap.add_argument("--uec", action="append", default=[], metavar="NAME=JSON",
                    help="an extra UEC configuration, run as method uec:NAME (repeatable)")
    ap.add_argument("--no-uec-variants", action="store_true",
                    help="leave out uec-plus, uec-light_plus, uec-comma and uec-ce")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    ap.add_argument("--reuse", type=Path, metavar="PATH",
                    help="an earlier suite JSON whose non-UEC runs are taken instead of re-run")
    ap.add_argument("--from", dest="from_json", type=Path, metavar="PATH",
                    help="print the tables of a saved JSON; run nothing")
    ap.add_argument("--loso", action="store_true",
                    help="also print the leave-one-set-out choice among uec and uec:NAME")
    args = ap.parse_args(argv)

    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        print(summarise(results, args.methods))
        if args.loso:
            print("\n" + loso(results, args.methods))
        return 0

    configs = uec_configs(parse_uec(args.uec), variants=not args.no_uec_variants)
    available = [*configs, *PEERS]
    if args.methods is not None:
        unknown = [m for m in args.methods if m not in available]
        if unknown:
            raise SystemExit(f"unknown method(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(available)}")
    methods = list(dict.fromkeys(args.methods or available))
    sets = QUICK if args.quick else HOLDOUT if args.holdout else (args.sets or REAL + SYNTHETIC)
    previous = json.loads(args.reuse.read_text()) if args.reuse else None

    results = run_suite(sets, methods, configs, args.seeds, args.n_jobs, args.json, previous,
                        str(args.reuse) if args.reuse else None)
    print("\n" + summarise(results, per_set=False))
    if args.loso:
        print("\n" + loso(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
