"""Parameter checks shared by the estimators. Every message names the parameter, the value it
got, and what is allowed."""

from __future__ import annotations

import logging
import numbers

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


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


# -- bounds on what can exhaust memory, overflow or diverge -------------------------------------

# Each due edge takes about negative_sample_rate negative samples per epoch, and the core records
# a block's updates before running them: the rate sizes that buffer (and the epoch's cost). The
# compiled core refuses more, too (csrc/core/edges.hpp, kMaxNegativeSampleRate).
MAX_NEGATIVE_SAMPLE_RATE = 1000
# Z is (n_samples, n_components) and every kernel loops over the components; beyond this the
# layout is no longer an embedding for clustering.
MAX_COMPONENTS = 1024
# Epoch counts: the core's schedule is an int and each epoch costs a pass over the graph.
MAX_EPOCHS = 100_000
# Step sizes and loss weights: the CE and KL steps are clipped, then scaled by
# learning_rate * alpha (beta, centre_lr); larger scales throw points past float32's range
# (learning_rate=1e30 gave NaN after the epochs).
MAX_STEP_SCALE = 1000.0
# |coordinates| of a given init or centre_init: squared distances between them must stay far
# inside float32 (1e30 overflowed to infinity).
MAX_INIT_MAGNITUDE = 1e6
# Largest float32: distances, embeddings and weights are float32 in the core.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _bounded_real(name, value, high, why):
    if value is not None and float(value) > high:
        raise ValueError(f"{name}={value!r} is too large: allowed up to {high:g} ({why})")


def check_curve(spread, min_dist):
    """(a, b) of the embedding curve 1 / (1 + a d^(2b)) fitted to (spread, min_dist), as the
    fit computes it, or ValueError naming both when the fit fails: curve_fit from a = b = 1
    gives b < 0 (spread=1e-3, min_dist=0: b = -70.5, which the core refused only after the kNN
    search and the initial layout), or a curve far from the target (spread=1e30 leaves a = b =
    1), or an a that float32 cannot hold."""
    import warnings

    from .graph import find_ab_params

    spread, min_dist = float(spread), float(min_dist)
    a, b = find_ab_params(spread, min_dist)
    ok = (np.isfinite(a) and np.isfinite(b) and a > 0.0 and b > 0.0
          and np.float32(a) > 0.0 and np.isfinite(np.float32(a)) and b <= 64.0)
    if ok:
        x = np.linspace(0.0, 3.0 * spread, 300)
        target = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            curve = 1.0 / (1.0 + a * x ** (2.0 * b))
        # the default (1, 0.1) fits within 0.03, min_dist = spread within 0.10
        ok = bool(np.all(np.isfinite(curve))) and float(np.max(np.abs(curve - target))) <= 0.2
    if not ok:
        raise ValueError(
            f"spread={spread:g}, min_dist={min_dist:g}: the embedding curve 1 / (1 + a d^(2b)) "
            f"cannot be fitted to them (got a={a:.4g}, b={b:.4g}); allowed: values for which it "
            f"fits with a > 0 and b > 0, e.g. spread between 0.3 and 1000 with min_dist at most "
            f"half of spread (the default is spread=1.0, min_dist=0.1)"
        )
    return a, b


def _check_array_param(name, value, shape, what):
    """A given init / centre_init array: the shape the fit expects (when known), finite, and
    coordinates small enough that squared distances stay inside float32."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {arr.dtype}: it must be a real-valued array")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} ({what})")
    if arr.size == 0:
        return
    big = float(np.max(np.abs(arr.astype(np.float64, copy=False))))
    if not np.isfinite(big):
        raise ValueError(f"{name} contains NaN or infinity: every coordinate must be finite")
    if big > MAX_INIT_MAGNITUDE:
        raise ValueError(
            f"{name} has coordinates up to {big:.3g} in magnitude: allowed up to "
            f"{MAX_INIT_MAGNITUDE:g} (squared distances between them must stay inside float32); "
            f"rescale it (the built-in inits lie in [0, 10])"
        )


def check_limits(est, n_samples):
    """Upper bounds on the parameters of ``UEC`` that size an allocation, overflow float32 or
    make the optimisation diverge, checked before any stage runs; each message names the
    parameter, its value and what is allowed. The lower bounds and types are checked by the
    estimator's ``_check_params`` before this is called."""
    nsr = est.negative_sample_rate
    if int(nsr) > MAX_NEGATIVE_SAMPLE_RATE:
        raise ValueError(
            f"negative_sample_rate={nsr} is too large: allowed 1 to {MAX_NEGATIVE_SAMPLE_RATE} "
            f"(each edge takes that many negative samples per epoch, recorded before they run; "
            f"umap-learn's default is 5)"
        )
    if int(est.n_components) > MAX_COMPONENTS:
        raise ValueError(
            f"n_components={est.n_components} is too large: allowed 1 to {MAX_COMPONENTS}")
    for name in ("n_epochs", "warmup_epochs", "min_joint_epochs"):
        value = getattr(est, name)
        if value is not None and int(value) > MAX_EPOCHS:
            raise ValueError(f"{name}={value} is too large: allowed up to {MAX_EPOCHS}")
    why = "steps are clipped, then scaled by it; larger scales overflow float32"
    for name in ("learning_rate", "centre_lr", "alpha", "beta", "repulsion_strength"):
        _bounded_real(name, getattr(est, name), MAX_STEP_SCALE, why)
    check_curve(est.spread, est.min_dist)
    d = int(est.n_components)
    if not isinstance(est.init, str):
        _check_array_param("init", est.init, (int(n_samples), d), "n_samples, n_components")
    if not isinstance(est.centre_init, str):
        n_sub = int(est._resolved_subclusters(int(n_samples)))
        _check_array_param("centre_init", est.centre_init, (n_sub, d),
                           "n_subclusters (n_clusters when it is None), n_components")


