r"""The Fréchet (Karcher) mean: the point minimising the weighted sum of squared
geodesic distances, by Riemannian gradient descent with logarithm maps, an
iteration run by the library's one loop (`iterative_solve`)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ._checks import as_float, checked_point, raise_if_failed, select_tree
from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._energy import AbstractEnergy, ExpectedEnergy
from ._exp_log import LogEstimate, Shooting, estimate_log
from ._geodesic import check_settings
from ._geodesic_ode import adaptive, integrate_geodesic
from ._geometry_results import GEOMETRY_RESULTS
from ._metric import AbstractMetric
from ._solvers import (
    RESULTS,
    AbstractCurveSolver,
    AbstractIteration,
    AutoSolver,
    Evaluation,
    Minimisation,
    counter,
    iterative_solve,
)

# The exponential map moving the iterate, with `exp_map`'s defaults.
_EXP = dict(solver=diffrax.Tsit5(), **adaptive(rtol=1e-6, atol=1e-6, max_steps=4096))


class FrechetResult(eqx.Module):
    r"""The outcome of [`frechet_mean`][latentgeo.frechet_mean].

    **Attributes:**

    - `mean`: the mean found, shape `(d,)`.
    - `distances`: `(N,)` geodesic distances from `mean` to the points.
    - `curves`: the geodesics from `mean` to the points, a
      [`CubicSpline`][latentgeo.CubicSpline] batched over the $N$ points (e.g.
      for [`lg.plot.latents`][latentgeo.plot.latents]`(..., curves=res.curves)`).
    - `variance`: the weighted mean of the squared distances,
      $\sum_i w_i d_i^2 / \sum_i w_i$, the value minimised.
    - `gradient_norm`: $\|\sum_i w_i \log_m(x_i) / \sum_i w_i\|_{G(m)}$ at
      `mean`, zero at an exact mean.
    - `num_steps`: iterations, each one batch of $N$ geodesics (including
      trials that were dropped).
    - `result`: a [`GEOMETRY_RESULTS`][latentgeo.GEOMETRY_RESULTS] item;
      `converged` is `result == GEOMETRY_RESULTS.successful`.
    """

    mean: Float[Array, " d"]
    distances: Float[Array, " N"]
    curves: CubicSpline
    variance: Float[Array, ""]
    gradient_norm: Float[Array, ""]
    num_steps: Int[Array, ""]
    result: GEOMETRY_RESULTS

    @property
    def converged(self) -> jax.Array:
        return self.result == GEOMETRY_RESULTS.successful


class _Point(eqx.Module):
    """A candidate mean with its logarithm maps' summary."""

    mean: Array
    params: Array  # (N, num_segments + 1, d): the curves from `mean` to the points
    distances: Array
    gradient: Array
    gradient_norm: Array
    variance: Array


class _KarcherState(eqx.Module):
    best: _Point  # the last accepted candidate: never worse than earlier ones
    result: GEOMETRY_RESULTS  # the iteration's outcome once `done`
    done: Array
    step_size: Array
    steps: Array  # iterations so far: the last allowed one does not move
    # sqrt(machine epsilon) times the RMS distance from the start: the precision
    # floor of the iteration, fixed at the first step.
    floor: Array


def _checked_points(points: ArrayLike, latent_dim: int) -> Array:
    points = as_float(points)
    if points.ndim != 2 or points.shape[1] != latent_dim or points.shape[0] < 1:
        raise ValueError(
            f"`points` has shape {points.shape}, expected (N, {latent_dim}) with "
            "N >= 1."
        )
    return eqx.error_if(
        points, ~jnp.all(jnp.isfinite(points)), "`points` contains NaN or inf."
    )


def _checked_weights(weights: ArrayLike | None, num_points: int, dtype) -> Array:
    if weights is None:
        return jnp.ones(num_points, dtype)
    weights = jnp.asarray(weights, dtype)
    if weights.shape != (num_points,):
        raise ValueError(
            f"`weights` has shape {weights.shape}, expected ({num_points},), one "
            "per point."
        )
    bad = ~jnp.all(jnp.isfinite(weights)) | jnp.any(weights < 0)
    weights = eqx.error_if(weights, bad, "`weights` must be finite and >= 0.")
    return eqx.error_if(
        weights, jnp.sum(weights) <= 0, "`weights` must not all be zero."
    )


