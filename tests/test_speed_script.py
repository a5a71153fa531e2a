"""benchmarks/speed.py runs end to end on tiny inputs and writes the fields its README table
reads. No timing is asserted: only that both layouts did the same work and kept their quality."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"

pytest.importorskip("umap")
pytest.importorskip("threadpoolctl")


def load_script():
    spec = importlib.util.spec_from_file_location("speed_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_umap_sample_count_replays_umap_loop():
    """The vectorised count equals umap-learn's per-edge rule run one edge at a time."""
    speed = load_script()
    rng = np.random.default_rng(4)
    eps = (1.0 / rng.uniform(0.02, 1.0, 200)).astype(np.float32)
    n_epochs, rate = 37, 5
    pos = neg = 0
    for e in eps.astype(np.float64):
        nxt, epn = e, e / rate
        nneg = epn
        for n in range(n_epochs):
            if nxt <= n:
                pos += 1
                nxt += e
                k = int((n - nneg) / epn)
                neg += k
                nneg += k * epn
    assert speed.umap_sample_counts(eps, n_epochs, rate) == (pos, neg)


def test_quick_part_1(tmp_path):
    # Part 3 (cold start) spawns fresh interpreters that compile umap-learn's numba code: about
    # a minute, so it is left to the benchmark run itself.
    out = tmp_path / "speed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--parts", "1", "--threads", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["machine"]["cpus"] >= 1

    lay = rep["layout"]
    assert lay["n"] > 0 and lay["edges"] > 0 and lay["n_epochs"] > 0
    (row,) = lay["rows"]
    assert row["threads"] == 1
    assert row["thread_info"]["OMP_NUM_THREADS"] == "1"
    assert row["thread_info"]["numba_threads"] == 1
    for key in ("uec_ns_per_sample", "umap_ns_per_sample", "speedup"):
        assert np.isfinite(row[key]) and row[key] > 0
    # same work: our core samples an edge from epoch 1 on, umap-learn from epoch 0, so the
    # counts differ by under one epoch's worth
    assert 1.0 <= row["uec_samples"] / row["umap_samples"] <= 1.0 + 1.5 / lay["n_epochs"]
    assert 0.8 <= row["uec_neg_samples"] / row["umap_neg_samples"] <= 1.2
    assert row["finite"]
    # both layouts of well-separated manifold clusters keep their neighbourhoods
    assert row["trust_uec"] > 0.9 and row["trust_umap"] > 0.9
    assert abs(row["trust_uec"] - row["trust_umap"]) < 0.05

