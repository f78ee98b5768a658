"""Solvers built from other solvers."""

import equinox as eqx
from jaxtyping import PyTree

from .._objective import AbstractCurveObjective
from ._base import AbstractCurveSolver, Minimisation
from ._optax import OptaxSolver, shared_adam


def then(first: Minimisation, second: Minimisation) -> Minimisation:
    """`second`, started where `first` ended, with both costs counted."""
    return Minimisation(
        params=second.params,
        value=second.value,
        num_steps=first.num_steps + second.num_steps,
        num_evaluations=first.num_evaluations + second.num_evaluations,
        result=second.result,
    )


def _adam_warmup() -> OptaxSolver:
    return OptaxSolver(shared_adam(1e-2), rtol=0.0, patience=10)


class WarmStart(AbstractCurveSolver):
    r"""A few steps of one solver, then another from where it stopped.

    The default pairing is 100 steps of Adam (learning rate 0.01, stopping after
    10 steps without improvement) followed by L-BFGS. On decoders with ReLU
    activations the discretised energy is piecewise quadratic, and quasi-Newton
    methods started from the straight line can stop at a kink above the optimum;
    Adam's first steps, of nearly fixed size in every parameter, carry the curve
    past such kinks. The warm-up's learning rate is in latent units, so it
    assumes latent coordinates of order one. Measured against the other solvers
    on the [performance page](../performance.md).

    **Arguments:**

    - `warmup`: the first solver.
    - `solver`: the second solver (L-BFGS, `OptaxSolver()`).
    - `warmup_steps`: the first solver's step budget (100).

    `num_steps` and `num_evaluations` of the result count both; its `result` is
    the second's.
    """

    warmup: AbstractCurveSolver = eqx.field(default_factory=_adam_warmup)
    solver: AbstractCurveSolver = eqx.field(default_factory=OptaxSolver)
    warmup_steps: int = eqx.field(static=True, default=100)

    def __check_init__(self):
        if self.warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, got {self.warmup_steps}.")

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        first = self.warmup.minimise(objective, params, self.warmup_steps)
        second = self.solver.minimise(objective, first.params, max_steps)
        return then(first, second)