def _first_failure(results: GEOMETRY_RESULTS, ok: Array) -> GEOMETRY_RESULTS:
    """The outcome of the first point whose geodesic failed (a batched item)."""
    index = jnp.argmax(~ok)
    return jtu.tree_map(lambda value: value[index], results)


class _Variance(eqx.Module):
    """The objective: the weighted variance of `points` about a mean, computed by
    one `jax.vmap`-ed batch of logarithm maps (geodesics) from the mean."""

    metric: AbstractMetric
    points: Array
    weights: Array
    shooting: Shooting | None
    solver: AbstractCurveSolver
    energy: AbstractEnergy
    discretisation: Discretisation

    def evaluate(self, mean: Array, params: Array) -> tuple[_Point, LogEstimate]:
        """The candidate `mean`, its curves started from `params`."""

        def log_to(point, warm):
            return estimate_log(
                self.metric,
                mean,
                point,
                init=CubicSpline(mean, point, warm),
                solver=self.solver,
                energy=self.energy,
                discretisation=self.discretisation,
                shooting=self.shooting,
            )

        logs = jax.vmap(log_to)(self.points, params)
        total = jnp.sum(self.weights)
        gradient = jnp.sum(self.weights[:, None] * logs.velocity, axis=0) / total
        variance = jnp.sum(self.weights * logs.length**2) / total
        point = _Point(
            mean,
            logs.curve.params,
            logs.length,
            gradient,
            self.metric.norm(mean, gradient),
            variance,
        )
        return point, logs


class _Karcher(AbstractIteration[_Variance, _KarcherState]):
    """The Karcher iteration on the library's loop. Each step evaluates the trial
    mean (the loop's `params`), applies the convergence test, and moves the
    next trial from the best candidate by the exponential map, with a step size
    that halves whenever a trial lowers neither the variance nor the gradient
    norm. That acceptance is not the loop's lowest-value rule, so the state keeps
    its own best, which `postprocess` reports."""

    step_size: float
    rtol: float
    atol: float
    max_steps: int = eqx.field(static=True)

    def init(
        self, objective: _Variance, params: Array
    ) -> tuple[_KarcherState, Evaluation]:
        num_points, d = objective.points.shape
        num_params = objective.discretisation.num_segments + 1
        unknown = _Point(
            mean=params,
            params=jnp.zeros((num_points, num_params, d), params.dtype),
            distances=jnp.full(num_points, jnp.nan, params.dtype),
            gradient=jnp.zeros_like(params),
            gradient_norm=jnp.asarray(jnp.inf, params.dtype),
            variance=jnp.asarray(jnp.inf, params.dtype),
        )
        state = _KarcherState(
            best=unknown,
            result=GEOMETRY_RESULTS.successful,
            done=jnp.asarray(False),
            step_size=jnp.asarray(self.step_size, params.dtype),
            steps=counter(0),
            floor=jnp.zeros((), params.dtype),
        )
        return state, Evaluation(params, jnp.asarray(jnp.inf, params.dtype), 0)

    def step(
        self, objective: _Variance, params: Array, state: _KarcherState
    ) -> tuple[Array, _KarcherState, Evaluation]:
        candidate, logs = objective.evaluate(params, state.best.params)
        rms = jnp.sqrt(candidate.variance)
        floor = jnp.where(
            state.steps == 0, jnp.sqrt(jnp.finfo(rms.dtype).eps) * rms, state.floor
        )
        # A solve that failed on a curve shorter than the floor (the mean is on
        # top of that point, where float energies are noise) is no failure: the
        # geodesic distance is at most that curve's length.
        finite = jnp.all(jnp.isfinite(logs.velocity), axis=1)
        negligible = finite & (logs.length <= floor)
        ok = (logs.result == GEOMETRY_RESULTS.successful) | negligible
        solved = jnp.all(ok)
        tolerance = self.rtol * rms + self.atol + floor
        converged = solved & (candidate.gradient_norm <= tolerance)
        # Far from the mean the variance shows an overshoot; near it the
        # variance's change is below the lengths' accuracy, the gradient's not.
        improved = solved & (
            (candidate.variance <= state.best.variance)
            | (candidate.gradient_norm <= state.best.gradient_norm)
        )
        best = select_tree(improved | converged, candidate, state.best)
        step_size = jnp.where(improved, state.step_size, 0.5 * state.step_size)
        # The last allowed iteration does not move: `best` is then what it
        # returns, with its own distances, curves and gradient.
        move = solved & ~converged & (state.steps + 1 < self.max_steps)
        trial, exp_result = _move(objective.metric, best, step_size, move)
        exp_failed = exp_result != GEOMETRY_RESULTS.successful
        state = _KarcherState(
            best=best,
            result=GEOMETRY_RESULTS.where(
                solved, exp_result, _first_failure(logs.result, ok)
            ),
            done=converged | ~solved | exp_failed,
            step_size=step_size,
            steps=state.steps + 1,
            floor=floor,
        )
        value = jnp.where(solved, candidate.variance, jnp.inf)
        return trial, state, Evaluation(params, value, 1)

    def terminate(
        self, objective: _Variance, params: Array, state: _KarcherState
    ) -> tuple[Bool[Array, ""], RESULTS]:
        """Stopped by the iteration's own test: the loop's `successful`, the
        Karcher outcome (a failed geodesic included) in `state.result`."""
        return state.done, RESULTS.successful

    def postprocess(
        self, objective: _Variance, minimisation: Minimisation, state: _KarcherState
    ) -> Minimisation:
        """The last accepted candidate with the iteration's outcome, `(best,
        state.result)`, as `params` (not the loop's lowest variance evaluated),
        and its variance as `value`."""
        value = state.best.variance
        return eqx.tree_at(
            lambda m: (m.params, m.value),
            minimisation,
            (
                (state.best, state.result),
                jnp.where(jnp.isfinite(value), value, jnp.nan),
            ),
        )


