"""The README's command-line and Dask examples, taken from README.md and run as written (each
in a fresh directory, in a subprocess), so that the README cannot drift from the code. CI runs
them in a fresh venv with ``.[test]``, which holds what the ``dask`` extra installs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(heading, language):
    """The fenced ``language`` code blocks of README.md's section ``## heading``."""
    text = README.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    section = next((s for s in sections if s.splitlines()[0].strip() == heading), None)
    assert section is not None, f"README.md has no section '## {heading}'"
    blocks = re.findall(rf"^```{language}\n(.*?)^```", section, flags=re.M | re.S)
    assert blocks, f"README.md's '## {heading}' has no {language} block"
    return blocks


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1")


def test_readme_command_line_example_runs(tmp_path):
    (script,) = _blocks("Command line", "sh")
    # the example says `python`: the interpreter running the tests
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    env = dict(_env(), PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    res = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "result"
    labels = np.load(out / "labels.npy")
    assert labels.shape == (1797,)
    lines = (out / "labels.csv").read_text().splitlines()
    assert lines[0] == "id,label" and lines[1:4] == [f"{i},{labels[i]}" for i in range(3)]
    acc = float(res.stdout.split("ACC")[1].split()[0])
    assert acc > 0.9, res.stdout  # 64 pixel features: the id and the digit were kept out


def test_readme_dask_example_runs(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("zarr")  # in the dask extra since the example writes and reads zarr
    (code,) = [b for b in _blocks("Dask", "python") if "uec.dask" in b]
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    counts = [int(c) for c in res.stdout.strip().strip("[]").split()]
    assert sum(counts) == 20_000 and len(counts) == 8
    assert (tmp_path / "labels.zarr").exists()


def test_the_dask_extra_installs_what_the_example_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    (code,) = [b for b in _blocks("Dask", "python") if "uec.dask" in b]
    names = {re.split(r"[\[<>=!~ ]", r)[0] for r in extras["dask"]}
    assert "zarr" in code and "zarr" in names
    assert {"dask", "zarr"} <= names and "distributed" in extras["dask"][0]


def test_readme_quick_start_runs(tmp_path):
    """The quick start, as written: digits with k given and with the count chosen."""
    (code,) = _blocks("Quick start", "python")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert float(lines[0]) > 0.9  # clustering_accuracy with n_clusters=10
    assert int(lines[1].split()[0]) >= 2  # n_clusters_ of the fit without n_clusters
