"""Ctrl-C during a long fit stops it between epochs and leaves the estimator unfitted."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from uec import UEC
    X = np.random.default_rng(0).normal(size=(3000, 10)).astype(np.float32)
    model = UEC(n_clusters=5, n_epochs=100000, tol=0.0, random_state=0)
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    t0 = time.perf_counter()
    try:
        model.fit(X)
    except KeyboardInterrupt:
        fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
        sys.stdout.write(f"interrupted {time.perf_counter() - t0:.2f} fitted={fitted}\\n")
        sys.exit(0)
    sys.stdout.write("finished\\n")
    sys.exit(1)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_fit_and_leaves_it_unfitted():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(4.0)  # graph, init and a few hundred epochs in
    t_sig = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    stop_latency = time.perf_counter() - t_sig
    assert proc.returncode == 0, out
    assert out.startswith("interrupted"), out
    assert "fitted=[]" in out, out
    assert stop_latency < 10.0
