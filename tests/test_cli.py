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
        (["fit", d / "X.npy", "--n-clusters", "three", *ok], "'three' is not an integer or 'auto'", 2),
        (["fit", d / "X.npy", "--n-clusters", "3"], "required: --out", 2),
        (["fit", d / "X.npy", "--labels-at", "2,x", *ok], "'x' in '2,x' is not an integer", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--labels-at", "5000", *ok],
         "--labels-at 5000: n_clusters=5000 must be between 1 and", 1),
        (["fit", d / "X.npy", "--noise-threshold", "2", *ok], "noise_threshold=2.0 must be", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--variant", "best", *ok], "invalid choice", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--bogus", *ok], "unrecognized arguments", 2),
        (["fit", d / "X.npy", "--n-clusters", "500", *ok], "n_clusters=500 must be <= n_samples=300", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--n-jobs", "0", *ok], "n_jobs=0", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--n-neighbors", "1", *ok], "n_neighbors=1", 1),
        (["fit", d / "X.npy", "--n-clusters", "3", "--out", tmp / "afile"], "not a directory", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--out", tmp / "afile" / "sub"],
         f"--out {tmp / 'afile' / 'sub'}: {tmp / 'afile'} is not a directory", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--metric", "euclidian", *ok],
         "--metric 'euclidian' is not a metric the kNN search knows; allowed: ", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--metric-kwds", "p=3", *ok],
         "--metric-kwds 'p=3' must be a JSON object", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--metric", "minkowski", "--metric-kwds",
          '{"q": 3}', *ok], "metric_kwds={'q': 3} is not accepted by metric='minkowski'", 1),
        (["fit", d / "X.csv", "--n-clusters", "3", "--id-column", "px99", *ok],
         "--id-column 'px99' is not a column of", 2),
        (["fit", d / "X.csv", "--n-clusters", "3", "--drop", "64", *ok],
         "--drop 64: ", 2),
        (["fit", d / "X.npy", "--n-clusters", "3", "--id-column", "id", *ok],
         "--id-column 'id' names a column, but", 2),
        (["fit", d / "X.csv", "--n-clusters", "3", "--id-column", "0", "--drop", "px0", *ok],
         "are the same column (0)", 2),
        (["fit", d / "X.csv", "--n-clusters", "3", "--label-column", "px1", "--labels",
          d / "digits.npz", *ok], "--labels and --label-column", 2),
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


# -- columns of DATA, --metric, --out and existing outputs (issues 27 and 30) -----------------


@pytest.fixture(scope="module")
def tables(data):
    """The 300 digits as CSVs with a string id and a label column, and with a numeric id."""
    d, X, y = data
    ids = np.arange(1000, 1300)
    header = ",".join(f"px{i}" for i in range(64))
    rows = [f"s{i}," + ",".join(f"{v:g}" for v in r) + f",{lab}" for i, r, lab in zip(ids, X, y)]
    (d / "named.csv").write_text(f"sample_id,{header},digit\n" + "\n".join(rows) + "\n")
    rows = [f"{i}," + ",".join(f"{v:g}" for v in r) for i, r in zip(ids, X)]
    (d / "numeric_id.csv").write_text(f"id,{header}\n" + "\n".join(rows) + "\n")
    return d, X, y, ids


