"""Pieces shared by the torch models (``uec.AutoEncoder``, ``uec.ReprNet``).

torch is an optional dependency (``pip install 'uec[torch]'``). Importing this module without it
raises an ImportError that says how to install it; nothing else in ``uec`` imports torch.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_choice, check_float

_INSTALL_HINT = (
    "uec.AutoEncoder and uec.ReprNet need PyTorch, an optional dependency of uec; install it "
    "with `pip install 'uec[torch]'` (or `pip install torch`)"
)

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as exc:  # pragma: no cover - exercised by simulating a missing torch
    raise ImportError(_INSTALL_HINT) from exc

__all__ = ["torch", "nn", "F"]

NOISE_TYPES = ("gaussian", "mask", "affine")


def resolve_device(device):
    """Map "auto" | "cpu" | "cuda" (or "cuda:N") to a torch.device, or raise ValueError."""
    if not isinstance(device, str) or not (
        device in ("auto", "cpu", "cuda") or device.startswith("cuda:")
    ):
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch sees no CUDA device (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda is not None}); install a "
            "CUDA build of torch or use device='cpu'"
        )
    return torch.device(device)


def check_hidden_dims(name, value):
    """A non-empty sequence of positive ints -> tuple."""
    try:
        dims = tuple(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} must be a sequence of positive integers") from None
    if len(dims) == 0 or any(
        isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral) or h < 1
        for h in dims
    ):
        raise ValueError(f"{name}={value!r} must be a non-empty sequence of positive integers")
    return tuple(int(h) for h in dims)


AUTO = "auto"

# The rule behind the "auto" sizes of AutoEncoder and ReprNet (docs/results/features.md). It
# reproduces the nets, batch and autoencoder epochs measured on MNIST (n = 70,000, D = 784:
# 784-500-500-2000-d, batch 256, 20 epochs; the joint phase gets the same ~2,000 steps, 8
# epochs there) and shrinks them for small data, where those sizes left a 1,797 x 64 set
# (digits) with 8 steps per epoch through nets of 3.7 million weights.
WIDTH_PER_FEATURE, MIN_WIDTH, MAX_WIDTH = 2, 32, 500
SAMPLES_PER_BATCH_STEP, MIN_BATCH, MAX_BATCH = 25, 32, 256
PRETRAIN_STEPS, MIN_PRETRAIN_EPOCHS = 2000, 20
JOINT_STEPS, MIN_JOINT_EPOCHS = 2000, 4


def auto_hidden_dims(n_features):
    """Encoder widths (w, w, 4w), w = clip(2 * n_features, 32, 500): (500, 500, 2000) from
    250 features up (MNIST's 784), (128, 128, 512) for 64 (digits)."""
    w = int(min(MAX_WIDTH, max(MIN_WIDTH, WIDTH_PER_FEATURE * int(n_features))))
    return (w, w, 4 * w)


def auto_batch_size(n_samples):
    """The power of two at or below n_samples / 25, clipped to [32, 256]: 256 from 6,400
    samples up, 64 for 1,797 (digits), 32 below 1,600 (at least ~25 steps per epoch where the
    data allow, never more than 256 rows)."""
    target = max(1, int(n_samples) // SAMPLES_PER_BATCH_STEP)
    return int(min(MAX_BATCH, max(MIN_BATCH, 1 << (target.bit_length() - 1))))


def steps_per_epoch(n_samples, batch_size):
    """Mini-batches per epoch as ``batch_indices`` makes them (a last batch of one row is
    merged into the one before)."""
    n, b = int(n_samples), int(batch_size)
    steps = -(-n // b)
    if steps > 1 and n % b == 1:
        steps -= 1
    return steps


def auto_epochs(n_samples, batch_size, target_steps, minimum):
    """max(minimum, ceil(target_steps / steps per epoch)): enough epochs for about
    ``target_steps`` optimiser steps, and never fewer than ``minimum`` passes."""
    steps = steps_per_epoch(n_samples, batch_size)
    return int(max(minimum, -(-int(target_steps) // steps)))


def check_hidden_or_auto(name, value):
    """"auto" (returned as is) or a non-empty sequence of positive ints (-> tuple)."""
    if isinstance(value, str) and value == AUTO:
        return AUTO
    return check_hidden_dims(name, value)


def make_seed(random_state):
    """An int seed for torch generators from an int, a RandomState or None (fresh entropy)."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def cpu_generator(seed):
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def mlp(dims, generator):
    """Fully connected net dims[0] -> ... -> dims[-1], ReLU after every layer but the last.

    Weights are Glorot-uniform and biases zero (the initialisation of DEC and N2D), drawn from
    ``generator`` on the CPU, so that a seed gives the same network on every device and the
    global torch RNG is left alone.
    """
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        lin = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            nn.init.xavier_uniform_(lin.weight, generator=generator)
            lin.bias.zero_()
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def corrupt(x, noise_type, level, generator, image_shape=None):
    """Input corruption of a denoising autoencoder; the clean x stays the reconstruction target.

    "gaussian": x + N(0, level^2) per entry; "mask": each entry set to 0 with probability level;
    "affine": each row, read as an image of ``image_shape``, warped by :func:`affine_warp`.
    ``level == 0`` returns x itself.
    """
    if level == 0:
        return x
    if noise_type == "affine":
        return affine_warp(x, level, image_shape, generator)
    if noise_type == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
    return x * keep


def affine_warp(x, level, image_shape, generator):
    """Every row of x (an image of ``image_shape``: (height, width) or (channels, height, width),
    row-major) resampled through its own random affine map.

    Four uniform draws u in [-1, 1) per image give a rotation by u0 * 10 * level degrees, a
    zoom by 1 + u1 * level / 10, and shifts of u2 * 2 * level pixels along the width and
    u3 * 2 * level pixels along the height (in the normalised coordinates of
    ``torch.nn.functional.affine_grid``, where the image spans [-1, 1] on both axes). Bilinear
    interpolation; what comes from outside the image is 0.
    """
    if len(image_shape) == 2:
        channels, height, width = 1, *image_shape
    else:
        channels, height, width = image_shape
    b = x.shape[0]
    u = torch.rand((b, 4), generator=generator, device=x.device) * 2 - 1
    angle = u[:, 0] * (10.0 * level) * math.pi / 180
    zoom = 1 + u[:, 1] * (level / 10)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    shift_x = u[:, 2] * (2.0 * level) / (width / 2)
    shift_y = u[:, 3] * (2.0 * level) / (height / 2)
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1),
                         torch.stack([sin, cos, shift_y], 1)], 1).to(x.dtype)
    size = (b, channels, height, width)
    grid = F.affine_grid(theta, size, align_corners=False)
    out = F.grid_sample(x.reshape(size), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.reshape(b, -1)


def invariance_loss(z, z_warped):
    """Mean squared distance between each code and the code of its warped image, over the mean
    squared distance of the codes from their batch mean: scale-free, so that shrinking the
    codes (which the decoder could undo) does not lower it. A batch of identical codes (no
    spread) counts as spread 1e-12 rather than dividing by zero."""
    spread = ((z - z.mean(dim=0)) ** 2).sum(dim=1).mean().clamp_min(1e-12)
    return ((z - z_warped) ** 2).sum(dim=1).mean() / spread


def reconstruction_loss(out, x, loss):
    """Per-sample reconstruction loss summed over features, averaged over the batch.

    ``out`` are logits for "bce" (the decoder's sigmoid is folded into a stable BCE) and the
    reconstruction itself for "mse".
    """
    if loss == "bce":
        per_entry = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    else:
        per_entry = (out - x) ** 2
    return per_entry.sum(dim=1).mean()


def batch_indices(n, batch_size, generator):
    """A random permutation of range(n) split into mini-batches; a last batch of a single
    sample is merged into the one before (pairwise losses need two points)."""
    perm = torch.randperm(n, generator=generator)
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and batches[-1].numel() < 2:
        tail = batches.pop()
        batches[-1] = torch.cat([batches[-1], tail])
    return batches


@torch.no_grad()
def apply_in_batches(net, X, device, batch_size=4096):
    """Evaluate ``net`` on the float32 array X in chunks; returns a float32 NumPy array."""
    was_training = net.training
    net.eval()
    try:
        outs = []
        for start in range(0, X.shape[0], batch_size):
            xb = torch.from_numpy(X[start:start + batch_size]).to(device)
            outs.append(net(xb).float().cpu().numpy())
    finally:
        net.train(was_training)
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(outs), dtype=np.float32)


class EpochBar:
    """tqdm bar over epochs when verbose; otherwise does nothing."""

    def __init__(self, total, verbose, desc):
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch")

    def update(self, **postfix):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()})

    def close(self):
        if self.bar is not None:
            self.bar.close()


# -- the parameter checks of both models --------------------------------------------------


def check_unit_interval(X, why="loss='bce' needs them in [0, 1]", alternative=" or use loss='mse'"):
    lo, hi = float(X.min()), float(X.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"X has values in [{lo:.4g}, {hi:.4g}], but {why}; scale the data first (e.g. "
            f"X / 255 for 8-bit images, or sklearn.preprocessing.MinMaxScaler){alternative}"
        )


def check_image_shape(image_shape, noise_type, n_features=None):
    """image_shape: None, or 2 or 3 positive ints (whose product is n_features when given);
    noise_type="affine" needs it."""
    if image_shape is None:
        if noise_type == "affine":
            raise ValueError(
                "noise_type='affine' needs image_shape=(height, width) or (channels, height, "
                "width) to read the rows of X as images; image_shape=None"
            )
        return
    try:
        dims = tuple(image_shape)
    except TypeError:
        dims = ()
    if len(dims) not in (2, 3) or any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1
        for v in dims
    ):
        raise ValueError(
            f"image_shape={image_shape!r} must be None or 2 or 3 positive integers: (height, "
            "width) or (channels, height, width)"
        )
    if n_features is not None and int(np.prod(dims)) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {int(np.prod(dims))} values, but X has "
            f"{n_features} features; they must be equal"
        )


def check_corruption(noise, noise_type, image_shape):
    """The input corruption's parameters, shared by AutoEncoder and ReprNet: a known
    noise_type, noise >= 0 (below 1 for "mask", which would zero every input at 1; below 10
    for "affine", whose zoom 1 ± noise/10 must stay positive) and a valid image_shape."""
    check_choice("noise_type", noise_type, NOISE_TYPES)
    check_float("noise", noise, low=0.0, high=1.0 if noise_type == "mask" else None)
    if noise_type == "mask" and noise == 1.0:
        raise ValueError("noise=1.0 with noise_type='mask' zeroes every input; use a value in [0, 1)")
    if noise_type == "affine" and not noise < 10:
        raise ValueError(
            f"noise={noise!r} is too large for noise_type='affine' (its zoom 1 ± noise/10 "
            "must stay positive); use 0 <= noise < 10"
        )
    check_image_shape(image_shape, noise_type)


def check_invariance(invariance, warp, image_shape, batch_size):
    """invariance >= 0, 0 < invariance_warp < 10 (the warp's zoom 1 ± level/10 must stay
    positive), and, when invariance is on, an image_shape to warp by and batches of at least
    two rows (the term divides by the spread of a batch's codes)."""
    check_float("invariance", invariance, low=0.0)
    check_float("invariance_warp", warp, low=0.0, low_open=True)
    if not warp < 10:
        raise ValueError(
            f"invariance_warp={warp!r} is too large (the warp's zoom 1 ± invariance_warp/10 "
            "must stay positive); use 0 < invariance_warp < 10"
        )
    if invariance > 0 and image_shape is None:
        raise ValueError(
            f"invariance={invariance!r} warps images and needs image_shape=(height, width) or "
            "(channels, height, width); image_shape=None"
        )
    if invariance > 0 and batch_size < 2:
        raise ValueError(
            f"invariance={invariance!r} compares codes with their batch's spread and needs "
            f"batch_size >= 2; batch_size={batch_size!r}"
        )
