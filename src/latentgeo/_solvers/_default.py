"""The default curve solver: fast where the problem is easy, robust where it is
not, chosen by the objective's structure and by how the fast attempt went."""

import equinox as eqx
from jaxtyping import PyTree

from .._objective import (
    AbstractCurveObjective,
    AbstractLeastSquaresObjective,
    AbstractStochasticObjective,
)
from ._base import AbstractCurveSolver, Minimisation
from ._compose import WarmStart
from ._escalating import Escalating
from ._lattice_search import LatticeSearch
from ._optax import OptaxSolver, chord_adam
from ._preconditioned import Preconditioned


def _robust_generic() -> WarmStart:
    return WarmStart(chord_adam(), OptaxSolver(), warmup_steps=30)


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
    - A sum of squares in more dimensions: `preconditioned`, L-BFGS in the
      coordinates that one Gauss–Newton matrix at the start makes
      well conditioned ([`Preconditioned`][latentgeo.Preconditioned]).
    - Otherwise: `gradient_solver` (30 chord-scaled Adam steps, then L-BFGS).

    Why these choices, and how they compare, is measured on the
    [performance page](../performance.md).

    **Arguments:**

    - `least_squares`: the solver for sums of squares in few dimensions.
    - `preconditioned`: the solver for sums of squares in more dimensions.
    - `gradient_solver`: the solver for everything else deterministic.
    - `stochastic`: the solver for Monte Carlo energies.
    - `max_gauss_newton_dim`: the largest latent dimension given to
      `least_squares` (2).
    """

    least_squares: AbstractCurveSolver = eqx.field(
        default_factory=lambda: LatticeSearch(Escalating())
    )
    preconditioned: AbstractCurveSolver = eqx.field(default_factory=Preconditioned)
    gradient_solver: AbstractCurveSolver = eqx.field(default_factory=_robust_generic)
    stochastic: AbstractCurveSolver = eqx.field(default_factory=OptaxSolver.paper_adam)
    max_gauss_newton_dim: int = eqx.field(static=True, default=2)

    def choose(self, objective: AbstractCurveObjective) -> AbstractCurveSolver:
        """The solver this strategy uses for `objective` (decided at trace time)."""
        if isinstance(objective, AbstractStochasticObjective):
            return self.stochastic
        if not isinstance(objective, AbstractLeastSquaresObjective):
            return self.gradient_solver
        if objective.z0.shape[-1] <= self.max_gauss_newton_dim:
            return self.least_squares
        return self.preconditioned

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        return self.choose(objective).minimise(objective, params, max_steps)
