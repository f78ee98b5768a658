"""Training an ensemble VAE: one shared encoder, K decoders, a member schedule."""

import math
import os
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree, Real
from tqdm import tqdm

from .._ensemble import EnsembleDecoder
from ._checkpoint import Checkpoint, make_checkpoint, optimiser_digest
from ._elbo import Likelihood
from ._encoder import check_encoder, host_examples, param_dtype
from ._epoch import init_step, jitted_epoch, jitted_validation_loss
from ._schedule import AbstractMemberSchedule, OneDecoderPerBatch
from ._state import VAEState
from ._step import VAEStep

DEFAULT_OPTIMISER = optax.adam(1e-3)
"""One instance, so that default calls share the compiled epoch (a static input)."""


class TrainedVAE(eqx.Module):
    """The outcome of [`train_ensemble_vae`][latentgeo.training.train_ensemble_vae].

    **Attributes:**

    - `encoder`: the trained encoder, at the best epoch.
    - `ensemble`: the trained [`EnsembleDecoder`][latentgeo.EnsembleDecoder], at
      the best epoch.
    - `train_loss`: `(num_epochs,)` mean mini-batch loss (weighted negative
      ELBO per example) of each epoch.
    - `validation_loss`: `(num_epochs,)` the same loss on the validation split
      after each epoch, averaged over members (NaN after epochs that were not
      validated, see `validation_every`).
    - `validation_indices`: indices into `data` of the held-out examples.
    - `best_epoch`: the epoch (0-based) whose parameters were kept, the one with
      the lowest validation loss.
    - `interrupted`: whether training was stopped by `KeyboardInterrupt`.
    """

    encoder: eqx.Module
    ensemble: EnsembleDecoder
    train_loss: Float[Array, " epochs"]
    validation_loss: Float[Array, " epochs"]
    validation_indices: Int[Array, " m"]
    best_epoch: int = eqx.field(static=True)
    interrupted: bool = eqx.field(static=True)

    @property
    def num_epochs(self) -> int:
        """Epochs run."""
        return self.train_loss.shape[0]


class _Record(eqx.Module):
    """Early stopping's bookkeeping after some epochs; what a checkpoint holds.

    - `state`: after the last finished epoch.
    - `best`: `(encoder arrays, decoder arrays)` after the best epoch.
    - `best_epoch`: that epoch (0-based), `-1` while no validation loss was finite.
    - `history`: `(epochs, 2)` training and validation loss per finished epoch.
    """

    state: VAEState
    best: tuple[PyTree, PyTree]
    best_epoch: int
    history: np.ndarray

    @property
    def num_epochs(self) -> int:
        return self.history.shape[0]

    def stopped(self, max_epochs: int, patience: int) -> bool:
        """Whether training is over: `max_epochs` run, or `patience` epochs
        without a lower validation loss."""
        since_best = self.num_epochs - 1 - self.best_epoch
        return self.num_epochs >= max_epochs or (
            self.num_epochs > 0 and since_best >= patience
        )

    def after_epoch(
        self, state: VAEState, train_loss: float, validation_loss: float
    ) -> "_Record":
        history = np.append(self.history, [[train_loss, validation_loss]], axis=0)
        improved = math.isfinite(validation_loss) and (
            self.best_epoch < 0 or validation_loss < self.history[self.best_epoch, 1]
        )
        if improved:
            # A copy: the next epoch consumes `state`'s buffers.
            best = jax.tree.map(jnp.copy, (state.encoder, state.decoders))
            return _Record(state, best, self.num_epochs, history)
        return _Record(state, self.best, self.best_epoch, history)

    def saved(self) -> tuple[PyTree, np.ndarray]:
        """The arrays of a checkpoint, and the history."""
        return (self.state, self.best, np.asarray(self.best_epoch)), self.history

    @classmethod
    def start(cls, state: VAEState, checkpoint: Checkpoint | None) -> "_Record":
        """The record before the first epoch, or as saved in `checkpoint`.
        Epochs consume their input state's buffers, so training starts from a
        copy: `state` holds the caller's encoder and decoder arrays."""
        initial = (state.encoder, state.decoders)  # never consumed
        record = cls(jax.tree.map(jnp.copy, state), initial, -1, np.zeros((0, 2)))
        saved = None if checkpoint is None else checkpoint.load(record.saved()[0])
        if saved is None:
            return record
        (state, best, best_epoch), history = saved
        return cls(state, best, int(best_epoch), history)


