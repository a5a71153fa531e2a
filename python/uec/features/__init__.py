"""The feature stage, before UEC: learned features (:class:`AutoEncoder`, :class:`ReprNet`: torch
models, ``pip install 'uec[torch]'``) and deskewed images (:class:`Deskew`, :func:`deskew`), each
a scikit-learn transformer for ``make_pipeline(..., UEC(...))``. Names resolve on first use, so
``import uec.features`` needs no torch; ``uec.AutoEncoder`` and the old module paths
(``uec.autoencoder``, ``uec.reprnet``, ``uec.preprocessing``) name the same objects."""

from importlib import import_module

_LAZY = {
    "AutoEncoder": "autoencoder",
    "ReprNet": "reprnet",
    "Deskew": "deskew",
    "deskew": "deskew",
}

__all__ = ["AutoEncoder", "ReprNet", "Deskew", "deskew"]


def __getattr__(name):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'uec.features' has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
