r"""Restarts of a local solve from its own curve, reparametrised to constant
metric speed.

On a decoder with ReLU activations the discretised energy is piecewise
quadratic in the spline parameters: which side of each activation boundary a
curve point lies on is fixed within a piece. A piece whose quadratic has its
minimum inside the piece is a local minimum of the energy, and a local solver
stops there even where the curve crosses a boundary at the wrong *time*: the
energy is lowest for a curve traversed at constant metric speed, but moving
the crossing to another curve point means leaving the piece, over a ridge.
Such curves have the right shape near each point but an uneven speed, and
their length can be percents above the geodesic's (a pull-back with a metric
that jumps across a line: 1.5% from the straight start, at any number of
segments).

Reparametrising the curve found by its metric arc length keeps its path and
evens its speed, which lowers the energy to about the squared length and
moves the crossings to other points; the local solver, started again there,
continues downhill. A few rounds reach the discretisation's floor.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._curve import CubicSpline
from .._metric import AbstractMetric
from .._objective import AbstractCurveObjective
from ._base import AbstractCurveSolver, Minimisation, counter
from ._lattice_search import better_of


def constant_speed_params(
    metric: AbstractMetric,
    curve: CubicSpline,
    num_points: int,
) -> tuple[Float[Array, "num_params d"], Float[Array, ""]]:
    r"""The spline parameters of `curve`'s path at constant metric speed, and
    how uneven its speed was.

    The curve is sampled at `num_points` uniform times, each step measured by
    `metric.edge_lengths` (the metric's own discrete length); the points get
    new times proportional to their metric arc length and a spline with as
    many segments is fitted through them
    ([`CubicSpline.fit`][latentgeo.CubicSpline.fit]).

    **Returns:** the new parameters `(n + 1, d)` (`curve`'s own where its
    length is zero or not finite), and the ratio of the largest step to the
    mean step (1 at constant speed; `inf` where the length is zero or not
    finite).
    """
    times = jnp.linspace(0.0, 1.0, num_points, dtype=curve.params.dtype)
    points = curve(times)
    consecutive = jnp.stack([jnp.arange(num_points - 1), jnp.arange(1, num_points)], 1)
    steps = metric.edge_lengths(points, consecutive)
    arc = jnp.concatenate([jnp.zeros(1, steps.dtype), jnp.cumsum(steps)])
    total = arc[-1]
    usable = jnp.isfinite(total) & (total > 0)
    safe_total = jnp.where(usable, total, 1.0)
    new_times = jnp.where(usable, arc / safe_total, times)
    fitted = CubicSpline.fit(points, curve.num_segments, times=new_times).params
    unevenness = jnp.where(
        usable, jnp.max(steps) * (num_points - 1) / safe_total, jnp.inf
    )
    return jnp.where(usable, fitted, curve.params), unevenness


class _Round(eqx.Module):
    best: Minimisation
    restarts: Int[Array, ""]
    going: Bool[Array, ""]


class ConstantSpeedRestarts(AbstractCurveSolver):
    r"""`solver`, then `restart_solver` (by default `solver` again) from the
    curve found, reparametrised to constant metric speed, for as long as that
    lowers the energy.

    Each restart measures the curve found on `speed_points` points, refits it
    at constant metric speed (one forward pass of the metric on those points,
    no derivatives) and solves from there; the lower energy is kept. Restarts
    stop after `max_restarts`, when one lowers the energy by less than `rtol`
    of it, or before the first when the curve's speed is already even (its
    largest step on `speed_points` points within `evenness` of the mean). A
    geodesic of a smooth metric costs one measurement more, and where its
    spline's speed is uneven anyway, a restart that stops after one
    evaluation.
    Why, and what it gains on ReLU decoders, is measured on the
    [performance page](../performance.md#constant-speed-restarts).

    **Arguments:**

    - `solver`: the first solve.
    - `restart_solver`: the solver run from each reparametrised curve
      (`solver` itself by default). With a global `solver`, such as
      [`LatticeSearch`][latentgeo.LatticeSearch], a local one here restarts
      only the route it chose (cheap, and on ReLU decoders of little gain:
      see the performance page).
    - `max_restarts`: at most this many restarts (3).
    - `rtol`: a restart that lowers the energy by less than this fraction
      ends them (1e-4).
    - `evenness`: speeds within this fraction of the mean count as even
      (0.05).
    - `speed_points`: points on which the speed is measured and the curve
      refitted (257).
    """

    solver: AbstractCurveSolver
    restart_solver: AbstractCurveSolver | None = None
    max_restarts: int = eqx.field(static=True, default=3)
    rtol: float = eqx.field(static=True, default=1e-4)
    evenness: float = eqx.field(static=True, default=0.05)
    speed_points: int = eqx.field(static=True, default=257)

    def __check_init__(self):
        if self.max_restarts < 0 or self.speed_points < 2:
            raise ValueError(
                "`max_restarts` must be >= 0 and `speed_points` >= 2, got "
                f"{self.max_restarts}, {self.speed_points}."
            )
        if not (self.rtol >= 0 and self.evenness >= 0):
            raise ValueError(
                f"`rtol` and `evenness` must be >= 0, got {self.rtol}, {self.evenness}."
            )

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        first = self.solver.minimise(objective, params, max_steps)
        if self.max_restarts == 0:
            return first

        def reparametrised(best: Minimisation):
            curve = CubicSpline(objective.z0, objective.z1, best.params)
            return constant_speed_params(objective.metric, curve, self.speed_points)

        def going(state: _Round):
            return state.going & (state.restarts < self.max_restarts)

        restart_solver = (
            self.solver if self.restart_solver is None else self.restart_solver
        )

        def restart(state: _Round) -> _Round:
            start, _ = reparametrised(state.best)
            second = restart_solver.minimise(objective, start, max_steps)
            gain = state.best.value - second.value
            return _Round(
                best=better_of(state.best, second),
                restarts=counter(state.restarts + 1),
                going=gain > self.rtol * jnp.abs(state.best.value),
            )

        _, unevenness = reparametrised(first)
        uneven = jnp.isfinite(unevenness) & (unevenness > 1 + self.evenness)
        state = _Round(first, counter(0), uneven)
        return jax.lax.while_loop(going, restart, state).best
