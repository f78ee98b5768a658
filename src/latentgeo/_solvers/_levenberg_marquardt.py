"""Levenberg–Marquardt on least-squares curve objectives."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._checks import HIGHEST
from .._objective import AbstractCurveObjective, AbstractLeastSquaresObjective
from ._base import RESULTS, AbstractIterativeSolver, Evaluation
from ._gauss_newton import GaussNewtonSystem, gauss_newton_system


def require_least_squares(objective: AbstractCurveObjective, solver: str) -> None:
    """Raise `ValueError` (at trace time) unless `objective` is a sum of squares."""
    if not isinstance(objective, AbstractLeastSquaresObjective):
        raise ValueError(
            f"{solver} needs a sum-of-squares energy: a pull-back metric with "
            "`lg.ExpectedEnergy()` or the exact `lg.DecorrelatedEnergy()`. Use "
            "`lg.OptaxSolver()` for other metrics or Monte Carlo energies."
        )


def newton_decrement(system: GaussNewtonSystem) -> Float[Array, ""]:
    """$g^\\top H^{-1} g$: the energy a full Gauss–Newton step would remove."""
    size = system.hessian.shape[0]
    ridge = 1e-12 * jnp.trace(system.hessian) / size
    ridge = ridge + jnp.finfo(system.hessian.dtype).tiny
    g = system.gradient.reshape(-1)
    regular = system.hessian + ridge * jnp.eye(size, dtype=g.dtype)
    return jnp.dot(g, jnp.linalg.solve(regular, g), precision=HIGHEST)


class _LMState(eqx.Module):
    system: GaussNewtonSystem
    decrement: Float[Array, ""]
    damping: Float[Array, ""]


class LevenbergMarquardt(AbstractIterativeSolver[_LMState]):
    r"""Levenberg–Marquardt on the sum-of-squares energy of pull-back metrics.

    Each iteration costs one forward pass plus $d$ JVPs per curve point and
    ensemble member, builds the Gauss–Newton matrix over the $(n + 1) d$ spline
    parameters from the point Jacobians, and solves the damped system
    $(H + \lambda\,\mathrm{diag} H)\delta = -g$. A trial step is kept if it
    lowers the energy; the damping $\lambda$ then shrinks, otherwise it grows and
    the step is retried. Its fixed cost per iteration suits `jax.vmap` over
    pairs. Stops when the Newton decrement $g^\top H^{-1} g$ falls below `rtol`
    times the energy. Works for the expected and exact decorrelated energies of
    any [`AbstractPullbackMetric`][latentgeo.AbstractPullbackMetric]. How it
    compares with the other solvers on smooth and ReLU decoders is measured on
    the [performance page](../performance.md).

    **Arguments:**

    - `rtol`: relative Newton-decrement tolerance (1e-6; float32 resolves about
      3e-7).
    - `initial_damping`: starting $\lambda$ (1e-3).
    - `max_damping`: give up once $\lambda$ exceeds this (1e8): no step lowers
      the energy any more, which at float32 resolution near an optimum is the
      normal end; reported as converged if the decrement is below `100 * rtol`.
    """

    rtol: float = eqx.field(static=True, default=1e-6)
    initial_damping: float = eqx.field(static=True, default=1e-3)
    max_damping: float = eqx.field(static=True, default=1e8)

    def init(
        self, objective: AbstractCurveObjective, params: Array
    ) -> tuple[_LMState, Evaluation]:
        require_least_squares(objective, "LevenbergMarquardt")
        system = gauss_newton_system(objective, params)
        damping = jnp.array(self.initial_damping, system.value.dtype)
        state = _LMState(system, newton_decrement(system), damping)
        return state, Evaluation(params, system.value, jnp.array(1))

    def step(
        self, objective: AbstractCurveObjective, params: Array, state: _LMState
    ) -> tuple[Array, _LMState, Evaluation]:
        hessian = state.system.hessian
        diagonal = jnp.diag(hessian)
        floor = 1e-9 * jnp.mean(diagonal) + jnp.finfo(hessian.dtype).tiny
        damped = hessian + state.damping * jnp.diag(diagonal + floor)
        delta = -jnp.linalg.solve(damped, state.system.gradient.reshape(-1))
        trial = params + delta.reshape(params.shape)
        system = gauss_newton_system(objective, trial)
        accept = jnp.isfinite(system.value) & (system.value < state.system.value)
        pick = lambda new, old: jnp.where(accept, new, old)  # noqa: E731
        new_system = GaussNewtonSystem(
            pick(system.value, state.system.value),
            pick(system.gradient, state.system.gradient),
            pick(system.hessian, state.system.hessian),
        )
        new_state = _LMState(
            system=new_system,
            decrement=pick(newton_decrement(system), state.decrement),
            damping=jnp.where(accept, state.damping / 3, state.damping * 4),
        )
        return (
            pick(trial, params),
            new_state,
            Evaluation(trial, system.value, jnp.array(1)),
        )

    def terminate(
        self, objective: AbstractCurveObjective, params: Array, state: _LMState
    ) -> tuple[Bool[Array, ""], RESULTS]:
        value = state.system.value
        converged = state.decrement <= self.rtol * value
        stuck = state.damping > self.max_damping
        close = state.decrement <= 100 * self.rtol * value
        finite = jnp.isfinite(value)
        result = RESULTS.where(
            converged | (stuck & close),
            RESULTS.successful,
            RESULTS.where(stuck, RESULTS.stagnated, RESULTS.max_steps_reached),
        )
        result = RESULTS.where(finite, result, RESULTS.nonfinite)
        return converged | stuck | ~finite, result
