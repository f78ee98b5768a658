r"""A global check of a local solve in two latent dimensions: the shortest path
on a lattice over the pair's neighbourhood, and a second solve from it when it
takes another route."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._checks import select_tree
from .._curve import CubicSpline
from .._lattice import Lattice, edge_weights, leaves_tube, path_to, shortest_distances
from .._objective import AbstractCurveObjective
from ._base import RESULTS, AbstractCurveSolver, Minimisation


def better_of(first: Minimisation, second: Minimisation) -> Minimisation:
    """The lower-energy of two minimisations, with both costs counted."""
    take_second = second.value < first.value
    pick = lambda a, b: jnp.where(take_second, a, b)  # noqa: E731
    return Minimisation(
        params=jax.tree.map(pick, second.params, first.params),
        value=pick(second.value, first.value),
        num_steps=first.num_steps + second.num_steps,
        num_evaluations=first.num_evaluations + second.num_evaluations,
        result=RESULTS.where(take_second, second.result, first.result),
    )


class _Attempts(eqx.Module):
    """The two solves' scan: where the next starts, whether it runs, and the
    better of those done."""

    start: Float[Array, "num_params 2"]
    retry: Bool[Array, ""]
    best: Minimisation


class LatticeSearch(AbstractCurveSolver):
    r"""Solve from the given start, then look for a better route on a lattice;
    solve again from it where the test says so, and keep the lower energy.

    For a pair in a two-dimensional latent space, a square lattice is laid over
    the box around the end points and the curve found (its longer side plus
    `margin` times it on each side); its edges, to the 16 nearest lattice
    directions, are weighted by their metric length, and the shortest lattice
    path from `z0` to `z1` is found by Bellman–Ford relaxation in JAX. How much
    work the local solve needed decides how fine the lattice is, so that the
    check costs in proportion to the solve it checks:

    - **It converged within `quick_steps` iterations** (a smooth energy, as
      from smooth decoders): a coarse lattice of `cells` cells checks the
      route. If the path stays within `tube` lattice spacings of the curve
      found, both are the same route and nothing more is done; if it takes
      another route and is shorter than `1 + slack` times the curve found (a
      lattice path is longer than the geodesic along it, by up to a few
      percent), the local solver runs again from the path (fitted by a
      spline).
    - **It converged within `rough_steps` iterations**: the same check on a
      lattice of `middle_cells` cells, which sees the narrower routes that
      the coarse one misses on ReLU decoders.
    - **It needed more iterations, or failed** (a rough energy with many
      local minima, as from ReLU decoders, or a hard problem): a fine lattice
      of `fine_cells` cells gives a near-global starting curve, and the local
      solver always runs again from it: a second, global attempt.

    The lower energy of the two solves is kept. A lattice costs one metric
    evaluation per node: at 32 cells about as much as a few curve evaluations,
    at 64 as a few dozen, at 128 as about a hundred. The thresholds were chosen
    by measurement, on the
    [performance page](../performance.md#a-single-geodesic). Under `jax.vmap`
    the three branches all run (a `lax.switch` over a batch is a select), and
    every pair of a batch pays for the second solve
    ([batching](../performance.md#batching)). In
    other dimensions (and for Monte Carlo energies) the local solve is
    returned as it is.

    **Arguments:**

    - `local`: the solver run from each start.
    - `cells`: the coarse lattice's cells along the box's side (32).
    - `middle_cells`: the middle lattice's (64).
    - `fine_cells`: the fine lattice's (128).
    - `quick_steps`: iterations of the local solve up to which the coarse
      lattice checks it (8).
    - `rough_steps`: iterations up to which the middle lattice checks it; beyond
      them the fine lattice is used (20).
    - `margin`: the box's margin on each side, as a fraction of the end
      points' and curve's extent (0.5).
    - `tube`: the tube's radius in lattice spacings (2.0).
    - `slack`: how much longer than the curve found a lattice path on another
      route may be and still be tried (0.05).
    """

    local: AbstractCurveSolver
    cells: int = eqx.field(static=True, default=32)
    middle_cells: int = eqx.field(static=True, default=64)
    fine_cells: int = eqx.field(static=True, default=128)
    quick_steps: int = eqx.field(static=True, default=8)
    rough_steps: int = eqx.field(static=True, default=20)
    margin: float = eqx.field(static=True, default=0.5)
    tube: float = eqx.field(static=True, default=2.0)
    slack: float = eqx.field(static=True, default=0.05)

    def __check_init__(self):
        if min(self.cells, self.middle_cells, self.fine_cells) < 2:
            raise ValueError(
                "`cells`, `middle_cells` and `fine_cells` must be at least 2, got "
                f"{self.cells}, {self.middle_cells}, {self.fine_cells}."
            )
        if not 0 <= self.quick_steps <= self.rough_steps:
            raise ValueError(
                "Need 0 <= `quick_steps` <= `rough_steps`, got "
                f"{self.quick_steps}, {self.rough_steps}."
            )
        if not (self.margin >= 0 and self.tube > 0 and self.slack >= 0):
            raise ValueError(
                "`margin` and `slack` must be >= 0 and `tube` > 0, got "
                f"{self.margin}, {self.tube}, {self.slack}."
            )

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        if objective.z0.shape[-1] != 2:
            return self.local.minimise(objective, params, max_steps)
        metric, z0, z1 = objective.metric, objective.z0, objective.z1
        num_segments = params.shape[0] - 1

        def path(points, cells: int):
            lattice = Lattice.around(points, cells, self.margin)
            weights = edge_weights(metric, lattice)
            found = shortest_distances(metric, lattice, weights, z0)
            return lattice, path_to(metric, lattice, found, z0, z1, num_segments)

        def check(cells: int):
            def other_route(points):
                lattice, found = path(points, cells)
                radius = self.tube * lattice.spacing
                elsewhere = leaves_tube(found.points, points, radius)
                bound = (1 + self.slack) * metric.curve_length(points)
                return found.curve.params, elsewhere & (found.length < bound)

            return other_route

        def fine(points):
            _, found = path(points, self.fine_cells)
            return found.curve.params, jnp.isfinite(found.length)

        def second_start(first: Minimisation):
            points = CubicSpline(z0, z1, first.params)(objective.times)
            failed = first.result != RESULTS.successful
            tier = jnp.where(first.num_steps > self.quick_steps, 1, 0)
            tier = jnp.where((first.num_steps > self.rough_steps) | failed, 2, tier)
            branches = [check(self.cells), check(self.middle_cells), fine]
            return jax.lax.switch(tier, branches, points)

        # Both solves are the two steps of one scan, so that the local solver is
        # traced and compiled once (a default `geodesic` on a ReLU ensemble,
        # two runs each: tracing 4.7-6.0 s and compiling 21.5-23.2 s, against
        # 5.7-6.7 s and 24.0-25.4 s with two copies). The step's index comes
        # from the scanned array, not the carry, so it stays unbatched under
        # `jax.vmap`: the lattice's `lax.cond` stays a branch there, and the
        # check runs once. (A `while_loop` on `retry` batches its whole carry,
        # the index included, and ran the check in both steps: 1.36 times the
        # cost per pair in 64-pair batches, on the performance page.) Under
        # `jax.vmap` the second solve's `lax.cond` is a select, so every pair
        # of a batch pays for it, as with two copies; alone, a pair pays only
        # if it retries.
        def attempt(carry: _Attempts, index: Int[Array, ""]):
            first = index == 0
            found = jax.lax.cond(
                first | carry.retry,
                lambda: self.local.minimise(objective, carry.start, max_steps),
                lambda: carry.best,
            )
            retried = better_of(carry.best, found)
            best = select_tree(first, found, select_tree(carry.retry, retried, found))
            start, retry = jax.lax.cond(
                first,
                lambda: second_start(found),
                lambda: (carry.start, jnp.array(False)),
            )
            return _Attempts(start, retry, best), None

        shapes = eqx.filter_eval_shape(
            self.local.minimise, objective, params, max_steps
        )
        initial = _Attempts(
            start=params,
            retry=jnp.array(False),
            best=jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes),
        )
        final, _ = jax.lax.scan(attempt, initial, jnp.arange(2))
        return final.best
