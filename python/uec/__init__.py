"""Unified Embedding and Clustering (UEC).

Learns a low-dimensional embedding of the data and cluster centres in it at the same time,
with a compiled C++/OpenMP core. See ``uec.UEC``.
"""

import os
from importlib import import_module

__version__ = "0.1.0"

# The core's OpenMP threads sleep at the barriers of an epoch instead of spinning, unless the
# user chose a policy: on a machine shared with other work, spinning threads took a digits fit
# from 3.2 s to 17 s (docs/results/speed.md); on an idle one the difference is a few microseconds per
# barrier. libgomp reads this when it is loaded, i.e. at the first import of the core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Names are resolved on first use so that ``import uec`` stays cheap (no pynndescent/numba,
# no scikit-learn estimators) until a model is actually built.
_LAZY = {
    "UEC": ("uec.estimator", "UEC"),
    # torch models: an ImportError that names the extra to install when torch is missing
    "AutoEncoder": ("uec.features.autoencoder", "AutoEncoder"),
    "ReprNet": ("uec.features.reprnet", "ReprNet"),
    "metrics": ("uec.metrics", None),
    "datasets": ("uec.datasets", None),
    "preprocessing": ("uec.preprocessing", None),
    "features": ("uec.features", None),
    "Deskew": ("uec.features.deskew", "Deskew"),
    "cuda_available": ("uec._device", "cuda_available"),
}

# AutoEncoder and ReprNet stay out of __all__ so that `from uec import *` works without torch.
__all__ = ["UEC", "Deskew", "metrics", "datasets", "preprocessing", "cuda_available", "__version__"]


def __getattr__(name):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'uec' has no attribute {name!r}") from None
    module = import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY))
