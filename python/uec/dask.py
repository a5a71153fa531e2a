"""UEC on data that does not fit one process: fit on a sample, place every row with Dask.

Install with ``pip install "uec[dask]"``. :class:`DaskUEC` fits :class:`uec.UEC` (``model_``)
in this process on a uniform sample (:func:`sample`), then ``predict`` / ``transform`` place
the rows of a Dask array or DataFrame chunk by chunk wherever the graph runs (the cuML
multi-node UMAP route); :func:`predict` and :func:`transform` do the same for a fitted model.
The model is shipped once (scattered, or one graph key), never per task. Chunking, batching,
threads and failures: the guide's "Beyond one machine: Dask" section (docs/guide.md).
"""

from __future__ import annotations

import copy
import inspect
import logging
import sys
import time
import uuid

import numpy as np

try:  # the real Dask (this module is uec.dask; absolute imports reach the top-level package)
    import dask
    import dask.array as da  # noqa: F401  (the array extra is installed)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'uec.dask needs Dask, which is not installed; install it with: pip install "uec[dask]"'
    ) from exc

from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._dask_input import (  # noqa: F401  (the sample and checks, importable from here)
    DEFAULT_SAMPLE_SIZE,
    _as_2d,
    _check_dask_array,
    _check_features,
    _check_frame_columns,
    _generator,
    _is_dask_dataframe,
    _type_error,
    sample,
    sample_indices,
)
from ._validation import check_int
from .estimator import UEC

logger = logging.getLogger(__name__)

__all__ = ["DaskUEC", "predict", "transform", "sample", "DEFAULT_BATCH_SIZE",
           "DEFAULT_SAMPLE_SIZE"]

DEFAULT_BATCH_SIZE = 4096
LABEL_NAME = "label"
COMPONENT_PREFIX = "uec"


# -- shipping the model --------------------------------------------------------------------


def _active_client():
    """The default ``distributed.Client``, or None (no distributed, no client, or a non-
    distributed scheduler chosen with dask.config)."""
    if "distributed" not in sys.modules:
        return None  # a Client implies distributed was imported
    scheduler = dask.config.get("scheduler", None)
    if scheduler not in (None, "dask.distributed", "distributed"):
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _ship(model, cached=None):
    """(reference to put in the graph, what to cache). With a client: a Future of the model
    on every worker; without: a Delayed that holds it under one key. A cached reference is
    reused when it still belongs to the active client and is live."""
    client = _active_client()
    if cached is not None:
        owner, ref = cached
        if client is None and owner is None:
            return ref, cached
        if client is not None and owner is client and getattr(ref, "status", None) == "finished":
            return ref, cached
    if client is None:
        ref = dask.delayed(model, name=f"uec-model-{uuid.uuid4().hex}", traverse=False)
        logger.debug("model placed in the graph under one key %s", ref.key)
    else:
        t0 = time.perf_counter()
        ref = client.scatter(model, broadcast=True, hash=False)
        logger.info("model scattered to the %d workers of %s as %s in %.2f s",
                    len(client.scheduler_info().get("workers", {})), client, ref.key,
                    time.perf_counter() - t0)
    return ref, (client, ref)


# -- the tasks -----------------------------------------------------------------------------


