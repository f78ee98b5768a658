"""The static part of ensemble-VAE training: the loss of a member on a batch,
its update, and the validation loss.

Which decoders each mini-batch trains, and how the optimiser states are laid
out, is the member schedule's (`_schedule.py`); an epoch over the data is
`_epoch.py`'s.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._elbo import Likelihood, kl_to_standard_normal, log_likelihood, sample_latent
from ._state import VAEState


class VAEStep(eqx.Module):
    """The losses and the optimiser: everything but the state, so one compilation
    serves every call with the same architecture and settings."""

    encoder_static: PyTree
    decoder_static: PyTree
    apply: Callable
    optimiser: optax.GradientTransformation
    likelihood: Likelihood
    kl_weight: float

    def decoder(self, params: PyTree, member: Int[Array, ""]) -> Callable:
        """Member `member` as a function of `z`, from its arrays `params`."""
        static = jtu.tree_map(
            lambda x: x[member] if eqx.is_array(x) else x, self.decoder_static
        )
        member_params = eqx.combine(params, static)
        return jtu.Partial(self.apply, member_params)

    def _reconstruction(
        self, decoder: Callable, x: Float[Array, " *shape"], z: Float[Array, " d"]
    ) -> Float[Array, ""]:
        return -log_likelihood(jnp.ravel(x), jnp.ravel(decoder(z)), self.likelihood)

    def example_losses(
        self,
        encoder_params: PyTree,
        decoder: Callable,
        data: Float[Array, " n *shape"],
        key: PRNGKeyArray,
    ) -> Float[Array, " n"]:
        """The one-sample weighted negative ELBO of each example of `data` under
        the encoder and `decoder`."""
        encoder = eqx.combine(encoder_params, self.encoder_static)

        def one(x, key):
            mean, log_var = encoder(x)
            z = sample_latent(mean, log_var, key)
            kl = kl_to_standard_normal(mean, log_var)
            return self._reconstruction(decoder, x, z) + self.kl_weight * kl

        return jax.vmap(one)(data, jr.split(key, data.shape[0]))

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
        decoder = self.decoder(member_params, member)
        return jnp.mean(self.example_losses(encoder_params, decoder, data, key))

    def update(
        self, grads: PyTree, opt_state: PyTree, params: PyTree
    ) -> tuple[PyTree, PyTree]:
        """`params` after one optimiser step with `grads`, and the new state."""
        # optax mixes its int32 step count with floats (Adam's bias correction).
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.optimiser.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state

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
            decoder = self.decoder(*args)
            reconstruction = jax.vmap(self._reconstruction, in_axes=(None, 0, 0))
            return jnp.mean(reconstruction(decoder, data, z) + kl)

        members = jnp.arange(jtu.tree_leaves(state.decoders)[0].shape[0])
        return jnp.mean(jax.lax.map(member_loss, (state.decoders, members)))