def _check_settings(
    likelihood: str,
    kl_weight: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    validation_every: int,
    validation_fraction: float,
) -> None:
    if likelihood not in ("gaussian", "bernoulli"):
        raise ValueError(
            f"`likelihood` must be 'gaussian' or 'bernoulli', got {likelihood!r}."
        )
    if not (math.isfinite(kl_weight) and kl_weight >= 0):
        raise ValueError(f"`kl_weight` must be finite and >= 0, got {kl_weight}.")
    for name, value in (
        ("batch_size", batch_size),
        ("max_epochs", max_epochs),
        ("patience", patience),
        ("validation_every", validation_every),
    ):
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1, got {value}.")
    if patience < validation_every:
        raise ValueError(
            f"`patience` ({patience}) must be at least `validation_every` "
            f"({validation_every}): training would stop between validations."
        )
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in (0, 1), got {validation_fraction}."
        )


def _checked_data(
    encoder: eqx.Module,
    ensemble: EnsembleDecoder,
    data: ArrayLike,
    likelihood: Likelihood,
    validation_fraction: float,
) -> Array:
    """`data` in the parameters' dtype, after checking it fits the models."""
    data = host_examples(data).astype(param_dtype(ensemble.params))
    if likelihood == "bernoulli" and not np.all((data >= 0) & (data <= 1)):
        raise ValueError(
            "Bernoulli likelihood needs `data` in [0, 1]; got values in "
            f"[{data.min()}, {data.max()}]."
        )
    example = jax.ShapeDtypeStruct(data.shape[1:], data.dtype)
    latent_dim = check_encoder(encoder, example)
    if latent_dim != ensemble.latent_dim:
        raise ValueError(
            f"`encoder` gives latents of shape ({latent_dim},), the decoders take "
            f"({ensemble.latent_dim},)."
        )
    if math.prod(ensemble.out_shape) != math.prod(example.shape):
        raise ValueError(
            f"The decoders output shape {ensemble.out_shape}, which does not have "
            f"as many entries as one example of shape {example.shape}."
        )
    num_validation = max(1, round(validation_fraction * data.shape[0]))
    if num_validation >= data.shape[0]:
        raise ValueError(
            f"`data` has {data.shape[0]} examples: too few to hold out "
            f"{num_validation} for validation and train on the rest."
        )
    return jnp.asarray(data)


def _train(
    step: VAEStep,
    record: _Record,
    train_data: Array,
    validation_data: Array,
    train_key: PRNGKeyArray,
    noise_key: PRNGKeyArray,
    *,
    schedule: AbstractMemberSchedule,
    batch_size: int,
    max_epochs: int,
    patience: int,
    validation_every: int,
    checkpoint: Checkpoint | None,
    progress: bool,
) -> tuple[_Record, bool]:
    """Run epochs until early stopping, saving after each; returns the record and
    whether a `KeyboardInterrupt` ended it."""
    with tqdm(
        initial=record.num_epochs,
        total=max_epochs,
        disable=not progress,
        desc="training VAE",
        unit="epoch",
    ) as bar:
        try:
            while not record.stopped(max_epochs, patience):
                state, train_loss = jitted_epoch(
                    (step, schedule, train_data, batch_size),
                    record.state,
                    jr.fold_in(train_key, record.num_epochs),
                )
                validation_loss = jnp.nan
                epoch = record.num_epochs + 1
                if epoch % validation_every == 0 or epoch == max_epochs:
                    validation_loss = jitted_validation_loss(
                        step, state, validation_data, noise_key
                    )
                record = record.after_epoch(
                    state, float(train_loss), float(validation_loss)
                )
                if checkpoint is not None:
                    checkpoint.save(*record.saved())
                bar.update(1)
                bar.set_postfix(
                    {"train": f"{train_loss:.4g}", "val": f"{validation_loss:.4g}"},
                    best=record.best_epoch,
                )
        except KeyboardInterrupt:
            if not record.num_epochs:
                raise
            return record, True
    return record, False


