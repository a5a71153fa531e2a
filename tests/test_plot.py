"""uec.plot with the Agg backend: what is drawn, the PNG, and the missing-matplotlib error."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from uec import UEC  # noqa: E402
from uec.plot import embedding_figure, plot_embedding  # noqa: E402


@pytest.fixture(scope="module")
def model():
    X, _ = load_digits(return_X_y=True)
    return UEC(n_clusters=5, n_epochs=40, random_state=0, n_jobs=1).fit(X[:400])


def _colour_of_points(ax):
    pts = ax.collections[0]
    return pts.get_offsets(), pts.get_facecolors()


def test_plot_from_model_draws_points_and_centres(model):
    fig, ax = plt.subplots()
    try:
        assert plot_embedding(model, ax=ax) is ax
        offsets, faces = _colour_of_points(ax)
        np.testing.assert_allclose(offsets, model.embedding_[:, :2], rtol=1e-6)
        # one colour per cluster: same label <=> same colour
        keys = [tuple(np.round(f[:3], 6)) for f in faces]
        by_label = {}
        for lab, key in zip(model.labels_, keys):
            by_label.setdefault(lab, set()).add(key)
        assert all(len(v) == 1 for v in by_label.values())
        assert len({next(iter(v)) for v in by_label.values()}) == len(by_label)
        centres = ax.collections[1]
        np.testing.assert_allclose(centres.get_offsets(), model.cluster_centers_, rtol=1e-6)
        # centre k is drawn in the colour of cluster k
        for k, face in enumerate(centres.get_facecolors()):
            if k in by_label:
                assert tuple(np.round(face[:3], 6)) == next(iter(by_label[k]))
        assert ax.get_legend() is not None
    finally:
        plt.close(fig)


def test_plot_from_arrays_and_options():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(50, 3))
    labels = np.repeat(["a", "b"], 25)
    fig, ax = plt.subplots()
    try:
        plot_embedding(Z, labels, centres=False, ax=ax, dims=(2, 0), legend=False)
        np.testing.assert_allclose(ax.collections[0].get_offsets(), Z[:, [2, 0]])
        assert len(ax.collections) == 1 and ax.get_legend() is None
    finally:
        plt.close(fig)


def test_png_is_non_trivial(model, tmp_path):
    path = tmp_path / "embedding.png"
    embedding_figure(model).savefig(path, dpi=60)
    img = matplotlib.image.imread(path)
    assert img.shape[0] >= 300 and img.shape[1] >= 300
    rgb = np.round(img[..., :3] * 255).astype(int).reshape(-1, 3)
    non_white = (rgb < 250).any(axis=1).mean()
    assert 0.02 < non_white < 0.9
    assert len(np.unique(rgb, axis=0)) > 20  # several cluster colours, not a blank canvas


def test_bad_input(model):
    with pytest.raises(ValueError, match=r"labels must have shape \(400,\)"):
        embedding_figure(model, labels=np.zeros(3))
    with pytest.raises(ValueError, match="must have shape"):
        embedding_figure(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="not fitted"):
        embedding_figure(UEC(n_clusters=2))


def test_missing_matplotlib_names_the_extra(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install uec\[plot\]"):
        plot_embedding(model)
