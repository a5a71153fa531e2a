"""The ``uec`` command line (also ``python -m uec``).

    uec fit DATA --out DIR [--n-clusters K] [--labels-at K,...] [--labels LABELS] ...
    uec demo [--variant V] [--seed S]

DATA and LABELS are .npy, .npz, .csv, .tsv or .txt files. An expected failure ends with one
line ``uec: error: ...`` on stderr and exit status 2 (command line) or 1 (anything else);
UEC_DEBUG=1 shows the traceback. Every option, the .npz/CSV reading rules and the outputs:
the guide's "Command line" section (docs/guide.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# the input files and the error type, importable from here as before
from ._cli_input import (  # noqa: F401
    DATA_KEYS,
    ID_NAMES,
    LABEL_KEYS,
    CliError,
    Columns,
    _check_data,
    _check_labels,
    _labels_or_ids,
    _one_line,
    load_array,
)

logger = logging.getLogger("uec.cli")

VARIANTS = ("comma", "plus", "light_plus", "ce")
DEFAULT_VARIANT = "ce"  # the estimator's default (tests/test_cli.py checks they agree)
PLOT_HINT = "matplotlib is not installed (pip install uec[plot])"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CliError(f"{message} (see '{self.prog} --help')", status=2, prog=self.prog)


# -- commands --------------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    return repr(value)


def _column_values(values):
    """Labels or ids taken from a column: integers when they all are, else strings."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return _labels_or_ids(values)


def _metric_kwds(text):
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CliError(f"--metric-kwds {text!r} must be a JSON object of the metric's keyword "
                       f"arguments, for example '{{\"p\": 3}}'", status=2)
    return value


def _check_metric(name):
    """A metric name the kNN search knows (scikit-learn's or pynndescent's), else one line."""
    from sklearn.neighbors import VALID_METRICS

    brute = set(VALID_METRICS["brute"]) - {"precomputed"}  # X is data, not distances
    if name in brute:
        return name
    from pynndescent.distances import named_distances

    if name in named_distances:
        return name
    known = sorted(brute | set(named_distances))
    raise CliError(f"--metric {name!r} is not a metric the kNN search knows; allowed: "
                   f"{', '.join(known)}", status=2)


def _cluster_count(text):
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer or 'auto'") from None


def _cluster_counts(text):
    counts = []
    for part in text.split(","):
        try:
            counts.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} in {text!r} is not an integer (expected K or K1,K2,...)") from None
    return list(dict.fromkeys(counts))


def _outputs(args, with_ids):
    names = ["labels.npy", "embedding.npy", "centres.npy"]
    names += [f"labels_k{k}.npy" for k in args.labels_at]
    if with_ids:
        names += ["ids.npy", "labels.csv"]
    if not args.no_plot:
        names.append("embedding.png")
    return names + ["summary.json"]


