"""The feature stage: a torch MLP autoencoder as a scikit-learn transformer.

Its bottleneck features feed UEC (``make_pipeline(AutoEncoder(...), UEC(...))``), as the deep
autoencoders of DEC and N2D feed their clustering steps. torch is optional: see
``uec.features._torch``.
"""

from __future__ import annotations

import logging
import numbers
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._torch import (
    AUTO,
    MIN_PRETRAIN_EPOCHS,
    PRETRAIN_STEPS,
    EpochBar,
    affine_warp,
    apply_in_batches,
    auto_batch_size,
    auto_epochs,
    auto_hidden_dims,
    batch_indices,
    check_hidden_dims,
    check_hidden_or_auto,
    corrupt,
    cpu_generator,
    invariance_loss,
    make_seed,
    mlp,
    reconstruction_loss,
    check_corruption,
    check_image_shape,
    check_invariance,
    check_unit_interval,
    resolve_device,
    torch,
)
from .._validation import check_choice, check_float, check_int

logger = logging.getLogger(__name__)

LOSSES = ("mse", "bce")
_FORMAT = "uec.AutoEncoder"
_FORMAT_VERSION = 1


class AutoEncoder(TransformerMixin, BaseEstimator):
    """Fully connected (denoising) autoencoder; ``transform`` returns its bottleneck.

    Encoder ``D -> hidden_dims... -> n_components`` with ReLU hidden layers and a linear
    bottleneck; the decoder mirrors it. Trained with Adam on mini-batches.

    Parameters
    ----------
    n_components : int, default=10
        Dimension d of the bottleneck (the features ``transform`` returns). DEC and N2D use the
        number of clusters.
    hidden_dims : sequence of int or "auto", default="auto"
        Widths of the encoder's hidden layers (the decoder uses them in reverse). "auto":
        (w, w, 4w) with w = clip(2 * n_features, 32, 500), so (500, 500, 2000) from 250
        features up (MNIST's 784, the nets of DEC and N2D) and (128, 128, 512) for digits' 64.
        The widths used are ``hidden_dims_``.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss, summed over features and averaged over the batch. "mse": linear
        decoder output; "bce": sigmoid decoder output and binary cross-entropy, which needs
        X in [0, 1].
    noise : float, default=0.0
        Input corruption level of a denoising autoencoder (0: none). The encoder sees the
        corrupted input, the loss compares with the clean one.
    noise_type : {"gaussian", "mask", "affine"}, default="gaussian"
        "gaussian": additive N(0, noise^2); "mask": each input entry zeroed with probability
        ``noise``; "affine" (images, needs ``image_shape``): each image warped by its own random
        affine map, rotation up to ±10·noise degrees, zoom 1 ± noise/10, shifts up to
        ±2·noise pixels along each axis (bilinear, zeros outside), so that the code learns to
        ignore small warps. The clean image stays the target.
    image_shape : tuple of int or None, default=None
        (height, width) or (channels, height, width) of the images that the rows of X hold in
        row-major order; its product must equal the number of features. Used by
        ``noise_type="affine"`` and ``invariance`` only.
    invariance : float, default=0.0
        Weight of a term that keeps each image's code where its warped copy's code is (images,
        needs ``image_shape``; 0: off). Each batch is also encoded after its own random affine
        warps of level ``invariance_warp`` (as for ``noise_type="affine"``), and the loss adds
        ``invariance`` times the mean squared distance between the two codes of an image over
        the mean squared distance of the codes from their batch mean. Unlike affine noise the
        decoder never has to undo the warp. On deskewed MNIST, 1.0 lifted UEC's accuracy on
        the codes by 0.002 at the same epochs (docs/results/features.md); 10 lowered it. An epoch costs about
        1.5 times as much.
    invariance_warp : float, default=0.5
        Level of the warps of ``invariance``: rotation up to ±10·level degrees, zoom
        1 ± level/10, shifts up to ±2·level pixels.
    n_epochs : int or "auto", default="auto"
        Passes over the data. "auto": enough for about 2,000 Adam steps and at least 20
        passes, ``max(20, ceil(2000 / steps per epoch))``: 20 on MNIST (274 steps of 256 rows
        an epoch, the CPU budget measured there, docs/results/features.md), 69 on digits
        (29 steps of 64). The 200+ epochs of the papers are a GPU budget. The count used is
        ``n_epochs_``. The rule reads only n_samples and the batch size, never labels.
    batch_size : int or "auto", default="auto"
        "auto": the power of two at or below n_samples / 25, clipped to [32, 256] (256 from
        6,400 samples up, 64 for digits' 1,797). The size used is ``batch_size_``.
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    warm_start : bool, default=False
        When True and the model is fitted, ``fit`` continues training the same networks (and
        optimiser state) for ``n_epochs`` more epochs instead of starting afresh.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" uses CUDA when torch sees a GPU.
    random_state : int, RandomState or None
        Seeds the initial weights, the batch order and the corruption. With an int, two fits
        on the CPU with the same number of torch threads give identical weights bit for bit.
        (torch's thread count, ``torch.set_num_threads``, is left to the caller.)
    verbose : bool, default=False
        tqdm progress over epochs and a log line per epoch.

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Sequential
        The trained networks (on ``device_``); ``decoder_`` outputs logits for loss="bce".
    loss_curve_ : list of float
        Mean training loss of every epoch run (over all fits when warm-starting): the
        reconstruction loss, plus the weighted invariance term when ``invariance > 0``.
    n_iter_ : int
        Epochs run in total.
    hidden_dims_ : tuple of int
        The encoder's hidden widths (``hidden_dims`` with "auto" resolved).
    batch_size_, n_epochs_ : int
        Batch size and epochs of the last fit ("auto" resolved from its n_samples).
    n_features_in_ : int
    device_ : str
    timings_ : dict
        Wall time of the last fit in seconds.
    """

    def __init__(
        self,
        n_components=10,
        *,
        hidden_dims=AUTO,
        loss="mse",
        noise=0.0,
        noise_type="gaussian",
        image_shape=None,
        invariance=0.0,
        invariance_warp=0.5,
        n_epochs=AUTO,
        batch_size=AUTO,
        learning_rate=1e-3,
        weight_decay=0.0,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.loss = loss
        self.noise = noise
        self.noise_type = noise_type
        self.image_shape = image_shape
        self.invariance = invariance
        self.invariance_warp = invariance_warp
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- validation --------------------------------------------------------------------------

    def _check_params(self):
        check_int("n_components", self.n_components, low=1)
        hidden = check_hidden_or_auto("hidden_dims", self.hidden_dims)
        check_choice("loss", self.loss, LOSSES)
        check_corruption(self.noise, self.noise_type, self.image_shape)
        if not _is_auto(self.n_epochs):
            check_int("n_epochs", self.n_epochs, low=1)
        if not _is_auto(self.batch_size):
            check_int("batch_size", self.batch_size, low=1)
        # "auto" batches hold at least min(32, n_samples) >= 2 rows
        check_invariance(self.invariance, self.invariance_warp, self.image_shape,
                         2 if _is_auto(self.batch_size) else self.batch_size)
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        return hidden, resolve_device(self.device)

    def resolve_sizes(self, n_samples, n_features):
        """(hidden_dims, batch_size, n_epochs) that a fit on n_samples x n_features uses:
        the set values, with "auto" replaced by the rule of the class docstring."""
        hidden = check_hidden_or_auto("hidden_dims", self.hidden_dims)
        if hidden == AUTO:
            hidden = auto_hidden_dims(n_features)
        batch = auto_batch_size(n_samples) if _is_auto(self.batch_size) else int(self.batch_size)
        epochs = (auto_epochs(n_samples, batch, PRETRAIN_STEPS, MIN_PRETRAIN_EPOCHS)
                  if _is_auto(self.n_epochs) else int(self.n_epochs))
        return hidden, batch, epochs

    def _validate_X(self, X, reset):
        X = check_array(X, dtype=np.float32, order="C", accept_sparse=False, input_name="X",
                        ensure_min_samples=1)
        if reset:
            if X.shape[0] < 2:
                raise ValueError(f"n_samples={X.shape[0]} is too few to train; at least 2 are needed")
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but AutoEncoder is expecting "
                f"{self.n_features_in_} features as input"
            )
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # torch works in float32
        return tags

    # -- fitting -----------------------------------------------------------------------------

    def _build(self, n_features, hidden, device, seed):
        gen = cpu_generator(seed)
        d = int(self.n_components)
        encoder = mlp((n_features, *hidden, d), gen).to(device)
        decoder = mlp((d, *reversed(hidden), n_features), gen).to(device)
        return encoder, decoder

    def fit(self, X, y=None):
        """Train the autoencoder on X (n_samples, n_features). y is ignored."""
        hidden, device = self._check_params()
        continuing = bool(self.warm_start) and hasattr(self, "encoder_")
        X = self._validate_X(X, reset=not continuing)
        check_image_shape(self.image_shape, self.noise_type, X.shape[1])
        if self.loss == "bce":
            check_unit_interval(X)
        hidden, batch_size, n_epochs = self.resolve_sizes(X.shape[0], X.shape[1])
        if continuing:
            hidden = self.hidden_dims_  # the networks being trained further

        t0 = time.perf_counter()
        if continuing:
            encoder, decoder = self.encoder_, self.decoder_
            if next(encoder.parameters()).device != device:
                encoder, decoder = encoder.to(device), decoder.to(device)
            optimizer, gen_cpu, gen_dev = self._optimizer, self._gen_cpu, self._gen_dev
            curve = list(self.loss_curve_)
        else:
            seed = make_seed(self.random_state)
            encoder, decoder = self._build(X.shape[1], hidden, device, seed)
            params = list(encoder.parameters()) + list(decoder.parameters())
            optimizer = torch.optim.Adam(params, lr=float(self.learning_rate),
                                         weight_decay=float(self.weight_decay))
            gen_cpu = cpu_generator(seed + 1)
            gen_dev = torch.Generator(device=device)
            gen_dev.manual_seed(seed + 2)
            curve = []

        X_t = torch.from_numpy(X).to(device)
        invariance = float(self.invariance)
        bar = EpochBar(n_epochs, self.verbose, "AutoEncoder")
        encoder.train()
        decoder.train()
        try:
            for epoch in range(n_epochs):
                total, count = 0.0, 0
                for idx in batch_indices(X.shape[0], batch_size, gen_cpu):
                    xb = X_t[idx.to(device)]
                    z = encoder(corrupt(xb, self.noise_type, float(self.noise), gen_dev,
                                        self.image_shape))
                    loss = reconstruction_loss(decoder(z), xb, self.loss)
                    if invariance > 0:
                        z_warped = encoder(affine_warp(xb, float(self.invariance_warp),
                                                       self.image_shape, gen_dev))
                        loss = loss + invariance * invariance_loss(z, z_warped)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * idx.numel()
                    count += idx.numel()
                epoch_loss = total / count
                if not np.isfinite(epoch_loss):
                    raise FloatingPointError(
                        f"the reconstruction loss became {epoch_loss} in epoch {epoch + 1}; "
                        "lower learning_rate or scale the input"
                    )
                curve.append(epoch_loss)
                logger.info("AutoEncoder epoch %d/%d: loss %.6g", epoch + 1, n_epochs, epoch_loss)
                bar.update(loss=epoch_loss)
        finally:
            bar.close()
        encoder.eval()
        decoder.eval()

        # Fitted attributes are set only here, so an interrupted fit leaves none half-written.
        self.encoder_, self.decoder_ = encoder, decoder
        self._optimizer, self._gen_cpu, self._gen_dev = optimizer, gen_cpu, gen_dev
        self.loss_curve_ = curve
        self.n_iter_ = len(curve)
        self.hidden_dims_ = tuple(hidden)
        self.batch_size_, self.n_epochs_ = batch_size, n_epochs
        self.n_features_in_ = X.shape[1]
        self.device_ = str(device)
        self.timings_ = {"train": time.perf_counter() - t0}
        return self

    # -- using a fitted model ----------------------------------------------------------------

    def transform(self, X):
        """Bottleneck features of X: float32 array (n_samples, n_components)."""
        check_is_fitted(self, "encoder_")
        X = self._validate_X(X, reset=False)
        return apply_in_batches(self.encoder_, X, self.device_).reshape(X.shape[0], -1)

    def fit_transform(self, X, y=None):
        """Train on X and return its bottleneck features."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """Decode bottleneck features Z (n_samples, n_components) back to input space."""
        check_is_fitted(self, "encoder_")
        Z = check_array(Z, dtype=np.float32, order="C", input_name="Z")
        if Z.shape[1] != int(self.n_components):
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but this AutoEncoder has n_components={self.n_components}"
            )
        out = apply_in_batches(self.decoder_, Z, self.device_)
        if self.loss == "bce":
            out = 1.0 / (1.0 + np.exp(-out, dtype=np.float32))
        return out.astype(np.float32, copy=False)

    def reconstruction_error(self, X):
        """Mean per-sample loss of this model (the training criterion, without corruption)."""
        check_is_fitted(self, "encoder_")
        X = self._validate_X(X, reset=False)
        if self.loss == "bce":
            check_unit_interval(X)
        with torch.no_grad():
            total = 0.0
            for start in range(0, X.shape[0], 4096):
                xb = torch.from_numpy(X[start:start + 4096]).to(self.device_)
                out = self.decoder_(self.encoder_(xb))
                total += float(reconstruction_loss(out, xb, self.loss)) * xb.shape[0]
        return total / X.shape[0]

    # -- persistence -------------------------------------------------------------------------

    def save(self, path):
        """Write the weights and the configuration to ``path`` (a torch file, loadable with
        ``torch.load(..., weights_only=True)``)."""
        check_is_fitted(self, "encoder_")
        params = self.get_params()
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a RandomState object is not a plain value
        if params["hidden_dims"] != AUTO:
            params["hidden_dims"] = list(check_hidden_dims("hidden_dims", params["hidden_dims"]))
        if params["image_shape"] is not None:
            params["image_shape"] = [int(v) for v in params["image_shape"]]
        state = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "hidden_dims_": [int(h) for h in self.hidden_dims_],
            "batch_size_": int(self.batch_size_),
            "loss_curve": [float(v) for v in self.loss_curve_],
            "encoder": {k: v.detach().cpu() for k, v in self.encoder_.state_dict().items()},
            "decoder": {k: v.detach().cpu() for k, v in self.decoder_.state_dict().items()},
        }
        torch.save(state, path)

    @classmethod
    def load(cls, path, device=None):
        """Rebuild a fitted AutoEncoder written by :meth:`save`. ``device`` overrides the
        saved one ("auto", "cpu", "cuda")."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path!s} is not a file written by AutoEncoder.save")
        if state.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path!s} has format version {state.get('version')!r}; this uec reads version "
                f"{_FORMAT_VERSION}"
            )
        params = dict(state["params"])
        if params["hidden_dims"] != AUTO:
            params["hidden_dims"] = tuple(params["hidden_dims"])
        if params.get("image_shape") is not None:  # absent from files of earlier versions
            params["image_shape"] = tuple(params["image_shape"])
        if device is not None:
            params["device"] = device
        model = cls(**params)
        hidden, dev = model._check_params()
        n_features = state.get("n_features_in")
        if (isinstance(n_features, (bool, np.bool_)) or not isinstance(n_features, numbers.Integral)
                or n_features < 1):
            raise ValueError(f"{path!s}: n_features_in={n_features!r} must be a positive integer")
        n_features = int(n_features)
        # the widths used; files from before "auto" hold them in params only
        hidden = check_hidden_dims("hidden_dims", state.get("hidden_dims_", hidden))
        _check_saved_shapes(path, state, n_features, hidden, int(model.n_components))
        encoder, decoder = model._build(n_features, hidden, torch.device("cpu"), 0)
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
        model.encoder_, model.decoder_ = encoder.to(dev).eval(), decoder.to(dev).eval()
        params_list = list(model.encoder_.parameters()) + list(model.decoder_.parameters())
        # A warm-started fit after load continues with a fresh optimiser and generators.
        model._optimizer = torch.optim.Adam(params_list, lr=float(model.learning_rate),
                                            weight_decay=float(model.weight_decay))
        seed = make_seed(model.random_state)
        model._gen_cpu = cpu_generator(seed + 1)
        model._gen_dev = torch.Generator(device=dev)
        model._gen_dev.manual_seed(seed + 2)
        model.loss_curve_ = list(state["loss_curve"])
        model.n_iter_ = len(model.loss_curve_)
        model.hidden_dims_ = hidden
        batch = state.get("batch_size_", params.get("batch_size"))
        model.batch_size_ = (int(batch) if isinstance(batch, numbers.Integral)
                             and not isinstance(batch, bool) else None)
        model.n_features_in_ = n_features
        model.device_ = str(dev)
        model.timings_ = {}
        return model


