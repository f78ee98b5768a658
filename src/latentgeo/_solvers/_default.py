"""The default curve solver: fast where the problem is easy, robust where it is
not, chosen by the objective's structure and by how the fast attempt went."""

import equinox as eqx
import jax
from jaxtyping import PyTree

from .._checks import select_tree
from .._objective import (
    AbstractCurveObjective,
    AbstractLeastSquaresObjective,
    AbstractStochasticObjective,
)
from ._base import RESULTS, AbstractCurveSolver, Minimisation
from ._compose import WarmStart, then
from ._lattice_search import LatticeSearch
from ._levenberg_marquardt import LevenbergMarquardt
from ._optax import OptaxSolver, shared_adam


def _chord_adam() -> OptaxSolver:
    return OptaxSolver(shared_adam(5e-3), rtol=0.0, patience=10, chord_units=True)


def _robust_least_squares() -> WarmStart:
    return WarmStart(_chord_adam(), LevenbergMarquardt(), warmup_steps=30)


def _better(first: Minimisation, second: Minimisation) -> Minimisation:
    """The lower-energy of two minimisations, with both costs counted."""
    take_second = second.value < first.value
    params, value, result = select_tree(
        take_second,
        (second.params, second.value, second.result),
        (first.params, first.value, first.result),
    )
    return Minimisation(
        params=params,
        value=value,
        num_steps=first.num_steps + second.num_steps,
        num_evaluations=first.num_evaluations + second.num_evaluations,
        result=result,
    )


class Escalating(AbstractCurveSolver):
    r"""A fast solver first; if it has not converged within `fast_steps`, both a
    robust solver from the same starting curve and the fast solver continued to
    convergence, keeping the lower energy.

    Smooth decoders give smooth, nearly quadratic energies where Gauss–Newton
    methods converge in a handful of iterations; decoders with ReLU activations
    give piecewise-quadratic energies with many shallow local minima, where a
    fast method wanders between pieces and settles in whichever it meets first.
    The fast attempt's iteration count tells the two apart at no extra cost. The
    robust attempt is a second, independent start; the continued fast attempt
    covers energies where Gauss–Newton steps are what leaves a poor start (the
    RBF metric's straight line through empty space, where first-order steps
    stall). Under `jax.vmap` over
    pairs both branches run for every pair (a `lax.cond` becomes a `select`).

    **Arguments:**

    - `fast`: the first solver (structured
      [`LevenbergMarquardt`][latentgeo.LevenbergMarquardt]).
    - `robust`: the second (30 Adam steps with a learning rate of 0.5% of the
      chord $\|z_1 - z_0\|$, then structured Levenberg–Marquardt).
    - `fast_steps`: the fast solver's iteration budget (30; chosen on the
      [performance page](../performance.md)).
    """

    fast: AbstractCurveSolver = eqx.field(default_factory=LevenbergMarquardt)
    robust: AbstractCurveSolver = eqx.field(default_factory=_robust_least_squares)
    fast_steps: int = eqx.field(static=True, default=30)

    def __check_init__(self):
        if self.fast_steps < 1:
            raise ValueError(f"`fast_steps` must be >= 1, got {self.fast_steps}.")

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        first = self.fast.minimise(objective, params, min(self.fast_steps, max_steps))

        def escalate(first: Minimisation) -> Minimisation:
            restarted = self.robust.minimise(objective, params, max_steps)
            continued = self.fast.minimise(objective, first.params, max_steps)
            return _better(then(first, continued), restarted)

        return jax.lax.cond(
            first.result == RESULTS.successful, lambda m: m, escalate, first
        )


def _robust_generic() -> WarmStart:
    return WarmStart(_chord_adam(), OptaxSolver(), warmup_steps=30)


class AutoSolver(AbstractCurveSolver):
    r"""`geodesic`'s default: a solver chosen by the structure of the objective.

    - A Monte Carlo energy: the paper's Adam
      ([`OptaxSolver.paper_adam`][latentgeo.OptaxSolver.paper_adam]), the only
      kind that tolerates noise.
    - A sum of squares (pull-back metrics with `ExpectedEnergy` or the exact
      `DecorrelatedEnergy`) in at most `max_gauss_newton_dim` latent
      dimensions: [`Escalating`][latentgeo.Escalating] (structured
      Levenberg–Marquardt, then a robust restart if needed), checked in two
      dimensions against the shortest path on a lattice
      ([`LatticeSearch`][latentgeo.LatticeSearch]), which solves again from
      that path when it takes a shorter route. A Gauss–Newton
      iteration costs $d$ JVPs per curve point and member, so in more
      dimensions a gradient (one reverse pass) is cheaper (the threshold is
      chosen on the [performance page](../performance.md#latent-dimension)).
    - Otherwise: `gradient_solver` (30 chord-scaled Adam steps, then L-BFGS).

    Why these choices, and how they compare, is measured on the
    [performance page](../performance.md).

    **Arguments:**

    - `least_squares`: the solver for sums of squares in few dimensions.
    - `gradient_solver`: the solver for everything else deterministic.
    - `stochastic`: the solver for Monte Carlo energies.
    - `max_gauss_newton_dim`: the largest latent dimension given to
      `least_squares` (2).
    """

    least_squares: AbstractCurveSolver = eqx.field(
        default_factory=lambda: LatticeSearch(Escalating())
    )
    gradient_solver: AbstractCurveSolver = eqx.field(default_factory=_robust_generic)
    stochastic: AbstractCurveSolver = eqx.field(default_factory=OptaxSolver.paper_adam)
    max_gauss_newton_dim: int = eqx.field(static=True, default=2)

    def choose(self, objective: AbstractCurveObjective) -> AbstractCurveSolver:
        """The solver this strategy uses for `objective` (decided at trace time)."""
        if isinstance(objective, AbstractStochasticObjective):
            return self.stochastic
        latent_dim = objective.z0.shape[-1]
        if (
            isinstance(objective, AbstractLeastSquaresObjective)
            and latent_dim <= self.max_gauss_newton_dim
        ):
            return self.least_squares
        return self.gradient_solver

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        return self.choose(objective).minimise(objective, params, max_steps)
