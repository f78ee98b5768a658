r"""The geodesic equation and the exponential map: initial-value problems.

A geodesic $\gamma$ with $\gamma(0) = z_0$, $\gamma'(0) = v$ solves
$\gamma'' = a(\gamma, \gamma')$; $\exp_{z_0}(v) = \gamma(1)$. The acceleration
$a$ comes from autodiff of the metric (below); the ODE is integrated by diffrax
with an adaptive step.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from ._checks import (
    HIGHEST,
    as_float,
    checked_point,
    raise_if_failed,
    working_dtype,
)
from ._geometry_results import GEOMETRY_RESULTS
from ._linalg import positive_definite_solve
from ._metric import AbstractMetric, AbstractPullbackMetric, check_metric


def _pullback_force(
    metric: AbstractPullbackMetric, z: Array, v: Array
) -> tuple[Array, Array]:
    """$G(z)$ and $J_e^\top D^2 e(z)[v, v]$, from forward-mode derivatives only."""
    jac_t = metric.jacobian_transpose(z)  # (d, D): d JVPs

    def velocity_image(y):
        return jax.jvp(metric.embed, (y,), (v,))[1]

    second = jax.jvp(velocity_image, (z,), (v,))[1]  # D^2 e(z)[v, v], a JVP of a JVP
    tensor = jnp.matmul(jac_t, jac_t.T, precision=HIGHEST)
    return tensor, jnp.matmul(jac_t, second, precision=HIGHEST)


def _tensor_force(metric: AbstractMetric, z: Array, v: Array) -> tuple[Array, Array]:
    r"""$G(z)$ and $\Gamma(z)[v, v]$ lowered: $(\partial_v G) v - \frac12
    \nabla_z (v^\top G v)$, from forward-mode derivatives of `metric.tensor`."""
    tensor, directional = jax.jvp(metric.tensor, (z,), (v,))  # G, dG[v]

    def quadratic(y):
        return jnp.dot(v, jnp.dot(metric.tensor(y), v, precision=HIGHEST))

    gradient = jax.jacfwd(quadratic)(z)  # d JVPs
    return tensor, jnp.dot(directional, v, precision=HIGHEST) - 0.5 * gradient


def geodesic_acceleration(
    metric: AbstractMetric, z: Float[Array, " d"], v: Float[Array, " d"]
) -> Float[Array, " d"]:
    r"""The acceleration $\gamma''$ of the geodesic through `z` with velocity `v`.

    The geodesic equation $\gamma''^k = -\Gamma^k_{ij} \gamma'^i \gamma'^j$, solved
    for $\gamma''$ with the metric tensor (a Cholesky solve):

    - for an [`AbstractPullbackMetric`][latentgeo.AbstractPullbackMetric] with
      embedding $e$: $\gamma'' = -G^{-1} J_e^\top D^2 e(z)[v, v]$, where the
      second directional derivative $D^2 e(z)[v, v]$ is a JVP of a JVP and
      $J_e^\top$ takes $d$ JVPs. For an
      [`ExpectedMetric`][latentgeo.ExpectedMetric] this is
      $-G^{-1} \frac1K \sum_k J_k^\top D^2 f_k(z)[v, v]$. No $D \times d$
      Jacobian is formed in reverse mode, and no third-order tensor.
    - for any other metric (e.g. an
      [`AbstractTensorMetric`][latentgeo.AbstractTensorMetric]): the
      Euler–Lagrange form $G \gamma'' = \frac12 \nabla_z (v^\top G v) -
      (\partial_v G) v$, with $\partial_v G$ one JVP of `tensor` and the
      gradient $d$ JVPs.

    The decoder must be twice differentiable: a ReLU network has zero second
    derivative almost everywhere and a metric that jumps at its kinks, so the
    ODE sees straight lines (see [Moving in latent space](../moving.md)).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `z`: the point, shape `(d,)`.
    - `v`: the velocity, shape `(d,)`.

    **Returns:** $\gamma''$, shape `(d,)`; NaN/inf where $G(z)$ is singular.

    **Example:**

    ```python
    lg.geodesic_acceleration(metric, z, v)  # (d,)
    ```
    """
    check_metric(metric)
    metric.check_point(z, "z")
    metric.check_point(v, "v")
    if isinstance(metric, AbstractPullbackMetric):
        tensor, force = _pullback_force(metric, z, v)
    else:
        tensor, force = _tensor_force(metric, z, v)
    return -positive_definite_solve(tensor, force)


def _vector_field(t, state, metric):
    del t
    z, v = state
    return v, geodesic_acceleration(metric, z, v)


class ExpPath(eqx.Module):
    r"""The geodesic $\gamma(t) = \exp_{z_0}(t v)$ sampled at `times`, from
    [`exp_path`][latentgeo.exp_path].

    Under `jax.vmap` every field gains a leading axis.

    **Attributes:**

    - `times`: `(n,)` uniform times in $[0, 1]$.
    - `points`: `(n, d)` positions $\gamma(t_i)$; `points[-1]` is
      $\exp_{z_0}(v)$.
    - `velocities`: `(n, d)` velocities $\gamma'(t_i)$; their metric norm is
      constant along a geodesic (a check of the integration).
    - `num_steps`: accepted and rejected ODE steps.
    - `result`: a [`GEOMETRY_RESULTS`][latentgeo.GEOMETRY_RESULTS] item;
      `converged` is `result == GEOMETRY_RESULTS.successful`.
    """

    times: Float[Array, " n"]
    points: Float[Array, "n d"]
    velocities: Float[Array, "n d"]
    num_steps: Int[Array, ""]
    result: GEOMETRY_RESULTS

    @property
    def converged(self) -> jax.Array:
        return self.result == GEOMETRY_RESULTS.successful


def integrate_geodesic(
    metric: AbstractMetric,
    z0: Array,
    v: Array,
    times: Array,
    *,
    solver: diffrax.AbstractSolver,
    stepsize_controller: diffrax.AbstractStepSizeController,
    dt0: float | None,
    max_steps: int,
    adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint(),
) -> ExpPath:
    """Integrate the geodesic equation from `(z0, v)` and save at `times` (ending
    at 1). No input checks and no `throw`: the public functions do those."""
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(_vector_field),
        solver,
        t0=0.0,
        t1=1.0,
        dt0=dt0,
        y0=(z0, v),
        args=metric,
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=stepsize_controller,
        adjoint=adjoint,
        max_steps=max_steps,
        throw=False,
    )
    points, velocities = solution.ys
    finite = jnp.all(jnp.isfinite(points)) & jnp.all(jnp.isfinite(velocities))
    failure = GEOMETRY_RESULTS.where(
        solution.result == diffrax.RESULTS.max_steps_reached,
        GEOMETRY_RESULTS.ode_max_steps,
        GEOMETRY_RESULTS.ode_failed,
    )
    ok = (solution.result == diffrax.RESULTS.successful) & finite
    result = GEOMETRY_RESULTS.where(ok, GEOMETRY_RESULTS.successful, failure)
    return ExpPath(times, points, velocities, solution.stats["num_steps"], result)


def adaptive(rtol: float, atol: float, max_steps: int) -> dict:
    """Options of `integrate_geodesic` for an adaptive step (`exp_map`'s)."""
    if rtol <= 0 or atol <= 0:
        raise ValueError(f"`rtol` and `atol` must be positive, got {rtol}, {atol}.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1, got {max_steps}.")
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    return dict(stepsize_controller=controller, dt0=None, max_steps=max_steps)


def _checked_start(metric, z0, v) -> tuple[Array, Array]:
    check_metric(metric)
    dtype = working_dtype(metric, as_float(z0).dtype)
    z0 = checked_point(z0, metric.latent_dim, "z0", dtype)
    return z0, checked_point(v, metric.latent_dim, "v", dtype)


@eqx.filter_jit
def exp_path(
    metric: AbstractMetric,
    z0: Float[ArrayLike, " d"],
    v: Float[ArrayLike, " d"],
    *,
    num_points: int = 65,
    solver: diffrax.AbstractSolver = diffrax.Tsit5(),
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 4096,
    throw: bool = True,
) -> ExpPath:
    r"""The geodesic from `z0` with initial velocity `v`, sampled on $[0, 1]$.

    Integrates the geodesic equation $\gamma'' = $
    [`geodesic_acceleration`][latentgeo.geodesic_acceleration]$(\gamma,
    \gamma')$ with diffrax, an adaptive step (`diffrax.PIDController(rtol,
    atol)`) and the state $(\gamma, \gamma')$. Jit-compiled, `jax.vmap`-able
    (use `throw=False` there) and differentiable in reverse mode.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `z0`: start point, shape `(d,)`.
    - `v`: initial velocity, shape `(d,)`; its metric norm is the length of the
      path.
    - `num_points`: uniform times in $[0, 1]$ at which the path is saved (65).
    - `solver`: a diffrax solver with an error estimate (default `Tsit5()`).
    - `rtol`, `atol`: the step-size controller's tolerances (1e-6); the end
      point's error follows them (measured on
      the [performance page](../performance.md#exponential-and-logarithm-maps)).
    - `max_steps`: cap on ODE steps (4096).
    - `throw`: raise if the integration fails; otherwise report it in `result`.

    **Returns:** an [`ExpPath`][latentgeo.ExpPath].

    **Raises:** `ValueError` for shapes other than `(d,)` or bad options; a
    runtime error if `z0`/`v` contain NaN/inf, or (with `throw=True`) if the
    integration fails (e.g. `max_steps`, a singular metric).

    **Example:**

    ```python
    path = lg.exp_path(metric, z0, v, num_points=33)
    path.points  # (33, d), from z0 to exp_map(metric, z0, v)
    ```
    """
    if num_points < 2:
        raise ValueError(f"`num_points` must be at least 2, got {num_points}.")
    z0, v = _checked_start(metric, z0, v)
    times = jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype)
    with jax.default_matmul_precision("highest"):
        path = integrate_geodesic(
            metric,
            z0,
            v,
            times,
            solver=solver,
            **adaptive(rtol, atol, max_steps),
        )
    points = raise_if_failed(throw, path.points, path.result, path.converged)
    return eqx.tree_at(lambda p: p.points, path, points)


