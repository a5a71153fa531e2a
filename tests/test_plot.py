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


# -- colours follow what is coloured, palettes, sizes, options, connectivity (issue 27) -------


def _lab(rgb):
    """CIELAB of sRGB in [0, 1] (D65), written out here independently of uec.plot."""
    rgb = np.asarray(rgb, dtype=float)[..., :3]
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    x, y, z = (lin @ np.array([[0.4124564, 0.2126729, 0.0193339], [0.3575761, 0.7151522, 0.1191920],
                                [0.1804375, 0.0721750, 0.9503041]])).T
    f = lambda t: np.where(t > 216 / 24389, np.cbrt(t), (24389 / 27 * t + 16) / 116)  # noqa: E731
    fx, fy, fz = f(x / 0.95047), f(y), f(z / 1.08883)
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)


def _min_delta_e(colours):
    lab = _lab(np.asarray(colours))
    d = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.min()


def test_colouring_by_given_labels_leaves_the_centres_neutral(model):
    X, y = load_digits(return_X_y=True)
    fig, ax = plt.subplots()
    try:
        plot_embedding(model, labels=y[:400], ax=ax)
        centres = ax.collections[1]
        np.testing.assert_allclose(centres.get_offsets(), model.cluster_centers_, rtol=1e-6)
        # white, numbered by cluster: not in the colours of the true classes
        np.testing.assert_allclose(centres.get_facecolors()[:, :3], 1.0)
        assert sorted(t.get_text() for t in ax.texts) == [str(k) for k in range(5)]
        assert ax.get_legend().get_title().get_text() == "label"
        assert len(ax.get_legend().get_texts()) == 10
        assert "coloured by label" in ax.get_title()
    finally:
        plt.close(fig)
    fig, ax = plt.subplots()
    try:
        plot_embedding(model, ax=ax, legend_title="UEC cluster")
        assert ax.get_legend().get_title().get_text() == "UEC cluster"
        assert not ax.texts
    finally:
        plt.close(fig)


@pytest.mark.parametrize("source", ["installed", "builtin"])
def test_many_clusters_keep_distinct_colours_and_a_legend(monkeypatch, source):
    import uec.plot as uplot

    if source == "builtin":
        monkeypatch.setitem(sys.modules, "colorcet", None)
        monkeypatch.setitem(sys.modules, "glasbey", None)
    for n in (10, 30, 60):
        colours = uplot.categorical_colours(n)
        assert len(colours) == n and len(set(colours)) == n
        # hsv's 30 evenly spaced hues come down to a CIELAB distance of 2.8 (indistinguishable)
        assert _min_delta_e(colours) > 10, (n, _min_delta_e(colours))
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(600, 2))
    labels = np.arange(600) % 30
    fig, ax = plt.subplots()
    try:
        plot_embedding(Z, labels, ax=ax)
        legend = ax.get_legend()
        assert legend is not None and len(legend.get_texts()) == 30
    finally:
        plt.close(fig)


def test_builtin_palette_is_deterministic_and_extends_tab10(monkeypatch):
    import uec.plot as uplot

    monkeypatch.setitem(sys.modules, "colorcet", None)
    monkeypatch.setitem(sys.modules, "glasbey", None)
    a = uplot.categorical_colours(40)
    uplot._builtin_palette.cache_clear()
    assert uplot.categorical_colours(40) == a
    assert a[:10] == uplot.categorical_colours(10)
    lab = _lab(np.asarray(a))
    assert (lab[:, 0] >= 29).all() and (lab[:, 0] <= 86).all()  # none white-ish or black


def test_default_point_size_follows_n():
    from uec.plot import default_point_size

    sizes = [default_point_size(n) for n in (50, 400, 1797, 70_000, 10**7)]
    assert sizes == sorted(sizes, reverse=True)
    assert default_point_size(1797) > 8  # digits: visible dots (it was 3.3)
    assert 1.0 <= default_point_size(70_000) < 2 and default_point_size(10**7) == 1.0
    fig, ax = plt.subplots()
    try:
        plot_embedding(np.zeros((1797, 2)), ax=ax)
        assert ax.collections[0].get_sizes()[0] == pytest.approx(default_point_size(1797))
    finally:
        plt.close(fig)


