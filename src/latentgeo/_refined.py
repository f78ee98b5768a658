"""A finer last solve of an all-pairs run: each pair's shortest curve, found on
coarse curves, solved once more on curves of more segments.

On a ReLU decoder the geodesic bends at activation boundaries, which a spline
of few segments rounds off: on the benchmark `relu` model the search's
32-segment curves miss the float64 reference's median target, and the same
curves solved once more on 64 segments meet it (measured on the performance
page, "Refinement"). Searching on fine curves from every start would cost
each start that much more; refining only the shortest curve costs one more
solve per pair, from a curve already on the right route. On smooth decoders
the coarse curve is already at the reference, so `Refined` probes the
refinement (`latentgeo._probe`) and keeps it only where it pays.
"""

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._probe import ProbedSource, check_probe_settings, probed
from ._solvers import AbstractCurveSolver, AutoSolver, LevenbergMarquardt
from ._starts import (
    AbstractStart,
    ConstantSpeedStart,
    CurveSource,
    GraphStart,
    LatticeStart,
    Probed,
    ShortestOf,
    StraightStart,
    TwoRoutes,
)


@dataclasses.dataclass(frozen=True)
class RefinementSource:
    """The refinement of a run, as one of its sources: its starting curves are
    each pair's shortest curve of the run's other sources, on the refinement's
    curves (`upsampled`), solved with `solver` on `discretisation`."""

    discretisation: Discretisation
    solver: AbstractCurveSolver

    def __call__(self, ids, rows, cols, best):
        return best


def refinement_of(source: CurveSource) -> RefinementSource | None:
    """The refinement a source stands for (probed or not), or `None`."""
    inner = source.source if isinstance(source, ProbedSource) else source
    return inner if isinstance(inner, RefinementSource) else None


@functools.partial(jax.jit, static_argnums=3)
def upsampled(
    z0: Float[Array, "B d"],
    z1: Float[Array, "B d"],
    params: Float[Array, "B p d"],
    num_segments: int,
) -> Float[Array, "B q d"]:
    """The splines `(z0, z1, params)` (`p` = n + 1 parameters) as splines of
    `num_segments` segments (`q` = `num_segments` + 1 parameters):
    exact where that is a multiple of their own (the knots are nested), least
    squares on `4 num_segments + 1` points otherwise."""
    times = jnp.linspace(0, 1, 4 * num_segments + 1, dtype=params.dtype)

    def one(start, end, curve_params):
        curve = CubicSpline(start, end, curve_params)
        return CubicSpline.fit(curve(times), num_segments, times=times).params

    return jax.vmap(one)(z0, z1, params)


