"""The ``uec`` command line (also ``python -m uec``).

    uec fit DATA --n-clusters K --out DIR [--variant V] [--labels LABELS] [--key KEY] ...
    uec demo [--variant V] [--seed S]

DATA and LABELS are .npy, .npz or .csv files (.tsv and .txt too: tab- or blank-separated).
In an .npz, ``--key`` / ``--labels-key`` name the array; by default the data is the array named
``X`` (else ``data``, else the first array in the file) and the labels the array named ``y``
(else ``labels``, else ``target``, else the first array), so one file holding ``X`` and ``y``
serves as both. A CSV whose first line is not numeric is read as having a header line.

Every expected failure (missing file, unreadable format, bad option, labels of the wrong
length, parameters the estimator refuses) ends with one line on stderr, ``uec: error: ...``,
and exit status 2 (bad command line) or 1 (anything else); set UEC_DEBUG=1 for a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

logger = logging.getLogger("uec.cli")

VARIANTS = ("comma", "plus", "light_plus", "ce")
DEFAULT_VARIANT = "ce"  # the estimator's default (tests/test_cli.py checks they agree)
DATA_KEYS = ("X", "data")
LABEL_KEYS = ("y", "labels", "target")
PLOT_HINT = "matplotlib is not installed (pip install uec[plot])"


class CliError(Exception):
    """A failure to report as one line; ``status`` is the exit code."""

    def __init__(self, message, status=1, prog="uec"):
        super().__init__(message)
        self.status = status
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CliError(f"{message} (see '{self.prog} --help')", status=2, prog=self.prog)


# -- reading input ---------------------------------------------------------------------------


def _read_text_table(path, delimiter, as_labels, n_expected=None):
    """Rows of a CSV/TSV/whitespace table; a non-numeric first line is a header (for labels,
    which may be words: when followed by numbers, or when there is one row too many)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except UnicodeDecodeError:
        raise CliError(f"cannot read {path}: not a UTF-8 text file") from None
    if not lines:
        raise CliError(f"{path} is empty")
    rows = [ln.split(delimiter) if delimiter else ln.split() for ln in lines]
    rows = [[c.strip().strip('"').strip("'") for c in r] for r in rows]

    def numeric(row):
        try:
            [float(c) for c in row]
            return True
        except ValueError:
            return False

    if not as_labels:
        header = not numeric(rows[0])
    else:
        header = (n_expected is not None and len(rows) == n_expected + 1) or (
            not numeric(rows[0]) and len(rows) > 1 and numeric(rows[1]))
    if header:
        rows = rows[1:]
    if not rows:
        raise CliError(f"{path} has a header but no rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise CliError(f"{path}: rows have different numbers of columns ({sorted(widths)[:5]})")
    if as_labels:
        if widths != {1}:
            raise CliError(f"{path}: a labels file must have one column, got {widths.pop()}")
        col = [r[0] for r in rows]
        try:
            return np.array([int(c) for c in col])
        except ValueError:
            return np.array(col)
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        bad = next(c for r in rows for c in r if not _is_float(c))
        raise CliError(f"{path}: non-numeric value {bad!r} in the data") from None


def _is_float(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_array(path, key=None, as_labels=False, n_expected=None):
    """Array from .npy / .npz / .csv / .tsv / .txt; raises CliError with one line on failure."""
    what = "labels" if as_labels else "data"
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} file not found: {path}")
    if p.is_dir():
        raise CliError(f"{what} path is a directory, not a file: {path}")
    suffix = p.suffix.lower()
    if key is not None and suffix != ".npz":
        raise CliError(f"--{'labels-key' if as_labels else 'key'} applies to .npz files only, "
                       f"not {p.name}", status=2)
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.files)
                if not names:
                    raise CliError(f"{path} holds no arrays")
                if key is not None:
                    if key not in names:
                        raise CliError(f"{path} has no array {key!r}; it holds: {', '.join(names)}")
                    chosen = key
                else:
                    preferred = [k for k in (LABEL_KEYS if as_labels else DATA_KEYS) if k in names]
                    chosen = preferred[0] if preferred else names[0]
                logger.info("%s: array %r of %s", what, chosen, path)
                arr = z[chosen]
        elif suffix in (".csv", ".tsv", ".txt"):
            delimiter = {".csv": ",", ".tsv": "\t", ".txt": None}[suffix]
            arr = _read_text_table(p, delimiter, as_labels, n_expected)
        else:
            raise CliError(f"unsupported {what} format {suffix or '(no extension)'!r} of {path}: "
                           f"use .npy, .npz or .csv")
    except CliError:
        raise
    except (ValueError, OSError, EOFError) as exc:  # corrupt or pickled .npy/.npz
        raise CliError(f"cannot read {path} as {suffix}: {_one_line(exc)}") from None
    return arr


