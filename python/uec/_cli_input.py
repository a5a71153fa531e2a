"""The command line's input files: arrays from .npy, .npz, .csv, .tsv and .txt (:func:`load_array`,
with the column choices of :class:`Columns`), and the one-line error it reports
(:class:`CliError`). The reading rules: the guide's "Command line" section (docs/guide.md)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

logger = logging.getLogger("uec.cli")

DATA_KEYS = ("X", "data")
LABEL_KEYS = ("y", "labels", "target")
ID_NAMES = ("id", "ids", "index", "idx", "row", "row_id", "rowid", "sample", "sample_id", "")


class CliError(Exception):
    """A failure to report as one line; ``status`` is the exit code."""

    def __init__(self, message, status=1, prog="uec"):
        super().__init__(message)
        self.status = status
        self.prog = prog


def _split_lines(path, delimiter):
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except UnicodeDecodeError:
        raise CliError(f"cannot read {path}: not a UTF-8 text file") from None
    if not lines:
        raise CliError(f"{path} is empty")
    rows = [ln.split(delimiter) if delimiter else ln.split() for ln in lines]
    return [[c.strip().strip('"').strip("'") for c in r] for r in rows]


def _numeric(row):
    return all(_is_float(c) for c in row)


def _read_text_table(path, delimiter, as_labels, n_expected=None, columns=None):
    """Rows of a CSV/TSV/whitespace table; a non-numeric first line is a header (for labels,
    which may be words: when followed by numbers, or when there is one row too many).

    For data, ``columns`` (a :class:`Columns`) names the label, id and dropped columns (header
    names or 0-based indices): they are taken out before the rest is read as numbers, and
    returned in ``columns.taken``."""
    rows = _split_lines(path, delimiter)
    if not as_labels:
        return _data_table(path, rows, columns or Columns())
    header = (n_expected is not None and len(rows) == n_expected + 1) or (
        not _numeric(rows[0]) and len(rows) > 1 and _numeric(rows[1]))
    if header:
        rows = rows[1:]
    if not rows:
        raise CliError(f"{path} has a header but no rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise CliError(f"{path}: rows have different numbers of columns ({sorted(widths)[:5]})")
    if widths != {1}:
        raise CliError(f"{path}: a labels file must have one column, got {widths.pop()}")
    return _labels_or_ids([r[0] for r in rows])


def _labels_or_ids(col):
    """Integers when every entry is one, else the strings as they are."""
    try:
        return np.array([int(c) for c in col])
    except ValueError:
        return np.array(col)


class Columns:
    """The columns of DATA that are not features: ``--label-column``, ``--id-column`` and
    ``--drop``, each a header name or a 0-based index (negative counts from the end)."""

    def __init__(self, label=None, id=None, drop=()):
        self.specs = [("--label-column", label)] if label is not None else []
        if id is not None:
            self.specs.append(("--id-column", id))
        self.specs += [("--drop", d) for d in drop]
        self.taken = {}  # option -> (column index, column name or None, values as strings)

    def __bool__(self):
        return bool(self.specs)

    def named(self):
        return [(opt, spec) for opt, spec in self.specs if not _is_index(spec)]

    def resolve(self, path, width, names):
        """Column index of every spec; one line naming the option when one does not fit."""
        found = {}
        for opt, spec in self.specs:
            if _is_index(spec):
                i = int(spec)
                if not -width <= i < width:
                    raise CliError(f"{opt} {spec}: {path} has {width} columns (indices 0 to "
                                   f"{width - 1}, or -1 for the last)", status=2)
                i %= width
            else:
                if names is None:
                    raise CliError(f"{opt} {spec!r} names a column, but {path} has no header "
                                   f"line: give a 0-based column index instead", status=2)
                hits = [k for k, n in enumerate(names) if n == spec]
                if not hits:
                    shown = ", ".join(repr(n) for n in names[:12])
                    raise CliError(f"{opt} {spec!r} is not a column of {path}; its columns are "
                                   f"{shown}{', ...' if len(names) > 12 else ''} (or give a "
                                   f"0-based index)", status=2)
                if len(hits) > 1:
                    raise CliError(f"{opt} {spec!r}: {path} has {len(hits)} columns of that name "
                                   f"(indices {hits}); give the index instead", status=2)
                i = hits[0]
            if i in found:
                raise CliError(f"{opt} {spec} and {found[i][0]} {found[i][1]} are the same column "
                               f"({i}) of {path}", status=2)
            found[i] = (opt, spec)
        return found


def _is_index(spec):
    try:
        int(spec)
        return True
    except ValueError:
        return False


def _data_table(path, rows, columns):
    width = len(rows[0])
    if columns.named():
        header = True
        if _numeric(rows[0]):
            opt, spec = columns.named()[0]
            raise CliError(f"{opt} {spec!r} names a column, but the first line of {path} is "
                           f"numbers, not a header: give a 0-based column index instead", status=2)
    else:
        found = columns.resolve(path, width, None)
        header = not _numeric([c for k, c in enumerate(rows[0]) if k not in found])
    names = rows[0] if header else None
    if header:
        rows = rows[1:]
    if not rows:
        raise CliError(f"{path} has a header but no rows")
    widths = {len(r) for r in rows} | ({len(names)} if names is not None else set())
    if len(widths) != 1:
        raise CliError(f"{path}: rows have different numbers of columns ({sorted(widths)[:5]})")
    found = columns.resolve(path, width, names)
    for i, (opt, _) in found.items():
        columns.taken[opt if opt != "--drop" else f"--drop {i}"] = (
            i, None if names is None else names[i], [r[i] for r in rows])
    keep = [k for k in range(width) if k not in found]
    if not keep:
        raise CliError(f"{path}: no feature columns are left after --label-column, --id-column "
                       f"and --drop")
    try:
        X = np.array([[r[k] for k in keep] for r in rows], dtype=np.float64)
    except ValueError:
        r, k = next((r, k) for r in rows for k in keep if not _is_float(r[k]))
        where = f"column {k}" + (f" ({names[k]!r})" if names is not None else "")
        raise CliError(f"{path}: non-numeric value {r[k]!r} in {where} of the data; a column of "
                       f"names or ids can be named with --id-column, --label-column or "
                       f"--drop") from None
    _warn_row_numbers(path, X, [names[k] if names is not None else None for k in keep], keep)
    return X


def _warn_row_numbers(path, X, names, original):
    """A warning for a feature column that looks like row ids (0, 1, 2, ... or an 'id'
    header): it would be used as a feature and can dominate the distances."""
    n = X.shape[0]
    for j in range(X.shape[1]):
        name = names[j]
        col = X[:, j]
        looks_named = name is not None and name.strip().lower() in ID_NAMES
        consecutive = n >= 10 and np.all(np.diff(col) == 1.0) and float(col[0]).is_integer()
        if looks_named or consecutive:
            what = f"column {original[j]}" + (f" ({name!r})" if name is not None else "")
            why = "holds consecutive integers" if consecutive else "has a row-id name"
            warnings.warn(f"{path}: {what} {why}; it is used as a feature. If it is a row id, "
                          f"pass --id-column {original[j]} (or --drop {original[j]})",
                          stacklevel=2)
            return


def _is_float(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _array_columns(X, path, columns):
    """Take the label, id and dropped columns out of a 2-D array read from .npy/.npz."""
    if not columns:
        return X
    if X.ndim != 2:
        return X  # _check_data reports the shape
    if columns.named():
        opt, spec = columns.named()[0]
        raise CliError(f"{opt} {spec!r} names a column, but {path} is an array without column "
                       f"names: give a 0-based column index instead", status=2)
    found = columns.resolve(path, X.shape[1], None)
    for i, (opt, _) in found.items():
        columns.taken[opt if opt != "--drop" else f"--drop {i}"] = (i, None, X[:, i])
    keep = [k for k in range(X.shape[1]) if k not in found]
    if not keep:
        raise CliError(f"{path}: no feature columns are left after --label-column, --id-column "
                       f"and --drop")
    return X[:, keep]


def load_array(path, key=None, as_labels=False, n_expected=None, columns=None):
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
            arr = _read_text_table(p, delimiter, as_labels, n_expected, columns)
            columns = None  # taken out while reading
        else:
            raise CliError(f"unsupported {what} format {suffix or '(no extension)'!r} of {path}: "
                           f"use .npy, .npz or .csv")
    except CliError:
        raise
    except (ValueError, OSError, EOFError) as exc:  # corrupt or pickled .npy/.npz
        raise CliError(f"cannot read {path} as {suffix}: {_one_line(exc)}") from None
    if not as_labels:
        arr = _array_columns(arr, path, columns)
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


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
