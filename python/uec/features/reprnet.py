"""ReprNet: an autoencoder plus a "representation network" trained with a Student-t
cross-entropy between the two spaces, then k-means on the representation (Dahal, "Learning
Embedding Space for Clustering From Deep Representations"). The loss, its two normalisations
and which optimiser takes which gradient are in docs/design.md §9; the data's labels are
never seen."""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_array, check_is_fitted

from ._torch import (
    AUTO,
    JOINT_STEPS,
    MIN_JOINT_EPOCHS,
    MIN_PRETRAIN_EPOCHS,
    PRETRAIN_STEPS,
    EpochBar,
    apply_in_batches,
    auto_batch_size,
    auto_epochs,
    auto_hidden_dims,
    batch_indices,
    check_hidden_dims,
    check_hidden_or_auto,
    corrupt,
    cpu_generator,
    make_seed,
    mlp,
    reconstruction_loss,
    check_corruption,
    check_image_shape,
    check_unit_interval,
    resolve_device,
    torch,
)
from .._validation import check_choice, check_float, check_int
from .autoencoder import AutoEncoder

logger = logging.getLogger(__name__)


NORMALIZATIONS = ("row", "joint")


def pairwise_log_probs(Y, dof, normalization="row"):
    """log p_ij of the Student-t similarities of the rows of Y (n x d) with ``dof`` degrees
    of freedom, i != j, normalised per row ("row") or over all ordered pairs ("joint"). The
    diagonal is -inf.

    Computed in the log domain (log1p and logsumexp), so far pairs underflow to tiny
    probabilities, never to log 0.
    """
    n = Y.shape[0]
    sq = ((Y[:, None, :] - Y[None, :, :]) ** 2).sum(dim=-1)
    log_kernel = -0.5 * (dof + 1.0) * torch.log1p(sq / dof)
    diag = torch.eye(n, dtype=torch.bool, device=Y.device)
    log_kernel = log_kernel.masked_fill(diag, float("-inf"))
    if normalization == "row":
        return log_kernel - torch.logsumexp(log_kernel, dim=1, keepdim=True)
    return log_kernel - torch.logsumexp(log_kernel.reshape(-1), dim=0)


def embedding_loss(z, e, alpha, normalization="row"):
    """L_E = -sum_{i != j} p_ij log q_ij, p from z with ``alpha`` degrees of freedom, q from e
    with one. Gradients flow into both z (through p) and e (through q)."""
    log_p = pairwise_log_probs(z, alpha, normalization)
    log_q = pairwise_log_probs(e, 1.0, normalization)
    diag = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    return -(log_p.exp() * log_q.masked_fill(diag, 0.0)).sum()


class _Nets(torch.nn.Module):
    """Encoder, decoder (logits; the sigmoid is folded into the BCE) and representation net."""

    def __init__(self, encoder, decoder, representation):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.representation = representation

    def embed(self, x):
        return self.representation(self.encoder(x))


def joint_step_gradients(nets, xb, x_in, gamma, alpha, normalization="row"):
    """Fill ``.grad`` of every parameter for one joint mini-batch and return (L_R, L_E).

    Encoder: d(L_R + gamma L_E); decoder: d(L_R); representation network: d(L_E). L_E does
    not depend on the decoder nor L_R on the representation network, so one backward pass of
    L_R + gamma L_E gives the encoder's and the decoder's gradients exactly; the
    representation network's come from a separate autograd.grad of L_E (not gamma times it).
    """
    z = nets.encoder(x_in)
    rec = reconstruction_loss(nets.decoder(z), xb, "bce")
    emb = embedding_loss(z, nets.representation(z), alpha, normalization)
    rep_params = list(nets.representation.parameters())
    rep_grads = torch.autograd.grad(emb, rep_params, retain_graph=True)
    for p in nets.parameters():
        p.grad = None
    (rec + gamma * emb).backward()
    for p, g in zip(rep_params, rep_grads):
        p.grad = g
    return rec.detach(), emb.detach()


