"""uec.dask's sample and input checks: the uniform sample a DaskUEC fits on (:func:`sample`,
:func:`sample_indices`) and the checks of the Dask arrays and DataFrames it is given. Imported
by uec.dask only, after its check that Dask is installed."""

from __future__ import annotations

import numbers
import sys

import dask.array as da
import numpy as np

from ._validation import check_int

DEFAULT_SAMPLE_SIZE = 100_000


# -- sampling ------------------------------------------------------------------------------


def _generator(random_state):
    """numpy Generator for the sample: an int seeds it; a RandomState gives one draw of it."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state,
                                                                     (bool, np.bool_)):
        return np.random.default_rng(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    raise ValueError(f"random_state={random_state!r} is not allowed; expected None, an int "
                     "or a numpy.random.RandomState")


def sample_indices(n_rows, sample_size, random_state=None):
    """Sorted global row indices of a uniform sample without replacement.

    ``sample_size=None`` or ``sample_size >= n_rows``: all rows. The indices depend only on
    ``n_rows``, ``sample_size`` and ``random_state``, never on how X is chunked."""
    n_rows = int(n_rows)
    size = check_int("sample_size", sample_size, low=1, allow_none=True)
    rng = _generator(random_state)
    if size is None or size >= n_rows:
        return np.arange(n_rows, dtype=np.int64)
    idx = rng.choice(n_rows, size=size, replace=False, shuffle=False)
    return np.sort(idx).astype(np.int64)


def sample(X, sample_size=DEFAULT_SAMPLE_SIZE, *, random_state=None):
    """Gather a uniform sample of the rows of X into memory.

    Parameters
    ----------
    X : dask.array.Array (n_samples, n_features) or dask.dataframe.DataFrame
    sample_size : int or None
        Rows to draw without replacement. None, or a size >= the number of rows: all rows.
    random_state : int, numpy.random.RandomState or None
        Chooses the rows (numpy ``default_rng`` of the int); the same int gives the same rows
        whatever the chunking.

    Returns
    -------
    rows : ndarray (m, n_features) float32
    indices : ndarray (m,) int64
        Global row positions of ``rows``, sorted.

    A dask array with unknown chunk sizes (NaN) can be sampled only with ``sample_size=None``;
    otherwise ``X.compute_chunk_sizes()`` first. A DataFrame's partition lengths are counted
    first (one pass over its partitions)."""
    check_int("sample_size", sample_size, low=1, allow_none=True)
    frame = _is_dask_dataframe(X)
    if frame:
        _check_frame_columns(X)
        if sample_size is None:
            rows = X.to_dask_array().astype(np.float32).compute()
            return _as_2d(rows), np.arange(rows.shape[0], dtype=np.int64)
        arr = X.to_dask_array(lengths=True)
    else:
        arr = _check_dask_array(X)
    arr = arr.astype(np.float32)
    if any(np.isnan(c) for c in arr.chunks[0]):
        if sample_size is not None:
            raise ValueError(
                f"X has unknown chunk sizes along its rows (chunks={arr.chunks[0]}), so "
                f"sample_size={sample_size} rows cannot be drawn by position; call "
                "X = X.compute_chunk_sizes() first (one pass over the data), or pass "
                "sample_size=None to fit on all rows")
        rows = arr.compute()
        return _as_2d(rows), np.arange(rows.shape[0], dtype=np.int64)
    idx = sample_indices(arr.shape[0], sample_size, random_state)
    if idx.shape[0] == arr.shape[0]:
        rows = arr.compute()
    else:
        rows = arr[idx].compute()
    return _as_2d(np.ascontiguousarray(rows, dtype=np.float32)), idx


def _as_2d(rows):
    rows = np.asarray(rows)
    return rows.reshape(rows.shape[0], -1) if rows.ndim != 2 else rows


# -- input checks --------------------------------------------------------------------------


def _is_dask_dataframe(X):
    dd = sys.modules.get("dask.dataframe")  # a Dask DataFrame means the module is loaded
    return dd is not None and isinstance(X, dd.DataFrame)


def _type_error(X):
    dd = sys.modules.get("dask.dataframe")
    if dd is not None and isinstance(X, dd.Series):
        return ValueError("X is a dask Series (1-D); expected 2-D data (n_samples, n_features): "
                          "a dask DataFrame, e.g. X.to_frame()")
    return TypeError(
        f"X of type {type(X).__module__}.{type(X).__qualname__} is not supported; expected a "
        "dask.array.Array or a dask.dataframe.DataFrame (for in-memory data use uec.UEC, or "
        "wrap it with dask.array.from_array)")


def _check_dask_array(X):
    if not isinstance(X, da.Array):
        raise _type_error(X)
    if X.ndim != 2:
        raise ValueError(f"X has shape {X.shape} ({X.ndim}-D); expected a 2-D array "
                         "(n_samples, n_features)")
    if np.isnan(X.shape[1]):
        raise ValueError("X has an unknown number of columns (NaN); expected a known number of "
                         "features: call X.compute_chunk_sizes() first")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {X.dtype}; expected a real numeric dtype "
                         "(bool, integer or floating)")
    return X


def _check_frame_columns(X):
    from pandas.api.types import is_complex_dtype, is_numeric_dtype

    bad = [str(c) for c, t in X.dtypes.items() if not is_numeric_dtype(t) or is_complex_dtype(t)]
    if bad:
        raise ValueError(f"X has non-numeric columns {bad}; expected only real numeric "
                         "columns (bool, integer or floating)")


def _check_features(n_features, expected):
    if n_features != expected:
        raise ValueError(f"X has {n_features} features, but the model was fitted with "
                         f"{expected} features")