def train_ensemble_vae(
    encoder: eqx.Module,
    ensemble: EnsembleDecoder,
    data: Real[ArrayLike, " N *shape"],
    *,
    key: PRNGKeyArray,
    likelihood: Literal["gaussian", "bernoulli"] = "gaussian",
    kl_weight: float = 0.05,
    optimiser: optax.GradientTransformation | None = None,
    batch_size: int = 128,
    max_epochs: int = 500,
    patience: int = 15,
    validation_every: int = 1,
    validation_fraction: float = 0.1,
    split_key: PRNGKeyArray | None = None,
    schedule: AbstractMemberSchedule = OneDecoderPerBatch(),
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainedVAE:
    r"""Train one encoder and $K$ decoders as in the paper, with early stopping.

    By default each mini-batch trains the encoder and **one** decoder, drawn
    uniformly at random (the paper's description,
    [`OneDecoderPerBatch`][latentgeo.training.OneDecoderPerBatch]), on the
    weighted negative ELBO
    $-\log p_k(x \mid z) + \beta\,\mathrm{KL}(q(z \mid x) \,\|\, N(0, I))$
    with one reparametrised sample $z \sim q(z \mid x)$, averaged over the batch.
    The other members and their optimiser states are untouched (as in PyTorch,
    where parameters without gradients are skipped), so each member keeps its own
    optimiser state. [`SplitBatch`][latentgeo.training.SplitBatch] instead splits
    every batch across all members, as the paper's official code does. With
    $K = 1$ this is an ordinary ($\beta$-)VAE.

    Likelihoods, per example with $D$ outputs $f(z)$:

    - `"gaussian"`: fixed unit variance, $\frac12\|x - f(z)\|^2$ (the constant
      $\frac D2 \log 2\pi$ is left out); no variance is learned.
    - `"bernoulli"`: $f(z)$ are logits; data must lie in $[0, 1]$ (grey values
      are allowed, as usual for MNIST).

    A random `validation_fraction` of the examples is held out. An epoch is one
    pass over the rest in shuffled mini-batches (the last one filled up with
    examples from the start of the pass) and runs in one jitted `jax.lax.scan`;
    then, every `validation_every` epochs and after the last, the validation
    loss (all members, a fixed noise sample) is computed. Training stops after
    `patience` epochs without a lower validation loss, and the parameters of
    the best epoch are returned. A `KeyboardInterrupt` between or during
    epochs stops training and returns the best model of the finished
    epochs with `interrupted=True` (it propagates if no epoch has finished).
    A diverging run (NaN loss) stops after `patience` epochs and returns the best
    finite epoch. The same `key` gives bit-identical results on one machine.
    The epoch is compiled once per architecture, data shape and settings, and
    later calls (other seeds, other data of the same shape) reuse it; pass the
    same optimiser object to each call, as optimisers are compared by identity.

    **Arguments:**

    - `encoder`: an equinox module, `encoder(x) -> (mean, log_var)`, both of
      shape `(d,)`, for one example `x`; e.g. a
      [`GaussianEncoder`][latentgeo.training.GaussianEncoder].
    - `ensemble`: the [`EnsembleDecoder`][latentgeo.EnsembleDecoder]; each
      member's output must have `prod(shape)` entries (it is compared with the
      flattened example).
    - `data`: `(N, *shape)` examples (numpy or JAX), cast to the parameters'
      dtype.
    - `key`: PRNG key for the split, the batches, the members and the noise.
    - `likelihood`: `"gaussian"` (default) or `"bernoulli"`.
    - `kl_weight`: $\beta \ge 0$; default 0.05, the paper's value ($1$ is the
      exact ELBO).
    - `optimiser`: an optax transformation, applied separately to the encoder and
      to each member; default `optax.adam(1e-3)` (the paper used Adam with
      learning rate 5e-5 on MNIST).
    - `batch_size`: default 128, at most the number of training examples.
    - `max_epochs`: default 500.
    - `patience`: epochs without improvement before stopping; default 15.
    - `validation_every`: validate after every this many epochs (1; the
      official code of the paper validates every 3).
    - `validation_fraction`: share of `data` held out, in $(0, 1)$; default 0.1;
      at least one example is held out and one kept.
    - `split_key`: PRNG key of the validation split; default drawn from `key`.
      Pass the same one to every seed to hold out the same examples each time.
    - `schedule`: the member schedule, an
      [`AbstractMemberSchedule`][latentgeo.training.AbstractMemberSchedule]
      (default `OneDecoderPerBatch()`).
    - `checkpoint`: a file path, or `None` (default). The whole training state
      (parameters, optimiser states, the best epoch's parameters, the loss
      history) is saved there atomically after every epoch, and a call with the
      same arguments resumes from it, ending bit-identical to an uninterrupted
      run; a finished run returns at once. `max_epochs` may grow between calls.
      A checkpoint of a run with other data, models, key, optimiser or settings
      is refused (see "Resuming long runs" in the Training guide).
    - `progress`: show a progress bar with the epoch, training and validation
      loss.

    **Returns:** a [`TrainedVAE`][latentgeo.training.TrainedVAE].

    **Raises:** `ValueError` for data with NaN/inf, Bernoulli data outside
    $[0, 1]$, shapes the encoder or decoders do not fit, invalid settings, or a
    checkpoint of another run (naming what differs) or with more epochs than
    `max_epochs`; `FloatingPointError` if no epoch had a finite validation loss.

    **Example:**

    ```python
    images, _ = lg.datasets.load_digits()
    encoder, ensemble = lg.init_vae((8, 8), 2, 10, key=jax.random.key(0))
    result = lg.train_ensemble_vae(encoder, ensemble, images, key=jax.random.key(1))
    latents = lg.encode(result.encoder, images)  # (1797, 2)
    metric = lg.ExpectedMetric(result.ensemble)
    ```
    """
    _check_settings(
        likelihood,
        kl_weight,
        batch_size,
        max_epochs,
        patience,
        validation_every,
        validation_fraction,
    )
    data = _checked_data(encoder, ensemble, data, likelihood, validation_fraction)
    num_validation = max(1, round(validation_fraction * data.shape[0]))
    batch_size = min(batch_size, data.shape[0] - num_validation)
    schedule.check(batch_size, ensemble.num_members)
    optimiser = DEFAULT_OPTIMISER if optimiser is None else optimiser
    if checkpoint is not None:
        checkpoint = make_checkpoint(
            checkpoint,
            data=data,
            model=(encoder, ensemble),
            key=key,
            optimiser=optimiser_digest(
                optimiser, eqx.filter(encoder, eqx.is_inexact_array)
            ),
            likelihood=likelihood,
            kl_weight=kl_weight,
            batch_size=batch_size,
            patience=patience,
            validation_every=validation_every,
            validation_fraction=validation_fraction,
            split_key=key if split_key is None else split_key,
            schedule=schedule,
        )
    own_split_key, noise_key, train_key = jr.split(key, 3)
    split_key = own_split_key if split_key is None else split_key
    permutation = jr.permutation(split_key, data.shape[0])
    validation_indices = permutation[:num_validation]
    train_data = data[permutation[num_validation:]]
    step, state = init_step(
        encoder, ensemble, optimiser, likelihood, kl_weight, schedule
    )
    record = _Record.start(state, checkpoint)
    if record.num_epochs > max_epochs:
        raise ValueError(
            f"The checkpoint holds {record.num_epochs} epochs, more than "
            f"`max_epochs={max_epochs}`."
        )
    record, interrupted = _train(
        step,
        record,
        train_data,
        data[validation_indices],
        train_key,
        noise_key,
        schedule=schedule,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        validation_every=validation_every,
        checkpoint=checkpoint,
        progress=progress,
    )
    if record.best_epoch < 0:
        raise FloatingPointError(
            "The validation loss was NaN or inf after every epoch: training "
            "diverged; try a smaller learning rate."
        )
    encoder_params, decoder_params = record.best
    return TrainedVAE(
        encoder=eqx.combine(encoder_params, step.encoder_static),
        ensemble=eqx.tree_at(
            lambda e: e.params,
            ensemble,
            eqx.combine(decoder_params, step.decoder_static),
        ),
        train_loss=jnp.asarray(record.history[:, 0], data.dtype),
        validation_loss=jnp.asarray(record.history[:, 1], data.dtype),
        validation_indices=validation_indices,
        best_epoch=record.best_epoch,
        interrupted=interrupted,
    )