def _check_data(X, path):
    if X.dtype.kind not in "biuf":
        raise CliError(f"{path}: the data must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise CliError(f"{path}: the data must be 2-D (n_samples, n_features), got shape {X.shape}")
    return X


def _check_labels(y, n, path):
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise CliError(f"{path}: labels must be 1-D, got shape {y.shape}")
    if y.shape[0] != n:
        raise CliError(f"{path}: {y.shape[0]} labels for {n} data rows; they must match")
    return y


# -- commands --------------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    return repr(value)


def _fit(args) -> int:
    t_start = time.perf_counter()
    X = _check_data(load_array(args.data, args.key), args.data)
    y = None
    if args.labels is not None:
        y = _check_labels(load_array(args.labels, args.labels_key, as_labels=True,
                                     n_expected=X.shape[0]), X.shape[0],
                          args.labels)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out} exists and is not a directory", status=2)
    t_load = time.perf_counter() - t_start

    from . import UEC, __version__  # after the input checks: scikit-learn takes a while to import
    from .metrics import evaluate

    model = UEC(n_clusters=args.n_clusters, variant=args.variant, n_components=args.n_components,
                n_subclusters=args.n_subclusters, warmup_epochs=args.warmup_epochs,
                n_neighbors=args.n_neighbors, min_dist=args.min_dist, n_epochs=args.n_epochs,
                random_state=args.random_state, n_jobs=args.n_jobs, verbose=args.verbose)
    t0 = time.perf_counter()
    model.fit(X)
    t_fit = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "labels.npy", model.labels_)
    np.save(out / "embedding.npy", model.embedding_)
    np.save(out / "centres.npy", model.cluster_centers_)
    files = ["labels.npy", "embedding.npy", "centres.npy"]
    plot = _write_plot(model, out, args.no_plot)
    if plot == "embedding.png":
        files.append(plot)

    scores = None
    if y is not None:
        scores = {k: float(v) for k, v in evaluate(y, model.labels_).items()}
    from . import _core

    summary = {
        "uec_version": __version__,
        "data": {"path": str(args.data), "key": args.key, "n_samples": int(X.shape[0]),
                 "n_features": int(X.shape[1])},
        "labels": None if y is None else {"path": str(args.labels), "key": args.labels_key},
        "parameters": {k: _jsonable(v) for k, v in model.get_params().items()},
        "n_epochs": int(model.n_epochs_),
        "n_iter": int(model.n_iter_),
        "threads": int(_core.resolve_threads(-1 if args.n_jobs is None else args.n_jobs)),
        "times_s": {"load": t_load, **{k: float(v) for k, v in model.timings_.items()},
                    "fit_total": t_fit},
        "cluster_sizes": np.bincount(model.labels_, minlength=model.n_clusters).tolist(),
        "scores": scores,
        "plot": plot,
        "files": files + ["summary.json"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    line = (f"UEC ({args.variant}): {X.shape[0]} points x {X.shape[1]} features, "
            f"{model.n_clusters} clusters, {model.n_iter_} epochs, fit {t_fit:.2f} s")
    if scores is not None:
        line += f"\n  ACC {scores['acc']:.3f}  NMI {scores['nmi']:.3f}  ARI {scores['ari']:.3f}"
    sys.stdout.write(line + f"\n  wrote {', '.join(files + ['summary.json'])} to {out}\n")
    return 0


def _write_plot(model, out, disabled):
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
    fig.savefig(out / "embedding.png", dpi=110)
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
    fit.add_argument("--n-clusters", type=int, required=True, metavar="K")
    fit.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
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


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(f"uec: warning: {_one_line(message)}\n")


def main(argv=None) -> int:
    debug = os.environ.get("UEC_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "verbose", False):
            logging.basicConfig(level=logging.INFO, format="uec: %(message)s", stream=sys.stderr)
        with warnings.catch_warnings():
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
