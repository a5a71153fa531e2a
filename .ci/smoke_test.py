"""Smoke test of an installed uec (a wheel in a clean environment; cibuildwheel's test-command).

Imports the package and its compiled core, fits a digits subset, predicts held-out points,
round-trips the model through pickle, and runs the command line. Exits non-zero on failure.
"""

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import uec
from uec import UEC, _core
from uec.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)
Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:800], y[600:800]
model = UEC(n_clusters=10, n_epochs=100, random_state=0).fit(Xtr)
acc_train = clustering_accuracy(ytr, model.labels_)
pred = model.predict(Xte)
acc_test = clustering_accuracy(yte, pred)
assert acc_train > 0.6 and acc_test > 0.6, (acc_train, acc_test)
again = pickle.loads(pickle.dumps(model))
assert np.array_equal(again.predict(Xte), pred)

with tempfile.TemporaryDirectory() as tmp:
    np.savez(Path(tmp) / "d.npz", X=Xtr[:200], y=ytr[:200])
    cmd = [sys.executable, "-m", "uec", "fit", str(Path(tmp) / "d.npz"), "--labels",
           str(Path(tmp) / "d.npz"), "--n-clusters", "5", "--n-epochs", "20", "--out",
           str(Path(tmp) / "out"), "--no-plot"]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (Path(tmp) / "out" / "summary.json").exists()
script = Path(sys.executable).parent / "uec"
if sys.platform != "win32":
    assert script.exists(), f"console script missing: {script}"

print(f"uec {uec.__version__} smoke test passed: OpenMP {_core.have_openmp()}, "
      f"{_core.resolve_threads(-1)} threads, ACC train {acc_train:.3f} held-out {acc_test:.3f}")
