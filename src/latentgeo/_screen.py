"""The screen of a source of starting curves: a brief solve of every pair, and
a full one only where the brief one came close to the shortest geodesic found
so far.

A start whose full solve costs many steps per pair and pays on few pairs
(the straight line after both lattice routes, on a ReLU decoder: measured on
the performance page) is cheap to screen: a few Levenberg–Marquardt steps put
its curve near its final length, far above the best one on most pairs.
[`Screened`][latentgeo.Screened] wraps a start's sources in a
`ScreenedSource`; the all-pairs driver solves those with `screened_solve`.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from ._discretisation import Discretisation
from ._probe import ProbedSource
from ._solvers import AbstractCurveSolver


@dataclasses.dataclass(frozen=True)
class ScreenedSource:
    """A source of starting curves whose pairs are solved for `steps`
    iterations of `solver` first, and to convergence with the run's solver
    only where that brief solve's length is within `within` (a fraction) of
    the shortest geodesic the run's earlier sources found."""

    source: Callable  # a `latentgeo._starts.CurveSource`
    solver: AbstractCurveSolver
    steps: int
    within: float

    def __call__(self, ids, rows, cols, best):
        return self.source(ids, rows, cols, best)


def screen_of(source: Callable) -> ScreenedSource | None:
    """The screen of a source of starting curves (probed or not), or `None`."""
    inner = source.source if isinstance(source, ProbedSource) else source
    return inner if isinstance(inner, ScreenedSource) else None


def screened_solve(
    solve: Callable[..., dict[str, np.ndarray]],
    shard: Callable[[np.ndarray], object],
    start: object,
    unsolved: np.ndarray,
    settings: tuple[AbstractCurveSolver, object, Discretisation],
    screen: ScreenedSource,
    best_lengths: np.ndarray,
) -> dict[str, np.ndarray]:
    """One chunk of pairs solved from `start` through `screen`.

    **Arguments:**

    - `solve`: `solve(start, solver, energy, discretisation, skip)`, the
      chunk's solve (`latentgeo._sharding.solve_chunk` with its placement,
      metric and ends bound), returning per-pair `lengths`, `converged`,
      `num_steps` and `params`.
    - `shard`: lays a host array out as the chunk's pairs.
    - `start`: the sharded starting parameters `(B, n + 1, d)`.
    - `unsolved`: `(B,)` pairs that the source left to their best curve (not
      solved at all).
    - `settings`: the run's `(solver, energy, discretisation)`.
    - `screen`: the source's screen.
    - `best_lengths`: `(B,)` the shortest length the run's earlier sources
      found per pair (NaN where none is finite).

    **Returns:** the chunk's per-pair results, the brief solve's where the
    full one was not run; `num_steps` counts both solves."""
    solver, energy, discretisation = settings
    brief_settings = dataclasses.replace(discretisation, max_steps=screen.steps)
    brief = solve(start, screen.solver, energy, brief_settings, shard(unsolved))
    bound = np.where(np.isnan(best_lengths), np.inf, best_lengths)
    close = brief["lengths"] <= bound * (1 + screen.within)
    full = solve(shard(brief["params"]), solver, energy, discretisation, shard(~close))
    found = {
        key: np.where(close.reshape((-1,) + (1,) * (value.ndim - 1)), value, brief[key])
        for key, value in full.items()
        if key != "num_steps"
    }
    found["num_steps"] = brief["num_steps"] + full["num_steps"]
    return found
