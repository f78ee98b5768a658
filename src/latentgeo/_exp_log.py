r"""The logarithm map: the initial velocity of the geodesic between two points,
from the boundary-value solver ([`geodesic`][latentgeo.geodesic]), optionally
refined by shooting (damped Newton) on the exponential map."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float

from ._checks import as_float, checked_point, raise_if_failed, working_dtype
from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._energy import AbstractEnergy, ExpectedEnergy
from ._geodesic import check_settings, geodesic
from ._geodesic_ode import integrate_geodesic
from ._geometry_results import GEOMETRY_RESULTS
from ._metric import AbstractMetric
from ._solvers import AbstractCurveSolver, AutoSolver


class Shooting(eqx.Module):
    r"""Shooting refinement of [`log_map`][latentgeo.log_map]: solve
    $\exp_{z_0}(v) = z_1$ for $v$, starting from the boundary-value estimate.

    A damped Newton method (Levenberg–Marquardt, `optimistix.least_squares`)
    on the miss $\exp_{z_0}(v) - z_1$: each step integrates the geodesic
    equation once with its $d \times d$ Jacobian in $v$ (forward mode through
    the ODE solve). The integration takes `num_steps` fixed steps: an adaptive
    step makes the end point jump wherever the accepted steps change, which
    stalls Newton's method on strongly curved metrics, while a fixed grid makes
    it a smooth function of $v$. [`exp_map`][latentgeo.exp_map] of the result
    lands on `z1` up to that grid's error (measured on the
    [performance page](../performance.md#exponential-and-logarithm-maps)). The
    answer is accepted only if the end point hits `z1` (a least-squares solver
    can also stop at a non-zero minimum of the miss) and the geodesic it starts
    is as long as the boundary-value one. That test is what tells decoders apart:
    shooting needs a twice-differentiable decoder, like
    [`exp_map`][latentgeo.exp_map]; on a ReLU decoder the geodesic equation sees
    only straight lines, the shot disagrees with the boundary-value length, and
    the boundary-value estimate is kept (unless `strict`).

    **Arguments:**

    - `rtol`, `atol`: stop when the step in $v$ is below `atol + rtol * |v|`;
      accept when $\exp_{z_0}(v)$ misses `z1` by at most
      `atol + rtol * |z1 - z0|` (max norms, latent units). Default `1e-5` each.
    - `max_steps`: iterations (64).
    - `length_rtol`: the refined velocity's metric norm (the length of the
      geodesic it starts) may differ from the boundary-value length by this
      fraction (1e-2); more means the two solvers found different curves, as
      for decoders that are not twice differentiable, and is reported as a
      failure (`GEOMETRY_RESULTS.shooting_mismatch`) rather than returned.
    - `solver`: the diffrax ODE solver (`Tsit5()`).
    - `num_steps`: fixed ODE steps per integration (64).
    - `strict`: report a shot that misses `z1` or disagrees with the
      boundary-value length as a failure (`GEOMETRY_RESULTS.shooting_failed`,
      `GEOMETRY_RESULTS.shooting_mismatch`) instead of returning the
      boundary-value estimate (`False`).
    """

    rtol: float = 1e-5
    atol: float = 1e-5
    max_steps: int = 64
    length_rtol: float = 1e-2
    solver: diffrax.AbstractSolver = diffrax.Tsit5()
    num_steps: int = 64
    strict: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not (self.rtol > 0 and self.atol > 0 and self.length_rtol > 0):
            raise ValueError(
                "`rtol`, `atol` and `length_rtol` must be positive, got "
                f"{self.rtol}, {self.atol}, {self.length_rtol}."
            )
        if self.max_steps < 1 or self.num_steps < 1:
            raise ValueError("`max_steps` and `num_steps` must be at least 1.")

    def miss(self, metric: AbstractMetric, z0: Array, z1: Array, v: Array) -> Array:
        r"""$\exp_{z_0}(v) - z_1$; NaN if the integration fails (no root there)."""
        path = integrate_geodesic(
            metric,
            z0,
            v,
            jnp.ones(1, z0.dtype),
            solver=self.solver,
            stepsize_controller=diffrax.ConstantStepSize(),
            dt0=1.0 / self.num_steps,
            max_steps=self.num_steps + 2,  # room for a rounding remainder
            adjoint=diffrax.ForwardMode(),
        )
        return jnp.where(path.converged, path.points[0] - z1, jnp.nan)

    def refine(
        self, metric: AbstractMetric, z0: Array, z1: Array, v: Array, length: Array
    ) -> tuple[Array, GEOMETRY_RESULTS]:
        """Shoot from `v` (the estimate for a geodesic of `length`); returns the
        refined velocity and the outcome (`v` itself when the shot is not
        accepted, then a success unless `strict`)."""
        # optimistix keeps its trust region in JAX's default float, float64
        # under x64, which a float32 problem cannot mix with: iterate in that
        # dtype, integrate in `v`'s.
        wide = jax.dtypes.canonicalize_dtype(jnp.float64)
        solution = optx.least_squares(
            lambda velocity, _: self.miss(
                metric, z0, z1, velocity.astype(v.dtype)
            ).astype(wide),
            optx.LevenbergMarquardt(rtol=self.rtol, atol=self.atol),
            v.astype(wide),
            max_steps=self.max_steps,
            throw=False,
        )
        refined = solution.value.astype(v.dtype)
        residual = jnp.max(jnp.abs(self.miss(metric, z0, z1, refined)))
        tolerance = self.atol + self.rtol * jnp.max(jnp.abs(z1 - z0))
        hit = (solution.result == optx.RESULTS.successful) & (residual <= tolerance)
        mismatch = jnp.abs(metric.norm(z0, refined) - length)
        agrees = mismatch <= self.length_rtol * length
        if not self.strict:
            return jnp.where(hit & agrees, refined, v), GEOMETRY_RESULTS.successful
        result = GEOMETRY_RESULTS.where(
            hit,
            GEOMETRY_RESULTS.where(
                agrees,
                GEOMETRY_RESULTS.successful,
                GEOMETRY_RESULTS.shooting_mismatch,
            ),
            GEOMETRY_RESULTS.shooting_failed,
        )
        return jnp.where(hit & agrees, refined, v), result


class LogEstimate(eqx.Module):
    """`log_map` with its by-products, for callers that reuse them."""

    velocity: Float[Array, " d"]
    length: Float[Array, ""]
    curve: CubicSpline
    result: GEOMETRY_RESULTS


def initial_velocity(
    metric: AbstractMetric, curve: CubicSpline, length: Array
) -> Float[Array, " d"]:
    r"""The direction of `curve` at $t = 0$, scaled to metric norm `length`: the
    initial velocity of a constant-speed curve of that length."""
    direction = curve.derivative(jnp.zeros(1, curve.z0.dtype))[0]
    speed = metric.norm(curve.z0, direction)
    moving = speed > 0
    return direction * jnp.where(moving, length / jnp.where(moving, speed, 1.0), 0.0)


def estimate_log(
    metric: AbstractMetric,
    z0: Array,
    z1: Array,
    *,
    init: CubicSpline | None,
    solver: AbstractCurveSolver,
    energy: AbstractEnergy,
    discretisation: Discretisation,
    shooting: Shooting | None,
) -> LogEstimate:
    """The boundary-value estimate of the logarithm map, refined when asked.
    Inputs are checked by the caller; nothing throws."""
    solved = geodesic(
        metric,
        z0,
        z1,
        init=init,
        solver=solver,
        energy=energy,
        discretisation=discretisation,
        throw=False,
    )
    velocity = initial_velocity(metric, solved.curve, solved.length)
    result = GEOMETRY_RESULTS.promote(solved.result)
    if shooting is not None:
        refined, shot = shooting.refine(metric, z0, z1, velocity, solved.length)
        solved_ok = result == GEOMETRY_RESULTS.successful
        velocity = jnp.where(solved_ok, refined, velocity)
        result = GEOMETRY_RESULTS.where(solved_ok, shot, result)
    return LogEstimate(velocity, solved.length, solved.curve, result)


def log_map(
    metric: AbstractMetric,
    z0: Float[ArrayLike, " d"],
    z1: Float[ArrayLike, " d"],
    *,
    init: CubicSpline | None = None,
    solver: AbstractCurveSolver = AutoSolver(),
    energy: AbstractEnergy = ExpectedEnergy(),
    discretisation: Discretisation = Discretisation(),
    shooting: Shooting | None = Shooting(),
    throw: bool = True,
) -> Float[Array, " d"]:
    r"""The logarithm map $\log_{z_0}(z_1)$: the initial velocity of the
    constant-speed geodesic from `z0` that reaches `z1` at $t = 1$.

    [`geodesic`][latentgeo.geodesic] solves the boundary-value problem; the
    spline's direction at $t = 0$, scaled so that `metric.norm(z0, v)` equals
    the geodesic's length, is the estimate (the spline's own speed at $t = 0$ is
    less accurate than its length). By default a damped Newton method on
    [`exp_map`][latentgeo.exp_map] ([`Shooting`][latentgeo.Shooting]) then
    makes $\exp_{z_0}(v) = z_1$ hold to the shooting tolerance where the
    decoder is twice differentiable, and the boundary-value estimate is kept
    where it is not (ReLU decoders). The accuracy and cost of both are measured
    on the [performance page](../performance.md#exponential-and-logarithm-maps).
    Jit-compiled and `jax.vmap`-able (use `throw=False` there).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `z0`, `z1`: the end points, shape `(d,)`.
    - `init`, `solver`, `energy`, `discretisation`: the boundary-value solve,
      as for [`geodesic`][latentgeo.geodesic].
    - `shooting`: a [`Shooting`][latentgeo.Shooting] refinement (default
      `Shooting()`), or `None` for the boundary-value estimate alone (cheaper,
      about 1e-3 relative error on smooth metrics).
    - `throw`: raise if the geodesic solve or the shooting fails; otherwise a
      failure returns NaN.

    **Returns:** $v$, shape `(d,)`, with `metric.norm(z0, v)` the geodesic
    distance found.

    **Raises:** `TypeError` for arguments not of their kind; `ValueError` for
    shapes other than `(d,)`; a runtime error if `z0`/`z1` contain NaN/inf, or
    (with `throw=True`) if a solve fails.

    **Example:**

    ```python
    v = lg.log_map(metric, z0, z1)
    metric.norm(z0, v)                       # the geodesic distance
    lg.exp_map(metric, z0, v)                # z1
    lg.log_map(metric, z0, z1, shooting=None)  # the boundary-value estimate
    ```
    """
    check_settings(metric, solver, energy, discretisation)
    if shooting is not None and not isinstance(shooting, Shooting):
        raise TypeError(
            f"`shooting` must be a Shooting or None, got {type(shooting).__name__}."
        )
    return _log_map(
        metric, z0, z1, init, solver, energy, discretisation, shooting, throw
    )


@eqx.filter_jit
def _log_map(metric, z0, z1, init, solver, energy, discretisation, shooting, throw):
    dtype = working_dtype(metric, as_float(z0).dtype)
    z0 = checked_point(z0, metric.latent_dim, "z0", dtype)
    z1 = checked_point(z1, metric.latent_dim, "z1", dtype)
    with jax.default_matmul_precision("highest"):
        estimate = estimate_log(
            metric,
            z0,
            z1,
            init=init,
            solver=solver,
            energy=energy,
            discretisation=discretisation,
            shooting=shooting,
        )
    converged = estimate.result == GEOMETRY_RESULTS.successful
    velocity = jnp.where(converged, estimate.velocity, jnp.nan)
    return raise_if_failed(throw, velocity, estimate.result, converged)
