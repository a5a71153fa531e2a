"""Progress of the fit's stages: a tqdm bar per stage when verbose, a log line always."""

from __future__ import annotations

import contextlib
import logging
import time

logger = logging.getLogger("uec.estimator")


@contextlib.contextmanager
def stage(name, verbose):
    """Run one stage (kNN graph, init, ...): when ``verbose``, a one-step tqdm bar that shows
    the stage's name while it runs and its elapsed time when done; always a DEBUG log line."""
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=1, desc=f"UEC {name}", bar_format="{desc}: {elapsed} {postfix}")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if bar is not None:
            bar.update(1)
            bar.close()
        logger.debug("%s: %.2f s", name, time.perf_counter() - t0)
