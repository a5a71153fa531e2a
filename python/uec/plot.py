"""Pictures of a UEC result: the embedding coloured by cluster (or by any labels), centres
marked, and the fuzzy graph's connectivity.

matplotlib is an optional dependency (``pip install uec[plot]``); it is imported when a
function here is called, not when ``uec`` or ``uec.plot`` is imported. Categorical colours
come from colorcet's Glasbey palettes or the ``glasbey`` package when either is installed
(``pip install uec[plot]`` installs neither; ``pip install colorcet`` adds it), else from a
palette of the same kind computed here (:func:`categorical_colours`): up to 10 classes tab10,
beyond that colours chosen one by one to be as far as possible, in CIELAB, from those before.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["plot_embedding", "embedding_figure", "plot_connectivity", "connectivity_figure",
           "categorical_colours"]

NOISE_COLOUR = (0.75, 0.75, 0.75, 1.0)
LEGEND_MAX = 60  # classes shown in a legend by default
QUALITATIVE_MAX = 64  # a listed colormap with at most this many colours is a palette


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib import colors
    except ImportError as exc:
        raise ImportError(
            "uec.plot needs matplotlib, which is not installed: pip install uec[plot]"
        ) from exc
    return colors


# -- colours ---------------------------------------------------------------------------------

_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def _hex_to_rgb(h):
    h = h.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def _srgb_to_lab(rgb):
    """CIELAB (D65) of sRGB colours in [0, 1], shape (..., 3)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


@functools.lru_cache(maxsize=4)
def _builtin_palette(n):
    """n colours: tab10 first, then each next colour the candidate of a 24^3 sRGB grid (of
    lightness 30 to 85, so none vanishes on white or looks black) farthest in CIELAB from every
    colour chosen before. Deterministic: no randomness, no external package."""
    steps = np.linspace(0.0, 1.0, 24)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = _srgb_to_lab(grid)
    ok = (lab[:, 0] >= 30) & (lab[:, 0] <= 85)
    grid, lab = grid[ok], lab[ok]
    chosen = [_hex_to_rgb(h) for h in _TAB10[:n]]
    nearest = np.full(grid.shape[0], np.inf)
    for c in chosen:
        nearest = np.minimum(nearest, np.linalg.norm(lab - _srgb_to_lab(c), axis=1))
    while len(chosen) < n:
        k = int(np.argmax(nearest))
        chosen.append(tuple(grid[k]))
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[k], axis=1))
    return tuple(chosen)


def categorical_colours(n):
    """n distinct RGBA colours for classes: tab10 up to 10; above, colorcet's
    ``glasbey_category10`` (which starts with tab10) when installed, else the ``glasbey``
    package's palette, else :func:`_builtin_palette` (our own, of the same kind)."""
    n = int(n)
    if n <= 10:
        rgb = [_hex_to_rgb(h) for h in _TAB10[:n]]
    else:
        rgb = None
        try:
            import colorcet

            if n <= len(colorcet.glasbey_category10):
                rgb = [tuple(c) for c in colorcet.glasbey_category10[:n]]
        except ImportError:
            pass
        if rgb is None:
            try:
                import glasbey

                rgb = [_hex_to_rgb(h) for h in glasbey.extend_palette(list(_TAB10), n)]
            except ImportError:
                rgb = list(_builtin_palette(n))
    return [(float(r), float(g), float(b), 1.0) for r, g, b in rgb]


def _class_colours(n, cmap):
    """n RGBA colours from ``cmap``: None (categorical_colours), a colormap name or object
    (a qualitative one's first n colours, a continuous one's n evenly spaced samples), or a
    list of at least n colours."""
    colors = _matplotlib()
    if cmap is None:
        return categorical_colours(n)
    import matplotlib

    if isinstance(cmap, (list, tuple)):
        if len(cmap) < n:
            raise ValueError(f"cmap has {len(cmap)} colours for {n} classes: give at least {n}, "
                             f"a colormap name or None (a categorical palette)")
        try:
            return [colors.to_rgba(c) for c in cmap[:n]]
        except ValueError as exc:
            raise ValueError(f"cmap: {exc}") from None
    if isinstance(cmap, str):
        try:
            cmap = matplotlib.colormaps[cmap]
        except KeyError:
            raise ValueError(f"cmap={cmap!r} is not a matplotlib colormap name; allowed: None, "
                             f"a name such as 'tab20' or 'viridis', a Colormap, or a list of "
                             f"colours") from None
    if not isinstance(cmap, colors.Colormap):
        raise ValueError(f"cmap={cmap!r} must be None, a colormap name, a matplotlib Colormap or "
                         f"a list of colours")
    if isinstance(cmap, colors.ListedColormap) and cmap.N <= QUALITATIVE_MAX:
        # a qualitative map (tab10, Set1, Paired, ...): its own colours, one per class
        if cmap.N < n:
            raise ValueError(f"cmap={cmap.name!r} has {cmap.N} colours for {n} classes: give a "
                             f"palette of at least {n}, a continuous colormap or None (a "
                             f"categorical palette)")
        return [tuple(cmap(i)) for i in range(n)]
    return [tuple(cmap(t)) for t in (np.linspace(0.0, 1.0, n) if n > 1 else [0.5])]


