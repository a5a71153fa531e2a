"""Pictures of a UEC result: the embedding coloured by cluster, centres marked.

matplotlib is an optional dependency (``pip install uec[plot]``); it is imported when a
function here is called, not when ``uec`` or ``uec.plot`` is imported.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_embedding", "embedding_figure"]


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib import colors
    except ImportError as exc:
        raise ImportError(
            "uec.plot needs matplotlib, which is not installed: pip install uec[plot]"
        ) from exc
    return colors


def _cluster_colours(n):
    """n distinct RGBA colours: tab10 / tab20 when they suffice, else evenly spaced hues."""
    import matplotlib

    if n <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = matplotlib.colormaps["hsv"]
    return [cmap(i / n) for i in range(n)]


def _resolve(model_or_embedding, labels, centres):
    if hasattr(model_or_embedding, "embedding_"):
        model = model_or_embedding
        Z = np.asarray(model.embedding_)
        if labels is None:
            labels = getattr(model, "labels_", None)
        if centres is None:
            centres = getattr(model, "cluster_centers_", None)
    elif hasattr(model_or_embedding, "get_params") and hasattr(model_or_embedding, "fit"):
        raise ValueError("the model is not fitted yet: call fit before plot_embedding")
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
    return Z, labels, centres


def plot_embedding(model_or_embedding, labels=None, centres=None, ax=None, *, dims=(0, 1),
                   point_size=None, alpha=0.8, centre_size=160, title=None, legend=None):
    """Scatter of an embedding coloured by cluster, with the cluster centres marked.

    Parameters
    ----------
    model_or_embedding : fitted UEC or array (n_samples, n_components >= 2)
        A fitted model supplies ``embedding_``, ``labels_`` and ``cluster_centers_``
        (``labels``/``centres`` given here take precedence).
    labels : array (n_samples,), optional
        Cluster of each point; points are drawn in one colour when None.
    centres : array (n_clusters, n_components), optional, or False
        Centres to mark with an ``X`` in their cluster's colour (centre k takes the colour of
        label k when the labels are 0..n_clusters-1). False draws none.
    ax : matplotlib Axes, optional
        Where to draw; a new figure (pyplot) when None.
    dims : pair of int, default (0, 1)
        The two embedding dimensions to show (for n_components > 2).
    point_size : float, optional
        Marker area; by default it shrinks with the number of points.
    legend : bool, optional
        Legend of the clusters; by default shown for up to 20 clusters.

    Returns
    -------
    ax : the Axes drawn on.
    """
    _matplotlib()
    Z, labels, centres = _resolve(model_or_embedding, labels, centres)
    i, j = (int(d) for d in dims)
    if not (0 <= i < Z.shape[1] and 0 <= j < Z.shape[1]) or i == j:
        raise ValueError(f"dims={dims!r} must be two different columns of the {Z.shape[1]}-D embedding")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 7))
    n = Z.shape[0]
    if point_size is None:
        point_size = float(np.clip(6000.0 / max(n, 1), 1.0, 30.0))

    if labels is None:
        ax.scatter(Z[:, i], Z[:, j], s=point_size, alpha=alpha, linewidths=0, color="0.3")
        classes = np.array([])
        colours = []
    else:
        classes, codes = np.unique(labels, return_inverse=True)
        colours = _cluster_colours(len(classes))
        rgba = np.asarray(colours)[codes.ravel()]
        ax.scatter(Z[:, i], Z[:, j], s=point_size, c=rgba, alpha=alpha, linewidths=0)
        show_legend = len(classes) <= 20 if legend is None else bool(legend)
        if show_legend:
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], marker="o", linestyle="", color=colours[k], label=str(c))
                       for k, c in enumerate(classes)]
            ax.legend(handles=handles, title="cluster", loc="best", fontsize="small",
                      markerscale=1.2, frameon=False)

    if centres is not None and centres is not False and len(centres):
        face = []
        for k in range(centres.shape[0]):
            hit = np.flatnonzero(classes == k) if len(classes) else []
            face.append(colours[hit[0]] if len(hit) else "white")
        ax.scatter(centres[:, i], centres[:, j], s=centre_size, marker="X", c=face,
                   edgecolors="black", linewidths=1.2, zorder=3)

    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = "UEC embedding" + (f" ({len(classes)} clusters)" if len(classes) else "")
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