class ReprNet(ClusterMixin, TransformerMixin, BaseEstimator):
    """Autoencoder + representation network trained jointly, then k-means on the embedding.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of k-means clusters.
    n_components : int, default=10
        Dimension d of the autoencoder's latent space and of the embedding.
    hidden_dims : sequence of int or "auto", default="auto"
        Encoder hidden widths (the decoder mirrors them and ends with a sigmoid). "auto": the
        ``pretrained`` autoencoder's widths when one is given, else AutoEncoder's rule
        (w, w, 4w), w = clip(2 * n_features, 32, 500): (500, 500, 2000) on MNIST, (128, 128,
        512) on digits.
    repr_hidden_dims : sequence of int or "auto", default="auto"
        Hidden widths of the representation network d -> ... -> d. "auto": the encoder's
        widths reversed, (4w, w, w) ((2000, 500, 500) on MNIST, as in the paper).
    gamma : float, default=0.01
        Weight of L_E in the encoder's loss.
    alpha : float or None, default=None
        Degrees of freedom of p; None means 2 * n_components (the paper's choice).
    normalization : {"row", "joint"}, default="row"
        How p and q are normalised within a mini-batch: per point ("row", as the authors'
        code does; L_E is then a sum of one cross-entropy per point) or over all pairs
        ("joint", the paper's Eq. 2-3). On digits "joint" fell below k-means on the
        autoencoder's features: with alpha = 2d almost all of p's mass sits on the few closest
        pairs of the batch (docs/results/features.md).
    noise, noise_type : float, {"gaussian", "mask", "affine"}, default=0.0, "gaussian"
        Input corruption (denoising) in pretraining and joint training; see AutoEncoder.
    image_shape : tuple of int or None, default=None
        Shape of the images the rows of X hold, for ``noise_type="affine"``; see AutoEncoder.
    pretrain_epochs : int or "auto", default="auto"
        Autoencoder epochs before the joint phase (binary cross-entropy, so X must lie in
        [0, 1]). Ignored when ``pretrained`` is given. "auto": AutoEncoder's rule,
        ``max(20, ceil(2000 / steps per epoch))``: 20 on MNIST (the CPU budget measured
        there), 69 on digits.
    n_epochs : int or "auto", default="auto"
        Joint epochs. "auto": about 2,000 joint steps (the pretraining's budget) and at least
        4 passes, ``max(4, ceil(2000 / steps per epoch))``: 69 on digits (29 steps of 64), 8
        on MNIST (274 steps of 256; there, after 20 autoencoder epochs, 1, 2 and 4 joint
        epochs gave ACC 0.778, 0.949 and 0.958, and on its first 10,000 images 4, 8 and 16
        gave 0.661, 0.714 and 0.749; docs/results/features.md). The papers' budgets are GPU
        budgets. Only n_samples and the batch size enter the rule, never labels.
    batch_size : int or "auto", default="auto"
        Mini-batch size; L_E is computed over the pairs within each batch. "auto": the power
        of two at or below n_samples / 25, clipped to [32, 256] (256 on MNIST, 64 on digits).
    learning_rate : float, default=1e-3
        Adam's step size for all three networks.
    n_init : int, default=10
        k-means restarts (the best inertia is kept).
    pretrained : AutoEncoder or None
        A fitted ``AutoEncoder(loss="bce")`` with the same n_components and hidden_dims whose
        networks start the joint phase (copied, the AutoEncoder is left unchanged).
    warm_start : bool, default=False
        When True and the model is fitted, ``fit`` runs ``n_epochs`` more joint epochs from
        the current networks, optimisers and random streams (no pretraining), then k-means
        again. Two warm fits of k epochs equal one fit of 2k epochs bit for bit.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None
        Seeds the networks, batches, corruption and k-means. With an int the fit is
        reproducible bit for bit on the CPU for a given number of torch threads.
    verbose : bool, default=False

    Attributes
    ----------
    labels_ : ndarray (n_samples,)
    embedding_ : ndarray (n_samples, n_components), float32
        Representation-network outputs of the training data.
    cluster_centers_ : ndarray (n_clusters, n_components)
    hidden_dims_, repr_hidden_dims_ : tuple of int
    batch_size_, pretrain_epochs_, n_epochs_ : int
        The sizes the fit used ("auto" resolved; ``pretrain_epochs_`` is 0 with ``pretrained``).
    autoencoder_ : AutoEncoder or None
        The pretrained autoencoder (before the joint phase); None when pretrain_epochs=0.
    encoder_, decoder_, representation_ : torch.nn.Sequential
    history_ : dict
        Per joint epoch mean "reconstruction" (L_R) and "embedding" (L_E) losses.
    n_features_in_ : int
    device_ : str
    timings_ : dict
        Wall time of "pretrain", "joint" and "kmeans" in seconds.
    """

    def __init__(
        self,
        n_clusters=10,
        *,
        n_components=10,
        hidden_dims=AUTO,
        repr_hidden_dims=AUTO,
        gamma=0.01,
        alpha=None,
        normalization="row",
        noise=0.0,
        noise_type="gaussian",
        image_shape=None,
        pretrain_epochs=AUTO,
        n_epochs=AUTO,
        batch_size=AUTO,
        learning_rate=1e-3,
        n_init=10,
        pretrained=None,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.repr_hidden_dims = repr_hidden_dims
        self.gamma = gamma
        self.alpha = alpha
        self.normalization = normalization
        self.noise = noise
        self.noise_type = noise_type
        self.image_shape = image_shape
        self.pretrain_epochs = pretrain_epochs
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.pretrained = pretrained
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- validation --------------------------------------------------------------------------

    def _check_params(self, n_samples, n_features):
        n_clusters = check_int("n_clusters", self.n_clusters, low=1)
        if n_clusters > n_samples:
            raise ValueError(f"n_clusters={n_clusters} must be <= n_samples={n_samples}")
        d = check_int("n_components", self.n_components, low=1)
        hidden = check_hidden_or_auto("hidden_dims", self.hidden_dims)
        repr_hidden = check_hidden_or_auto("repr_hidden_dims", self.repr_hidden_dims)
        check_float("gamma", self.gamma, low=0.0)
        alpha = 2.0 * d if self.alpha is None else check_float(
            "alpha", self.alpha, low=0.0, low_open=True)
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_corruption(self.noise, self.noise_type, self.image_shape)
        batch = (auto_batch_size(n_samples) if _is_auto(self.batch_size)
                 else check_int("batch_size", self.batch_size, low=2))
        pretrain = (auto_epochs(n_samples, batch, PRETRAIN_STEPS, MIN_PRETRAIN_EPOCHS)
                    if _is_auto(self.pretrain_epochs)
                    else check_int("pretrain_epochs", self.pretrain_epochs, low=0))
        joint = (auto_epochs(n_samples, batch, JOINT_STEPS, MIN_JOINT_EPOCHS)
                 if _is_auto(self.n_epochs) else check_int("n_epochs", self.n_epochs, low=0))
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_int("n_init", self.n_init, low=1)
        if self.pretrained is not None:
            ae = self.pretrained
            if not isinstance(ae, AutoEncoder):
                raise ValueError(
                    f"pretrained={type(ae).__name__} is not supported; pass a fitted "
                    "uec.AutoEncoder or None"
                )
            check_is_fitted(ae, "encoder_")
            if ae.loss != "bce":
                raise ValueError(
                    f"pretrained has loss={ae.loss!r}; ReprNet's decoder ends with a sigmoid, "
                    "so it needs an AutoEncoder trained with loss='bce'"
                )
            ae_hidden = tuple(getattr(ae, "hidden_dims_", None)
                              or check_hidden_dims("hidden_dims", ae.hidden_dims))
            if hidden == AUTO:
                hidden = ae_hidden
            if int(ae.n_components) != d or ae_hidden != hidden:
                raise ValueError(
                    f"pretrained has n_components={ae.n_components}, hidden_dims="
                    f"{ae_hidden}; they must equal ReprNet's n_components={d}, "
                    f"hidden_dims={hidden}"
                )
            pretrain = 0
        elif pretrain == 0:
            logger.info("pretrain_epochs=0: the joint phase starts from random networks")
        if hidden == AUTO:
            hidden = auto_hidden_dims(n_features)
        if repr_hidden == AUTO:
            repr_hidden = tuple(reversed(hidden))
        sizes = {"hidden": hidden, "repr_hidden": repr_hidden, "batch": batch,
                 "pretrain": pretrain, "joint": joint}
        return d, sizes, alpha, resolve_device(self.device)

    def resolve_sizes(self, n_samples, n_features):
        """The sizes a fit on n_samples x n_features uses, "auto" resolved by the rule of the
        class docstring: {"hidden", "repr_hidden", "batch", "pretrain", "joint"}."""
        return self._check_params(n_samples, n_features)[1]

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Fit on X (n_samples, n_features) with values in [0, 1]. y is ignored: no label
        reaches any stage."""
        X = check_array(X, dtype=np.float32, order="C", accept_sparse=False, input_name="X",
                        ensure_min_samples=2)
        n, n_features = X.shape
        d, sizes, alpha, device = self._check_params(n, n_features)
        check_image_shape(self.image_shape, self.noise_type, n_features)
        check_unit_interval(
            X, why="ReprNet's decoder ends with a sigmoid and is trained with binary "
            "cross-entropy, so X must lie in [0, 1]", alternative="")
        if self.pretrained is not None and self.pretrained.n_features_in_ != n_features:
            raise ValueError(
                f"X has {n_features} features, but pretrained was fitted with "
                f"{self.pretrained.n_features_in_}"
            )
        continuing = bool(self.warm_start) and hasattr(self, "embedding_")
        if continuing and n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but ReprNet is expecting {self.n_features_in_} "
                "features as input (warm_start=True continues the previous fit)"
            )
        if continuing:  # the networks being trained further keep their widths
            sizes["hidden"], sizes["repr_hidden"] = self.hidden_dims_, self.repr_hidden_dims_
        hidden, repr_hidden = sizes["hidden"], sizes["repr_hidden"]
        seed = make_seed(self.random_state) if not continuing else self._seed
        times = {}

        t0 = time.perf_counter()
        if continuing:
            autoencoder = self.autoencoder_
            nets, state = self._nets, self._state
            nets.to(device)
        else:
            if self.pretrained is not None:
                autoencoder = self.pretrained
            else:
                autoencoder = AutoEncoder(
                    n_components=d, hidden_dims=hidden, loss="bce", noise=self.noise,
                    noise_type=self.noise_type, image_shape=self.image_shape,
                    n_epochs=max(sizes["pretrain"], 1), batch_size=sizes["batch"],
                    learning_rate=self.learning_rate,
                    device=str(device), random_state=seed, verbose=self.verbose,
                )
                if sizes["pretrain"] > 0:
                    autoencoder.fit(X)
                else:
                    autoencoder = None
            gen = cpu_generator(seed + 3)
            if autoencoder is not None:
                encoder = copy.deepcopy(autoencoder.encoder_).to(device)
                decoder = copy.deepcopy(autoencoder.decoder_).to(device)
            else:  # pretrain_epochs=0: random networks
                encoder = mlp((n_features, *hidden, d), gen).to(device)
                decoder = mlp((d, *reversed(hidden), n_features), gen).to(device)
            representation = mlp((d, *repr_hidden, d), gen).to(device)
            nets = _Nets(encoder, decoder, representation)
            state = self._fresh_state(nets, seed, device)
        times["pretrain"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        history = self._joint(nets, state, X, alpha, device, sizes["batch"], sizes["joint"])
        if continuing:
            history = {k: self.history_[k] + history[k] for k in history}
        times["joint"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        nets.eval()
        embedding = apply_in_batches(_Embed(nets), X, device)
        if not np.isfinite(embedding).all():
            raise FloatingPointError(
                "the embedding has non-finite values; lower learning_rate or gamma"
            )
        kmeans = KMeans(n_clusters=int(self.n_clusters), n_init=int(self.n_init),
                        random_state=seed).fit(embedding)
        times["kmeans"] = time.perf_counter() - t0

        # Fitted attributes are set only here (a fresh fit interrupted midway leaves none).
        self.autoencoder_ = autoencoder
        self.encoder_, self.decoder_ = nets.encoder, nets.decoder
        self.representation_ = nets.representation
        self._nets, self._state, self._seed = nets, state, seed
        self.kmeans_ = kmeans
        self.embedding_ = embedding
        self.labels_ = kmeans.labels_.astype(np.intp)
        self.cluster_centers_ = kmeans.cluster_centers_
        self.alpha_ = float(alpha)
        self.history_ = history
        self.hidden_dims_, self.repr_hidden_dims_ = tuple(hidden), tuple(repr_hidden)
        self.batch_size_ = sizes["batch"]
        self.pretrain_epochs_ = 0 if continuing else sizes["pretrain"]
        self.n_epochs_ = sizes["joint"]
        self.n_iter_ = len(history["embedding"])
        self.n_features_in_ = n_features
        self.device_ = str(device)
        self.timings_ = times
        return self

    def _fresh_state(self, nets, seed, device):
        """Optimisers (one per network) and random streams of the joint phase."""
        gen_dev = torch.Generator(device=device)
        gen_dev.manual_seed(seed + 5)
        return {
            "optimizers": [
                torch.optim.Adam(part.parameters(), lr=float(self.learning_rate))
                for part in (nets.encoder, nets.decoder, nets.representation)
            ],
            "gen_cpu": cpu_generator(seed + 4),
            "gen_dev": gen_dev,
        }

    def _joint(self, nets, state, X, alpha, device, batch_size, n_epochs):
        opts, gen_cpu, gen_dev = state["optimizers"], state["gen_cpu"], state["gen_dev"]
        X_t = torch.from_numpy(X).to(device)
        history = {"reconstruction": [], "embedding": []}
        bar = EpochBar(n_epochs, self.verbose, "ReprNet joint")
        nets.train()
        try:
            for epoch in range(n_epochs):
                sums, n_batches = np.zeros(2), 0
                for idx in batch_indices(X.shape[0], batch_size, gen_cpu):
                    xb = X_t[idx.to(device)]
                    x_in = corrupt(xb, self.noise_type, float(self.noise), gen_dev,
                                   self.image_shape)
                    rec, emb = joint_step_gradients(nets, xb, x_in, float(self.gamma), alpha,
                                                    self.normalization)
                    for opt in opts:
                        opt.step()
                    sums += (float(rec), float(emb))
                    n_batches += 1
                sums /= n_batches
                if not np.isfinite(sums).all():
                    raise FloatingPointError(
                        f"a loss became non-finite in joint epoch {epoch + 1}; lower learning_rate"
                    )
                history["reconstruction"].append(float(sums[0]))
                history["embedding"].append(float(sums[1]))
                logger.info("ReprNet joint epoch %d/%d: L_R %.6g, L_E %.6g",
                            epoch + 1, n_epochs, sums[0], sums[1])
                bar.update(L_R=sums[0], L_E=sums[1])
        finally:
            bar.close()
        return history

    # -- using a fitted model ----------------------------------------------------------------

    def _validate_new(self, X):
        check_is_fitted(self, "embedding_")
        X = check_array(X, dtype=np.float32, order="C", accept_sparse=False, input_name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but ReprNet is expecting {self.n_features_in_} "
                "features as input"
            )
        return X

    def transform(self, X):
        """Embedding h(f(X)): float32 array (n_samples, n_components)."""
        X = self._validate_new(X)
        nets = _Nets(self.encoder_, self.decoder_, self.representation_)
        return apply_in_batches(_Embed(nets), X, self.device_)

    def predict(self, X):
        """Nearest k-means centre of each point's embedding."""
        check_is_fitted(self, "kmeans_")
        return self.kmeans_.predict(self.transform(X)).astype(np.intp)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def fit_transform(self, X, y=None):
        return self.fit(X).embedding_


class _Embed(torch.nn.Module):
    def __init__(self, nets):
        super().__init__()
        self.nets = nets

    def forward(self, x):
        return self.nets.embed(x)


def _is_auto(value):
    return isinstance(value, str) and value == AUTO