# -- inputs ----------------------------------------------------------------------------------


def _resolve(model_or_embedding, labels, centres, what="plot_embedding"):
    """(Z, labels, centres, labels_from_model)."""
    from_model = False
    if hasattr(model_or_embedding, "embedding_"):
        model = model_or_embedding
        Z = np.asarray(model.embedding_)
        if labels is None:
            labels = getattr(model, "labels_", None)
            from_model = labels is not None
        if centres is None:
            centres = getattr(model, "cluster_centers_", None)
    elif hasattr(model_or_embedding, "get_params") and hasattr(model_or_embedding, "fit"):
        raise ValueError(f"the model is not fitted yet: call fit before {what}")
    else:
        Z = np.asarray(model_or_embedding, dtype=float)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise ValueError(f"the embedding must have shape (n_samples, >= 2), got {Z.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != Z.shape[0]:
            raise ValueError(
                f"labels must have shape ({Z.shape[0]},) to match the embedding, got {labels.shape}"
            )
    if centres is not None and centres is not False:
        centres = np.asarray(centres, dtype=float)
        if centres.ndim != 2 or centres.shape[1] != Z.shape[1]:
            raise ValueError(
                f"centres must have shape (n_clusters, {Z.shape[1]}), got {centres.shape}"
            )
    return Z, labels, centres, from_model


def _dims(dims, Z):
    try:
        i, j = (int(d) for d in dims)
    except (TypeError, ValueError):
        raise ValueError(f"dims={dims!r} must be a pair of column indices") from None
    if not (0 <= i < Z.shape[1] and 0 <= j < Z.shape[1]) or i == j:
        raise ValueError(f"dims={dims!r} must be two different columns of the {Z.shape[1]}-D embedding")
    return i, j


def default_point_size(n):
    """Marker area (points^2) for n points: 400 / sqrt(n), between 1 and 50 (digits' 1,797
    points: 9.4; MNIST's 70,000: 1.5)."""
    return float(np.clip(400.0 / np.sqrt(max(int(n), 1)), 1.0, 50.0))


def _legend_flag(show_legend, legend):
    if legend is not None:  # the earlier name of show_legend
        if show_legend is not None and bool(show_legend) != bool(legend):
            raise ValueError(f"show_legend={show_legend!r} and legend={legend!r} disagree: "
                             f"legend is the earlier name of show_legend; give one")
        show_legend = legend
    return show_legend


def _draw_points(ax, Z, i, j, labels, from_model, point_size, alpha, cmap, show_legend,
                 legend_title):
    """Scatter coloured by class; returns {class: colour} (empty without labels)."""
    if labels is None:
        ax.scatter(Z[:, i], Z[:, j], s=point_size, alpha=alpha, linewidths=0, color="0.3")
        return {}
    classes, codes = np.unique(labels, return_inverse=True)
    noise = from_model and len(classes) and classes[0] == -1  # labels_ of -1: noise points
    real = classes[1:] if noise else classes
    colours = _class_colours(len(real), cmap)
    if noise:
        colours = [NOISE_COLOUR] + colours
    rgba = np.asarray(colours)[codes.ravel()]
    ax.scatter(Z[:, i], Z[:, j], s=point_size, c=rgba, alpha=alpha, linewidths=0)
    show = len(classes) <= LEGEND_MAX if show_legend is None else bool(show_legend)
    if show:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=colours[k],
                          label="noise" if (noise and k == 0) else str(c))
                   for k, c in enumerate(classes)]
        title = legend_title if legend_title is not None else ("cluster" if from_model else "label")
        if len(classes) <= 12:
            ax.legend(handles=handles, title=title, loc="best", fontsize="small",
                      markerscale=1.2, frameon=False)
        else:  # many classes: columns of 20 beside the axes
            ax.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      fontsize="x-small", markerscale=1.0, frameon=False,
                      ncol=int(np.ceil(len(classes) / 20)), borderaxespad=0.0)
    return dict(zip(classes.tolist(), colours))


