"""Fitting decoder ensembles to given latent codes (the autoencoder setting)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from tqdm import tqdm

from ._ensemble import EnsembleDecoder


def _check_training_data(ensemble: EnsembleDecoder, latents, data):
    latents, data = jnp.asarray(latents), jnp.asarray(data)
    if latents.ndim != 2 or latents.shape[1] != ensemble.latent_dim:
        raise ValueError(
            f"`latents` has shape {latents.shape}, expected (N, {ensemble.latent_dim})."
        )
    if data.shape != (latents.shape[0], *ensemble.out_shape):
        raise ValueError(
            f"`data` has shape {data.shape}, expected "
            f"({latents.shape[0]}, *{ensemble.out_shape}) to match `latents` and "
            "the decoder's output."
        )
    for name, x in (("latents", latents), ("data", data)):
        if not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(f"`{name}` contains NaN or inf.")
    return latents, data


def train_decoders(
    ensemble: EnsembleDecoder,
    latents: Float[ArrayLike, "N d"],
    data: Float[ArrayLike, " N *out"],
    *,
    key: PRNGKeyArray,
    num_steps: int = 2000,
    batch_size: int = 128,
    optimiser: optax.GradientTransformation | None = None,
    progress: bool = True,
) -> tuple[EnsembleDecoder, Float[Array, " num_steps"]]:
    r"""Fit every member of an ensemble to `(latents, data)` by least squares.

    Each member sees its own random mini-batches, so members that start from
    different initialisations stay different off the data, which is what makes
    the expected metric grow there. All members are updated together through the
    stacked parameters; the steps run in `jax.lax.scan`, in 20 chunks so that a
    progress bar can report between them.

    **Arguments:**

    - `ensemble`: the [`EnsembleDecoder`][latentgeo.EnsembleDecoder] to train.
    - `latents`: `(N, d)` latent codes.
    - `data`: `(N, *out_shape)` targets.
    - `key`: PRNG key for the mini-batches.
    - `num_steps`: optimiser steps (2000).
    - `batch_size`: mini-batch size per member (128, at most `N`).
    - `optimiser`: an optax transformation; default `optax.adam(1e-3)`.
    - `progress`: show a progress bar with the current loss.

    **Returns:** the trained ensemble and the per-step loss (mean over members of
    the mean squared error), shape `(num_steps,)`.

    **Raises:** `ValueError` for mismatched shapes or NaN/inf in the data.
    """
    latents, data = _check_training_data(ensemble, latents, data)
    optimiser = optax.adam(1e-3) if optimiser is None else optimiser
    batch_size = min(batch_size, latents.shape[0])
    params, static = eqx.partition(ensemble, eqx.is_inexact_array)
    opt_state = optimiser.init(params)

    def loss_fn(params, indices):
        model = eqx.combine(params, static)

        def member_loss(member_params, member_indices):
            predictions = jax.vmap(lambda z: model.apply(member_params, z))(
                latents[member_indices]
            )
            return jnp.mean((predictions - data[member_indices]) ** 2)

        losses = eqx.filter_vmap(member_loss, in_axes=(eqx.if_array(0), 0))(
            model.params, indices
        )
        return jnp.sum(losses), jnp.mean(losses)

    @eqx.filter_jit
    def run_chunk(params, opt_state, keys):
        def step(carry, step_key):
            params, opt_state = carry
            indices = jax.random.randint(
                step_key, (ensemble.num_members, batch_size), 0, latents.shape[0]
            )
            grads, loss = jax.grad(loss_fn, has_aux=True)(params, indices)
            # optax mixes Python floats with int32 step counts internally.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = optimiser.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(step, (params, opt_state), keys)

    keys = jax.random.split(key, num_steps)
    losses = []
    with tqdm(total=num_steps, disable=not progress, desc="training") as bar:
        for chunk in np.array_split(np.arange(num_steps), min(20, num_steps)):
            (params, opt_state), chunk_losses = run_chunk(
                params, opt_state, keys[chunk]
            )
            losses.append(chunk_losses)
            bar.update(chunk.size)
            bar.set_postfix(loss=f"{float(chunk_losses[-1]):.4g}")
    return eqx.combine(params, static), jnp.concatenate(losses)
