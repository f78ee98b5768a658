"""Levenberg–Marquardt on least-squares curve objectives, with an optional
structured secant estimate of the second-order term (NL2SOL)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._checks import HIGHEST, select_tree
from .._linalg import loops_on_cpu, solve
from .._objective import AbstractCurveObjective, AbstractLeastSquaresObjective
from ._base import RESULTS, Evaluation
from ._gauss_newton import GaussNewtonSystem, gauss_newton_system
from ._iterate import AbstractIterativeSolver


def require_least_squares(objective: AbstractCurveObjective, solver: str) -> None:
    """Raise `ValueError` (at trace time) unless `objective` is a sum of squares."""
    if not isinstance(objective, AbstractLeastSquaresObjective):
        raise ValueError(
            f"{solver} needs a sum-of-squares energy: a pull-back metric with "
            "`lg.ExpectedEnergy()` or the exact `lg.DecorrelatedEnergy()`. Use "
            "`lg.OptaxSolver()` for other metrics or Monte Carlo energies."
        )


def _matvec(matrix: Array, vector: Array) -> Array:
    return jnp.matmul(matrix, vector, precision=HIGHEST)


def newton_decrement(system: GaussNewtonSystem) -> Float[Array, ""]:
    """$g^\\top H^{-1} g$: the energy a full Gauss–Newton step would remove."""
    size = system.hessian.shape[0]
    ridge = 1e-12 * jnp.trace(system.hessian) / size
    ridge = ridge + jnp.finfo(system.hessian.dtype).tiny
    g = system.gradient.reshape(-1)
    regular = system.hessian + ridge * jnp.eye(size, dtype=g.dtype)
    return jnp.dot(g, solve(regular, g), precision=HIGHEST)


def _secant_update(
    correction: Array, step: Array, old: GaussNewtonSystem, new: GaussNewtonSystem
) -> Array:
    r"""Powell's symmetric (PSB) update of the second-order estimate $S$ so that
    $(H_\text{new} + S) s = g_\text{new} - g_\text{old}$, after shrinking $S$ by
    NL2SOL's sizing factor $\min(1, |s^\top y_S| / |s^\top S s|)$ (an estimate
    that overshoots the observed curvature is scaled down first)."""
    target = (new.gradient - old.gradient).reshape(-1) - _matvec(new.hessian, step)
    curvature = jnp.dot(step, _matvec(correction, step), precision=HIGHEST)
    observed = jnp.abs(jnp.dot(step, target, precision=HIGHEST))
    sizing = jnp.where(
        jnp.abs(curvature) > observed,
        observed / jnp.where(curvature == 0, 1.0, jnp.abs(curvature)),
        1.0,
    )
    correction = sizing * correction
    residual = target - _matvec(correction, step)
    squared = jnp.maximum(jnp.dot(step, step), jnp.finfo(step.dtype).tiny)
    along = jnp.dot(residual, step, precision=HIGHEST)
    update = (jnp.outer(residual, step) + jnp.outer(step, residual)) / squared
    update = update - along * jnp.outer(step, step) / squared**2
    updated = correction + update
    return jnp.where(jnp.all(jnp.isfinite(updated)), updated, 0.0)


def _damped_step(system: GaussNewtonSystem, correction: Array, damping: Array):
    """Solve $(H + S + \\lambda\\,\\mathrm{diag}(H))\\delta = -g$ by Cholesky; where
    the corrected matrix is not positive definite, drop $S$ (plain
    Levenberg–Marquardt)."""
    hessian = system.hessian
    diagonal = jnp.diag(hessian)
    floor = 1e-9 * jnp.mean(diagonal) + jnp.finfo(hessian.dtype).tiny
    damped = hessian + damping * jnp.diag(diagonal + floor)
    return _corrected_or_plain(damped, correction, system.gradient.reshape(-1))


@loops_on_cpu
def _corrected_or_plain(damped: Array, correction: Array, gradient: Array) -> Array:
    """$-(D + S)^{-1} g$ by Cholesky where $D + S$ is positive definite, else
    $-D^{-1} g$."""
    factor = jnp.linalg.cholesky(damped + correction)
    usable = jnp.all(jnp.isfinite(factor))
    corrected = -jax.scipy.linalg.cho_solve((factor, True), gradient)
    plain = -jnp.linalg.solve(damped, gradient)
    return jnp.where(usable, corrected, plain)


class _LMState(eqx.Module):
    system: GaussNewtonSystem
    decrement: Float[Array, ""]
    damping: Float[Array, ""]
    correction: Float[Array, "size size"]


def propose(params: Array, state: _LMState) -> tuple[Array, Array]:
    """A Levenberg–Marquardt iteration's step from `params` (flat) and the trial
    point it leads to."""
    delta = _damped_step(state.system, state.correction, state.damping)
    return delta, params + delta.reshape(params.shape)


class LevenbergMarquardt(AbstractIterativeSolver[_LMState]):
    r"""Levenberg–Marquardt on the sum-of-squares energy of pull-back metrics,
    with a structured quasi-Newton correction (NL2SOL).

    Each iteration costs one forward pass plus $d$ JVPs per curve point and
    ensemble member, builds the Gauss–Newton matrix $H$ over the $(n + 1) d$
    spline parameters from the point Jacobians, and solves the damped system
    $(H + S + \lambda\,\mathrm{diag} H)\delta = -g$. A trial step is kept if it
    lowers the energy; the damping $\lambda$ then shrinks, otherwise it grows and
    the step is retried. Its fixed cost per iteration suits `jax.vmap` over
    pairs.

    Curve energies are *large-residual* problems: at a geodesic the residuals
    (the curve's steps in data space) are not small, so plain Gauss–Newton,
    which neglects the second-order term $\sum_j r_j \nabla^2 r_j$, converges
    only linearly. With `secant=True` (default) the matrix $S$ estimates that
    term from the observed change of the gradient, by Powell's symmetric update
    with NL2SOL's sizing (Dennis, Gay & Welsch 1981), which restores fast
    convergence on smooth decoders at no extra decoder evaluations; where
    $H + S$ is not positive definite the step falls back to plain
    Levenberg–Marquardt. Stops when the Newton decrement $g^\top H^{-1} g$
    falls below `rtol` times the energy. Measured against the other solvers on
    the [performance page](../performance.md).

    **Arguments:**

    - `secant`: estimate the second-order term (`True`) or use plain
      Gauss–Newton matrices (`False`).
    - `rtol`: relative Newton-decrement tolerance (1e-6; float32 resolves about
      3e-7).
    - `initial_damping`: starting $\lambda$ (1e-3).
    - `max_damping`: give up once $\lambda$ exceeds this (1e8): no step lowers
      the energy any more, which at float32 resolution near an optimum is the
      normal end; reported as converged if the decrement is below `100 * rtol`.
    """

    secant: bool = eqx.field(static=True, default=True)
    rtol: float = eqx.field(static=True, default=1e-6)
    initial_damping: float = eqx.field(static=True, default=1e-3)
    max_damping: float = eqx.field(static=True, default=1e8)

    def __check_init__(self):
        if not (self.rtol > 0 and self.initial_damping > 0 and self.max_damping > 0):
            raise ValueError(
                "`rtol`, `initial_damping` and `max_damping` must be positive."
            )

    def fresh(self, system: GaussNewtonSystem, decrement: Array) -> _LMState:
        """The state that starts a run at a point whose system is `system` (with
        `newton_decrement(system)` given as `decrement`): initial damping, no
        second-order estimate yet."""
        size = system.hessian.shape[0]
        return _LMState(
            system=system,
            decrement=decrement,
            damping=jnp.array(self.initial_damping, system.value.dtype),
            correction=jnp.zeros((size, size), system.value.dtype),
        )

    def update(
        self,
        params: Array,
        state: _LMState,
        delta: Array,
        trial: Array,
        system: GaussNewtonSystem,
        decrement: Array,
    ) -> tuple[Array, _LMState]:
        """Accept the trial point (`propose`'s step `delta` and point `trial`,
        whose system is `system` and Newton decrement `decrement`) if it lowers
        the energy, and adapt the damping and the second-order estimate: the new
        parameters and state."""
        accept = jnp.isfinite(system.value) & (system.value < state.system.value)
        pick = functools.partial(select_tree, accept)
        correction = state.correction
        if self.secant:
            correction = _secant_update(correction, delta, state.system, system)
        new_state = _LMState(
            system=pick(system, state.system),
            decrement=pick(decrement, state.decrement),
            damping=jnp.where(accept, state.damping / 3, state.damping * 4),
            correction=pick(correction, state.correction),
        )
        return pick(trial, params), new_state

    def verdict(self, state: _LMState) -> tuple[Bool[Array, ""], RESULTS]:
        """Whether the run in `state` has ended, and its outcome if so."""
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

    def init(
        self, objective: AbstractCurveObjective, params: Array
    ) -> tuple[_LMState, Evaluation]:
        require_least_squares(objective, "LevenbergMarquardt")
        system = gauss_newton_system(objective, params)
        state = self.fresh(system, newton_decrement(system))
        return state, Evaluation(params, system.value, jnp.array(1))

    def step(
        self, objective: AbstractCurveObjective, params: Array, state: _LMState
    ) -> tuple[Array, _LMState, Evaluation]:
        delta, trial = propose(params, state)
        system = gauss_newton_system(objective, trial)
        decrement = newton_decrement(system)
        params, state = self.update(params, state, delta, trial, system, decrement)
        return params, state, Evaluation(trial, system.value, jnp.array(1))

    def terminate(
        self, objective: AbstractCurveObjective, params: Array, state: _LMState
    ) -> tuple[Bool[Array, ""], RESULTS]:
        return self.verdict(state)
