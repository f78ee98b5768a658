"""Training an ensemble VAE: one shared encoder, K decoders, one decoder per step."""

import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree, Real
from tqdm import tqdm

from ._encoder import as_data, check_encoder, param_dtype
from ._ensemble import EnsembleDecoder


def _kl_to_standard_normal(
    mean: Float[Array, " d"], log_var: Float[Array, " d"]
) -> Float[Array, ""]:
    r"""$\mathrm{KL}(N(\mu, \operatorname{diag} e^{v}) \,\|\, N(0, I))$."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1 - log_var)


def _log_likelihood(
    x: Float[Array, " D"], output: Float[Array, " D"], likelihood: str
) -> Float[Array, ""]:
    """`log p(x | z)` up to constants: unit-variance Gaussian or Bernoulli(logits)."""
    if likelihood == "gaussian":
        return -0.5 * jnp.sum((x - output) ** 2)
    return jnp.sum(x * output - jax.nn.softplus(output))


def _negative_elbo(
    encoder: Callable,
    decoder: Callable,
    x: Float[Array, " *shape"],
    key: PRNGKeyArray,
    likelihood: str,
    kl_weight: float,
) -> Float[Array, ""]:
    """One-sample reparametrised estimate of the weighted negative ELBO of `x`."""
    mean, log_var = encoder(x)
    z = mean + jnp.exp(0.5 * log_var) * jr.normal(key, mean.shape, mean.dtype)
    output = jnp.ravel(decoder(z))
    reconstruction = -_log_likelihood(jnp.ravel(x), output, likelihood)
    return reconstruction + kl_weight * _kl_to_standard_normal(mean, log_var)


def _take(tree: PyTree, index: Int[Array, ""]) -> PyTree:
    return jtu.tree_map(lambda x: x[index] if eqx.is_array(x) else x, tree)


def _put(tree: PyTree, index: Int[Array, ""], value: PyTree) -> PyTree:
    return jtu.tree_map(
        lambda x, v: x.at[index].set(v) if eqx.is_array(x) else x, tree, value
    )


_State = tuple[PyTree, PyTree, PyTree, PyTree]
"""(encoder params, stacked decoder params, encoder optimiser state, stacked
member optimiser states); the parameters are the inexact arrays only."""


class _Step(eqx.Module):
    """The training step and validation loss, with everything but the state."""

    encoder_static: PyTree
    decoder_static: PyTree
    apply: Callable
    optimiser: optax.GradientTransformation
    likelihood: str
    kl_weight: float

    def loss(
        self,
        encoder_params: PyTree,
        member_params: PyTree,
        member: Int[Array, ""],
        data: Float[Array, " n *shape"],
        key: PRNGKeyArray,
    ) -> Float[Array, ""]:
        """Mean negative ELBO of `data` under the encoder and member `member`."""
        encoder = eqx.combine(encoder_params, self.encoder_static)
        member_params = eqx.combine(member_params, _take(self.decoder_static, member))
        decoder = jtu.Partial(self.apply, member_params)
        losses = jax.vmap(
            lambda x, k: _negative_elbo(
                encoder, decoder, x, k, self.likelihood, self.kl_weight
            )
        )(data, jr.split(key, data.shape[0]))
        return jnp.mean(losses)

    def __call__(
        self,
        state: _State,
        member: Int[Array, ""],
        batch: Float[Array, " b *shape"],
        key: PRNGKeyArray,
    ) -> tuple[_State, Float[Array, ""]]:
        """One optimiser step on the encoder and member `member` only: gather its
        parameters and optimiser state, update them, scatter them back."""
        encoder_params, decoder_params, encoder_opt, decoder_opt = state
        member_params = _take(decoder_params, member)
        member_opt = _take(decoder_opt, member)
        loss, (encoder_grads, member_grads) = jax.value_and_grad(
            lambda p: self.loss(p[0], p[1], member, batch, key)
        )((encoder_params, member_params))
        # optax mixes its int32 step count with floats (Adam's bias correction).
        with jax.numpy_dtype_promotion("standard"):
            encoder_updates, encoder_opt = self.optimiser.update(
                encoder_grads, encoder_opt, encoder_params
            )
            member_updates, member_opt = self.optimiser.update(
                member_grads, member_opt, member_params
            )
        encoder_params = eqx.apply_updates(encoder_params, encoder_updates)
        member_params = eqx.apply_updates(member_params, member_updates)
        decoder_params = _put(decoder_params, member, member_params)
        decoder_opt = _put(decoder_opt, member, member_opt)
        return (encoder_params, decoder_params, encoder_opt, decoder_opt), loss

    def validation_loss(
        self, state: _State, data: Float[Array, " m *shape"], key: PRNGKeyArray
    ) -> Float[Array, ""]:
        """Mean over members of the loss on `data`, every member with the same
        noise; `lax.map` runs the members one after another, bounding memory."""
        num_members = jtu.tree_leaves(state[1])[0].shape[0]
        members = jnp.arange(num_members)
        return jnp.mean(
            jax.lax.map(
                lambda args: self.loss(state[0], args[0], args[1], data, key),
                (state[1], members),
            )
        )


def _init(
    encoder: eqx.Module,
    ensemble: EnsembleDecoder,
    optimiser: optax.GradientTransformation,
    likelihood: str,
    kl_weight: float,
) -> tuple[_Step, _State]:
    encoder_params, encoder_static = eqx.partition(encoder, eqx.is_inexact_array)
    decoder_params, decoder_static = eqx.partition(
        ensemble.params, eqx.is_inexact_array
    )
    step = _Step(
        encoder_static, decoder_static, ensemble.apply, optimiser, likelihood, kl_weight
    )
    state = (
        encoder_params,
        decoder_params,
        optimiser.init(encoder_params),
        eqx.filter_vmap(optimiser.init)(decoder_params),
    )
    return step, state


@eqx.filter_jit
def _run_epoch(
    step: _Step,
    state: _State,
    train_data: Float[Array, " n *shape"],
    validation_data: Float[Array, " m *shape"],
    epoch_key: PRNGKeyArray,
    noise_key: PRNGKeyArray,
    batch_size: int,
) -> tuple[_State, Float[Array, ""], Float[Array, ""]]:
    """One pass over `train_data` in `lax.scan`, then the validation loss."""
    num_train = train_data.shape[0]
    num_members = jtu.tree_leaves(state[1])[0].shape[0]
    num_batches = -(-num_train // batch_size)
    order_key, member_key, step_key = jr.split(epoch_key, 3)
    order = jr.permutation(order_key, num_train)
    order = jnp.concatenate([order, order[: num_batches * batch_size - num_train]])
    state, losses = jax.lax.scan(
        lambda state, args: step(state, args[0], train_data[args[1]], args[2]),
        state,
        (
            jr.randint(member_key, (num_batches,), 0, num_members),
            order.reshape(num_batches, batch_size),
            jr.split(step_key, num_batches),
        ),
    )
    return (
        state,
        jnp.mean(losses),
        step.validation_loss(state, validation_data, noise_key),
    )


class TrainedVAE(eqx.Module):
    """The outcome of [`train_ensemble_vae`][latentgeo.train_ensemble_vae].

    **Attributes:**

    - `encoder`: the trained encoder, at the best epoch.
    - `ensemble`: the trained [`EnsembleDecoder`][latentgeo.EnsembleDecoder], at
      the best epoch.
    - `train_loss`: `(num_epochs,)` mean mini-batch loss (weighted negative
      ELBO per example) of each epoch.
    - `validation_loss`: `(num_epochs,)` the same loss on the validation split
      after each epoch, averaged over members.
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
    validation_fraction: float = 0.1,
    progress: bool = True,
) -> TrainedVAE:
    r"""Train one encoder and $K$ decoders as in the paper, with early stopping.

    Each mini-batch trains the encoder and **one** decoder, drawn uniformly at
    random, on the weighted negative ELBO
    $-\log p_k(x \mid z) + \beta\,\mathrm{KL}(q(z \mid x) \,\|\, N(0, I))$
    with one reparametrised sample $z \sim q(z \mid x)$, averaged over the batch.
    The other members and their optimiser states are untouched (as in PyTorch,
    where parameters without gradients are skipped), so each member keeps its own
    optimiser state. With $K = 1$ this is an ordinary ($\beta$-)VAE.

    Likelihoods, per example with $D$ outputs $f(z)$:

    - `"gaussian"`: fixed unit variance, $\frac12\|x - f(z)\|^2$ (the constant
      $\frac D2 \log 2\pi$ is left out); no variance is learned.
    - `"bernoulli"`: $f(z)$ are logits; data must lie in $[0, 1]$ (grey values
      are allowed, as usual for MNIST).

    A random `validation_fraction` of the examples is held out. An epoch is one
    pass over the rest in shuffled mini-batches (the last one filled up with
    examples from the start of the pass) and runs in one jitted `jax.lax.scan`;
    then the validation loss (all members, a fixed noise sample) is computed.
    Training stops after `patience` epochs without a lower validation loss, and
    the parameters of the best epoch are returned. A `KeyboardInterrupt` between
    or during epochs stops training and returns the best model of the finished
    epochs with `interrupted=True` (it propagates if no epoch has finished).
    A diverging run (NaN loss) stops after `patience` epochs and returns the best
    finite epoch. The same `key` gives bit-identical results on one machine.

    **Arguments:**

    - `encoder`: an equinox module, `encoder(x) -> (mean, log_var)`, both of
      shape `(d,)`, for one example `x`; e.g. a
      [`GaussianEncoder`][latentgeo.GaussianEncoder].
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
    - `validation_fraction`: share of `data` held out, in $(0, 1)$; default 0.1;
      at least one example is held out and one kept.
    - `progress`: show a progress bar with the epoch, training and validation
      loss.

    **Returns:** a [`TrainedVAE`][latentgeo.TrainedVAE].

    **Raises:** `ValueError` for data with NaN/inf, Bernoulli data outside
    $[0, 1]$, shapes the encoder or decoders do not fit, or invalid settings;
    `FloatingPointError` if no epoch had a finite validation loss.

    **Example:**

    ```python
    images, _ = lg.datasets.load_digits()
    encoder, ensemble = lg.init_vae((8, 8), 2, 10, key=jax.random.key(0))
    result = lg.train_ensemble_vae(encoder, ensemble, images, key=jax.random.key(1))
    latents = lg.encode(result.encoder, images)  # (1797, 2)
    metric = lg.ExpectedMetric(result.ensemble)
    ```
    """
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
    ):
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1, got {value}.")
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in (0, 1), got {validation_fraction}."
        )
    data = as_data(data, param_dtype(ensemble.params))
    if likelihood == "bernoulli" and not bool(jnp.all((data >= 0) & (data <= 1))):
        raise ValueError(
            "Bernoulli likelihood needs `data` in [0, 1]; got values in "
            f"[{float(jnp.min(data))}, {float(jnp.max(data))}]."
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

    split_key, noise_key, train_key = jr.split(key, 3)
    permutation = jr.permutation(split_key, data.shape[0])
    validation_indices = permutation[:num_validation]
    train_data = data[permutation[num_validation:]]
    validation_data = data[validation_indices]
    batch_size = min(batch_size, train_data.shape[0])
    optimiser = optax.adam(1e-3) if optimiser is None else optimiser
    step, state = _init(encoder, ensemble, optimiser, likelihood, kl_weight)

    history = []  # (train loss, validation loss) per finished epoch
    best = (-1, math.inf, state)  # (epoch, validation loss, state)
    interrupted = False
    with tqdm(
        total=max_epochs, disable=not progress, desc="training VAE", unit="epoch"
    ) as bar:
        try:
            for epoch in range(max_epochs):
                state, train_loss, validation_loss = _run_epoch(
                    step,
                    state,
                    train_data,
                    validation_data,
                    jr.fold_in(train_key, epoch),
                    noise_key,
                    batch_size,
                )
                losses = (float(train_loss), float(validation_loss))
                history.append(losses)
                if losses[1] < best[1]:
                    best = (epoch, losses[1], state)
                bar.update(1)
                bar.set_postfix(
                    {"train": f"{losses[0]:.4g}", "val": f"{losses[1]:.4g}"},
                    best=best[0],
                )
                if epoch - best[0] >= patience:
                    break
        except KeyboardInterrupt:
            if not history:
                raise
            interrupted = True
    best_epoch, _, (encoder_params, decoder_params, *_) = best
    if best_epoch < 0:
        raise FloatingPointError(
            "The validation loss was NaN or inf after every epoch: training "
            "diverged; try a smaller learning rate."
        )
    train_loss, validation_loss = np.asarray(history, np.float64).T
    return TrainedVAE(
        encoder=eqx.combine(encoder_params, step.encoder_static),
        ensemble=eqx.tree_at(
            lambda e: e.params,
            ensemble,
            eqx.combine(decoder_params, step.decoder_static),
        ),
        train_loss=jnp.asarray(train_loss, data.dtype),
        validation_loss=jnp.asarray(validation_loss, data.dtype),
        validation_indices=validation_indices,
        best_epoch=best_epoch,
        interrupted=interrupted,
    )
