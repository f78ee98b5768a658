"""Shortest paths: minimise a curve energy over cubic splines."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

from ._checks import as_float, checked_point, raise_if_failed, working_dtype
from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._energy import AbstractEnergy, ExpectedEnergy
from ._length_gradient import solved_length
from ._metric import AbstractMetric, check_metric
from ._solvers import RESULTS, AbstractCurveSolver, AutoSolver, Minimisation

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


def check_settings(
    metric: object, solver: object, energy: object, discretisation: object
) -> None:
    """Raise `TypeError` unless each argument of a geodesic solve is of its kind
    (at the entry points, before anything is traced)."""
    check_metric(metric)
    for name, value, kind in (
        ("solver", solver, AbstractCurveSolver),
        ("energy", energy, AbstractEnergy),
        ("discretisation", discretisation, Discretisation),
    ):
        if not isinstance(value, kind):
            raise TypeError(
                f"`{name}` must be a {kind.__name__}, got {type(value).__name__}."
            )


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
    solver: AbstractCurveSolver = AutoSolver(),
    energy: AbstractEnergy = ExpectedEnergy(),
    discretisation: Discretisation = Discretisation(),
    throw: bool = True,
) -> GeodesicResult:
    r"""Find a geodesic from `z0` to `z1` by minimising the energy of a cubic spline.

    The curve is a [`CubicSpline`][latentgeo.CubicSpline] whose end points are
    exact by construction. Its energy, evaluated on the `discretisation`'s
    uniform times, is minimised by `solver` inside `jax.lax.while_loop`s. The solve is
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
      with `CubicSpline.fit`); its number of segments replaces the
      discretisation's. Default: the straight line. In a two-dimensional
      latent space the default solver does not stop at the geodesic nearest
      to the start: it checks it against the shortest path on a lattice over
      the pair's neighbourhood and solves again from that path when it takes
      a shorter route ([`LatticeSearch`][latentgeo.LatticeSearch]; the
      lattice is finer the more iterations the local solve needed). On the
      benchmark models, ReLU ones included, that leaves at most about one
      pair in a hundred more than 1% above a dense-lattice pipeline;
      [`pairwise_geodesics`][latentgeo.pairwise_geodesics], which starts
      each pair from its lattice routes, is start-independent to about 0.1%
      (both measured on the
      [performance page](../performance.md#a-single-geodesic)).
      In more dimensions a single call finds the geodesic nearest to its
      start.
    - `solver`: an [`AbstractCurveSolver`][latentgeo.AbstractCurveSolver];
      default [`AutoSolver`][latentgeo.AutoSolver], which chooses by the
      objective's structure (and uses the paper's Adam,
      [`OptaxSolver.paper_adam`][latentgeo.OptaxSolver.paper_adam], for a Monte
      Carlo energy). How the solvers compare is measured on the
      [performance page](../performance.md).
    - `energy`: an energy strategy: [`ExpectedEnergy`][latentgeo.ExpectedEnergy]
      (default; the metric's own energy) or
      [`DecorrelatedEnergy`][latentgeo.DecorrelatedEnergy].
    - `discretisation`: a [`Discretisation`][latentgeo.Discretisation] (spline
      segments, energy points, iteration cap; default `Discretisation()`).
    - `throw`: raise if the solver fails; otherwise report it in `result`.

    **Returns:** a [`GeodesicResult`][latentgeo.GeodesicResult]. Its `length` is
    always the metric length (`metric.curve_length` on 1025 points), comparable
    across solvers, objectives and curve sizes.

    **Raises:**

    - `TypeError` if `metric`, `solver`, `energy` or `discretisation` is not of
      its kind.
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
    check_settings(metric, solver, energy, discretisation)
    return _geodesic(
        metric,
        z0,
        z1,
        init=init,
        solver=solver,
        energy=energy,
        discretisation=discretisation,
        throw=throw,
    )


@eqx.filter_jit
def _geodesic(
    metric, z0, z1, *, init, solver, energy, discretisation, throw
) -> GeodesicResult:
    z0, z1, start = prepared_ends(metric, z0, z1, init, discretisation)
    times = discretisation.times(z0.dtype)
    objective = curve_objective(metric, z0, z1, energy, times)
    with jax.default_matmul_precision("highest"):
        solution = solver.minimise(objective, start, discretisation.max_steps)
        return solved(metric, z0, z1, solution, energy, times, throw)


def prepared_ends(
    metric: AbstractMetric,
    z0: Float[ArrayLike, " d"],
    z1: Float[ArrayLike, " d"],
    init: CubicSpline | None,
    discretisation: Discretisation,
) -> tuple[Float[Array, " d"], Float[Array, " d"], Float[Array, "num_params d"]]:
    """The checked end points of a solve, in the working dtype, and the
    starting spline parameters (the straight line without `init`)."""
    dtype = working_dtype(metric, as_float(z0).dtype)
    z0 = checked_point(z0, metric.latent_dim, "z0", dtype)
    z1 = checked_point(z1, metric.latent_dim, "z1", dtype)
    if init is None:
        init = CubicSpline.straight(z0, z1, discretisation.num_segments)
    else:
        init_ends = jnp.stack([init.z0, init.z1])
        mismatch = ~jnp.allclose(init_ends, jnp.stack([z0, z1]), rtol=1e-5, atol=1e-6)
        z0 = eqx.error_if(
            z0, mismatch, "`init` does not start at `z0` and end at `z1`."
        )
    return z0, z1, jax.lax.stop_gradient(init.params.astype(z0.dtype))


def curve_objective(
    metric: AbstractMetric,
    z0: Float[Array, " d"],
    z1: Float[Array, " d"],
    energy: AbstractEnergy,
    times: Float[Array, " T"],
):
    """The objective a solver minimises between `z0` and `z1`; its arrays carry
    no gradient (the solver's loop is never differentiated)."""
    return energy.objective(*_frozen((metric, z0, z1)), times)


def solved(
    metric: AbstractMetric,
    z0: Float[Array, " d"],
    z1: Float[Array, " d"],
    solution: Minimisation,
    energy: AbstractEnergy,
    times: Float[Array, " T"],
    throw: bool,
) -> GeodesicResult:
    """The `GeodesicResult` of a solver's `solution`: its curve, measured on
    `LENGTH_POINTS` (differentiably), and its outcome."""
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
    length = raise_if_failed(throw, length, result, result == RESULTS.successful)
    return GeodesicResult(
        curve,
        length,
        solution.value,
        solution.num_steps,
        solution.num_evaluations,
        result,
    )
