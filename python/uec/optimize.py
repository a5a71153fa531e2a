"""Optimize stage: the core's epoch parameters (:func:`epoch_params`, for a fit and for
transform's epochs) and the epochs of a fit (:func:`run_epochs`): the CE warm-up (the whole
layout for variant "ce"), then the initial centres (``uec.centres``) and the joint epochs of the
clustering variants, on the CPU core or the CUDA module (docs/design.md §2.5-§2.8)."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from . import _core
from ._device import optimizer
from ._modes import CENTRE_UPDATE, CLIP, SCHEDULE
from ._progress import EpochProgress, stage
from .centres import initial_centres
from .graph import epochs_per_sample

logger = logging.getLogger(__name__)

MODE = {
    "ce": _core.MODE_CE,
    "comma": _core.MODE_COMMA,
    "light_plus": _core.MODE_LIGHT_PLUS,
    "plus": _core.MODE_PLUS,
}


def epoch_params(model, a, b, n_epochs, seed, n_threads, *, warmup=0, placing=False):
    """The core's ``EpochParams`` from a UEC's parameters: curve ``a, b``, ``n_epochs`` in the
    schedule, the stream ``seed``. For a fit, every loss, rate and stopping option of the model
    (``warmup``: the CE epochs before the clustering term, which the stopping rule's first
    epoch counts from). With ``placing`` (transform: new points placed against the fitted
    layout), attraction only, a quarter of the learning rate, a linear decay, CE mode."""
    params = _core.EpochParams()
    params.a, params.b = float(a), float(b)
    params.gamma = float(model.repulsion_strength)
    params.negative_sample_rate = float(model.negative_sample_rate)
    params.clip_mode = CLIP[model.clip]
    params.n_epochs_total = n_epochs
    params.attract_scale = 1.0
    params.seed = seed
    params.n_threads = int(n_threads)
    if placing:
        params.alpha = 1.0
        params.beta = 0.0
        params.learning_rate = float(model.learning_rate) / 4.0
        params.schedule = 0  # linear decay over the transform's own epochs
        params.mode = _core.MODE_CE
        return params
    params.alpha = float(model.alpha)
    params.beta = float(model.beta)
    params.learning_rate = float(model.learning_rate)
    params.centre_lr = float(model.centre_lr)
    params.target_power = float(model.target_power)
    params.schedule = SCHEDULE[model.lr_schedule]
    params.centre_update = CENTRE_UPDATE[model.centre_update]
    params.tol = float(model.tol)
    params.min_joint_epochs = max(int(model.min_joint_epochs),
                                  first_settled_epoch(params) - warmup + 1)
    return params


def first_settled_epoch(params):
    """First epoch at which the learning-rate factor is <= 0.1 (linear: 0.9 of the schedule;
    step: after the first step). Measured on far-apart blobs, whose labels are trivially right:
    a stop at 80% of the schedule still left stray points mislabelled, at 90% none."""
    if params.schedule == SCHEDULE["step"]:
        return max(int(params.step_every), 1)
    return int(np.ceil(0.9 * params.n_epochs_total))


def run_epochs(model, Z, graph, a, b, n_epochs, warmup, n_sub, clustering, device, n_threads,
               rs, times, beside=None):
    """The epochs of a fit of ``model`` on the initial layout ``Z`` (updated in place): the CE
    warm-up (all epochs for "ce"), then with ``clustering="centres"`` the initial centres and
    the joint epochs. Returns ``(centres or None, epochs run, beside's result)``; ``times``
    gets each part's seconds. Draws the core's seed, then the centres', from ``rs``.

    ``beside``: a function of no argument, called after the core's seed is drawn; with the
    graph stage, more than one thread and no progress display, it runs in this thread while
    the epochs run in another (it must not read ``Z``), otherwise after them."""
    indptr = graph.indptr.astype(np.int64)
    indices = graph.indices.astype(np.int32)
    eps = epochs_per_sample(graph.data, n_epochs).astype(np.float32)
    next_sample = eps.copy()
    next_negative = (eps / float(model.negative_sample_rate)).astype(np.float32)
    seed = int(rs.randint(0, 2**31 - 1)) * 2654435761 + 1
    params = epoch_params(model, a, b, n_epochs, seed, n_threads, warmup=warmup)

    progress = EpochProgress(n_epochs, model.verbose, show_change=model.variant != "ce")
    optimize = optimizer(device)  # _core.optimize or _cuda.optimize: same arguments
    t0 = time.perf_counter()
    n_iter = 0
    M = None
    got = None
    ended = {}  # when the CE epochs ended (beside the partition, before it does)
    try:
        if warmup > 0 or model.variant == "ce":
            params.mode = _core.MODE_CE
            stop = n_epochs if model.variant == "ce" else warmup

            def epochs(callback):
                res = optimize(Z, None, indptr, indices, eps, next_sample, next_negative,
                               None, None, params, 0, stop, callback)
                ended["t"] = time.perf_counter()
                return res

            if beside is not None and clustering == "graph" and n_threads > 1 and not model.verbose:
                res, got = _beside(epochs, beside)
                beside = None
            else:
                res = epochs(progress.callback)
            n_iter += res["epochs_run"]
        times["layout" if clustering == "graph" else "warmup"] = (
            ended.get("t", time.perf_counter()) - t0)
        if clustering != "graph":
            M, n_joint = _joint_epochs(model, Z, graph, n_sub, rs, optimize, params, warmup,
                                       n_epochs, (indptr, indices, eps, next_sample,
                                                  next_negative), progress, times)
            n_iter += n_joint
    finally:
        progress.close()

    if not (np.isfinite(Z).all() and (M is None or np.isfinite(M).all())):
        raise FloatingPointError(
            "the optimisation produced non-finite values; lower learning_rate or beta"
        )
    if beside is not None:
        got = beside()
    return M, n_iter, got


def _beside(epochs, work):
    """``epochs(flag)`` (the core's optimize, ``flag`` its stop flag) in a thread while
    ``work()`` runs in this one; returns both results. The core releases the GIL and reads the
    flag without it, so the epochs never wait for ``work`` (whatever of it holds the GIL).
    An exception in ``work`` (Ctrl-C included) stops the epochs at their next epoch's end and is
    raised once the thread has ended; one in the epochs is raised here after ``work``.

    ``work`` runs with one BLAS/OpenMP thread of its own: the epochs already use the fit's
    threads, and a second pool spinning on the same cores slowed both (docs/results/scale.md)."""
    from threadpoolctl import threadpool_limits

    flag = np.zeros(1, dtype=np.int32)
    out = {}
    done = threading.Event()

    def run():
        try:
            out["epochs"] = epochs(flag)
        except BaseException as exc:  # handed to the fitting thread
            out["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="uec-epochs", daemon=True)
    thread.start()
    try:
        with threadpool_limits(limits=1):
            got = work()
        # timed waits on an event, not Thread.join: Ctrl-C reaches this thread meanwhile, and
        # an interrupted join can mark a running thread as ended (CPython 3.11)
        while not done.wait(0.05):
            pass
    except BaseException:
        flag[0] = 1
        done.wait()
        thread.join()
        raise
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["epochs"], got


def _joint_epochs(model, Z, graph, n_sub, rs, optimize, params, warmup, n_epochs, edges,
                  progress, times):
    """Centres initialised on the layout so far, then the clustering epochs of the joint
    variant (none for "ce"). Returns the centres and the epochs run."""
    t1 = time.perf_counter()
    with stage("init centres", model.verbose), model._seeded_threads():
        M = initial_centres(model.centre_init, Z, n_sub, rs, graph=graph)
    M = np.ascontiguousarray(M, dtype=np.float32)
    if M.shape != (n_sub, int(model.n_components)):
        raise ValueError(
            f"centre_init has shape {M.shape}, expected (n_subclusters={n_sub}, "
            f"n_components={model.n_components})"
        )
    times["centre_init"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    n_run = 0
    if model.variant != "ce":
        params.mode = MODE[model.variant]
        labels_t = np.full(Z.shape[0], -1, dtype=np.int32)
        res = optimize(Z, M, *edges, labels_t, None, params, warmup, n_epochs,
                       progress.callback)
        n_run = res["epochs_run"]
        logger.info("joint epochs: %d, last change %.4g, converged %s",
                    res["joint_epochs"], res["last_change"], res["converged"])
    times["joint"] = time.perf_counter() - t1
    return M, n_run
