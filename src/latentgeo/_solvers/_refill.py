"""Many solves of one iteration in lockstep slots, each slot refilled with the
next pair as soon as its own pair finishes.

Under `jax.vmap` a batch of solves runs until its slowest member stops, so a
batch of pairs whose iteration counts spread (3 to 175 on ReLU decoders) pays
the maximum for every pair. Here `width` slots step together, but a slot whose
pair has stopped hands its result over and loads the next pending pair, so a
batch pays about the sum of its pairs' steps, plus the tail of the last
`width` pairs. Each pair follows the steps it takes alone, through the same
`start` / `advance` / `conclude` as `iterative_solve`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._checks import select_tree
from .._objective import AbstractCurveObjective
from ._base import RESULTS, AbstractCurveSolver, Minimisation, counter
from ._default import AutoSolver
from ._escalating import Escalating
from ._iterate import (
    AbstractIteration,
    AbstractIterativeSolver,
    LoopCarry,
    advance,
    conclude,
    finished,
    start,
)


def iteration_of(
    solver: AbstractCurveSolver, objective: AbstractCurveObjective, max_steps: int
) -> tuple[AbstractIteration, int] | None:
    """The single iteration `solver` runs on `objective` and its loop's step cap,
    or `None` where the solver is not one loop (e.g. `LatticeSearch`,
    `WarmStart`), decided at trace time."""
    if isinstance(solver, AutoSolver):
        return iteration_of(solver.choose(objective), objective, max_steps)
    if isinstance(solver, Escalating):
        return solver.iteration(max_steps)
    if isinstance(solver, AbstractIterativeSolver):
        return solver, max_steps
    return None


class _Queue(eqx.Module):
    slot_pairs: Int[Array, " W"]  # each slot's pair; `M` for an empty slot
    slots: LoopCarry  # batched over the `W` slots
    next: Int[Array, ""]  # how many pairs of `order` have been loaded
    out: Minimisation  # batched over the `M` pairs


def refill_solve(
    iteration: AbstractIteration,
    make_objective: Callable[[Array, Array], AbstractCurveObjective],
    z0s: Float[Array, "M d"],
    z1s: Float[Array, "M d"],
    params: PyTree,
    skip: Bool[Array, " M"],
    max_steps: int,
    width: int,
) -> Minimisation:
    """Minimise `make_objective(z0s[m], z1s[m])` from `params[m]` (every leaf
    batched over the `M` pairs) for each pair not in `skip`, in `width`
    lockstep slots refilled as pairs finish.

    **Returns:** a `Minimisation` batched over the `M` pairs; a skipped pair's
    is its `params`, NaN value, no steps and `max_steps_reached`.
    """
    num_pairs = z0s.shape[0]
    width = min(width, num_pairs)
    # The pairs to solve, first; int32 counters whether or not float64 is on.
    order = jnp.argsort(skip, stable=True).astype(jnp.int32)
    count = counter(jnp.sum(~skip))

    def objective_of(pair):
        pair = jnp.minimum(pair, num_pairs - 1)  # an empty slot computes pair M-1
        return make_objective(z0s[pair], z1s[pair])

    def load(pair):
        clamped = jnp.minimum(pair, num_pairs - 1)
        first = jtu.tree_map(lambda leaf: leaf[clamped], params)
        return start(iteration, objective_of(pair), first)

    def stopped(queue: _Queue) -> Bool[Array, " W"]:
        def one(pair, carry):
            return finished(iteration, objective_of(pair), carry, max_steps)

        return (queue.slot_pairs < num_pairs) & jax.vmap(one)(
            queue.slot_pairs, queue.slots
        )

    def hand_over(queue: _Queue) -> _Queue:
        """Conclude one stopped slot's pair and load the next pending pair into
        it (one evaluation), or leave it empty when none is left."""
        slot = jnp.argmax(stopped(queue))
        pair = queue.slot_pairs[slot]
        carry = jtu.tree_map(lambda leaf: leaf[slot], queue.slots)
        result = conclude(iteration, objective_of(pair), carry)
        out = jtu.tree_map(lambda all_, new: all_.at[pair].set(new), queue.out, result)
        remains = queue.next < count
        new_pair = jnp.where(
            remains, order[jnp.minimum(queue.next, num_pairs - 1)], num_pairs
        )
        fresh = jax.lax.cond(remains, load, lambda _: carry, new_pair)
        return _Queue(
            slot_pairs=queue.slot_pairs.at[slot].set(new_pair),
            slots=jtu.tree_map(
                lambda all_, new: all_.at[slot].set(new), queue.slots, fresh
            ),
            next=queue.next + counter(remains),
            out=out,
        )

    def settle(queue: _Queue) -> _Queue:
        """Hand over stopped slots, one at a time, until none is stopped."""
        return jax.lax.while_loop(lambda q: jnp.any(stopped(q)), hand_over, queue)

    def step(queue: _Queue) -> _Queue:
        def one(pair, carry):
            return advance(iteration, objective_of(pair), carry)

        moved = jax.vmap(one)(queue.slot_pairs, queue.slots)
        active = queue.slot_pairs < num_pairs
        slots = jax.vmap(select_tree)(active, moved, queue.slots)
        return settle(eqx.tree_at(lambda q: q.slots, queue, slots))

    first_pairs = jnp.where(
        jnp.arange(width, dtype=jnp.int32) < count, order[:width], num_pairs
    )
    dtype = jnp.result_type(*jtu.tree_leaves(params))

    def unsolved(first):
        return Minimisation(
            params=first,
            value=jnp.array(jnp.nan, dtype),
            num_steps=0,
            num_evaluations=0,
            result=RESULTS.max_steps_reached,
        )

    queue = _Queue(
        slot_pairs=first_pairs,
        slots=jax.vmap(load)(first_pairs),
        next=counter(jnp.minimum(width, count)),
        out=jax.vmap(unsolved)(params),
    )
    queue = jax.lax.while_loop(
        lambda q: jnp.any(q.slot_pairs < num_pairs), step, settle(queue)
    )
    return queue.out
