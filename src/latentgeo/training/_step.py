"""One epoch of ensemble-VAE training: the state, the step and the validation loss."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._ensemble import EnsembleDecoder
from ._elbo import Likelihood, kl_to_standard_normal, log_likelihood, sample_latent


class VAEState(eqx.Module):
    """Everything an epoch changes: the trainable arrays and their optimiser states.

    **Attributes:**

    - `encoder`: the encoder's inexact arrays (`eqx.partition`-ed out of it).
    - `decoders`: the members' inexact arrays, with a leading member axis.
    - `encoder_opt`: the encoder's optimiser state.
    - `decoders_opt`: one optimiser state per member, stacked along the member axis.
    """

    encoder: PyTree
    decoders: PyTree
    encoder_opt: PyTree
    decoders_opt: PyTree


class Member(eqx.Module):
    """One member's arrays and optimiser state, out of the stacks."""

    index: Int[Array, ""]
    params: PyTree
    opt: PyTree


def take_member(state: VAEState, index: Int[Array, ""]) -> Member:
    """Member `index`'s arrays and optimiser state."""

    def take(x):
        return jax.lax.dynamic_index_in_dim(x, index, keepdims=False)

    params, opt = jtu.tree_map(take, (state.decoders, state.decoders_opt))
    return Member(index, params, opt)


def put_member(state: VAEState, member: Member) -> VAEState:
    """`state` with `member`'s arrays and optimiser state written back."""

    def put(x, value):
        return jax.lax.dynamic_update_index_in_dim(x, value, member.index, 0)

    decoders, decoders_opt = jtu.tree_map(
        put, (state.decoders, state.decoders_opt), (member.params, member.opt)
    )
    return eqx.tree_at(
        lambda s: (s.decoders, s.decoders_opt), state, (decoders, decoders_opt)
    )


class VAEStep(eqx.Module):
    """The training step and the validation loss: everything but the state, so one
    compilation serves every call with the same architecture and settings."""

    encoder_static: PyTree
    decoder_static: PyTree
    apply: Callable
    optimiser: optax.GradientTransformation
    likelihood: Likelihood
    kl_weight: float

    def _decoder(self, params: PyTree, member: Int[Array, ""]) -> Callable:
        static = jtu.tree_map(
            lambda x: x[member] if eqx.is_array(x) else x, self.decoder_static
        )
        member_params = eqx.combine(params, static)
        return jtu.Partial(self.apply, member_params)

    def _reconstruction(
        self, decoder: Callable, x: Float[Array, " *shape"], z: Float[Array, " d"]
    ) -> Float[Array, ""]:
        return -log_likelihood(jnp.ravel(x), jnp.ravel(decoder(z)), self.likelihood)

    def loss(
        self,
        encoder_params: PyTree,
        member_params: PyTree,
        member: Int[Array, ""],
        data: Float[Array, " n *shape"],
        key: PRNGKeyArray,
    ) -> Float[Array, ""]:
        """Mean over `data` of the one-sample weighted negative ELBO under the
        encoder and member `member`."""
        encoder = eqx.combine(encoder_params, self.encoder_static)
        decoder = self._decoder(member_params, member)

        def one(x, key):
            mean, log_var = encoder(x)
            z = sample_latent(mean, log_var, key)
            kl = kl_to_standard_normal(mean, log_var)
            return self._reconstruction(decoder, x, z) + self.kl_weight * kl

        return jnp.mean(jax.vmap(one)(data, jr.split(key, data.shape[0])))

    def train_member(
        self,
        state: VAEState,
        member: Member,
        batch: Float[Array, " b *shape"],
        key: PRNGKeyArray,
    ) -> tuple[VAEState, Member, Float[Array, ""]]:
        """One optimiser step on the encoder (in `state`) and `member` (held out of
        the stacks; `state`'s copy of it is stale). Returns both and the loss."""
        loss, (encoder_grads, member_grads) = jax.value_and_grad(
            lambda p: self.loss(p[0], p[1], member.index, batch, key)
        )((state.encoder, member.params))
        # optax mixes its int32 step count with floats (Adam's bias correction).
        with jax.numpy_dtype_promotion("standard"):
            encoder_updates, encoder_opt = self.optimiser.update(
                encoder_grads, state.encoder_opt, state.encoder
            )
            member_updates, member_opt = self.optimiser.update(
                member_grads, member.opt, member.params
            )
        state = eqx.tree_at(
            lambda s: (s.encoder, s.encoder_opt),
            state,
            (eqx.apply_updates(state.encoder, encoder_updates), encoder_opt),
        )
        member_params = eqx.apply_updates(member.params, member_updates)
        return state, Member(member.index, member_params, member_opt), loss

    def __call__(
        self,
        state: VAEState,
        member: Int[Array, ""],
        batch: Float[Array, " b *shape"],
        key: PRNGKeyArray,
    ) -> tuple[VAEState, Float[Array, ""]]:
        """One optimiser step on the encoder and member `member` only; the other
        members and their optimiser states are untouched."""
        state, trained, loss = self.train_member(
            state, take_member(state, member), batch, key
        )
        return put_member(state, trained), loss

    def validation_loss(
        self, state: VAEState, data: Float[Array, " m *shape"], key: PRNGKeyArray
    ) -> Float[Array, ""]:
        """Mean over members of [`loss`][] on `data`, every member with the same
        noise: the data are encoded and sampled once, then decoded by each member
        in turn (`lax.map`, bounding memory)."""
        encoder = eqx.combine(state.encoder, self.encoder_static)
        mean, log_var = jax.vmap(encoder)(data)
        z = jax.vmap(sample_latent)(mean, log_var, jr.split(key, data.shape[0]))
        kl = self.kl_weight * jax.vmap(kl_to_standard_normal)(mean, log_var)

        def member_loss(args):
            decoder = self._decoder(*args)
            reconstruction = jax.vmap(self._reconstruction, in_axes=(None, 0, 0))
            return jnp.mean(reconstruction(decoder, data, z) + kl)

        members = jnp.arange(jtu.tree_leaves(state.decoders)[0].shape[0])
        return jnp.mean(jax.lax.map(member_loss, (state.decoders, members)))