def test_id_and_label_columns_and_metric(tables, tmp_path):
    d, X, y, ids = tables
    out = tmp_path / "out"
    res = run_cli("fit", d / "named.csv", "--id-column", "sample_id", "--label-column", "digit",
                  "--metric", "minkowski", "--metric-kwds", '{"p": 1}', "--out", out,
                  "--no-plot", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    # the features are the 64 pixel columns alone, searched with the Minkowski p = 1 metric
    model = UEC(n_clusters=6, n_epochs=30, random_state=3, n_jobs=1, metric="minkowski",
                metric_kwds={"p": 1}).fit(X)
    labels = np.load(out / "labels.npy")
    np.testing.assert_array_equal(labels, model.labels_)
    # ids beside the labels
    lines = (out / "labels.csv").read_text().splitlines()
    assert lines[0] == "sample_id,label" and len(lines) == 301
    assert lines[1:] == [f"s{i},{lab}" for i, lab in zip(ids, labels)]
    np.testing.assert_array_equal(np.load(out / "ids.npy"), [f"s{i}" for i in ids])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["n_features"] == 64
    assert summary["data"]["id_column"] == {"index": 0, "name": "sample_id"}
    assert summary["labels"] == {"column": {"index": 65, "name": "digit"}}
    assert summary["scores"]["acc"] == pytest.approx(evaluate(y, labels)["acc"])
    assert summary["parameters"]["metric"] == "minkowski"
    assert "ids.npy" in summary["files"] and "labels.csv" in summary["files"]


def test_union_metric_option(data, tmp_path):
    """--union-metric reaches UEC's union_metric ('none': the graph of --metric alone)."""
    d, X, _ = data
    for value, param in (("none", None), ("cosine", "cosine")):
        out = tmp_path / value
        res = run_cli("fit", d / "X.npy", "--union-metric", value, "--out", out, "--no-plot",
                      *FIT_ARGS)
        assert res.returncode == 0, res.stderr
        model = UEC(n_clusters=6, n_epochs=30, random_state=3, n_jobs=1,
                    union_metric=param).fit(X)
        np.testing.assert_array_equal(np.load(out / "labels.npy"), model.labels_)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["parameters"]["union_metric"] == param


def test_refine_option(tmp_path):
    """--refine reaches UEC's refine ('none': the graph's labels; 'auto', the default, refines
    a small table's)."""
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_iris().data).astype(np.float32)
    np.save(tmp_path / "iris.npy", X)
    got = {}
    for value, param in (("none", None), ("auto", "auto")):
        out = tmp_path / value
        res = run_cli("fit", tmp_path / "iris.npy", "--refine", value, "--n-clusters", "3",
                      "--random-state", "0", "--n-jobs", "1", "--out", out, "--no-plot")
        assert res.returncode == 0, res.stderr
        model = UEC(n_clusters=3, random_state=0, n_jobs=1, refine=param).fit(X)
        got[value] = np.load(out / "labels.npy")
        np.testing.assert_array_equal(got[value], model.labels_)
        assert json.loads((out / "summary.json").read_text())["parameters"]["refine"] == param
    assert not np.array_equal(got["none"], got["auto"])  # iris: the refinement moves points


def test_numeric_id_column_is_named_or_warned_about(tables, tmp_path):
    d, X, _, ids = tables
    res = run_cli("fit", d / "numeric_id.csv", "--id-column", "0", "--out", tmp_path / "a",
                  "--no-plot", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    model = UEC(n_clusters=6, n_epochs=30, random_state=3, n_jobs=1).fit(X)
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "labels.npy"), model.labels_)
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "ids.npy"), ids)
    # --drop by name leaves the same features; not named, the id column is a feature, and a
    # warning says so and how to name it
    res = run_cli("fit", d / "numeric_id.csv", "--out", tmp_path / "b", "--no-plot", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"uec: warning: {d / 'numeric_id.csv'}: column 0 ('id') holds consecutive integers; it is "
        "used as a feature. If it is a row id, pass --id-column 0 (or --drop 0)"]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["data"]["n_features"] == 65


def test_unwritable_out_fails_before_the_fit(data, tmp_path):
    d, _, _ = data
    target = "/proc/uec-test-out/result"  # nobody, root included, can create a directory here
    res = run_cli("fit", d / "X.npy", "--n-clusters", "6", "--out", target, "--n-epochs", "2000",
                  "--n-jobs", "1")
    assert res.returncode == 1
    assert res.stderr.startswith(f"uec: error: --out {target} cannot be created: /proc is not "
                                 "writable"), res.stderr
    assert "UEC" not in res.stdout  # no fit ran


