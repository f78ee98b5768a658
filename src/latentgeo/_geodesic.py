"""Shortest paths: minimise a curve energy over cubic splines."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

from ._checks import checked_point
from ._curve import CubicSpline
from ._energy import AbstractEnergy, DecorrelatedEnergy, ExpectedEnergy
from ._length_gradient import solved_length
from ._metric import AbstractMetric
from ._solvers import RESULTS, AbstractCurveSolver, AutoSolver

LENGTH_POINTS = 1025
"""Points (1024 segments) at which `GeodesicResult.length` is measured."""


class GeodesicResult(eqx.Module):
    """The outcome of [`geodesic`][latentgeo.geodesic].

    Under `jax.vmap` over pairs every field gains a leading pair axis.

    **Attributes:**

    - `curve`: the [`CubicSpline`][latentgeo.CubicSpline] found; `curve(t)` for
      `t` of shape `(n,)` gives points `(n, d)`.
    - `length`: the metric length of `curve`, measured on `LENGTH_POINTS = 1025`
      uniformly spaced points, whatever objective found it; NaN if the metric is
      NaN or infinite anywhere on them (and `result` is then not successful).
      Differentiable with respect to the end points and the metric's parameters
      (see [`geodesic`][latentgeo.geodesic]).
    - `energy`: the objective the solver minimised, at `curve`, on the solver's
      grid of `num_points`; NaN if it was never finite.
    - `num_steps`: solver iterations.
    - `num_evaluations`: evaluations of the energy with its derivatives on the
      whole curve (the unit of work; line-search trials included).
    - `result`: a [`RESULTS`][latentgeo.RESULTS] item; `converged` is
      `result == RESULTS.successful`.
    """

    curve: CubicSpline
    length: Float[Array, ""]
    energy: Float[Array, ""]
    num_steps: Int[Array, ""]
    num_evaluations: Int[Array, ""]
    result: RESULTS

    @property
    def converged(self) -> jax.Array:
        return self.result == RESULTS.successful


def _energy_from_deprecated(energy, key) -> AbstractEnergy:
    """The energy strategy for the 0.1 spellings `energy="expected"` /
    `energy="decorrelated"` plus `key=`."""
    if isinstance(energy, AbstractEnergy):
        if key is not None:
            raise ValueError(
                "`key` is only for the deprecated `energy='decorrelated'`; pass "
                "`energy=lg.DecorrelatedEnergy(key=key)`."
            )
        return energy
    if energy not in ("expected", "decorrelated"):
        raise ValueError(
            "`energy` must be an energy strategy such as `lg.ExpectedEnergy()` or "
            f"`lg.DecorrelatedEnergy()`, got {energy!r}."
        )
    if key is not None and energy != "decorrelated":
        raise ValueError("`key` is only used by `energy='decorrelated'`.")
    replacement = (
        "lg.ExpectedEnergy()"
        if energy == "expected"
        else "lg.DecorrelatedEnergy(key=...)"
    )
    warnings.warn(
        f"`energy={energy!r}` (and `key=`) is deprecated and will be removed in "
        f"latentgeo 0.3; pass `energy={replacement}`.",
        DeprecationWarning,
        stacklevel=3,
    )
    if energy == "expected":
        return ExpectedEnergy()
    return DecorrelatedEnergy(key=key)


def resolve_options(
    solver: AbstractCurveSolver | None = None, **options
) -> tuple[AbstractCurveSolver, dict]:
    """The solver and every curve option that `geodesic` would use for these
    arguments: defaults filled in and deprecated energy spellings resolved, so
    that two spellings of the same run compare equal (resumable stores digest
    them).

    **Returns:** `(solver, options)` with `options` holding `energy`,
    `num_segments`, `num_points` and `max_steps`.
    """
    energy = _energy_from_deprecated(
        options.pop("energy", ExpectedEnergy()), options.pop("key", None)
    )
    unknown = set(options) - {"num_segments", "num_points", "max_steps"}
    if unknown:
        raise TypeError(f"Unknown geodesic options {sorted(unknown)}.")
    resolved = {"num_segments": 10, "num_points": 64, "max_steps": 1000} | options
    return (AutoSolver() if solver is None else solver), resolved | {"energy": energy}


def _frozen(tree: PyTree) -> PyTree:
    """`tree` with the gradient stopped on every array: the solver's loop is never
    differentiated (the envelope theorem makes that unnecessary)."""
    return jtu.tree_map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_inexact_array(x) else x, tree
    )


def geodesic(
    metric: AbstractMetric,
    z0: Float[ArrayLike, " d"],
    z1: Float[ArrayLike, " d"],
    *,
    init: CubicSpline | None = None,
    solver: AbstractCurveSolver | None = None,
    energy: AbstractEnergy | str = ExpectedEnergy(),
    key: PRNGKeyArray | None = None,
    num_segments: int = 10,
    num_points: int = 64,
    max_steps: int = 1000,
    throw: bool = True,
) -> GeodesicResult:
    r"""Find a geodesic from `z0` to `z1` by minimising the energy of a cubic spline.

    The curve is a [`CubicSpline`][latentgeo.CubicSpline] whose end points are
    exact by construction. Its energy, evaluated on `num_points` uniform times, is
    minimised by `solver` inside `jax.lax.while_loop`s. The solve is
    jit-compiled and can be `jax.vmap`-ed over pairs (use `throw=False` there).
    Matrix products run at full float32 precision
    (`jax.default_matmul_precision("highest")`): GPUs otherwise round them to
    about three digits, which moves curves and lengths.

    **Differentiable distances.** `jax.grad` of `geodesic(...).length` with
    respect to `z0`, `z1` and the metric's arrays (e.g. decoder weights, through
    `eqx.filter_grad`) works without differentiating through the solver's loop:
    at the energy minimiser the implicit function theorem gives the derivative
    of the curve, so the backward pass costs one Hessian of the energy over the
    spline parameters and a few gradients (the envelope theorem plus a small
    correction for the discretisation). The gradient is that of the reported
    length itself; for a Monte Carlo energy only the envelope term is used.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `z0`, `z1`: end points, shape `(d,)`.
    - `init`: a starting `CubicSpline` from `z0` to `z1` (e.g. a graph path fitted
      with `CubicSpline.fit`); its number of segments replaces `num_segments`.
      Default: the straight line.
    - `solver`: an [`AbstractCurveSolver`][latentgeo.AbstractCurveSolver];
      default [`AutoSolver`][latentgeo.AutoSolver], which chooses by the
      objective's structure (and uses the paper's Adam,
      [`OptaxSolver.paper_adam`][latentgeo.OptaxSolver.paper_adam], for a Monte
      Carlo energy). How the solvers compare is measured on the
      [performance page](../performance.md).
    - `energy`: an energy strategy: [`ExpectedEnergy`][latentgeo.ExpectedEnergy]
      (default; the metric's own energy) or
      [`DecorrelatedEnergy`][latentgeo.DecorrelatedEnergy]. The strings
      `"expected"`/`"decorrelated"` (with `key=`) of latentgeo 0.1 still work
      and warn.
    - `key`: deprecated; use `DecorrelatedEnergy(key=...)`.
    - `num_segments`: spline segments ($n + 1$ free parameters per dimension).
    - `num_points`: points at which the energy is evaluated.
    - `max_steps`: iteration cap of the solver.
    - `throw`: raise if the solver fails; otherwise report it in `result`.

    **Returns:** a [`GeodesicResult`][latentgeo.GeodesicResult]. Its `length` is
    always the metric length (`metric.curve_length` on 1025 points), comparable
    across solvers, objectives and curve sizes.

    **Raises:**

    - `ValueError` if `z0`/`z1` have the wrong shape, or the energy does not
      apply to the metric (`DecorrelatedEnergy` needs an `ExpectedMetric`).
    - A runtime error if `z0`/`z1` contain NaN/inf, or (with `throw=True`) if the
      solver fails to converge.

    **Example:**

    ```python
    metric = lg.ExpectedMetric(ens)
    res = lg.geodesic(metric, z0, z1)
    res.length, res.converged, res.curve(jnp.linspace(0, 1, 100))
    jax.grad(lambda a: lg.geodesic(metric, a, z1).length)(z0)  # (d,)
    ```
    """
    if not isinstance(metric, AbstractMetric):
        raise TypeError(f"`metric` must be an AbstractMetric, got {type(metric)}.")
    if num_points < 2:
        raise ValueError(f"`num_points` must be at least 2, got {num_points}.")
    energy = _energy_from_deprecated(energy, key)
    return _geodesic(
        metric,
        z0,
        z1,
        init=init,
        solver=solver,
        energy=energy,
        num_segments=num_segments,
        num_points=num_points,
        max_steps=max_steps,
        throw=throw,
    )


@eqx.filter_jit
def _geodesic(
    metric, z0, z1, *, init, solver, energy, num_segments, num_points, max_steps, throw
) -> GeodesicResult:
    z0 = checked_point(z0, metric.latent_dim, "z0")
    z1 = checked_point(jnp.asarray(z1, z0.dtype), metric.latent_dim, "z1")
    if init is None:
        init = CubicSpline.straight(z0, z1, num_segments)
    else:
        init_ends = jnp.stack([init.z0, init.z1])
        mismatch = ~jnp.allclose(init_ends, jnp.stack([z0, z1]), rtol=1e-5, atol=1e-6)
        z0 = eqx.error_if(
            z0, mismatch, "`init` does not start at `z0` and end at `z1`."
        )
    times = jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype)
    objective = energy.objective(*_frozen((metric, z0, z1)), times)
    if solver is None:
        solver = AutoSolver()
    start = jax.lax.stop_gradient(init.params.astype(z0.dtype))
    with jax.default_matmul_precision("highest"):
        solution = solver.minimise(objective, start, max_steps)
        # From a point to itself the geodesic is the constant curve, exactly.
        same = jnp.all(z0 == z1)
        params = jax.lax.stop_gradient(solution.params)
        params = jnp.where(same, jnp.zeros_like(params), params)
        curve = CubicSpline(z0, z1, params)
        fine_times = jnp.linspace(0.0, 1.0, LENGTH_POINTS, dtype=z0.dtype)
        length = solved_length((metric, z0, z1), params, energy, times, fine_times)
        length = jnp.where(same, 0.0, length)
    # A curve that meets NaN or inf has no length: NaN, and never a success.
    finite = jnp.isfinite(length)
    length = jnp.where(finite, length, jnp.nan)
    result = RESULTS.where(same, RESULTS.successful, solution.result)
    result = RESULTS.where(finite, result, RESULTS.nonfinite)
    if throw:
        length = result.error_if(length, result != RESULTS.successful)
    return GeodesicResult(
        curve,
        length,
        solution.value,
        solution.num_steps,
        solution.num_evaluations,
        result,
    )