def test_cmap_and_show_legend(model):
    cmap = matplotlib.colormaps["viridis"]
    fig, ax = plt.subplots()
    try:
        plot_embedding(model, ax=ax, cmap="viridis", show_legend=False)
        assert ax.get_legend() is None
        faces = {tuple(np.round(f, 6)) for f in ax.collections[0].get_facecolors()}
        want = {tuple(np.round(cmap(t), 6)) for t in np.linspace(0, 1, 5)}
        assert {f[:3] for f in faces} == {w[:3] for w in want}
    finally:
        plt.close(fig)
    fig, ax = plt.subplots()
    try:
        plot_embedding(model, ax=ax, cmap=["red", "green", "blue", "black", "orange", "pink"],
                       show_legend=True)
        assert ax.get_legend() is not None
        assert {tuple(f[:3]) for f in ax.collections[0].get_facecolors()} == {
            matplotlib.colors.to_rgb(c) for c in ["red", "green", "blue", "black", "orange"]}
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="cmap='no-such-map' is not a matplotlib colormap name"):
        embedding_figure(model, cmap="no-such-map")
    with pytest.raises(ValueError, match="cmap='Set1' has 9 colours for 12 classes"):
        embedding_figure(np.zeros((12, 2)), labels=np.arange(12), cmap="Set1")
    assert embedding_figure(np.zeros((12, 2)), labels=np.arange(12), cmap="tab20") is not None
    with pytest.raises(ValueError, match="cmap has 2 colours for 5 classes"):
        embedding_figure(model, cmap=["red", "blue"])
    with pytest.raises(ValueError, match="show_legend=True and legend=False disagree"):
        embedding_figure(model, show_legend=True, legend=False)


def test_connectivity_draws_the_graph_edges(model):
    from matplotlib.collections import LineCollection

    from uec.plot import connectivity_figure, plot_connectivity

    graph = model.graph_
    upper = __import__("scipy.sparse", fromlist=["triu"]).triu(graph, k=1).tocoo()
    fig, ax = plt.subplots()
    try:
        assert plot_connectivity(model, ax=ax) is ax
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1 and len(lines[0].get_segments()) == upper.nnz
        # every segment joins the two points of an edge of the graph
        Z = model.embedding_
        pairs = {frozenset(p) for p in zip(upper.row.tolist(), upper.col.tolist())}
        index = {tuple(np.round(z, 5)): k for k, z in enumerate(Z.astype(float))}
        for seg in lines[0].get_segments()[:200]:
            a, b = (index[tuple(np.round(p, 5))] for p in seg)
            assert frozenset((a, b)) in pairs
        assert ax.get_legend().get_title().get_text() == "cluster"
    finally:
        plt.close(fig)
    # at most max_edges, the strongest
    fig = connectivity_figure(model, max_edges=100, point_size=0)
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines[0].get_segments()) == 100 and len(fig.axes[0].collections) == 1
    with pytest.raises(ValueError, match="max_edges=0 must be a positive integer or None"):
        connectivity_figure(model, max_edges=0)
    with pytest.raises(ValueError, match="needs the graph"):
        connectivity_figure(model.embedding_)


def test_noise_points_of_a_fit_are_grey_and_named_in_the_legend():
    from sklearn.datasets import make_blobs

    from uec.plot import NOISE_COLOUR

    Xb, _ = make_blobs(600, n_features=10, centers=3, random_state=0)
    Xn = np.random.RandomState(0).uniform(Xb.min(0), Xb.max(0), size=(150, 10))
    m = UEC(noise_threshold=0.5, n_epochs=40, random_state=0, n_jobs=1).fit(np.vstack([Xb, Xn]))
    assert (m.labels_ == -1).sum() > 100
    fig, ax = plt.subplots()
    try:
        plot_embedding(m, ax=ax)
        _, faces = _colour_of_points(ax)
        grey = np.all(np.isclose(faces[:, :3], NOISE_COLOUR[:3]), axis=1)
        np.testing.assert_array_equal(grey, m.labels_ == -1)
        assert "noise" in [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"({m.n_clusters_} clusters)" in ax.get_title()
    finally:
        plt.close(fig)
