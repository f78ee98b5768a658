"""Member schedules: which decoders each mini-batch of ensemble-VAE training
trains, and how the optimiser states are laid out.

The paper describes drawing one decoder per mini-batch; its official code
instead splits each mini-batch across all decoders and updates every one at
every step. Both are strategies passed as `train_ensemble_vae(...,
schedule=)`.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._state import VAEState, num_members
from ._step import VAEStep


class AbstractMemberSchedule(eqx.Module):
    """Which decoders each mini-batch trains; pass one as
    `train_ensemble_vae(..., schedule=)`."""

    @abc.abstractmethod
    def init_opt_state(
        self,
        optimiser: optax.GradientTransformation,
        encoder: PyTree,
        decoders: PyTree,
    ) -> PyTree:
        """The optimiser states before the first step."""

    @abc.abstractmethod
    def check(self, batch_size: int, num_members: int) -> None:
        """Raise `ValueError` if the schedule cannot run with these settings."""

    @abc.abstractmethod
    def train_batches(
        self,
        step: VAEStep,
        state: VAEState,
        data: Float[Array, " n *shape"],
        batches: Int[Array, "b batch_size"],
        key: PRNGKeyArray,
    ) -> tuple[VAEState, Float[Array, " b"]]:
        """Train on the mini-batches `data[batches[i]]` in turn (`lax.scan`);
        returns the state and each batch's loss."""


class _Member(eqx.Module):
    """One member's arrays and optimiser state, out of the stacks."""

    index: Int[Array, ""]
    params: PyTree
    opt: PyTree


def _take_member(state: VAEState, index: Int[Array, ""]) -> _Member:
    def take(x):
        return jax.lax.dynamic_index_in_dim(x, index, keepdims=False)

    params, opt = jtu.tree_map(take, (state.decoders, state.opt_state[1]))
    return _Member(index, params, opt)


def _put_member(state: VAEState, member: _Member) -> VAEState:
    def put(x, value):
        return jax.lax.dynamic_update_index_in_dim(x, value, member.index, 0)

    decoders, decoders_opt = jtu.tree_map(
        put, (state.decoders, state.opt_state[1]), (member.params, member.opt)
    )
    return eqx.tree_at(
        lambda s: (s.decoders, s.opt_state[1]), state, (decoders, decoders_opt)
    )


class OneDecoderPerBatch(AbstractMemberSchedule):
    """Each mini-batch trains the encoder and one decoder drawn uniformly at
    random, as the paper describes (the default).

    The other members and their optimiser states are untouched (as in PyTorch,
    where parameters without gradients are skipped), so the encoder and each
    member keep optimiser states of their own: `opt_state` is `(encoder's,
    members' stacked along the member axis)`.
    """

    def init_opt_state(self, optimiser, encoder, decoders) -> PyTree:
        return optimiser.init(encoder), eqx.filter_vmap(optimiser.init)(decoders)

    def check(self, batch_size: int, num_members: int) -> None:
        pass

    def train_member(
        self,
        step: VAEStep,
        state: VAEState,
        member: _Member,
        batch: Float[Array, " b *shape"],
        key: PRNGKeyArray,
    ) -> tuple[VAEState, _Member, Float[Array, ""]]:
        """One optimiser step on the encoder (in `state`) and `member` (held out
        of the stacks; `state`'s copy of it is stale)."""
        loss, (encoder_grads, member_grads) = jax.value_and_grad(
            lambda p: step.loss(p[0], p[1], member.index, batch, key)
        )((state.encoder, member.params))
        encoder, encoder_opt = step.update(
            encoder_grads, state.opt_state[0], state.encoder
        )
        params, opt = step.update(member_grads, member.opt, member.params)
        state = eqx.tree_at(
            lambda s: (s.encoder, s.opt_state[0]), state, (encoder, encoder_opt)
        )
        return state, _Member(member.index, params, opt), loss

    def __call__(
        self,
        step: VAEStep,
        state: VAEState,
        member: Int[Array, ""],
        batch: Float[Array, " b *shape"],
        key: PRNGKeyArray,
    ) -> tuple[VAEState, Float[Array, ""]]:
        """One optimiser step on the encoder and member `member` only."""
        state, trained, loss = self.train_member(
            step, state, _take_member(state, member), batch, key
        )
        return _put_member(state, trained), loss

    def train_batches(self, step, state, data, batches, key):
        member_key, step_key = jr.split(key)
        members = jr.randint(member_key, (batches.shape[0],), 0, num_members(state))

        def train_batch(carry, args):
            # Write back the member trained last, then take this batch's: moving
            # one member's arrays in and out of the stacks. Updating a member
            # inside the stacks instead makes XLA copy every member's moments at
            # each step (their update is fused into the writes of both the
            # moments and the parameters, so one write reads another's buffer):
            # the ensemble's epoch took twice as long.
            state, held = carry
            member, indices, key = args
            state = _put_member(state, held)
            state, held, loss = self.train_member(
                step, state, _take_member(state, member), data[indices], key
            )
            return (state, held), loss

        (state, held), losses = jax.lax.scan(
            train_batch,
            (state, _take_member(state, members[0])),
            (members, batches, jr.split(step_key, batches.shape[0])),
        )
        return _put_member(state, held), losses


class SplitBatch(AbstractMemberSchedule):
    r"""Each mini-batch of $B$ examples is split across the $K$ decoders, example
    $i$ going to member $i \bmod K$, and the encoder and **every** decoder take
    one step on the mean loss over the whole batch: the official code of the
    paper (`EnsembleTrainer`), whose `batch_size=130` gives each of 10 members
    13 examples per step.

    One optimiser state covers the encoder and all members together, so a
    transformation over the whole model (`optax.clip_by_global_norm`, as in the
    official configs) sees one global norm. The batch size must be a multiple
    of $K$.
    """

    def init_opt_state(self, optimiser, encoder, decoders) -> PyTree:
        return optimiser.init((encoder, decoders))

    def check(self, batch_size: int, num_members: int) -> None:
        if batch_size % num_members:
            raise ValueError(
                f"`SplitBatch` gives each of the {num_members} members "
                f"batch_size / K examples: `batch_size` ({batch_size}) must be a "
                "multiple of the number of members."
            )

    def _loss(self, step, params, batch, key) -> Float[Array, ""]:
        encoder, decoders = params
        count = num_members(VAEState(encoder, decoders, None))
        shares = batch.reshape(-1, count, *batch.shape[1:]).swapaxes(0, 1)

        def member_losses(member, member_params, share, key):
            decoder = step.decoder(member_params, member)
            return step.example_losses(encoder, decoder, share, key)

        losses = jax.vmap(member_losses)(
            jnp.arange(count), decoders, shares, jr.split(key, count)
        )
        return jnp.mean(losses)

    def train_batches(self, step, state, data, batches, key):
        def train_batch(state, args):
            indices, key = args
            params = (state.encoder, state.decoders)
            loss, grads = jax.value_and_grad(
                lambda p: self._loss(step, p, data[indices], key)
            )(params)
            (encoder, decoders), opt_state = step.update(grads, state.opt_state, params)
            return VAEState(encoder, decoders, opt_state), loss

        keys = jr.split(key, batches.shape[0])
        return jax.lax.scan(train_batch, state, (batches, keys))
