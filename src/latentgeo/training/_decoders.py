"""Fitting decoder ensembles to given latent codes (the autoencoder setting)."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree
from tqdm import tqdm

from .._checks import host_points
from .._ensemble import EnsembleDecoder
from ._checkpoint import Checkpoint, make_checkpoint, optimiser_digest
from ._encoder import host_examples
from ._vae import DEFAULT_OPTIMISER

CHUNK = 100
"""Steps per compiled call; the progress bar and the checkpoint advance by chunks."""


class _Fit(eqx.Module):
    """The least-squares step: everything but the state, so that one compilation
    serves every call with the same architecture, optimiser and batch size."""

    static: PyTree
    optimiser: optax.GradientTransformation
    batch_size: int

    def loss(
        self,
        params: PyTree,
        latents: Float[Array, "N d"],
        data: Float[Array, " N *out"],
        indices: Int[Array, "K b"],
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The sum over members of their mean squared errors on their own
        mini-batches (its gradient gives each member its own), and their mean."""
        ensemble = eqx.combine(params, self.static)

        def member_loss(member_params, member_indices):
            predictions = jax.vmap(lambda z: ensemble.apply(member_params, z))(
                latents[member_indices]
            )
            return jnp.mean((predictions - data[member_indices]) ** 2)

        losses = eqx.filter_vmap(member_loss, in_axes=(eqx.if_array(0), 0))(
            ensemble.params, indices
        )
        return jnp.sum(losses), jnp.mean(losses)

    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        latents: Float[Array, "N d"],
        data: Float[Array, " N *out"],
        key: PRNGKeyArray,
    ) -> tuple[PyTree, PyTree, Float[Array, ""]]:
        """One optimiser step of every member on its own random mini-batch."""
        num_members = eqx.combine(params, self.static).num_members
        indices = jr.randint(key, (num_members, self.batch_size), 0, latents.shape[0])
        grads, loss = jax.grad(self.loss, has_aux=True)(params, latents, data, indices)
        # optax mixes Python floats with int32 step counts internally.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss


@eqx.filter_jit
def _run_chunk(
    fit: _Fit,
    params: PyTree,
    opt_state: PyTree,
    latents: Float[Array, "N d"],
    data: Float[Array, " N *out"],
    key: PRNGKeyArray,
    start: Int[Array, ""],
    num_steps: Int[Array, ""],
) -> tuple[PyTree, PyTree, Float[Array, " chunk"]]:
    """Steps `start .. start + CHUNK - 1` that are below `num_steps` (the others
    are skipped), step `i` with key `fold_in(key, i)`; returns the parameters, the
    optimiser state and the `CHUNK` losses (those of skipped steps are NaN)."""

    def one(carry, index):
        def run(carry):
            params, opt_state, loss = fit.step(
                *carry, latents, data, jr.fold_in(key, index)
            )
            return (params, opt_state), loss

        def skip(carry):
            return carry, jnp.full((), jnp.nan, latents.dtype)

        return jax.lax.cond(index < num_steps, run, skip, carry)

    (params, opt_state), losses = jax.lax.scan(
        one, (params, opt_state), start + jnp.arange(CHUNK)
    )
    return params, opt_state, losses


def _checked(
    ensemble: EnsembleDecoder, latents: ArrayLike, data: ArrayLike
) -> tuple[Array, Array]:
    latents = host_points(latents, ensemble.latent_dim, "latents")
    data = np.asarray(data)
    if data.shape != (latents.shape[0], *ensemble.out_shape):
        raise ValueError(
            f"`data` has shape {data.shape}, expected "
            f"({latents.shape[0]}, *{ensemble.out_shape}) to match `latents` and "
            "the decoder's output."
        )
    host_examples(data, "data")
    return jnp.asarray(latents), jnp.asarray(data)