def _check_out(args, names):
    """Before the fit: --out is (or can be made) a writable directory, and no output there is
    a symbolic link or, without --overwrite, an existing file."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out} exists and is not a directory", status=2)
    probe_dir = out
    while not probe_dir.exists():
        if probe_dir.is_symlink():
            raise CliError(f"--out {args.out}: {probe_dir} is a broken symbolic link", status=2)
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise CliError(f"--out {args.out}: {probe_dir} is not a directory, so {args.out} cannot "
                       f"be created", status=2)
    try:  # os.access says yes to root on a read-only file system: try it
        import tempfile

        fd, probe = tempfile.mkstemp(prefix=".uec-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        what = "is not writable" if probe_dir == out else f"cannot be created: {probe_dir} is not writable"
        raise CliError(f"--out {args.out} {what} ({exc.strerror or _one_line(exc)}); choose a "
                       f"directory you can write to") from None
    if out.is_dir():
        for name in names:
            _check_target(out / name, args.overwrite)


def _check_target(target, overwrite):
    if target.is_symlink():
        raise CliError(f"{target} is a symbolic link; uec writes no output through a link "
                       f"(remove it, or choose another --out)")
    if target.exists():
        if target.is_dir():
            raise CliError(f"{target} is a directory; it cannot be replaced by an output file")
        if not overwrite:
            raise CliError(f"{target} exists; pass --overwrite to replace it, or choose another "
                           f"--out")


class _Writer:
    """Writes the outputs into --out: each to a new temporary file in --out (created with
    O_EXCL, so no link is followed) and then renamed over the name, which replaces a name and
    never writes through a link; an existing output is replaced only with --overwrite."""

    def __init__(self, out, overwrite):
        self.out = Path(out)
        self.overwrite = overwrite
        self.written = []

    def write(self, name, fill):
        import tempfile

        target = self.out / name
        _check_target(target, self.overwrite)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.out)
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
            _check_target(target, self.overwrite)  # again: it may have appeared meanwhile
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written.append(name)

    def npy(self, name, arr):
        self.write(name, lambda fh: np.save(fh, arr, allow_pickle=False))

    def text(self, name, text):
        self.write(name, lambda fh: fh.write(text.encode("utf-8")))


def _csv_field(value):
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def _fit(args) -> int:
    t_start = time.perf_counter()
    metric_kwds = _metric_kwds(args.metric_kwds)
    if args.label_column is not None and args.labels is not None:
        raise CliError("--labels and --label-column both give the true labels: use one", status=2)
    drop = [d.strip() for spec in (args.drop or []) for d in spec.split(",") if d.strip()]
    columns = Columns(label=args.label_column, id=args.id_column, drop=drop)
    with_ids = args.id_column is not None
    names = _outputs(args, with_ids)
    _check_out(args, names)  # before reading: a bad --out is found at once
    if args.metric != "euclidean":
        _check_metric(args.metric)
    X = _check_data(load_array(args.data, args.key, columns=columns), args.data)
    y = None
    if args.labels is not None:
        y = _check_labels(load_array(args.labels, args.labels_key, as_labels=True,
                                     n_expected=X.shape[0]), X.shape[0],
                          args.labels)
    taken = columns.taken
    if args.label_column is not None:
        y = _column_values(taken["--label-column"][2])
    ids = _column_values(taken["--id-column"][2]) if with_ids else None
    out = Path(args.out)
    t_load = time.perf_counter() - t_start

    from . import UEC, __version__  # after the input checks: scikit-learn takes a while to import
    from .metrics import evaluate

    model = UEC(n_clusters=args.n_clusters, noise_threshold=args.noise_threshold,
                variant=args.variant, n_components=args.n_components,
                n_subclusters=args.n_subclusters, warmup_epochs=args.warmup_epochs,
                n_neighbors=args.n_neighbors, metric=args.metric, metric_kwds=metric_kwds,
                union_metric=None if args.union_metric.lower() == "none" else args.union_metric,
                refine=None if args.refine == "none" else args.refine,
                min_dist=args.min_dist, n_epochs=args.n_epochs,
                random_state=args.random_state, n_jobs=args.n_jobs, verbose=args.verbose)
    t0 = time.perf_counter()
    model.fit(X)
    t_fit = time.perf_counter() - t0
    partitions = {}  # before anything is written: a k the hierarchy lacks fails cleanly
    for k in args.labels_at:
        try:
            partitions[k] = model.labels_at(k)
        except ValueError as exc:
            raise CliError(f"--labels-at {k}: {exc}") from None

    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, args.overwrite)
    writer.npy("labels.npy", model.labels_)
    writer.npy("embedding.npy", model.embedding_)
    writer.npy("centres.npy", model.cluster_centers_)
    for k, other in partitions.items():
        writer.npy(f"labels_k{k}.npy", other)
    if with_ids:
        writer.npy("ids.npy", ids)
        id_name = taken["--id-column"][1] or "id"
        lines = [f"{_csv_field(id_name)},label"]
        lines += [f"{_csv_field(i)},{int(lab)}" for i, lab in zip(ids.tolist(), model.labels_)]
        writer.text("labels.csv", "\n".join(lines) + "\n")
    plot = _write_plot(model, writer, args.no_plot)

    scores = None
    if y is not None:
        scores = {k: float(v) for k, v in evaluate(y, model.labels_).items()}
    from . import _core

    def column(opt):
        i, name, _ = taken[opt]
        return {"index": int(i), "name": name}

    summary = {
        "uec_version": __version__,
        "data": {"path": str(args.data), "key": args.key, "n_samples": int(X.shape[0]),
                 "n_features": int(X.shape[1]),
                 "id_column": column("--id-column") if with_ids else None,
                 "dropped_columns": [column(k) for k in taken if k.startswith("--drop")]},
        "labels": (None if y is None else
                   {"column": column("--label-column")} if args.label_column is not None else
                   {"path": str(args.labels), "key": args.labels_key}),
        "parameters": {k: _jsonable(v) for k, v in model.get_params().items()},
        "n_epochs": int(model.n_epochs_),
        "n_iter": int(model.n_iter_),
        "threads": int(_core.resolve_threads(-1 if args.n_jobs is None else args.n_jobs)),
        "times_s": {"load": t_load, **{k: float(v) for k, v in model.timings_.items()},
                    "fit_total": t_fit},
        "n_clusters": int(model.n_clusters_),
        "cluster_sizes": np.bincount(model.labels_[model.labels_ >= 0],
                                     minlength=model.n_clusters_).tolist(),
        "noise_points": int((model.labels_ < 0).sum()),
        "scores": scores,
        "plot": plot,
        "files": writer.written + ["summary.json"],
    }
    writer.text("summary.json", json.dumps(summary, indent=2) + "\n")

    line = (f"UEC ({args.variant}): {X.shape[0]} points x {X.shape[1]} features, "
            f"{model.n_clusters_} clusters"
            + (" (chosen from the data)" if args.n_clusters is None else "")
            + (f", {int((model.labels_ < 0).sum())} noise points"
               if args.noise_threshold is not None else "")
            + f", {model.n_iter_} epochs, fit {t_fit:.2f} s")
    if scores is not None:
        line += f"\n  ACC {scores['acc']:.3f}  NMI {scores['nmi']:.3f}  ARI {scores['ari']:.3f}"
    sys.stdout.write(line + f"\n  wrote {', '.join(writer.written)} to {out}\n")
    return 0


def _write_plot(model, writer, disabled):
    if disabled:
        return "skipped: --no-plot"
    try:
        from .plot import embedding_figure

        fig = embedding_figure(model)
    except ImportError:
        sys.stderr.write(f"uec: note: embedding.png not written: {PLOT_HINT}\n")
        return f"skipped: {PLOT_HINT}"
    if model.embedding_.shape[1] > 2:
        fig.axes[0].set_title(fig.axes[0].get_title() + ", dimensions 0 and 1")
    writer.write("embedding.png", lambda fh: fig.savefig(fh, format="png", dpi=110))
    return "embedding.png"


def _demo(args) -> int:
    from sklearn.datasets import load_digits

    from . import UEC
    from .metrics import evaluate

    X, y = load_digits(return_X_y=True)
    t0 = time.perf_counter()
    model = UEC(n_clusters=10, variant=args.variant, random_state=args.seed, n_jobs=args.n_jobs,
                verbose=args.verbose)
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


def build_parser():
    from . import __version__

    parser = _Parser(prog="uec", description="Unified Embedding and Clustering")
    parser.add_argument("--version", action="version", version=f"uec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fit,demo}")

    fit = sub.add_parser(
        "fit", help="cluster a data file and write labels, embedding, centres, plot, summary",
        description="Cluster DATA and write labels.npy, embedding.npy, centres.npy, "
                    "embedding.png (with matplotlib) and summary.json to --out.",
    )
    fit.add_argument("data", metavar="DATA", help="data file: .npy, .npz or .csv (n_samples x n_features)")
    fit.add_argument("--n-clusters", type=_cluster_count, default=None, metavar="K",
                     help="number of clusters (default: chosen from the data; 'auto' alike)")
    fit.add_argument("--labels-at", type=_cluster_counts, default=[], metavar="K[,K...]",
                     help="also write labels_kK.npy: the fitted hierarchy's partition into K "
                          "clusters, for each K (no refit)")
    fit.add_argument("--noise-threshold", type=float, default=None, metavar="T",
                     help="label points whose outlier score exceeds T (0 < T < 1) as -1")
    fit.add_argument("--out", required=True, metavar="DIR",
                     help="output directory (created; checked before the fit)")
    fit.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
    fit.add_argument("--labels", metavar="LABELS",
                     help="true labels (.npy/.npz/.csv) to score the result: ACC, NMI, ARI")
    fit.add_argument("--key", help="array of DATA when it is an .npz (default: X, data, or the first)")
    fit.add_argument("--labels-key", help="array of LABELS when it is an .npz (default: y, labels, "
                                          "target, or the first)")
    fit.add_argument("--random-state", type=int, default=None, metavar="SEED")
    fit.add_argument("--n-jobs", type=int, default=-1, metavar="N", help="threads (-1: all cores)")
    fit.add_argument("--n-epochs", type=int, default=None, metavar="N")
    fit.add_argument("--n-components", type=int, default=2, metavar="D")
    fit.add_argument("--n-subclusters", type=int, default=None, metavar="K2",
                     help="centres before the merge (default: 3 x n-clusters, on large data one per 1,000 "
                          "points up to 6 x n-clusters; = n-clusters: no merge)")
    fit.add_argument("--warmup-epochs", type=int, default=None, metavar="N",
                     help="CE-only epochs before the centres (default: three quarters of the epochs)")
    fit.add_argument("--n-neighbors", type=int, default=15, metavar="K")
    fit.add_argument("--min-dist", type=float, default=0.1)
    fit.add_argument("--metric", default="euclidean",
                     help="metric of the kNN search: any of scikit-learn's or pynndescent's "
                          "(default: euclidean)")
    fit.add_argument("--union-metric", default="none", metavar="METRIC",
                     help="second metric whose kNN graph the clusters' graph joins, e.g. cosine "
                          "(UEC's union_metric; default 'none': the graph of --metric alone)")
    fit.add_argument("--refine", default="auto", choices=("auto", "none"),
                     help="the graph stage's labels refined by a Gaussian mixture where one is "
                          "identifiable (UEC's refine; default auto; none: the graph's labels)")
    fit.add_argument("--metric-kwds", metavar="JSON",
                     help="keyword arguments of the metric as a JSON object, e.g. '{\"p\": 3}'")
    fit.add_argument("--label-column", metavar="COL",
                     help="column of DATA holding the true labels (header name or 0-based "
                          "index): taken out of the features and used to score, as --labels")
    fit.add_argument("--id-column", metavar="COL",
                     help="column of DATA holding row ids (header name or 0-based index): not a "
                          "feature; written beside the labels to labels.csv and ids.npy")
    fit.add_argument("--drop", action="append", metavar="COL[,COL...]",
                     help="columns of DATA that are not features (names or indices; repeatable)")
    fit.add_argument("--overwrite", action="store_true",
                     help="replace outputs already in --out (without it uec refuses)")
    fit.add_argument("--no-plot", action="store_true", help="do not write embedding.png")
    fit.add_argument("-v", "--verbose", action="store_true", help="progress bars and stage log")
    fit.set_defaults(func=_fit)

    demo = sub.add_parser("demo", help="cluster scikit-learn's digits and print ACC and time")
    demo.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--n-jobs", type=int, default=-1)
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(func=_demo)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(f"uec: warning: {_one_line(message)}\n")


def main(argv=None) -> int:
    debug = os.environ.get("UEC_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        from ._progress import reporting

        # -v: the INFO records of the uec loggers as lines beneath the bars (uec._progress)
        with warnings.catch_warnings(), reporting(getattr(args, "verbose", False)):
            if not debug:
                warnings.showwarning = _show_warning
            return args.func(args)
    except CliError as exc:
        sys.stderr.write(f"{exc.prog}: error: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write("uec: interrupted\n")
        return 130
    except Exception as exc:  # the estimator's ValueError and the like: one line, no traceback
        if debug:
            raise
        sys.stderr.write(f"uec: error: {_one_line(exc)}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
