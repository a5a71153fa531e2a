"""``python -m uec demo``: cluster scikit-learn's digits and print accuracy and time."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    from sklearn.datasets import load_digits

    from . import UEC
    from .metrics import evaluate

    X, y = load_digits(return_X_y=True)
    t0 = time.perf_counter()
    model = UEC(n_clusters=10, variant=args.variant, random_state=args.seed, n_jobs=args.n_jobs)
    labels = model.fit_predict(X)
    elapsed = time.perf_counter() - t0
    scores = evaluate(y, labels)
    sys.stdout.write(
        f"UEC ({args.variant}) on digits: {X.shape[0]} points x {X.shape[1]} features, "
        f"10 clusters\n"
        f"  ACC {scores['acc']:.3f}  NMI {scores['nmi']:.3f}  ARI {scores['ari']:.3f}  "
        f"time {elapsed:.2f} s ({model.n_iter_} epochs)\n"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="uec", description="Unified Embedding and Clustering")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="cluster scikit-learn's digits and print ACC and time")
    demo.add_argument("--variant", default="plus", choices=["plus", "light_plus", "comma", "ce"])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
