"""Iterative solvers: the protocol and the one loop that runs them.

Modelled on optimistix: an iteration supplies `init`, `step` and `terminate`
(and optionally `postprocess`), and `iterative_solve` runs them inside
`jax.lax.while_loop`, keeping the bookkeeping (best iterate, step and evaluation
counts, outcome) in one place. The protocol is generic in its objective (any
PyTree: a curve objective for the curve solvers, the points and metric for the
Fréchet mean); `AbstractIterativeSolver` is its curve-solver form. It lives
beside its loop so that the lower module, `_base`, imports nothing from here.
"""

import abc
from typing import Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._checks import select_tree
from .._objective import AbstractCurveObjective
from ._base import RESULTS, AbstractCurveSolver, Evaluation, Minimisation, counter

_Objective = TypeVar("_Objective")
_State = TypeVar("_State")


class AbstractIteration(eqx.Module, Generic[_Objective, _State]):
    """An iteration on any objective (a PyTree the iteration knows how to
    evaluate): implement `init`, `step` and `terminate`; `iterative_solve` runs
    them in one `lax.while_loop`, and `postprocess` may revise what the loop
    recorded."""

    @abc.abstractmethod
    def init(self, objective: _Objective, params: PyTree) -> tuple[_State, Evaluation]:
        """The state before the first step, and what computing it evaluated."""

    @abc.abstractmethod
    def step(
        self, objective: _Objective, params: PyTree, state: _State
    ) -> tuple[PyTree, _State, Evaluation]:
        """One iteration: the new parameters and state, and the point evaluated."""

    @abc.abstractmethod
    def terminate(
        self, objective: _Objective, params: PyTree, state: _State
    ) -> tuple[Bool[Array, ""], RESULTS]:
        """Whether to stop, and the outcome if so (cheap: reads the state)."""

    def postprocess(
        self, objective: _Objective, minimisation: Minimisation, state: _State
    ) -> Minimisation:
        """The loop's result, revised with the final state: e.g. a solver whose
        answer is not the lowest value it evaluated replaces the loop's
        best-by-value record with its own. By default `minimisation` unchanged."""
        del objective, state
        return minimisation


class AbstractIterativeSolver(
    AbstractIteration[AbstractCurveObjective, _State], AbstractCurveSolver
):
    """A curve solver defined by one iteration: implement `init`, `step` and
    `terminate` on an [`AbstractCurveObjective`][latentgeo.AbstractCurveObjective];
    `minimise` runs them in one `lax.while_loop` (the library's one loop,
    `iterative_solve`), and `postprocess` may revise what the loop recorded."""

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        return iterative_solve(self, objective, params, max_steps)


class LoopCarry(eqx.Module):
    params: PyTree
    state: PyTree
    best_params: PyTree
    best_value: Float[Array, ""]
    num_steps: Int[Array, ""]
    num_evaluations: Int[Array, ""]


def _record(carry_best, carry_value, evaluation: Evaluation):
    better = evaluation.value < carry_value
    return select_tree(
        better, (evaluation.params, evaluation.value), (carry_best, carry_value)
    )


def iterative_solve(
    solver: AbstractIteration,
    objective: PyTree,
    params: PyTree,
    max_steps: int,
) -> Minimisation:
    """Run `solver` on `objective` from `params` for at most `max_steps` steps.

    Keeps the parameters with the lowest objective value of every point the
    solver evaluated (first-order methods oscillate near the optimum), counts
    steps and evaluations, and maps the solver's verdict to a `RESULTS` item:
    the solver's own outcome when `terminate` says stop, else
    `max_steps_reached`. The solver's `postprocess` then sees that record and
    the final state.
    """

    def cond(carry: LoopCarry) -> Bool[Array, ""]:
        return ~finished(solver, objective, carry, max_steps)

    carry = start(solver, objective, params)
    final = jax.lax.while_loop(cond, lambda c: advance(solver, objective, c), carry)
    return conclude(solver, objective, final)


def start(solver: AbstractIteration, objective: PyTree, params: PyTree) -> LoopCarry:
    """The loop's carry before its first step from `params`."""
    state, first = solver.init(objective, params)
    dtype = jnp.result_type(*jtu.tree_leaves(params))
    best_params, best_value = _record(params, jnp.array(jnp.inf, dtype), first)
    return LoopCarry(
        params=params,
        state=state,
        best_params=best_params,
        best_value=best_value,
        num_steps=counter(0),
        num_evaluations=first.num_evaluations,
    )


def finished(
    solver: AbstractIteration, objective: PyTree, carry: LoopCarry, max_steps: int
) -> Bool[Array, ""]:
    """Whether the loop stops at `carry`: the solver says so, or `max_steps`."""
    done = solver.terminate(objective, carry.params, carry.state)[0]
    return done | (carry.num_steps >= max_steps)


def advance(
    solver: AbstractIteration, objective: PyTree, carry: LoopCarry
) -> LoopCarry:
    """One step of the loop, recorded."""
    params, state, evaluation = solver.step(objective, carry.params, carry.state)
    best, value = _record(carry.best_params, carry.best_value, evaluation)
    return LoopCarry(
        params=params,
        state=state,
        best_params=best,
        best_value=value,
        num_steps=carry.num_steps + 1,
        num_evaluations=carry.num_evaluations + evaluation.num_evaluations,
    )


def conclude(
    solver: AbstractIteration, objective: PyTree, final: LoopCarry
) -> Minimisation:
    """The `Minimisation` of a loop that stopped at `final`."""
    stopped, verdict = solver.terminate(objective, final.params, final.state)
    result = RESULTS.where(stopped, verdict, RESULTS.max_steps_reached)
    value = jnp.where(jnp.isfinite(final.best_value), final.best_value, jnp.nan)
    minimisation = Minimisation(
        params=final.best_params,
        value=value,
        num_steps=final.num_steps,
        num_evaluations=final.num_evaluations,
        result=result,
    )
    return solver.postprocess(objective, minimisation, final.state)
