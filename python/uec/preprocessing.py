"""Deskewing images (:func:`deskew`, :class:`Deskew`), under its name before the feature stage
moved to uec.features: re-exported from uec.features.deskew."""

from .features.deskew import (  # noqa: F401
    _bilinear,
    _check_shape,
    Deskew,
    deskew,
)