def train_decoders(
    ensemble: EnsembleDecoder,
    latents: Float[ArrayLike, "N d"],
    data: Float[ArrayLike, " N *out"],
    *,
    key: PRNGKeyArray,
    num_steps: int = 2000,
    batch_size: int = 128,
    optimiser: optax.GradientTransformation | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[EnsembleDecoder, Float[Array, " num_steps"]]:
    r"""Fit every member of an ensemble to `(latents, data)` by least squares.

    Each member sees its own random mini-batches, so members that start from
    different initialisations stay different off the data, which is what makes
    the expected metric grow there. All members are updated together through the
    stacked parameters; the steps run in `jax.lax.scan`, in compiled chunks of 100
    between which the progress bar (and the checkpoint) advance. The chunk is
    compiled once per architecture, optimiser, batch size and data shape, and
    reused by later calls.

    **Arguments:**

    - `ensemble`: the [`EnsembleDecoder`][latentgeo.EnsembleDecoder] to train.
    - `latents`: `(N, d)` latent codes.
    - `data`: `(N, *out_shape)` targets.
    - `key`: PRNG key for the mini-batches (step `i` uses `fold_in(key, i)`).
    - `num_steps`: optimiser steps (2000).
    - `batch_size`: mini-batch size per member (128, at most `N`).
    - `optimiser`: an optax transformation; default `optax.adam(1e-3)`.
    - `checkpoint`: a file path: the parameters, optimiser state and losses are
      saved there (atomically) after every chunk, and a call with the same
      arguments resumes from it, ending exactly as an uninterrupted call would.
      `num_steps` may grow between calls. A checkpoint written for other data,
      another ensemble, key, optimiser or batch size raises `ValueError`.
    - `progress`: show a progress bar with the current loss.

    **Returns:** the trained ensemble and the per-step loss (mean over members of
    the mean squared error), shape `(num_steps,)`.

    **Raises:** `ValueError` for mismatched shapes, NaN/inf in the data, invalid
    settings, or a checkpoint of another run.

    **Example:**

    ```python
    latents, observations = lg.datasets.make_circle(500)
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 16, 64, 2, key=k), 10, key=jax.random.key(0)
    )
    ensemble, losses = lg.train_decoders(
        ensemble, latents, observations, key=jax.random.key(1)
    )
    ```
    """
    latents, data = _checked(ensemble, latents, data)
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1, got {value}.")
    optimiser = DEFAULT_OPTIMISER if optimiser is None else optimiser
    params, static = eqx.partition(ensemble, eqx.is_inexact_array)
    fit = _Fit(static, optimiser, min(batch_size, latents.shape[0]))
    if checkpoint is not None:
        checkpoint = make_checkpoint(
            checkpoint,
            latents=latents,
            data=data,
            ensemble=ensemble,
            key=key,
            optimiser=optimiser_digest(optimiser, params),
            batch_size=fit.batch_size,
        )
    state, losses = _start(params, optimiser, checkpoint, num_steps, data.dtype)
    with tqdm(
        initial=losses.size, total=num_steps, disable=not progress, desc="training"
    ) as bar:
        while losses.size < num_steps:
            params, opt_state, chunk_losses = _run_chunk(
                fit,
                *state,
                latents,
                data,
                key,
                jnp.asarray(losses.size),
                jnp.asarray(num_steps),
            )
            state = (params, opt_state)
            chunk_losses = np.asarray(chunk_losses)[: num_steps - losses.size]
            losses = np.concatenate([losses, chunk_losses])
            if checkpoint is not None:
                checkpoint.save(state, losses)
            bar.update(chunk_losses.size)
            bar.set_postfix(loss=f"{chunk_losses[-1]:.4g}")
    return eqx.combine(state[0], static), jnp.asarray(losses)


def _start(
    params: PyTree,
    optimiser: optax.GradientTransformation,
    checkpoint: Checkpoint | None,
    num_steps: int,
    dtype: np.dtype,
) -> tuple[tuple[PyTree, PyTree], np.ndarray]:
    """The initial `(params, optimiser state)` and no losses, or the saved ones."""
    state = (params, optimiser.init(params))
    saved = None if checkpoint is None else checkpoint.load(state)
    if saved is None:
        return state, np.zeros(0, dtype)
    state, losses = saved
    if losses.size > num_steps:
        raise ValueError(
            f"The checkpoint holds {losses.size} steps, more than "
            f"`num_steps={num_steps}`."
        )
    return state, losses
