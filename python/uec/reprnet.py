"""uec.ReprNet's module before the feature stage moved to uec.features: its names,
re-exported from uec.features.reprnet."""

from .features.reprnet import (  # noqa: F401
    _Embed,
    embedding_loss,
    _is_auto,
    joint_step_gradients,
    _Nets,
    NORMALIZATIONS,
    pairwise_log_probs,
    ReprNet,
)