def check_unchanged_since_fit(est):
    """transform / predict read n_clusters and n_components off the estimator: a value changed
    by ``set_params`` after the fit (``predict`` then failed with an IndexError or a reshape
    error from deep inside) is refused, naming the parameter."""
    fitted = {"n_clusters": est.cluster_centers_.shape[0],
              "n_components": est.embedding_.shape[1]}
    for name, value in fitted.items():
        now = getattr(est, name, None)
        if now is None:  # chosen by the fit
            continue
        if isinstance(now, numbers.Integral) and int(now) == int(value):
            continue
        raise ValueError(
            f"{name}={now!r} differs from the fitted model's {value} (set_params after fit?): "
            f"allowed: {value}, the value it was fitted with; set it back, or fit again"
        )


# -- the layouts' and initial centres' checks (uec.initialization, uec.centres) ----------------


def _check_random_state(random_state):
    """int / None / RandomState -> RandomState; a numpy Generator seeds a new RandomState."""
    if isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**31 - 1))
        return np.random.RandomState(seed)
    from sklearn.utils import check_random_state

    try:
        return check_random_state(random_state)
    except ValueError:
        raise ValueError(
            f"random_state={random_state!r} is not valid; expected None, an int, a "
            "numpy.random.RandomState or a numpy.random.Generator"
        ) from None


def _check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} is not valid; expected a positive integer")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected a positive integer")
    return value


def _check_graph(graph, name="graph"):
    """Return ``graph`` as a float64 CSR matrix with no explicit zeros, symmetric."""
    if graph is None:
        raise ValueError(f"{name}=None is not valid; a fuzzy graph (sparse matrix) is required")
    if sp.issparse(graph):
        A = sp.csr_matrix(graph, dtype=np.float64, copy=True)
    else:
        try:
            A = np.asarray(graph, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} of type {type(graph).__name__} is not valid; expected a square "
                "scipy.sparse matrix of non-negative weights"
            ) from None
        if A.ndim != 2:
            raise ValueError(
                f"{name} with shape {A.shape} is not valid; expected a square 2-D matrix"
            )
        A = sp.csr_matrix(A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} with shape {A.shape} is not valid; expected a square matrix")
    if A.shape[0] < 1:
        raise ValueError(f"{name} with shape {A.shape} is not valid; it has no vertices")
    if A.nnz and not np.all(np.isfinite(A.data)):
        raise ValueError(f"{name} contains non-finite weights; all weights must be finite")
    if A.nnz and A.data.min() < 0:
        raise ValueError(
            f"{name} contains negative weights (min {A.data.min():g}); weights must be >= 0"
        )
    A.eliminate_zeros()
    A.sum_duplicates()
    if A.nnz:
        asym = abs(A - A.T)
        if asym.nnz and asym.max() > 1e-6 * A.data.max():
            logger.warning("%s is not symmetric; using (graph + graph.T) / 2", name)
            A = ((A + A.T) * 0.5).tocsr()
            A.eliminate_zeros()
    return A


def _as_float_matrix(value, name, allow_sparse=False):
    """2-D finite float matrix; float32/float64 input is not copied (large X stays as is)."""
    if allow_sparse and sp.issparse(value):
        M = value.tocsr()
        if M.dtype not in (np.float32, np.float64):
            M = M.astype(np.float64)
        if M.nnz and not np.all(np.isfinite(M.data)):
            raise ValueError(f"{name} contains NaN or infinite values; all values must be finite")
        return M
    try:
        M = np.asarray(value)
        if M.dtype not in (np.float32, np.float64):
            M = M.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} of type {type(value).__name__} is not valid; expected a numeric 2-D array"
        ) from None
    if M.ndim != 2:
        raise ValueError(f"{name} with shape {M.shape} is not valid; expected a 2-D array")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or infinite values; all values must be finite")
    return M