def _is_auto(value):
    return isinstance(value, str) and value == AUTO


def _layer_shapes(dims):
    """{state_dict key: shape} of ``mlp(dims)``: a Linear at every even index of the Sequential
    (ReLUs in between)."""
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        shapes[f"{2 * i}.weight"] = (int(fan_out), int(fan_in))
        shapes[f"{2 * i}.bias"] = (int(fan_out),)
    return shapes


def _check_saved_shapes(path, state, n_features, hidden, n_components):
    """The networks ``load`` is about to build must have exactly the weights the file holds:
    the sizes in its configuration (hidden_dims, n_features_in, n_components) are compared with
    the tensors it carries before anything is allocated, so a crafted file cannot ask for more
    memory than its own size (hidden_dims=[60000] tried to allocate 14 GB on load)."""
    want = {
        "encoder": _layer_shapes((n_features, *hidden, n_components)),
        "decoder": _layer_shapes((n_components, *reversed(hidden), n_features)),
    }
    for part, shapes in want.items():
        saved = state.get(part)
        if not isinstance(saved, dict):
            raise ValueError(f"{path!s} has no {part} weights: not a file written by AutoEncoder.save")
        got = {k: tuple(getattr(v, "shape", ())) for k, v in saved.items()}
        if got != shapes:
            first = next((k for k in shapes if got.get(k) != shapes[k]), None) or next(
                k for k in got if k not in shapes)
            raise ValueError(
                f"{path!s}: hidden_dims={list(hidden)}, n_features_in={n_features} and "
                f"n_components={n_components} need {part} weights {first} of shape "
                f"{shapes.get(first)}, but the file holds {got.get(first)}; allowed: sizes that "
                f"match the weights saved with them (the file is damaged or was not written by "
                f"AutoEncoder.save)"
            )
