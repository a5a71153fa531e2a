"""The layouts and initial centres under their name before the split: ``uec.initialization``
(initial embeddings) and ``uec.centres`` (initial centres) re-exported unchanged."""

from ._validation import _as_float_matrix, _check_graph, _check_positive_int, _check_random_state  # noqa: F401
from .centres import CENTRE_METHODS, KMEANS_SAMPLE, initial_centres  # noqa: F401
from .initialization import (  # noqa: F401
    INIT_METHODS,
    initial_embedding,
    pca_layout,
    random_layout,
    spectral_layout,
)

__all__ = ["initial_embedding", "spectral_layout", "pca_layout", "random_layout",
           "initial_centres", "INIT_METHODS", "CENTRE_METHODS"]
