"""benchmarks/suite.py: what it records is what the estimator gives, and its tables read it."""

import json

import numpy as np
import pytest

from benchmark_loader import benchmark_module
from uec import UEC
from uec.metrics import ari, clustering_accuracy



@pytest.fixture(scope="module")
def suite():
    with benchmark_module("suite.py", "suite_bench") as mod:
        yield mod


def test_records_the_estimators_scores_and_summarises(suite, tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert suite.main(["--sets", "iris", "wine", "--methods", "uec", "uec-comma", "--seeds", "0",
                       "--n-jobs", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    import _data

    for name in ("iris", "wine"):
        X, y = _data.load(name)
        runs = {r["method"]: r for r in results["sets"][name]["runs"]}
        for method, variant in (("uec", None), ("uec-comma", "comma")):
            kw = {} if variant is None else {"variant": variant}
            labels = UEC(n_clusters=3, random_state=0, n_jobs=1, **kw).fit_predict(X)
            assert runs[method]["acc"] == pytest.approx(clustering_accuracy(y, labels))
            assert runs[method]["ari"] == pytest.approx(ari(y, labels))
    printed = capsys.readouterr().out
    assert "uec-comma" in printed and "mean ACC" in printed
    mean = np.mean([r["acc"] for n in ("iris", "wine") for r in results["sets"][n]["runs"]
                    if r["method"] == "uec"])
    table = suite.summarise(results)
    assert f"| uec | {mean:.3f}" in table
    assert "held-out set" in suite.loso(results)
