"""What a verbose fit or transform shows, on stderr.

- :func:`stage`: one line (and a DEBUG record) when a stage ends;
- :class:`EpochProgress`: the epochs, as one tqdm bar or, off a terminal, a line per quarter;
- :func:`reporting` / :func:`reports`: the ``uec`` loggers' INFO records as lines during a call.

Every line goes through ``tqdm.write``, so there is never a second bar. Details:
docs/design.md §2.11.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time

logger = logging.getLogger("uec.estimator")

PREFIX = "uec: "


def _stream():
    return sys.stderr


def write_line(text):
    """One line on stderr, beneath any open tqdm bar (which is redrawn after it)."""
    from tqdm import tqdm

    tqdm.write(text, file=_stream())


def _bar_class():
    """The tqdm class to draw a bar with, or None when stderr is not a terminal (and not a
    notebook): then no bar at all, only lines."""
    from tqdm.autonotebook import tqdm as auto

    if auto.__module__.startswith("tqdm.notebook"):
        return auto  # a Jupyter widget: no escape codes in any file
    stream = _stream()
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return None
    from tqdm.std import tqdm as std

    return std


@contextlib.contextmanager
def stage(name, verbose):
    """Run one stage (kNN graph, init, ...); when ``verbose``, a line with its time at the end;
    always a DEBUG log record."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - t0
        if verbose:
            write_line(f"{PREFIX}{name}: {elapsed:.2f} s")
        logger.debug("%s: %.2f s", name, elapsed)


class EpochProgress:
    """Progress over epochs when verbose: a tqdm bar on a terminal, else a line per quarter;
    nothing when not verbose (the core still checks for Ctrl-C between epochs)."""

    def __init__(self, total, verbose, desc="UEC epochs", show_change=True):
        self.bar = None
        self.total, self.verbose, self.desc = int(total), bool(verbose), desc
        self.show_change = show_change
        self.count = 0
        self.change = None
        self._lines = None  # True: plain lines (no terminal); decided at the first epoch
        self._t0 = None
        self._last_quarter = 0

    def callback(self, epoch, change):
        if self.verbose:
            if self._lines is None:  # created at the first epoch
                self._t0 = time.perf_counter()
                cls = _bar_class()
                self._lines = cls is None
                if cls is not None:
                    self.bar = cls(total=self.total, desc=self.desc, unit="epoch", file=_stream())
            self.count += 1
            self.change = change
            if self.bar is not None:
                self.bar.update(1)
                if self.show_change:
                    # fraction of points whose cluster (argmax T) changed in this epoch
                    self.bar.set_postfix(changed=f"{change:.4f}", refresh=False)
            else:
                quarter = (4 * self.count) // max(self.total, 1)
                if quarter > self._last_quarter:
                    self._last_quarter = quarter
                    self._line()
        return True

    def _line(self, stopped=False):
        label = self.desc[4:] if self.desc.startswith("UEC ") else self.desc
        label += "" if label.endswith("epochs") else " epochs"
        text = f"{PREFIX}{label} {self.count}/{self.total}, {time.perf_counter() - self._t0:.2f} s"
        if self.show_change and self.change is not None:
            text += f", changed {self.change:.4f}"
        if stopped:
            text += " (stopped: converged or interrupted)"
        write_line(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self._lines and self.count < self.total and self.count > 0:
            self._line(stopped=True)


class _LineHandler(logging.Handler):
    def emit(self, record):
        try:
            write_line(self.format(record))
        except Exception:  # pragma: no cover - as logging.StreamHandler does
            self.handleError(record)


_lock = threading.Lock()
_active = 0
_handler = None
_saved_level = None


@contextlib.contextmanager
def reporting(verbose):
    """While the block runs, with ``verbose``: INFO records of the ``uec`` loggers are written
    as lines (``uec: ...``) when nothing in the application handles them (no handler on
    ``uec`` or the root logger). Nested and concurrent blocks share one handler."""
    global _active, _handler, _saved_level
    if not verbose:
        yield
        return
    with _lock:
        if _active == 0:
            log = logging.getLogger("uec")
            if not log.hasHandlers():
                _handler = _LineHandler(level=logging.INFO)
                _handler.setFormatter(logging.Formatter(PREFIX + "%(message)s"))
                log.addHandler(_handler)
                _saved_level = log.level
                if log.level == logging.NOTSET or log.level > logging.INFO:
                    log.setLevel(logging.INFO)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _handler is not None:
                log = logging.getLogger("uec")
                log.removeHandler(_handler)
                log.setLevel(_saved_level)
                _handler = None


def reports(method):
    """Decorator of an estimator method: :func:`reporting` for the call when ``self.verbose``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with reporting(bool(getattr(self, "verbose", False))):
            return method(self, *args, **kwargs)

    return wrapper