def plot_embedding(model_or_embedding, labels=None, centres=None, ax=None, *, dims=(0, 1),
                   point_size=None, alpha=0.8, centre_size=160, title=None, show_legend=None,
                   legend_title=None, cmap=None, legend=None):
    """Scatter of an embedding coloured by cluster (or by ``labels``), with the cluster
    centres marked.

    Parameters
    ----------
    model_or_embedding : fitted UEC or array (n_samples, n_components >= 2)
        A fitted model supplies ``embedding_``, ``labels_`` and ``cluster_centers_``
        (``labels``/``centres`` given here take precedence).
    labels : array (n_samples,), optional
        What to colour the points by, for example the true classes; by default the model's
        clusters (``labels_``). Points are drawn in one colour when there are none.
    centres : array (n_clusters, n_components), optional, or False
        Cluster centres, marked with an ``X``. When the points are coloured by the model's
        clusters, centre k takes the colour of cluster k; when they are coloured by other
        ``labels``, the centres are white, numbered by cluster (their colours would claim a
        correspondence that does not exist). False draws none.
    ax : matplotlib Axes, optional
        Where to draw; a new figure (pyplot) when None.
    dims : pair of int, default (0, 1)
        The two embedding dimensions to show (for n_components > 2).
    point_size : float, optional
        Marker area; by default :func:`default_point_size` (400 / sqrt(n), between 1 and 50).
    show_legend : bool, optional
        Legend of the classes; by default shown for up to 60 (beside the axes, in columns,
        above 12).
    legend_title : str, optional
        Title of the legend; by default "cluster" for the model's clusters, "label" for
        ``labels`` given here.
    cmap : None, colormap name, Colormap or list of colours
        Colours of the classes. None: :func:`categorical_colours` (tab10 up to 10 classes,
        a Glasbey palette above, distinct for hundreds). A qualitative colormap (a listed one
        of at most 64 colours, such as "tab20") gives its first colours and must have one
        per class; a continuous one ("viridis") gives evenly spaced samples.
    legend : bool, optional
        The earlier name of ``show_legend``.

    Returns
    -------
    ax : the Axes drawn on.
    """
    _matplotlib()
    Z, labels, centres, from_model = _resolve(model_or_embedding, labels, centres)
    i, j = _dims(dims, Z)
    show_legend = _legend_flag(show_legend, legend)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 7))
    n = Z.shape[0]
    if point_size is None:
        point_size = default_point_size(n)
    by_class = _draw_points(ax, Z, i, j, labels, from_model, point_size, alpha, cmap,
                            show_legend, legend_title)

    if centres is not None and centres is not False and len(centres):
        if from_model:
            face = [by_class.get(k, "white") for k in range(centres.shape[0])]
        else:
            face = ["white"] * centres.shape[0]
        ax.scatter(centres[:, i], centres[:, j], s=centre_size, marker="X", c=face,
                   edgecolors="black", linewidths=1.2, zorder=3)
        if not from_model and labels is not None:
            for k in range(centres.shape[0]):
                ax.annotate(str(k), (centres[k, i], centres[k, j]), xytext=(5, 5),
                            textcoords="offset points", fontsize="small", zorder=4)

    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = "UEC embedding"
        if from_model:
            n_clusters = len([c for c in by_class if c != -1])
            title += f" ({n_clusters} clusters)"
        elif labels is not None:
            title += f", coloured by label ({len(by_class)} classes)"
    ax.set_title(title)
    return ax


def embedding_figure(model_or_embedding, labels=None, centres=None, *, figsize=(7, 7), **kwargs):
    """A matplotlib Figure with :func:`plot_embedding`, made without pyplot (no GUI backend,
    no global figure state): ``embedding_figure(model).savefig("embedding.png")``."""
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    plot_embedding(model_or_embedding, labels, centres, ax=ax, **kwargs)
    fig.tight_layout()
    return fig


# -- connectivity ----------------------------------------------------------------------------