def _move(
    metric: AbstractMetric, best: _Point, step_size: Array, move: Array
) -> tuple[Array, GEOMETRY_RESULTS]:
    r"""The next trial, $\exp_m(\tau g)$ from the best candidate where `move`,
    else its mean; and the exponential map's outcome (`successful` unless it
    moved and failed)."""
    # A zero velocity when not moving keeps the ODE trivial (no NaN to chase).
    moved = integrate_geodesic(
        metric,
        best.mean,
        jnp.where(move, step_size * best.gradient, 0.0),
        jnp.ones(1, best.mean.dtype),
        **_EXP,
    )
    failed = move & ~moved.converged
    trial = jnp.where(move & moved.converged, moved.points[0], best.mean)
    return trial, GEOMETRY_RESULTS.where(
        failed, moved.result, GEOMETRY_RESULTS.successful
    )


def frechet_mean(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    weights: Float[ArrayLike, " N"] | None = None,
    *,
    init: Float[ArrayLike, " d"] | None = None,
    step_size: float = 1.0,
    rtol: float = 1e-3,
    atol: float = 0.0,
    max_steps: int = 50,
    shooting: Shooting | None = None,
    solver: AbstractCurveSolver = AutoSolver(),
    energy: AbstractEnergy = ExpectedEnergy(),
    discretisation: Discretisation = Discretisation(),
    throw: bool = True,
) -> FrechetResult:
    r"""The weighted Fréchet (Karcher) mean of `points`:
    $\arg\min_m \sum_i w_i\, d(m, x_i)^2$.

    Riemannian gradient descent (Karcher flow): at the current mean $m$ the
    negative gradient of $\frac12\sum_i w_i d(m, x_i)^2 / \sum_i w_i$ is
    $g = \sum_i w_i \log_m(x_i) / \sum_i w_i$; the next mean is
    $\exp_m(\tau g)$. The step $\tau$ starts at `step_size` (1, the Karcher
    step, exact for a flat metric); where the metric is strongly curved a full
    step can overshoot, so a trial that lowers neither the variance
    $\sum_i w_i d(m, x_i)^2 / \sum_i w_i$ nor $\|g\|_{G(m)}$ is dropped and
    $\tau$ halved for the rest of the run. All $N$
    logarithm maps of an iteration are one `jax.vmap`-ed batch of
    [`geodesic`][latentgeo.geodesic] solves, each started from the last curve to
    the same point; the loop is the library's one iterative loop (a
    `jax.lax.while_loop`). It stops when $\|g\|_{G(m)} \le$
    `rtol` $\cdot$ RMS distance $+$ `atol` $+ \sqrt{\epsilon}\, r_0$, with
    $\epsilon$ the machine epsilon and $r_0$ the RMS distance from the start: a
    precision floor, so that points that coincide (RMS distance zero) need no
    exact hit. The gradient is only as accurate as the logarithm maps (see
    the [performance page](../performance.md#exponential-and-logarithm-maps)),
    so `rtol` should stay above their relative error. The fixed point $g = 0$ does not
    depend on the exponential map, which here only moves the iterate: for ReLU
    decoders (whose geodesic ODE sees straight lines) the mean is still right.
    Jit-compiled and `jax.vmap`-able (use `throw=False` there).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points, $N \ge 1$.
    - `weights`: `(N,)` non-negative weights, not all zero; default all ones.
    - `init`: the starting point `(d,)`; default the weighted Euclidean mean of
      `points` (pass a data point if that mean lies off the data).
    - `step_size`: the first step $\tau$ (1.0).
    - `rtol`, `atol`: the stopping test above (1e-3, 0).
    - `max_steps`: iterations (50).
    - `shooting`: a [`Shooting`][latentgeo.Shooting] to refine each logarithm
      map (more accurate gradients, where the decoder is twice
      differentiable); default `None`, the boundary-value estimates.
    - `solver`, `energy`, `discretisation`: the logarithm maps' geodesic
      solves, as for [`geodesic`][latentgeo.geodesic] (each started from the
      last curve to the same point).
    - `throw`: raise if the iteration or a geodesic fails; otherwise report it
      in `result`.

    **Returns:** a [`FrechetResult`][latentgeo.FrechetResult].

    **Raises:** `TypeError` for arguments not of their kind; `ValueError` for
    `points` not of shape `(N, d)`, `weights` not
    `(N,)`, or bad options; a runtime error for
    NaN/inf in `points`, `weights` or `init`, negative or all-zero weights, or
    (with `throw=True`) a failed geodesic or `max_steps` reached.

    **Example:**

    ```python
    res = lg.frechet_mean(metric, Z[labels == 3])
    res.mean, res.converged, res.num_steps
    ```
    """
    check_settings(metric, solver, energy, discretisation)
    if not (step_size > 0 and rtol >= 0 and atol >= 0 and max_steps >= 1):
        raise ValueError(
            "Need `step_size` > 0, `rtol` >= 0, `atol` >= 0 and `max_steps` >= 1; "
            f"got {step_size}, {rtol}, {atol}, {max_steps}."
        )
    return _frechet_mean(
        metric,
        points,
        weights,
        init,
        step_size,
        rtol,
        atol,
        max_steps,
        shooting,
        (solver, energy, discretisation),
        throw,
    )


