"""Full MNIST (70,000 images) through the torch feature stage on the CPU.

    python benchmarks/mnist_features.py --ae-epochs 5,10,20,30 --uec-at 10,20,30 --joint-epochs 1,2,4

One autoencoder (784-500-500-2000-10, binary cross-entropy, Adam, batch 256; --loss,
--n-components, --noise, --noise-type and --invariance change it; --deskew de-slants the images first) is
trained with warm starts up to each number of epochs in --ae-epochs; at each checkpoint its
features are clustered by k-means (10 restarts) and, where --uec-at says so, by UEC. ReprNet then starts
from the last autoencoder (``pretrained=``) and runs its joint epochs, with k-means after each
count in --joint-epochs. Every stage's wall time and ACC/NMI are printed and written to
benchmarks/out/mnist_features.json. Labels are used only to score, never to choose anything.

The final autoencoder's features (70000 x 10 float32) go to --features-out and its weights to
mnist_ae.pt beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_ints(text):
    return sorted({int(v) for v in text.split(",") if v.strip()})


def train_autoencoder(args, X, y, score, report, save_report):
    """The autoencoder, warm-started from checkpoint to checkpoint, with k-means (and UEC
    where --uec-at asks) on its features at each checkpoint."""
    from sklearn.cluster import KMeans
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from uec import UEC, AutoEncoder

    if args.ae_resume is not None:
        # continue a run that was cut short; the optimiser's moments start afresh
        ae = AutoEncoder.load(args.ae_resume)
        ae.set_params(warm_start=True)
        trained = ae.n_iter_
        report["resumed_from"] = {"weights": args.ae_resume, "epochs": trained}
        print(f"AE resumed from {args.ae_resume} ({trained} epochs)")
    else:
        ae = AutoEncoder(n_components=args.n_components, loss=args.loss, batch_size=args.batch_size, warm_start=True,
                         noise=args.noise, noise_type=args.noise_type, image_shape=(28, 28),
                         invariance=args.invariance,
                         random_state=args.seed)
        trained = 0
    train_time = 0.0
    uec_at = set(parse_ints(args.uec_at))
    for target in parse_ints(args.ae_epochs):
        if target <= trained:
            continue
        ae.set_params(n_epochs=target - trained)
        ae.fit(X)
        train_time += ae.timings_["train"]
        trained = target
        t = time.perf_counter()
        F = ae.transform(X)
        t_transform = time.perf_counter() - t
        t = time.perf_counter()
        km = KMeans(10, n_init=10, random_state=args.seed).fit_predict(F)
        t_km = time.perf_counter() - t
        row = {"epochs": trained, "train_s": round(train_time, 1), "loss": round(ae.loss_curve_[-1], 3),
               "transform_s": round(t_transform, 1), "kmeans": {**score(km), "s": round(t_km, 1)}}
        line = (f"AE {trained:3d} epochs  train {train_time:7.1f} s  loss {ae.loss_curve_[-1]:.3f}  "
                f"| AE+KMeans ACC {row['kmeans']['acc']:.4f} NMI {row['kmeans']['nmi']:.4f} ({t_km:.1f} s)")
        if args.knn_ceiling:
            # what any method that clusters by these features' neighbourhoods can hope for:
            # a 15-NN classifier that is given the labels (3-fold cross-validation)
            t = time.perf_counter()
            row["knn15_label_acc"] = round(float(cross_val_score(
                KNeighborsClassifier(15), F, y, cv=3).mean()), 4)
            line += f"  | 15-NN label acc {row['knn15_label_acc']:.4f} ({time.perf_counter() - t:.0f} s)"
        if trained in uec_at:
            t = time.perf_counter()
            model = UEC(n_clusters=10, random_state=args.seed, n_jobs=args.threads)
            labels = model.fit_predict(F)
            t_uec = time.perf_counter() - t
            row["uec"] = {**score(labels), "s": round(t_uec, 1),
                          "stages_s": {k: round(v, 1) for k, v in model.timings_.items()}}
            line += f"  | AE+UEC ACC {row['uec']['acc']:.4f} NMI {row['uec']['nmi']:.4f} ({t_uec:.1f} s)"
        print(line, flush=True)
        report["autoencoder"].append(row)
        save_report()
        # overwritten at every checkpoint, so a run cut short still leaves its latest features
        np.save(args.features_out.format(epochs=trained), F.astype(np.float32))
        weights = Path(args.out).with_name("mnist_ae.pt")
        ae.save(weights)
    print(f"features {F.shape} {F.dtype} -> {args.features_out.format(epochs=trained)}; "
          f"weights -> {weights}")
    return ae, trained


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist.npz"))
    ap.add_argument("--ae-epochs", default="5,10,20,30", help="checkpoints (cumulative epochs)")
    ap.add_argument("--uec-at", default="10,20,30", help="AE checkpoints at which UEC also runs")
    ap.add_argument("--joint-epochs", default="1,2,4", help="ReprNet checkpoints (cumulative)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and UEC threads (1: faster than 2 on a busy 2-core machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=None, help="first n images only (smoke runs)")
    ap.add_argument("--ae-weights", default=None,
                    help="skip the autoencoder stage: load weights written by a previous run "
                         "(AutoEncoder.save) and run ReprNet from them")
    ap.add_argument("--loss", default="bce", choices=["bce", "mse"], help="AutoEncoder loss")
    ap.add_argument("--n-components", type=int, default=10, help="AutoEncoder bottleneck")
    ap.add_argument("--noise-type", default="gaussian", help="AutoEncoder noise_type")
    ap.add_argument("--noise", type=float, default=0.0, help="AutoEncoder noise level")
    ap.add_argument("--invariance", type=float, default=0.0,
                    help="AutoEncoder invariance (weight of the warp-invariance term; 0: off)")
    ap.add_argument("--ae-resume", default=None,
                    help="continue training the autoencoder saved by an earlier run (its epochs "
                         "count towards --ae-epochs; train_s counts this run only)")
    ap.add_argument("--deskew", action="store_true",
                    help="centre and de-slant each image first (uec.preprocessing.deskew; label-free)")
    ap.add_argument("--knn-ceiling", action="store_true",
                    help="also score a 15-NN classifier on the features with the labels (3-fold "
                         "CV): the ceiling of clustering by their neighbourhoods")
    ap.add_argument("--features-out", default="/tmp/uec-mnist-ae-features.npy",
                    help="where the features go; '{epochs}' in it keeps one file per checkpoint")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "mnist_features.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from uec import AutoEncoder, ReprNet
    from uec.metrics import clustering_accuracy, nmi

    t0 = time.perf_counter()
    with np.load(args.data) as d:
        X, y = d["X"], d["y"]
    if args.n is not None:
        X, y = X[: args.n], y[: args.n]
    X = (X.reshape(len(X), -1).astype(np.float32) / 255.0)
    if args.deskew:
        from uec.preprocessing import deskew

        X = deskew(X, (28, 28))
    print(f"data: {X.shape[0]} x {X.shape[1]}, scaled to [0, 1]{', deskewed' if args.deskew else ''} "
          f"({time.perf_counter() - t0:.1f} s)")

    def score(labels):
        return {"acc": round(clustering_accuracy(y, labels), 4), "nmi": round(nmi(y, labels), 4)}

    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads()},
        "config": vars(args),
        "autoencoder": [],
        "reprnet": [],
    }

    def save_report():
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))

    if args.ae_weights is not None:
        ae = AutoEncoder.load(args.ae_weights)
        trained = ae.n_iter_
        report["autoencoder"].append({"epochs": trained, "loaded_from": args.ae_weights})
        print(f"AE loaded from {args.ae_weights} ({trained} epochs)")
    else:
        ae, trained = train_autoencoder(args, X, y, score, report, save_report)

    # -- ReprNet from the last autoencoder ---------------------------------------------------
    model = ReprNet(n_clusters=10, n_components=ae.n_components, pretrained=ae,
                    batch_size=args.batch_size,
                    warm_start=True, random_state=args.seed)
    done, joint_time = 0, 0.0
    for target in parse_ints(args.joint_epochs):
        model.set_params(n_epochs=target - done)
        model.fit(X)
        done = target
        joint_time += model.timings_["joint"]
        row = {"joint_epochs": done, "ae_epochs": trained, "joint_s": round(joint_time, 1),
               "kmeans_s": round(model.timings_["kmeans"], 1), **score(model.labels_),
               "L_R": round(model.history_["reconstruction"][-1], 3),
               "L_E": round(model.history_["embedding"][-1], 3)}
        print(f"ReprNet {done:2d} joint epochs  joint {joint_time:7.1f} s  L_R {row['L_R']:.3f} "
              f"L_E {row['L_E']:.3f} | ACC {row['acc']:.4f} NMI {row['nmi']:.4f} "
              f"(k-means {row['kmeans_s']:.1f} s)", flush=True)
        report["reprnet"].append(row)
        save_report()
    print(f"total {time.perf_counter() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
