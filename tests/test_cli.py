"""The ``uec`` command line through subprocesses: outputs of a fit, and one clear line for
every failure."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from uec import UEC
from uec.metrics import evaluate

FIT_ARGS = ["--n-clusters", "6", "--n-epochs", "30", "--random-state", "3", "--n-jobs", "1"]


def run_cli(*args, env=None, script=False):
    cmd = [str(Path(sys.executable).parent / "uec")] if script else [sys.executable, "-m", "uec"]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300, env=full_env)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    d = tmp_path_factory.mktemp("data")
    np.savez(d / "digits.npz", X=X, y=y)
    np.save(d / "X.npy", X)
    np.save(d / "y_short.npy", y[:-1])
    header = ",".join(f"px{i}" for i in range(X.shape[1]))
    np.savetxt(d / "X.csv", X, delimiter=",", header=header, comments="", fmt="%g")
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    (d / "y.csv").write_text("digit\n" + "\n".join(names[y]) + "\n")
    return d, X, y


def test_cli_default_variant_is_the_estimators():
    from uec.cli import DEFAULT_VARIANT

    assert DEFAULT_VARIANT == UEC().variant


def test_fit_writes_every_output(data, tmp_path):
    d, X, y = data
    out = tmp_path / "out"
    res = run_cli("fit", d / "digits.npz", "--labels", d / "digits.npz", "--out", out, *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    assert "ACC" in res.stdout and res.stderr == ""
    labels = np.load(out / "labels.npy")
    emb = np.load(out / "embedding.npy")
    centres = np.load(out / "centres.npy")
    assert labels.shape == (300,) and emb.shape == (300, 2) and centres.shape == (6, 2)
    # the same fit in this process gives the same bits (the fit is deterministic for a seed)
    model = UEC(n_clusters=6, n_epochs=30, random_state=3, n_jobs=1).fit(X)
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_array_equal(emb, model.embedding_)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["n_samples"] == 300 and summary["data"]["n_features"] == 64
    assert summary["parameters"]["n_clusters"] == 6 and summary["parameters"]["variant"] == UEC().variant
    assert summary["n_epochs"] == 30 and 1 <= summary["n_iter"] <= 30
    for stage in ("load", "graph", "init", "layout", "clustering", "fit_total"):
        assert summary["times_s"][stage] >= 0
    expected = evaluate(y, labels)
    for k in ("acc", "nmi", "ari"):
        assert summary["scores"][k] == pytest.approx(expected[k])
    assert sum(summary["cluster_sizes"]) == 300
    if summary["plot"] == "embedding.png":
        assert (out / "embedding.png").stat().st_size > 10_000
    else:
        assert "pip install uec[plot]" in summary["plot"]


def test_console_script_csv_with_header_and_word_labels(data, tmp_path):
    d, X, y = data
    if not (Path(sys.executable).parent / "uec").exists():
        pytest.skip("the uec console script is not installed in this environment")
    out = tmp_path / "out"
    res = run_cli("fit", d / "X.csv", "--labels", d / "y.csv", "--out", out, "--no-plot",
                  "--variant", "light_plus", *FIT_ARGS, script=True)
    assert res.returncode == 0, res.stderr
    model = UEC(n_clusters=6, variant="light_plus", n_epochs=30, random_state=3, n_jobs=1).fit(X)
    np.testing.assert_array_equal(np.load(out / "labels.npy"), model.labels_)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scores"]["acc"] == pytest.approx(evaluate(y, model.labels_)["acc"])
    assert summary["plot"] == "skipped: --no-plot" and not (out / "embedding.png").exists()


def test_without_matplotlib_the_png_is_skipped_with_a_note(data, tmp_path):
    d, _, _ = data
    blocker = tmp_path / "block" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib blocked for a test')\n")
    out = tmp_path / "out"
    pythonpath = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))
    res = run_cli("fit", d / "X.npy", "--out", out, *FIT_ARGS, env={"PYTHONPATH": pythonpath})
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [
        "uec: note: embedding.png not written: matplotlib is not installed (pip install uec[plot])"
    ]
    assert not (out / "embedding.png").exists() and (out / "labels.npy").exists()
    assert "pip install uec[plot]" in json.loads((out / "summary.json").read_text())["plot"]


def _failures(d, tmp):
    (tmp / "garbage.npy").write_bytes(b"not a numpy file at all")
    np.save(tmp / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp / "flat.npy", np.arange(10.0))
    (tmp / "words.csv").write_text("a,b\n1,2\nx,4\n")
    (tmp / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp / "data.parquet").write_bytes(b"PAR1")
    (tmp / "afile").write_text("")
    ok = ["--out", tmp / "o"]
    return [
        # (arguments, text the single stderr line must contain, exit status)
        (["fit", tmp / "missing.npy", "--n-clusters", "3", *ok], "data file not found", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--labels", tmp / "nope.npy", *ok],
         "labels file not found", 1),
        (["fit", tmp, "--n-clusters", "3", *ok], "is a directory", 1),
        (["fit", tmp / "data.parquet", "--n-clusters", "3", *ok], "unsupported data format", 1),
        (["fit", tmp / "garbage.npy", "--n-clusters", "3", *ok], "cannot read", 1),
        (["fit", tmp / "objects.npy", "--n-clusters", "3", *ok], "cannot read", 1),
        (["fit", tmp / "flat.npy", "--n-clusters", "3", *ok], "must be 2-D", 1),
        (["fit", tmp / "words.csv", "--n-clusters", "3", *ok], "non-numeric value 'x'", 1),
        (["fit", tmp / "ragged.csv", "--n-clusters", "3", *ok], "different numbers of columns", 1),
        (["fit", d / "digits.npz", "--key", "Z", "--n-clusters", "3", *ok], "has no array 'Z'", 1),
        (["fit", d / "X.npy", "--key", "X", "--n-clusters", "3", *ok], ".npz files only", 2),
        (["fit", d / "X.npy", "--labels", d / "y_short.npy", "--n-clusters", "3", *ok],
         "299 labels for 300 data rows", 1),
        (["fit", d / "X.npy", "--n-clusters", "three", *ok], "invalid int value: 'three'", 2),
        (["fit", d / "X.npy", "--n-clusters", "3"], "required: --out", 2),
        (["fit", d / "X.npy", *ok], "required: --n-clusters", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--variant", "best", *ok], "invalid choice", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--bogus", *ok], "unrecognized arguments", 2),
        (["fit", d / "X.npy", "--n-clusters", "500", *ok], "n_clusters=500 must be <= n_samples=300", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--n-jobs", "0", *ok], "n_jobs=0", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--n-neighbors", "1", *ok], "n_neighbors=1", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--out", tmp / "afile"], "not a directory", 2),
        (["launch"], "invalid choice: 'launch'", 2),
        ([], "required", 2),
    ]


def test_every_failure_is_one_line_and_a_nonzero_exit(data, tmp_path):
    d, _, _ = data
    problems = []
    for args, needle, status in _failures(d, tmp_path):
        res = run_cli(*args)
        lines = res.stderr.strip().splitlines()
        if (res.returncode != status or len(lines) != 1 or needle not in lines[0]
                or not lines[0].startswith("uec") or ": error: " not in lines[0]):
            problems.append((args, res.returncode, res.stderr))
        assert not (tmp_path / "o").exists()  # nothing written on failure
    assert not problems, problems


def test_demo_still_runs():
    res = run_cli("demo", "--variant", "comma", "--seed", "0", "--n-jobs", "1")
    assert res.returncode == 0, res.stderr
    acc = float(res.stdout.split("ACC")[1].split()[0])
    assert acc > 0.8, res.stdout


def test_fit_passes_subclusters_and_warmup(data, tmp_path):
    d, X, _ = data
    out = tmp_path / "paper_form"
    res = run_cli("fit", d / "X.npy", "--out", out, "--n-subclusters", "6", "--warmup-epochs", "0",
                  "--no-plot", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    model = UEC(n_clusters=6, n_subclusters=6, warmup_epochs=0, n_epochs=30, random_state=3,
                n_jobs=1).fit(X)
    np.testing.assert_array_equal(np.load(out / "labels.npy"), model.labels_)
    np.testing.assert_array_equal(np.load(out / "centres.npy"), model.cluster_centers_)
    res = run_cli("fit", d / "X.npy", "--out", tmp_path / "bad", "--n-subclusters", "2", *FIT_ARGS)
    assert res.returncode != 0 and "n_subclusters=2 must be between n_clusters=6" in res.stderr