def init_step(
    encoder: eqx.Module,
    ensemble: EnsembleDecoder,
    optimiser: optax.GradientTransformation,
    likelihood: Likelihood,
    kl_weight: float,
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
        encoder_opt=optimiser.init(encoder_params),
        decoders_opt=eqx.filter_vmap(optimiser.init)(decoder_params),
    )
    return step, state


def run_epoch(
    step: VAEStep,
    state: VAEState,
    train_data: Float[Array, " n *shape"],
    validation_data: Float[Array, " m *shape"],
    epoch_key: PRNGKeyArray,
    noise_key: PRNGKeyArray,
    batch_size: int,
) -> tuple[VAEState, Float[Array, ""], Float[Array, ""]]:
    """One pass over `train_data` in shuffled mini-batches (`lax.scan`; the last
    batch filled up from the start of the pass, one random member per batch), then
    the validation loss. Returns the new state, the mean training loss of the
    epoch and the validation loss."""
    num_train = train_data.shape[0]
    num_members = jtu.tree_leaves(state.decoders)[0].shape[0]
    num_batches = -(-num_train // batch_size)
    order_key, member_key, step_key = jr.split(epoch_key, 3)
    order = jr.permutation(order_key, num_train)
    order = jnp.concatenate([order, order[: num_batches * batch_size - num_train]])
    members = jr.randint(member_key, (num_batches,), 0, num_members)

    def train_batch(carry, args):
        # Write back the member trained last, then take this batch's: moving one
        # member's arrays in and out of the stacks. Updating a member inside the
        # stacks instead makes XLA copy every member's moments at each step (their
        # update is fused into the writes of both the moments and the parameters,
        # so one write reads another's buffer): the ensemble's epoch took twice as
        # long.
        state, held = carry
        member, indices, key = args
        state = put_member(state, held)
        state, held, loss = step.train_member(
            state, take_member(state, member), train_data[indices], key
        )
        return (state, held), loss

    (state, held), losses = jax.lax.scan(
        train_batch,
        (state, take_member(state, members[0])),
        (
            members,
            order.reshape(num_batches, batch_size),
            jr.split(step_key, num_batches),
        ),
    )
    state = put_member(state, held)
    return (
        state,
        jnp.mean(losses),
        step.validation_loss(state, validation_data, noise_key),
    )