class Refined(AbstractStart):
    """Search with a start, then solve each pair's shortest curve once more on
    finer curves: for decoders whose geodesics bend sharply (ReLU), which
    coarse curves round off.

    The run's starts are solved on the run's discretisation (the start's
    own by default); each pair's shortest curve is then re-expressed, exactly,
    on `discretisation`'s curves and solved again with `solver`, and
    the shorter of the two is kept. The result's curves have
    `discretisation.num_segments` segments either way. Whether the
    refinement pays is measured on the run ([`Probed`][latentgeo.Probed]'s
    probe, with `probe_pairs` and `min_shorter`): on smooth decoders the
    coarse curves are already at the geodesic, the refinement shortens none
    of the probe's pairs, and the other pairs skip it. `Refined` wraps a
    run's whole start; it is the default of
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics] in two latent
    dimensions (measured on the
    [performance page](../performance.md#refinement)).

    **Arguments:**

    - `start`: the search, an [`AbstractStart`][latentgeo.AbstractStart].
    - `discretisation`: the refinement's
      [`Discretisation`][latentgeo.Discretisation] (64 segments, 128 energy
      points); its `max_steps` caps the refinement's solve.
    - `solver`: the refinement's solver; by default
      `AutoSolver(least_squares=LevenbergMarquardt())`: plain
      [`LevenbergMarquardt`][latentgeo.LevenbergMarquardt] where the energy
      is a sum of squares in two latent dimensions (as the default's is), the
      `AutoSolver`'s choice elsewhere. The refinement starts on the search's
      geodesic, so it needs no second, robust attempt
      ([`Escalating`][latentgeo.Escalating]'s): on the benchmark ReLU
      decoder plain Levenberg–Marquardt refines to the same lengths at about
      two thirds of the cost (measured on the
      [performance page](../performance.md#the-refinements-solver)).
    - `probe_pairs`: pairs of the probe (128); `None` refines every pair.
    - `min_shorter`: probe pairs the refinement must shorten (by more than
      0.1%) for the rest of the run to be refined (2).

    **Example:**

    ```python
    init = lg.Refined(lg.TwoRoutes(), lg.Discretisation(64, 256))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    start: AbstractStart
    discretisation: Discretisation = Discretisation(64, 128)
    solver: AbstractCurveSolver = AutoSolver(least_squares=LevenbergMarquardt())
    probe_pairs: int | None = eqx.field(static=True, default=128)
    min_shorter: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not isinstance(self.start, AbstractStart) or isinstance(self.start, Refined):
            raise TypeError(
                "`Refined` takes a start such as `lg.TwoRoutes()` (not another "
                f"`Refined`), got {type(self.start).__name__}."
            )
        if not isinstance(self.discretisation, Discretisation):
            raise TypeError(
                "`Refined`'s `discretisation` must be an `lg.Discretisation`, got "
                f"{type(self.discretisation).__name__}."
            )
        if not isinstance(self.solver, AbstractCurveSolver):
            raise TypeError(
                "`Refined`'s `solver` must be a curve solver such as "
                f"`lg.LevenbergMarquardt()`, got {type(self.solver).__name__}."
            )
        check_probe_settings(self.probe_pairs, self.min_shorter)

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        inner = self.start.sources(metric, points, pairs, num_segments, progress)
        refinement = RefinementSource(self.discretisation, self.solver)
        return inner + [probed(refinement, self.probe_pairs, self.min_shorter)]

    def default_solver(self) -> AbstractCurveSolver:
        """The search's default solver."""
        return self.start.default_solver()

    def default_discretisation(self) -> Discretisation:
        """The search's default discretisation."""
        return self.start.default_discretisation()

    def refinement(self) -> Discretisation:
        """The refinement's discretisation."""
        return self.discretisation


def default_start(latent_dim: int, refined: bool = True) -> AbstractStart:
    """The start of a run that names none. In two latent dimensions both
    routes of every pair on one lattice over the points' box
    ([`TwoRoutes()`][latentgeo.TwoRoutes]: every route through the box, no
    data points needed), then, each where a probe of the run finds that it
    pays ([`Probed`][latentgeo.Probed]), a restart of the shortest curve at
    constant speed
    ([`ConstantSpeedStart()`][latentgeo.ConstantSpeedStart]) and a last solve
    on finer curves ([`Refined`][latentgeo.Refined]; not where `refined` is
    false: a run that names its own discretisation). The straight line is
    not among them: on the benchmark ReLU decoders it bought least for its
    cost, and the accuracy targets hold without it (measured on the
    [performance page](../performance.md#refinement)). In others the
    shorter of the straight start and the path in the neighbour graph of the
    points: "global" there means over the routes through the given points
    (pass `ShortestOf(StraightStart(), GraphStart(extra_points=codes))` to add
    data codes as nodes)."""
    if latent_dim == 2:
        search = ShortestOf(TwoRoutes(LatticeStart()), Probed(ConstantSpeedStart()))
        return Refined(search) if refined else search
    return ShortestOf(StraightStart(), GraphStart())


def upsampled_on_host(points, rows, cols, params: np.ndarray, num_segments: int):
    """`upsampled` for host arrays of one chunk: `points[rows]` to
    `points[cols]`; parameters already of `num_segments` pass unchanged."""
    if params.shape[1] == num_segments + 1:
        return params
    return np.array(upsampled(points[rows], points[cols], params, num_segments))
