"""What an epoch of ensemble-VAE training changes: the trainable arrays and their
optimiser states."""

import equinox as eqx
import jax.tree_util as jtu
from jaxtyping import PyTree


class VAEState(eqx.Module):
    """Everything an epoch changes: the trainable arrays and their optimiser states.

    **Attributes:**

    - `encoder`: the encoder's inexact arrays (`eqx.partition`-ed out of it).
    - `decoders`: the members' inexact arrays, with a leading member axis.
    - `opt_state`: the optimiser states, laid out by the member schedule.
    """

    encoder: PyTree
    decoders: PyTree
    opt_state: PyTree


def num_members(state: VAEState) -> int:
    return jtu.tree_leaves(state.decoders)[0].shape[0]
