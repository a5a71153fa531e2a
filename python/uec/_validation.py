"""Parameter checks shared by the estimators. Every message names the parameter, the value it
got, and what is allowed."""

from __future__ import annotations

import numbers

import numpy as np


def check_choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; allowed: {', '.join(map(repr, allowed))}")
    return value


def check_int(name, value, low=None, high=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}={value} must be >= {low}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value} must be <= {high}")
    return value


def check_float(name, value, low=None, high=None, low_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a real number")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    if low is not None:
        if low_open and not value > low:
            raise ValueError(f"{name}={value} must be > {low}")
        if not low_open and value < low:
            raise ValueError(f"{name}={value} must be >= {low}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value} must be <= {high}")
    return value


def check_numeric_input(X, name="X"):
    """Refuse text, dates and other non-numeric data before any conversion: NumPy would turn
    numeric strings (``X.astype(str)``) and datetime64 into floats without a word. Booleans,
    integers, floats and object arrays of numbers pass; a DataFrame is checked column by
    column."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and not isinstance(dtypes, np.dtype):  # pandas DataFrame
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [f"{c!r} ({dt})" for c, dt in dtypes.items()
               if not (is_numeric_dtype(dt) or is_bool_dtype(dt))]
        if bad:
            raise ValueError(f"{name} has non-numeric columns {', '.join(bad[:5])}"
                             f"{' and more' if len(bad) > 5 else ''}: only numeric data (bool, integer, "
                             f"float) can be clustered; convert (encode) or drop them first")
        return
    dtype = getattr(X, "dtype", None)
    if dtype is None:  # a list or another sequence
        X = np.asarray(X)
        dtype = X.dtype
    if dtype.kind in "USVmM":
        what = "text" if dtype.kind in "USV" else "dates or times"
        raise ValueError(f"{name} has dtype {dtype} ({what}): only numeric data (bool, integer, "
                         f"float) can be clustered; convert or drop it first")
    if dtype.kind == "O":
        flat = np.asarray(X, dtype=object).ravel()
        if any(isinstance(v, (str, bytes, np.str_, np.datetime64)) for v in flat):
            raise ValueError(f"{name} is an object array holding text or dates: only numeric "
                             f"data (bool, integer, float) can be clustered; convert it first")