@eqx.filter_jit
def _frechet_mean(
    metric,
    points,
    weights,
    init,
    step_size,
    rtol,
    atol,
    max_steps,
    shooting,
    settings,
    throw,
) -> FrechetResult:
    solver, energy, discretisation = settings
    points = _checked_points(points, metric.latent_dim)
    weights = _checked_weights(weights, points.shape[0], points.dtype)
    if init is None:
        start = jnp.sum(weights[:, None] * points, axis=0) / jnp.sum(weights)
    else:
        start = checked_point(
            jnp.asarray(init, points.dtype), metric.latent_dim, "init"
        )
    objective = _Variance(
        metric, points, weights, shooting, solver, energy, discretisation
    )
    karcher = _Karcher(step_size, rtol, atol, max_steps)
    with jax.default_matmul_precision("highest"):
        minimisation = iterative_solve(karcher, objective, start, max_steps)
    best, outcome = minimisation.params
    result = GEOMETRY_RESULTS.where(
        minimisation.result == RESULTS.max_steps_reached,
        GEOMETRY_RESULTS.mean_max_steps,
        outcome,
    )
    mean = raise_if_failed(
        throw, best.mean, result, result == GEOMETRY_RESULTS.successful
    )
    curves = CubicSpline(jnp.broadcast_to(best.mean, points.shape), points, best.params)
    return FrechetResult(
        mean,
        best.distances,
        curves,
        best.variance,
        best.gradient_norm,
        minimisation.num_steps,
        result,
    )
