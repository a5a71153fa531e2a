"""verbose=True: a line per stage that a user sees (not an unconfigured logger), at most one
bar at a time on a terminal, and no carriage returns or escape codes when stderr is a file."""

import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest

from uec import _progress

SCRIPT = textwrap.dedent("""
    import numpy as np
    from sklearn.datasets import load_digits
    from uec import UEC
    X, _ = load_digits(return_X_y=True)
    m = UEC(n_clusters=5, variant="comma", n_epochs=40, random_state=0, n_jobs=1, verbose=True)
    m.fit(X[:400])
    m.transform(X[400:420])
""")
STAGES = ("kNN graph", "init embedding", "init centres")


def _check_lines(text):
    for name in STAGES:
        assert re.search(rf"(^|[\r\n])uec: {name}: \d+\.\d\d s\r?\n", text), (name, text)
    # the INFO records of the uec loggers are shown too (stage times of the whole fit)
    assert re.search(r"(^|[\r\n])uec: fit: knn \d+\.\d\d s, graph", text), text


def test_verbose_lines_in_a_log_file_have_no_bars_or_escape_codes(tmp_path):
    log = tmp_path / "fit.log"
    with open(log, "w") as fh:
        res = subprocess.run([sys.executable, "-c", SCRIPT], stderr=fh, stdout=subprocess.PIPE,
                             env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert res.returncode == 0
    text = log.read_text()
    _check_lines(text)
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # the epochs as a line per quarter, the last one at 40 of 40
    assert [ln.split(",")[0] for ln in lines if ln.startswith("uec: epochs ")] == [
        "uec: epochs 10/40", "uec: epochs 20/40", "uec: epochs 30/40", "uec: epochs 40/40"]
    assert any(ln.startswith("uec: transform epochs ") for ln in lines)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_verbose_on_a_terminal_shows_one_bar_at_a_time():
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.DEVNULL,
                            stderr=slave, env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=300) == 0
    os.close(master)
    text = out.decode("utf-8", "replace")
    _check_lines(text)
    assert "UEC epochs: 100%" in text  # the bar is drawn on a terminal
    # a second bar (the old centre-init bar inside the epochs bar) moves the cursor up
    assert "\x1b[A" not in text


def test_reporting_adds_a_handler_only_when_the_application_has_none(monkeypatch, capsys):
    log = logging.getLogger("uec")
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    before = list(log.handlers), log.level
    with _progress.reporting(True):
        assert len(log.handlers) == len(before[0]) + 1
        logging.getLogger("uec.merge").info("merged into %d clusters", 3)
        with _progress.reporting(True):  # nested: still one handler
            assert len(log.handlers) == len(before[0]) + 1
        logging.getLogger("uec.merge").debug("not shown")
    assert (list(log.handlers), log.level) == before
    assert capsys.readouterr().err == "uec: merged into 3 clusters\n"
    with _progress.reporting(False):
        assert list(log.handlers) == before[0]
    # an application that configured logging keeps it: no handler of ours, no duplicate lines
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    with _progress.reporting(True):
        assert list(log.handlers) == before[0]


def test_stage_and_epoch_lines_without_a_terminal(capsys):
    with _progress.stage("kNN graph", True):
        pass
    with _progress.stage("quiet", False):
        pass
    p = _progress.EpochProgress(8, True, show_change=False)
    for e in range(6):
        p.callback(e, 0.0)
    p.close()  # stopped early: a last line says so
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"uec: kNN graph: \d\.\d\d s", err[0])
    assert [ln.split(",")[0] for ln in err[1:]] == ["uec: epochs 2/8", "uec: epochs 4/8",
                                                    "uec: epochs 6/8", "uec: epochs 6/8"]
    assert err[-1].endswith("(stopped: converged or interrupted)")
