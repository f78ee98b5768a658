r"""A first-order solver run in coordinates where the energy's Gauss–Newton matrix
at the start is the identity.

The spline energy of a curve in $d$ latent dimensions is badly conditioned in
two ways at once: along the curve (a spline's stiffness grows with its number
of segments) and across latent directions (a VAE leaves some directions nearly
unused, so the metric's eigenvalues span orders of magnitude). L-BFGS learns
only a few curvature pairs, and on such problems in 50 dimensions it needs
hundreds of iterations. One Gauss–Newton matrix $H$ at the start, factorised
as $H = L L^\top$, removes both: with $\theta = \theta_0 + L^{-\top} q$ the
energy's Gauss–Newton matrix in $q$ is the identity at $q = 0$, and the
first-order solver works on what remains (how the metric changes along the
way).
"""

import equinox as eqx
import jax.numpy as jnp
import jax.scipy as jsp
from jaxtyping import Array, Float, Int, PyTree

from .._metric import AbstractMetric
from .._objective import AbstractCurveObjective, AbstractLeastSquaresObjective
from ._base import AbstractCurveSolver, Minimisation
from ._gauss_newton import gauss_newton_system
from ._optax import OptaxSolver


class _Reparametrised(AbstractCurveObjective):
    """`objective` as a function of `q`, `(n + 1, d)`, with the parameters
    `origin + unflatten(factor^{-T} q)`."""

    objective: AbstractCurveObjective
    origin: Float[Array, "num_params d"]
    factor: Float[Array, "size size"]  # lower Cholesky factor of H

    @property
    def metric(self) -> AbstractMetric:
        return self.objective.metric

    @property
    def z0(self) -> Float[Array, " d"]:
        return self.objective.z0

    @property
    def z1(self) -> Float[Array, " d"]:
        return self.objective.z1

    @property
    def times(self) -> Float[Array, " num_points"]:
        return self.objective.times

    def params_of(
        self, q: Float[Array, "num_params d"]
    ) -> Float[Array, "num_params d"]:
        """The spline parameters at `q`."""
        step = jsp.linalg.solve_triangular(
            self.factor, q.reshape(-1), trans="T", lower=True
        )
        return self.origin + step.reshape(self.origin.shape)

    def points(
        self, params: Float[Array, "num_params d"]
    ) -> Float[Array, "num_points d"]:
        return self.objective.points(self.params_of(params))

    def __call__(
        self, params: Float[Array, "num_params d"], step: Int[Array, ""]
    ) -> Float[Array, ""]:
        return self.objective(self.params_of(params), step)


class Preconditioned(AbstractCurveSolver):
    r"""`solver` run in coordinates preconditioned by the Gauss–Newton matrix of
    the energy at the starting curve.

    Costs one Gauss–Newton matrix ($d$ JVPs per curve point and member, counted
    as one evaluation) and one Cholesky factorisation of size $(n + 1) d$, then
    `solver`'s iterations at their usual cost. Building the matrix holds the
    features' Jacobians at every curve point, $(T + 1) d F$ numbers per pair
    ($F$ features: members times data dimensions), which bounds how many pairs
    a lockstep batch can take. Objectives that are not sums of squares go to
    `solver` unchanged, and so do starts where the matrix has no factor (a
    metric that is zero or not finite there). Measured against L-BFGS without
    it on the [performance page](../performance.md#latent-dimension).

    **Arguments:**

    - `solver`: the first-order solver (L-BFGS, `OptaxSolver()`).
    - `damping`: added to the matrix's diagonal, relative to its mean diagonal
      entry, so that directions the energy ignores (unused latent directions)
      keep a bounded step (1e-3).
    """

    solver: AbstractCurveSolver = eqx.field(default_factory=OptaxSolver)
    damping: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self):
        if not self.damping > 0:
            raise ValueError(f"`damping` must be positive, got {self.damping}.")

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        if not isinstance(objective, AbstractLeastSquaresObjective):
            return self.solver.minimise(objective, params, max_steps)
        hessian = gauss_newton_system(objective, params).hessian
        eye = jnp.eye(hessian.shape[0], dtype=hessian.dtype)
        shift = self.damping * jnp.mean(jnp.diag(hessian))
        factor = jnp.linalg.cholesky(hessian + shift * eye)
        # A metric that vanishes at the start (zero matrix) or is not finite
        # there has no factor: the raw parameters are used as they are.
        factor = jnp.where(jnp.all(jnp.isfinite(factor)), factor, eye)
        reparametrised = _Reparametrised(objective, params, factor)
        inner = self.solver.minimise(reparametrised, jnp.zeros_like(params), max_steps)
        return Minimisation(
            params=reparametrised.params_of(inner.params),
            value=inner.value,
            num_steps=inner.num_steps,
            num_evaluations=inner.num_evaluations + 1,
            result=inner.result,
        )
