"""uec.AutoEncoder's module before the feature stage moved to uec.features: its names,
re-exported from uec.features.autoencoder (and the checks it imported, from uec.features._torch)."""

from .features.autoencoder import (  # noqa: F401
    AutoEncoder,
    check_corruption,
    check_image_shape,
    check_invariance,
    _check_saved_shapes,
    check_unit_interval,
    _FORMAT,
    _FORMAT_VERSION,
    _is_auto,
    _layer_shapes,
    LOSSES,
)
