"""One epoch of ensemble-VAE training: the static step and the initial state
from the models, and a pass over the data in shuffled mini-batches."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._ensemble import EnsembleDecoder
from ._elbo import Likelihood
from ._schedule import AbstractMemberSchedule
from ._state import VAEState
from ._step import VAEStep


def init_step(
    encoder: eqx.Module,
    ensemble: EnsembleDecoder,
    optimiser: optax.GradientTransformation,
    likelihood: Likelihood,
    kl_weight: float,
    schedule: AbstractMemberSchedule,
) -> tuple[VAEStep, VAEState]:
    """Split `encoder` and `ensemble` into the static step and the initial state."""
    encoder_params, encoder_static = eqx.partition(encoder, eqx.is_inexact_array)
    decoder_params, decoder_static = eqx.partition(
        ensemble.params, eqx.is_inexact_array
    )
    step = VAEStep(
        encoder_static, decoder_static, ensemble.apply, optimiser, likelihood, kl_weight
    )
    state = VAEState(
        encoder=encoder_params,
        decoders=decoder_params,
        opt_state=schedule.init_opt_state(optimiser, encoder_params, decoder_params),
    )
    return step, state


def run_epoch(
    step: VAEStep,
    schedule: AbstractMemberSchedule,
    state: VAEState,
    train_data: Float[Array, " n *shape"],
    epoch_key: PRNGKeyArray,
    batch_size: int,
) -> tuple[VAEState, Float[Array, ""]]:
    """One pass over `train_data` in shuffled mini-batches (the last batch filled
    up from the start of the pass), each trained as `schedule` says. Returns the
    new state and the mean training loss of the epoch."""
    num_train = train_data.shape[0]
    num_batches = -(-num_train // batch_size)
    order_key, schedule_key = jr.split(epoch_key)
    order = jr.permutation(order_key, num_train)
    order = jnp.concatenate([order, order[: num_batches * batch_size - num_train]])
    batches = order.reshape(num_batches, batch_size)
    state, losses = schedule.train_batches(
        step, state, train_data, batches, schedule_key
    )
    return state, jnp.mean(losses)


def _epoch_of(
    fixed: tuple[VAEStep, AbstractMemberSchedule, Array, int],
    state: VAEState,
    epoch_key: PRNGKeyArray,
) -> tuple[VAEState, Float[Array, ""]]:
    step, schedule, train_data, batch_size = fixed
    return run_epoch(step, schedule, state, train_data, epoch_key, batch_size)


# The state's buffers are donated to the epoch that replaces them: no copy of the
# parameters and moments per epoch (about a tenth of an ensemble epoch on a CPU).
jitted_epoch = eqx.filter_jit(_epoch_of, donate="all-except-first")


@eqx.filter_jit
def jitted_validation_loss(step: VAEStep, state: VAEState, data: Array, key) -> Array:
    """`step.validation_loss`, compiled once per step."""
    return step.validation_loss(state, data, key)