def _place(model, X, what, batch_size, n_jobs):
    """``what`` ("predict" or "transform") of the rows of X in batches of batch_size rows
    counted from X's first row (None: one call)."""
    n = X.shape[0]
    if what == "predict":
        empty = np.empty((0,), dtype=np.intp)
    else:
        empty = np.empty((0, model.embedding_.shape[1]), dtype=np.float32)
    if n == 0:
        return empty
    worker_model = model
    if (n_jobs is not None and n_jobs != model.n_jobs) or model.verbose:
        worker_model = copy.copy(model)  # shallow: shares the arrays and the search index
        worker_model.verbose = False
        if n_jobs is not None:
            worker_model.n_jobs = n_jobs
    step = n if batch_size is None else int(batch_size)
    method = getattr(worker_model, what)
    # no lock here: the search index's own lock (uec._transform) keeps the worker's threads apart
    parts = [method(X[s : s + step]) for s in range(0, n, step)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _block_task(block, model, what, batch_size, n_jobs):
    return _place(model, np.asarray(block), what, batch_size, n_jobs)


def _partition_task(part, model, what, batch_size, n_jobs, columns):
    import pandas as pd

    out = _place(model, part.to_numpy(), what, batch_size, n_jobs)
    if what == "predict":
        return pd.Series(out, index=part.index, name=LABEL_NAME)
    return pd.DataFrame(out, index=part.index, columns=columns)


# -- the blockwise application -------------------------------------------------------------


def aligned_chunks(row_chunks, batch_size):
    """Row chunks whose boundaries are X's rounded to the nearest multiple of batch_size
    (each batch then lies in one chunk); X's own chunks when they already are."""
    bounds = np.cumsum(row_chunks)
    n = int(bounds[-1]) if len(bounds) else 0
    if all(int(b) % batch_size == 0 for b in bounds[:-1]):
        return tuple(int(c) for c in row_chunks)
    cut = sorted({int(round(b / batch_size)) * batch_size for b in bounds[:-1]} - {0})
    cut = [c for c in cut if c < n] + [n]
    return tuple(int(b - a) for a, b in zip([0] + cut[:-1], cut))


def _components(model):
    return [f"{COMPONENT_PREFIX}{i}" for i in range(model.embedding_.shape[1])]


def _apply(model, X, what, batch_size, n_jobs, ref, feature_names=None):
    """Lazy ``what`` of X against ``model`` (ref: its Future or Delayed); feature_names: the
    columns a DataFrame must have (those of the fit), or None."""
    d = model.embedding_.shape[1]
    if _is_dask_dataframe(X):
        import dask.dataframe as dd
        import pandas as pd

        _check_frame_columns(X)
        _check_features(len(X.columns), model.n_features_in_)
        if feature_names is not None and [str(c) for c in X.columns] != list(feature_names):
            raise ValueError(f"X has columns {[str(c) for c in X.columns]}, but the model was "
                             f"fitted on columns {list(feature_names)}")
        if batch_size is None or what == "predict":
            # per partition: predict labels each row on its own, so only transform needs the
            # global row positions (and the partition lengths behind them)
            index = X._meta.index[:0]
            if what == "predict":
                meta = pd.Series(np.empty(0, dtype=np.intp), index=index, name=LABEL_NAME)
            else:
                meta = pd.DataFrame(np.empty((0, d), dtype=np.float32), index=index,
                                    columns=_components(model))
            # one delayed task per partition (map_partitions of older Dask versions passes a
            # Delayed argument through unresolved)
            task = dask.delayed(_partition_task, pure=True)
            parts = [task(part, ref, what, batch_size, n_jobs, _components(model))
                     for part in X.to_delayed()]
            return dd.from_delayed(parts, meta=meta, divisions=X.divisions, verify_meta=False)
        arr = X.to_dask_array(lengths=True)  # global row positions need the partition lengths
        out = _apply(model, arr, what, batch_size, n_jobs, ref)
        columns = LABEL_NAME if what == "predict" else _components(model)
        return dd.from_dask_array(out, columns=columns, index=X.index)

    X = _check_dask_array(X)
    _check_features(int(X.shape[1]), model.n_features_in_)
    if len(X.chunks[1]) > 1:
        logger.debug("X has %d column chunks: rechunked to one", len(X.chunks[1]))
        X = X.rechunk({1: -1})
    rows = X.chunks[0]
    if batch_size is not None and what == "transform":  # predict: each row on its own
        if any(np.isnan(c) for c in rows):
            raise ValueError(
                f"X has unknown chunk sizes along its rows (chunks={rows}), so rows cannot be "
                f"grouped by position into batches of batch_size={batch_size}; call "
                "X = X.compute_chunk_sizes() first, or pass batch_size=None to place each chunk "
                "in one call")
        if rows:
            aligned = aligned_chunks(rows, batch_size)
            if aligned != tuple(rows):
                logger.info("X rechunked from %d to %d row chunks so that chunk boundaries fall "
                            "on multiples of batch_size=%d", len(rows), len(aligned), batch_size)
                X = X.rechunk({0: aligned})
    name = f"uec-{what}-{dask.base.tokenize(X, ref.key, batch_size, n_jobs)}"
    if what == "predict":
        out = X.map_blocks(_block_task, ref, what, batch_size, n_jobs, drop_axis=1,
                           chunks=(X.chunks[0],), dtype=np.intp,
                           meta=np.empty((0,), dtype=np.intp), name=name)
    else:
        out = X.map_blocks(_block_task, ref, what, batch_size, n_jobs,
                           chunks=(X.chunks[0], (d,)), dtype=np.float32,
                           meta=np.empty((0, d), dtype=np.float32), name=name)
    if tuple(out.chunks[0]) != tuple(rows) and not any(np.isnan(c) for c in rows):
        out = out.rechunk({0: rows})
    return out


def _fitted_uec(model):
    if isinstance(model, DaskUEC):
        check_is_fitted(model, "model_")
        return model.model_
    if not isinstance(model, UEC):
        raise TypeError(f"model of type {type(model).__qualname__} is not supported; expected a "
                        "fitted uec.UEC or uec.dask.DaskUEC")
    check_is_fitted(model, "embedding_")
    if not hasattr(model, "_raw_data"):
        raise ValueError("model was fitted without keeping its training data; refit it to use "
                         "transform/predict")
    return model


def _check_batch_n_jobs(batch_size, n_jobs):
    batch_size = check_int("batch_size", batch_size, low=1, allow_none=True)
    if n_jobs is not None:
        n_jobs = check_int("n_jobs", n_jobs, high=1024)
        if n_jobs == 0:
            raise ValueError("n_jobs=0 is not allowed; use a positive count or -1 for all cores")
    return batch_size, n_jobs


def _run(model, X, what, batch_size, n_jobs):
    """``what`` of X with a UEC (shipped for this call) or a DaskUEC (shipped once, kept)."""
    uec_model = _fitted_uec(model)
    batch_size, n_jobs = _check_batch_n_jobs(batch_size, n_jobs)
    if isinstance(model, DaskUEC):
        ref, model._shipped = _ship(uec_model, getattr(model, "_shipped", None))
        names = getattr(model, "feature_names_in_", None)
    else:
        ref, _ = _ship(uec_model)
        names = None
    return _apply(uec_model, X, what, batch_size, n_jobs, ref, names)


def predict(model, X, *, batch_size=DEFAULT_BATCH_SIZE, n_jobs=None):
    """Cluster labels of every row of X against a fitted model, computed lazily per chunk.

    Parameters
    ----------
    model : uec.UEC (fitted) or DaskUEC (its ``model_``)
    X : dask.array.Array (n, n_features) or dask.dataframe.DataFrame
        Column chunks are merged into one (``X.rechunk({1: -1})``).
    batch_size : int or None, default=4096
        At most this many rows per call of ``UEC.predict`` within a chunk (None: one call per
        chunk). ``UEC.predict`` labels each row on its own, so the result never depends on the
        chunking and chunks are not realigned (unlike :func:`transform`).
    n_jobs : int or None
        Threads of the core in each task; None: the model's ``n_jobs`` (-1 means every core of
        the worker's machine in *each* task, so with several worker threads or processes per
        machine give cores / (threads of all workers there)).

    Returns
    -------
    dask.array.Array (n,) of ``np.intp`` with X's row chunks, or for a DataFrame a dask Series
    named ``"label"`` with X's index and partitions.
    """
    return _run(model, X, "predict", batch_size, n_jobs)


def transform(model, X, *, batch_size=DEFAULT_BATCH_SIZE, n_jobs=None):
    """Embedding of every row of X against a fitted model, computed lazily per chunk.

    Same parameters as :func:`predict`, except ``batch_size``: rows are placed in fixed batches
    of ``batch_size`` counted from X's first row, so that the result does not depend on the
    chunking (X is rechunked to batch boundaries when needed and a DataFrame's partition
    lengths are counted first; see the module's doc); None: one call per chunk. Returns a float32 dask array (n, n_components) with X's
    row chunks and one column chunk, or for a DataFrame a dask DataFrame with columns
    ``"uec0", "uec1", ...`` and X's index and partitions."""
    return _run(model, X, "transform", batch_size, n_jobs)


# -- the estimator -------------------------------------------------------------------------

_UEC_SIGNATURE = inspect.signature(UEC.__init__)
_UEC_DEFAULTS = {name: p.default for name, p in _UEC_SIGNATURE.parameters.items()
                 if name != "self"}


class DaskUEC(ClusterMixin, TransformerMixin, BaseEstimator):
    """UEC fitted on a sample of a Dask collection; predict/transform over all of it.

    Parameters
    ----------
    sample_size : int or None, default=100_000
        Rows of X the fit uses: a uniform sample without replacement, chosen by
        ``random_state`` (independent of the chunking), gathered into memory once. None, or a
        size >= the number of rows: all rows.
    batch_size : int or None, default=4096
        Rows per call of ``UEC.predict``/``transform`` in the tasks, counted from the first row
        of X; see :func:`predict`.
    **params
        Every parameter of :class:`uec.UEC` (``n_clusters``, ``variant``, ``n_components``,
        ...), with the same defaults. ``random_state`` seeds both the sample and the fit.
        ``n_jobs`` is the thread count of the fit and of each task (see :func:`predict`).

    Attributes
    ----------
    model_ : uec.UEC
        The in-memory model fitted on the sample; it is what the tasks run.
    sample_indices_ : ndarray (m,) int64
        Global row positions of the sample, sorted.
    cluster_centers_ : ndarray (n_clusters, n_components) float32
    n_clusters_ : int
        The model's number of clusters (chosen on the sample when ``n_clusters`` is None).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when X was a DataFrame (predict then requires the same columns).
    timings_ : dict
        Seconds spent gathering the sample and fitting.
    """

    def __init__(self, n_clusters=None, *, sample_size=DEFAULT_SAMPLE_SIZE,
                 batch_size=DEFAULT_BATCH_SIZE, **params):
        unknown = sorted(set(params) - set(_UEC_DEFAULTS))
        if unknown:
            raise TypeError(f"DaskUEC got unexpected keyword arguments {unknown}; allowed: "
                            f"sample_size, batch_size and the parameters of uec.UEC "
                            f"({', '.join(_UEC_DEFAULTS)})")
        self.n_clusters = n_clusters
        self.sample_size = sample_size
        self.batch_size = batch_size
        for name, default in _UEC_DEFAULTS.items():
            if name != "n_clusters":
                setattr(self, name, params.get(name, default))

    @classmethod
    def from_model(cls, model, *, batch_size=DEFAULT_BATCH_SIZE):
        """Wrap an already fitted ``uec.UEC`` (not copied) to predict/transform Dask data; the
        wrapper ships it to the workers once for all its calls."""
        model = _fitted_uec(model)
        est = cls(**model.get_params(), sample_size=None, batch_size=batch_size)
        est.model_ = model
        est.n_features_in_ = int(model.n_features_in_)
        est.cluster_centers_ = model.cluster_centers_
        est.n_clusters_ = int(model.n_clusters_)
        est.sample_indices_ = np.arange(model.embedding_.shape[0], dtype=np.int64)
        est.timings_ = {}
        return est

    def _uec_params(self):
        return {name: getattr(self, name) for name in _UEC_DEFAULTS}

    def fit(self, X, y=None):
        """Draw the sample of X, gather it and fit a ``uec.UEC`` on it in this process.
        y is ignored."""
        check_int("sample_size", self.sample_size, low=1, allow_none=True)
        check_int("batch_size", self.batch_size, low=1, allow_none=True)
        frame = _is_dask_dataframe(X)
        if not frame:
            _check_dask_array(X)
        t0 = time.perf_counter()
        rows, idx = sample(X, self.sample_size, random_state=self.random_state)
        t_sample = time.perf_counter() - t0
        logger.info("sample of %d rows x %d features (%.1f MB) gathered in %.2f s",
                    rows.shape[0], rows.shape[1], rows.nbytes / 1e6, t_sample)
        t0 = time.perf_counter()
        model = UEC(**self._uec_params()).fit(rows)
        t_fit = time.perf_counter() - t0
        if frame:
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._shipped = None
        self.model_ = model
        self.sample_indices_ = idx
        self.cluster_centers_ = model.cluster_centers_
        self.n_clusters_ = int(model.n_clusters_)
        self.n_features_in_ = int(rows.shape[1])
        self.timings_ = {"sample": t_sample, "fit": t_fit}
        return self

    def predict(self, X):
        """Labels of every row of X (lazy): a dask array (n,) of np.intp with X's row chunks, or
        a dask Series "label" with X's index and partitions for a DataFrame. Column chunks of X
        are merged into one; the tasks use ``batch_size`` and ``n_jobs``. See :func:`predict`."""
        return _run(self, X, "predict", self.batch_size, self.n_jobs)

    def transform(self, X):
        """Embedding of every row of X (lazy): float32 (n, n_components) with X's row chunks and
        one column chunk, or a DataFrame with columns uec0, uec1, ... and X's index. See
        :func:`transform`."""
        return _run(self, X, "transform", self.batch_size, self.n_jobs)

    def fit_predict(self, X, y=None):
        """``fit(X).predict(X)``: every row, the sampled ones included, is placed by predict
        (for the sampled rows that agrees with ``model_.labels_`` on about 99%)."""
        return self.fit(X).predict(X)

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_shipped", None)  # a Future or graph key belongs to this session
        return state


def _signature():
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name, p in _UEC_SIGNATURE.parameters.items():
        if name == "self":
            continue
        params.append(p)
        if name == "n_clusters":
            kw = inspect.Parameter.KEYWORD_ONLY
            params.append(inspect.Parameter("sample_size", kw, default=DEFAULT_SAMPLE_SIZE))
            params.append(inspect.Parameter("batch_size", kw, default=DEFAULT_BATCH_SIZE))
    return inspect.Signature(params)


# scikit-learn reads an estimator's parameters from the signature of __init__: give it UEC's
# parameters (so get_params, set_params, clone and repr see them all) plus the two of DaskUEC.
DaskUEC.__init__.__signature__ = _signature()