@eqx.filter_jit
def exp_map(
    metric: AbstractMetric,
    z0: Float[ArrayLike, " d"],
    v: Float[ArrayLike, " d"],
    *,
    solver: diffrax.AbstractSolver = diffrax.Tsit5(),
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 4096,
    throw: bool = True,
) -> Float[Array, " d"]:
    r"""The exponential map $\exp_{z_0}(v)$: follow the geodesic from `z0` with
    initial velocity `v` for unit time.

    The end point of [`exp_path`][latentgeo.exp_path] (same arguments, no
    intermediate points saved). The geodesic has constant speed, so
    $\exp_{z_0}(v)$ lies at distance $\|v\|_{G(z_0)}$ from `z0` along it (the
    geodesic distance while the geodesic is the shortest path).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric]; the decoder
      must be twice differentiable (smooth activations, not ReLU: see
      [`geodesic_acceleration`][latentgeo.geodesic_acceleration]).
    - `z0`: start point, shape `(d,)`.
    - `v`: initial velocity, shape `(d,)`.
    - `solver`, `rtol`, `atol`, `max_steps`, `throw`: as for `exp_path`.

    **Returns:** the end point, shape `(d,)`. With `throw=False` a failed
    integration returns NaN (check `exp_path(...).result` for the reason).

    **Raises:** as for `exp_path`.

    **Example:**

    ```python
    z1 = lg.exp_map(metric, z0, v)
    jax.vmap(lambda v: lg.exp_map(metric, z0, v, throw=False))(velocities)
    ```
    """
    z0, v = _checked_start(metric, z0, v)
    with jax.default_matmul_precision("highest"):
        path = integrate_geodesic(
            metric,
            z0,
            v,
            jnp.ones(1, z0.dtype),
            solver=solver,
            **adaptive(rtol, atol, max_steps),
        )
    end = jnp.where(path.converged, path.points[0], jnp.nan)
    return raise_if_failed(throw, end, path.result, path.converged)