def _edges(graph, n, max_edges):
    """(rows, cols, weights) of the undirected edges of ``graph``, the strongest ``max_edges``
    when there are more (ties by position, so the choice is deterministic)."""
    import scipy.sparse

    if not scipy.sparse.issparse(graph) or graph.shape != (n, n):
        raise ValueError(f"graph must be a sparse ({n}, {n}) matrix (the model's graph_), got "
                         f"{type(graph).__name__} of shape {getattr(graph, 'shape', None)}")
    upper = scipy.sparse.triu(graph.maximum(graph.T), k=1).tocoo()
    rows, cols, w = upper.row, upper.col, np.asarray(upper.data, dtype=np.float64)
    if max_edges is not None and w.size > max_edges:
        keep = np.sort(np.argsort(-w, kind="stable")[:max_edges])
        rows, cols, w = rows[keep], cols[keep], w[keep]
    return rows, cols, w


def plot_connectivity(model_or_embedding, graph=None, ax=None, *, labels=None, dims=(0, 1),
                      max_edges=100_000, edge_cmap="Greys", edge_alpha=0.5, edge_width=0.4,
                      point_size=None, alpha=0.8, cmap=None, show_legend=None,
                      legend_title=None, title=None):
    """The fuzzy kNN graph drawn over the embedding: each edge a line between its two
    points, darker for a higher membership weight, then the points coloured by cluster (or
    ``labels``) on top. Shows which parts of the map the graph joins, which the layout alone
    does not (as umap.plot's connectivity view).

    Parameters
    ----------
    model_or_embedding : fitted UEC or array (n_samples, >= 2)
        A fitted model supplies ``embedding_``, ``graph_`` and ``labels_``.
    graph : sparse (n_samples, n_samples), optional
        The graph to draw with an array embedding (a model's ``graph_`` by default).
    max_edges : int or None, default 100,000
        At most this many edges, the strongest (None: all).
    edge_cmap : colormap name or Colormap, default "Greys"
        Colours of the edges by weight (from a quarter of the map for the weakest).
    labels, dims, point_size, alpha, cmap, show_legend, legend_title, title
        As in :func:`plot_embedding`; ``point_size=0`` draws no points.

    Returns
    -------
    ax : the Axes drawn on.
    """
    _matplotlib()
    import matplotlib
    from matplotlib.collections import LineCollection

    model = model_or_embedding if hasattr(model_or_embedding, "embedding_") else None
    Z, labels, _, from_model = _resolve(model_or_embedding, labels, False, "plot_connectivity")
    if graph is None:
        graph = getattr(model, "graph_", None)
        if graph is None:
            raise ValueError("plot_connectivity needs the graph: a fitted model (graph_) or "
                             "graph=")
    if max_edges is not None and (isinstance(max_edges, bool) or int(max_edges) != max_edges
                                  or max_edges < 1):
        raise ValueError(f"max_edges={max_edges!r} must be a positive integer or None")
    i, j = _dims(dims, Z)
    rows, cols, w = _edges(graph, Z.shape[0], max_edges)
    if isinstance(edge_cmap, str):
        try:
            edge_cmap = matplotlib.colormaps[edge_cmap]
        except KeyError:
            raise ValueError(f"edge_cmap={edge_cmap!r} is not a matplotlib colormap name") from None
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 7))
    if w.size:
        top = float(w.max())
        shade = 0.25 + 0.75 * (w / top if top > 0 else np.ones_like(w))
        order = np.argsort(w, kind="stable")  # strong edges drawn last, on top
        segments = np.stack([Z[rows, :][:, [i, j]], Z[cols, :][:, [i, j]]], axis=1)[order]
        lines = LineCollection(segments, colors=edge_cmap(shade[order]), linewidths=edge_width,
                               alpha=edge_alpha, zorder=1)
        ax.add_collection(lines)
    if point_size is None:
        point_size = default_point_size(Z.shape[0]) / 2
    if point_size > 0:
        _draw_points(ax, Z, i, j, labels, from_model, point_size, alpha, cmap,
                     show_legend, legend_title)
        ax.collections[-1].set_zorder(2)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = f"UEC graph connectivity ({w.size:,} edges"
        title += f", the strongest {max_edges:,})" if max_edges is not None and \
            w.size == max_edges else ")"
    ax.set_title(title)
    return ax


def connectivity_figure(model_or_embedding, graph=None, *, figsize=(7, 7), **kwargs):
    """A matplotlib Figure with :func:`plot_connectivity`, made without pyplot."""
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    plot_connectivity(model_or_embedding, graph, ax=ax, **kwargs)
    fig.tight_layout()
    return fig