def test_existing_outputs_need_overwrite_and_links_are_never_followed(data, tmp_path):
    d, X, _ = data
    out = tmp_path / "out"
    res = run_cli("fit", d / "X.npy", "--out", out, "--no-plot", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    before = (out / "labels.npy").read_bytes()
    # a second run refuses before the fit, naming the file and --overwrite
    res = run_cli("fit", d / "X.npy", "--out", out, "--no-plot", *FIT_ARGS[:-4], "--random-state", "4",
                  "--n-jobs", "1")
    assert res.returncode == 1 and "UEC" not in res.stdout
    assert res.stderr.strip() == (f"uec: error: {out / 'labels.npy'} exists; pass --overwrite to "
                                  "replace it, or choose another --out")
    assert (out / "labels.npy").read_bytes() == before
    # a link inside --out to a file outside it: refused even with --overwrite, the file intact
    outside = tmp_path / "precious.npy"
    outside.write_bytes(b"keep me")
    (out / "embedding.npy").unlink()
    (out / "embedding.npy").symlink_to(outside)
    res = run_cli("fit", d / "X.npy", "--out", out, "--no-plot", "--overwrite", *FIT_ARGS)
    assert res.returncode == 1
    assert res.stderr.strip() == (f"uec: error: {out / 'embedding.npy'} is a symbolic link; uec "
                                  "writes no output through a link (remove it, or choose another "
                                  "--out)")
    assert outside.read_bytes() == b"keep me"
    (out / "embedding.npy").unlink()
    res = run_cli("fit", d / "X.npy", "--out", out, "--no-plot", "--overwrite", *FIT_ARGS)
    assert res.returncode == 0, res.stderr
    assert not (out / "embedding.npy").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["centres.npy", "embedding.npy", "labels.npy",
                                                     "summary.json"]  # no temporary files left


def test_writer_refuses_links_and_existing_files(tmp_path):
    # the writer checks each name again when it writes (a link may appear during the fit); it
    # fills a new temporary file and renames it over the name, so no link is written through
    from uec.cli import CliError, _Writer

    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").symlink_to(outside)
    w = _Writer(out, overwrite=True)
    with pytest.raises(CliError, match="is a symbolic link"):
        w.text("summary.json", "{}")
    assert outside.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    w.text("labels.csv", "id,label\n")
    assert (out / "labels.csv").read_text() == "id,label\n"
    with pytest.raises(CliError, match="exists; pass --overwrite"):
        _Writer(out, overwrite=False).text("labels.csv", "x")


def test_fit_without_n_clusters_and_with_labels_at(data, tmp_path):
    """No --n-clusters: the count is chosen from the data as UEC() does; --labels-at writes
    the hierarchy's partitions, equal to labels_at of the same fit in this process."""
    d, X, _ = data
    out = tmp_path / "auto"
    args = ["--n-epochs", "30", "--random-state", "3", "--n-jobs", "1", "--no-plot"]
    res = run_cli("fit", d / "X.npy", "--out", out, "--labels-at", "2,4,3", "--noise-threshold",
                  "0.6", *args)
    assert res.returncode == 0, res.stderr
    model = UEC(n_epochs=30, random_state=3, n_jobs=1, noise_threshold=0.6).fit(X)
    assert "clusters (chosen from the data)" in res.stdout
    np.testing.assert_array_equal(np.load(out / "labels.npy"), model.labels_)
    for k in (2, 3, 4):
        np.testing.assert_array_equal(np.load(out / f"labels_k{k}.npy"), model.labels_at(k))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_clusters"] == model.n_clusters_
    assert summary["noise_points"] == int((model.labels_ < 0).sum())
    assert sum(summary["cluster_sizes"]) + summary["noise_points"] == X.shape[0]
    assert "labels_k2.npy" in summary["files"]
