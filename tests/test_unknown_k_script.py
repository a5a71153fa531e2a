"""benchmarks/unknown_k.py: its records are what the estimator and the rules give, and its
tables read them."""

import json

import pytest

from benchmark_loader import benchmark_module
from uec import UEC



@pytest.fixture(scope="module")
def script():
    with benchmark_module("unknown_k.py", "unknown_k_bench") as mod:
        yield mod


def test_criteria_part_records_the_default_rule(script, tmp_path, capsys):
    out = tmp_path / "uk.json"
    assert script.main(["--sets", "iris", "--seeds", "0", "--parts", "criteria",
                        "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["criteria"]["iris"]
    import _data

    X, y = _data.load("iris")
    model = UEC(random_state=0, n_jobs=1).fit(X)
    default = [r for r in rows["runs"] if r["rule"] == "eigengap (default)"]
    # the benchmark's graph is the fit's (same seed): the default rule finds the fit's count
    assert [r["k_found"] for r in default] == [model.n_clusters_]
    assert {r["rule"] for r in rows["runs"]} == {"modularity optimum", "eigengap (default)",
                                                 "eigengap of the split communities"}
    printed = capsys.readouterr().out
    assert "Leave one set out" in printed and "| iris | 3 |" in printed


def test_k_table_reads_the_runs(script):
    runs = [{"method": "uec-auto", "seed": 0, "k_found": 3, "ari": 0.5, "labels_at_s": 1.0,
             "fit_s": 20.0},
            {"method": "hdbscan", "seed": 0, "k_found": 5, "noise": 0.1, "ari": 0.25},
            {"method": "evoc-auto", "seed": 0, "error": "boom"}]
    results = {"toy": {"k": 4, "n": 10, "runs": runs}}
    table = script.k_table(results)
    # hdbscan's noise counts as one more cluster: 6 found for k 4, outside 25%
    assert "| toy | 4 | 3.0 | 0.500 | 6.0 | 0.250 | - | - | 5.0% |" in table
    summary = script.k_summary(results)
    assert "| uec-auto | 1.00 of 1 | 0.500 |" in summary
    assert "| hdbscan | 0.00 of 1 | 0.250 |" in summary
    assert "| evoc-auto | no runs | - |" in summary
