r"""Starting curves of many geodesic solves: strategies passed as
`pairwise_geodesics(..., init=)`.

A start prepares, once per run, one or more *sources* of starting curves; each
source gives, for a chunk of pairs, the spline parameters to start from (or
`None` for the straight line). The driver solves every pair once per source and
keeps the shortest curve, so combining starts is
[`ShortestOf`][latentgeo.ShortestOf] and nothing else.
"""

import abc
import dataclasses
import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float, Int

from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._distance_fields import DistanceFields
from ._graph import GraphPaths, graph_paths
from ._lattice_graph import lattice_paths
from ._metric import AbstractMetric
from ._probe import ProbedSource, check_probe_settings, probed
from ._screen import ScreenedSource
from ._solvers import (
    AbstractCurveSolver,
    AutoSolver,
    Escalating,
    LevenbergMarquardt,
)
from ._solvers._constant_speed import constant_speed_params

CurveSource = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], ArrayLike | None
]
"""`source(ids, rows, cols, best)`: starting spline parameters `(B, n + 1, d)`
for the pairs `ids` (rows of the run's `pairs`) joining `points[rows]` to
`points[cols]`, or `None` for straight lines. `best` `(B, n + 1, d)` holds the
parameters of the shortest curve the run's earlier sources found for each pair
(`None` for the first source); most sources ignore it. A pair whose parameters
are all NaN gets no curve of its own from this source: it keeps that best
curve and is not solved again (in lockstep groups of a solver that is not one
loop, such as `LatticeSearch`, it restarts from that curve)."""


class AbstractStart(eqx.Module):
    """How [`pairwise_geodesics`][latentgeo.pairwise_geodesics] chooses each
    pair's starting curve."""

    @abc.abstractmethod
    def sources(
        self,
        metric: AbstractMetric,
        points: Float[np.ndarray, "N d"],
        pairs: Int[np.ndarray, "M 2"],
        num_segments: int,
        progress: bool,
    ) -> list[CurveSource]:
        """Prepare a run over `pairs` of `points` (e.g. build a graph) and return
        one `CurveSource` per solve each pair gets.

        **Raises:** `ValueError` if the start does not fit the run."""

    def default_solver(self) -> AbstractCurveSolver:
        """The solver of a run from this start that names none:
        [`AutoSolver()`][latentgeo.AutoSolver]."""
        return AutoSolver()

    def default_discretisation(self) -> Discretisation:
        """The discretisation of a run from this start that names none:
        [`Discretisation()`][latentgeo.Discretisation]."""
        return Discretisation()

    def refinement(self) -> Discretisation | None:
        """The discretisation of the run's last solve on finer curves
        ([`Refined`][latentgeo.Refined]), which its result's curves have;
        `None`: no refinement, the run's own."""
        return None


def _straight(ids, rows, cols, best) -> None:
    return None


class StraightStart(AbstractStart):
    """Start every pair from the straight line between its points (the default
    of a single [`geodesic`][latentgeo.geodesic] call; `pairwise_geodesics`
    starts from graph paths by default).

    The curve solver then finds the nearest local geodesic: cheap, and right
    on smooth decoders for most pairs; where the straight line cuts across a
    region of high uncertainty, or on ReLU decoders, a shorter geodesic
    elsewhere may exist, which [`LatticeStart`][latentgeo.LatticeStart] or
    [`GraphStart`][latentgeo.GraphStart] finds (measured on the
    [performance page](../performance.md#global-geodesics)).

    **Example:**

    ```python
    lg.pairwise_distances(metric, Z, init=lg.StraightStart())
    ```
    """

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        return [_straight]


def _as_extra_points(extra_points):
    if extra_points is None:
        return None
    extra_points = np.asarray(extra_points)
    if np.issubdtype(extra_points.dtype, np.floating):
        return extra_points
    return extra_points.astype(float)


class AbstractGraphStart(AbstractStart):
    """Start every pair from its shortest path in a graph whose edges are
    weighted by their metric length; implement `graph`. A graph start is also
    what [`pairwise_graph_estimate`][latentgeo.pairwise_graph_estimate]
    measures."""

    @abc.abstractmethod
    def graph(
        self, metric: AbstractMetric, points: Float[ArrayLike, "N d"], progress: bool
    ) -> GraphPaths:
        """The graph's shortest paths between `points`."""

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        graph = self.graph(metric, points, progress)
        return [functools.partial(_graph_curves, graph, num_segments)]


class GraphStart(AbstractGraphStart):
    """Start every pair from its shortest path in a k-nearest-neighbour graph
    whose edges are weighted by their metric length (Arvanitidis et al. 2019).

    The graph ([`graph_paths`][latentgeo.graph_paths]) is built once per run over
    the query points and any `extra_points`; each pair's path, resampled at
    uniform graph arc length, is fitted by a cubic spline
    ([`GraphPaths.init_curves`][latentgeo.GraphPaths.init_curves]). A path
    follows the data and can lead the solver to a shorter geodesic than the
    straight start finds. Pairs that no path of finite edges joins start from
    the straight line. The graph's distances alone are
    [`pairwise_graph_estimate`][latentgeo.pairwise_graph_estimate]. In two
    latent dimensions [`LatticeStart`][latentgeo.LatticeStart] needs no data
    points.

    **Arguments:**

    - `neighbours`: $k$, nearest neighbours per node; default 10 (or every other
      node if fewer), doubled until the graph joins the query points.
    - `extra_points`: optional `(E, d)` further graph nodes, e.g. the training
      codes, so that paths can follow the data between sparse query points.
    - `edge_points`: points per edge at which its length is measured (16).

    **Example:**

    ```python
    start = lg.GraphStart(extra_points=train_codes)
    D = lg.pairwise_distances(metric, Z, init=start)
    ```
    """

    neighbours: int | None = eqx.field(static=True, default=None)
    extra_points: Float[np.ndarray, "E d"] | None = eqx.field(
        default=None, converter=_as_extra_points
    )
    edge_points: int = eqx.field(static=True, default=16)

    def __check_init__(self):
        if self.neighbours is not None and self.neighbours < 1:
            raise ValueError(f"`neighbours` must be >= 1, got {self.neighbours}.")
        if self.edge_points < 2:
            raise ValueError(f"`edge_points` must be >= 2, got {self.edge_points}.")
        if self.extra_points is not None and self.extra_points.ndim != 2:
            raise ValueError(
                f"`extra_points` has shape {self.extra_points.shape}, expected (E, d)."
            )

    def graph(
        self, metric: AbstractMetric, points: Float[ArrayLike, "N d"], progress: bool
    ) -> GraphPaths:
        return graph_paths(
            metric,
            points,
            neighbours=self.neighbours,
            extra_points=self.extra_points,
            edge_points=self.edge_points,
            progress=progress,
        )


class LatticeStart(AbstractGraphStart):
    """Start every pair from its shortest path on a lattice over the points'
    bounding box, in a two-dimensional latent space
    ([`lattice_paths`][latentgeo.lattice_paths]): every route through the box,
    with no data points needed.

    **Arguments:**

    - `cells`: lattice cells along the box's side (512).
    - `margin`: the box's margin on each side, a fraction of the points'
      extent (0.25).

    **Example:**

    ```python
    estimate = lg.pairwise_graph_estimate(metric, Z, lg.LatticeStart(cells=1024))
    ```
    """

    cells: int = eqx.field(static=True, default=512)
    margin: float = eqx.field(static=True, default=0.25)

    def __check_init__(self):
        if self.cells < 2 or not self.margin >= 0:
            raise ValueError(
                f"Need `cells` >= 2 and `margin` >= 0, got {self.cells}, {self.margin}."
            )

    def graph(
        self, metric: AbstractMetric, points: Float[ArrayLike, "N d"], progress: bool
    ) -> GraphPaths:
        return lattice_paths(
            metric, points, cells=self.cells, margin=self.margin, progress=progress
        )


def _alternative_curves(
    graph: GraphPaths, fields, num_segments, separation, slack, ids, rows, cols, best
):
    curves, found = graph.alternative_curves(
        rows, cols, num_segments, separation=separation, slack=slack, fields=fields
    )
    params = np.asarray(curves.params)
    return np.where(found[:, None, None], params, np.nan)


class TwoRoutes(AbstractStart):
    """Solve every pair from its shortest graph path and from its best route
    other than that one, where such a route is nearly as short; keep the
    shorter geodesic. The first start of
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics]' default in a
    two-dimensional latent space.

    On ReLU decoders two routes a fraction of a percent apart in graph length
    can lead to geodesics a percent or more apart, in either order, so the
    shortest path alone does not always lead to the shortest geodesic. The
    second route
    ([`alternative_curves`][latentgeo.GraphPaths.alternative_curves])
    passes through a lattice or graph node away from the shortest path. A
    pair with no second route within `slack` is not solved again (in lockstep
    groups of a solver that is not one loop it restarts from its converged
    curve, a few steps). Each query point's Dijkstra is run once per run and
    kept (up to 512 MiB).

    Whether the second route pays is measured on the run itself: it is solved
    on a probe of `probe_pairs` pairs spread over the run's, which are solved
    first, and on the other pairs only if it gave a geodesic more than 0.1%
    shorter than the first route's on at least `min_shorter` of them. On
    smooth decoders it rarely does, and the run then costs one solve per
    pair. The decision is stored in the run's checkpoint, so a resumed run
    keeps it.

    Two routes take the place of the default solver's per-pair lattice check,
    and make finer curves pay, so a run from this start that names no solver
    or discretisation uses the local solver,
    `AutoSolver(least_squares=Escalating())`, and
    `Discretisation(num_segments=32, num_points=128)`. How these were chosen,
    and what they cost, is on the
    [performance page](../performance.md#global-geodesics).

    **Arguments:**

    - `graph`: the graph, an [`AbstractGraphStart`][latentgeo.AbstractGraphStart]
      (by default [`LatticeStart()`][latentgeo.LatticeStart], 512 cells); built
      once for both routes.
    - `separation`: how far the second route's via node lies from the shortest
      path, a fraction of the pair's Euclidean distance (0.1).
    - `slack`: how much longer than the shortest path, in graph length, the
      second route may be (0.01).
    - `probe_pairs`: pairs of the probe (128); `None` solves the second route
      on every pair.
    - `min_shorter`: probe pairs on which the second route must be the
      shorter for the rest of the run to solve it (2).

    **Example:**

    ```python
    init = lg.TwoRoutes(lg.GraphStart(extra_points=train_codes))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    graph: AbstractGraphStart = LatticeStart()
    separation: float = eqx.field(static=True, default=0.1)
    slack: float = eqx.field(static=True, default=0.01)
    probe_pairs: int | None = eqx.field(static=True, default=128)
    min_shorter: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not isinstance(self.graph, AbstractGraphStart):
            raise TypeError(
                "`TwoRoutes` takes a graph start such as `lg.LatticeStart()` or "
                f"`lg.GraphStart()`, got {type(self.graph).__name__}."
            )
        if not (self.separation > 0 and self.slack >= 0):
            raise ValueError(
                "Need `separation` > 0 and `slack` >= 0, got "
                f"{self.separation}, {self.slack}."
            )
        check_probe_settings(self.probe_pairs, self.min_shorter)

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        graph = self.graph.graph(metric, points, progress)
        fields = DistanceFields(graph)  # each point's Dijkstra once per run
        first = functools.partial(_graph_curves, graph, num_segments, fields=fields)
        second = functools.partial(
            _alternative_curves,
            graph,
            fields,
            num_segments,
            self.separation,
            self.slack,
        )
        return [first, probed(second, self.probe_pairs, self.min_shorter)]

    def default_solver(self) -> AbstractCurveSolver:
        """The local solver, `AutoSolver(least_squares=Escalating())`: the
        second route replaces the lattice check."""
        return AutoSolver(least_squares=Escalating())

    def default_discretisation(self) -> Discretisation:
        """`Discretisation(num_segments=32, num_points=128)`: from a global
        start finer curves meet the float64 reference."""
        return Discretisation(num_segments=32, num_points=128)


def default_graph(latent_dim: int) -> AbstractGraphStart:
    """The graph of a run that names none: the lattice in two dimensions, the
    neighbour graph of the points in others."""
    return LatticeStart() if latent_dim == 2 else GraphStart()


def _graph_curves(
    graph: GraphPaths, num_segments: int, ids, rows, cols, best, fields=None
):
    return graph.init_curves(rows, cols, num_segments, fields=fields).params


class ShortestOf(AbstractStart):
    """Solve every pair from each of several starts and keep the shortest curve.

    Costs one solve per start; `PairwiseResult.num_steps` counts them all. A
    start whose curve meets NaN or inf loses to any finite one. A run that
    names no solver or discretisation takes the first start's.

    **Arguments:**

    - `*starts`: two or more [`AbstractStart`][latentgeo.AbstractStart]s.

    **Example:**

    ```python
    init = lg.ShortestOf(lg.StraightStart(), lg.GraphStart(extra_points=codes))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    starts: tuple[AbstractStart, ...]

    def __init__(self, *starts: AbstractStart):
        self.starts = starts

    def __check_init__(self):
        if len(self.starts) < 2:
            raise ValueError(
                f"`ShortestOf` needs at least two starts, got {len(self.starts)}."
            )
        for start in self.starts:
            if not isinstance(start, AbstractStart):
                raise TypeError(
                    "`ShortestOf` takes starts such as `lg.StraightStart()` or "
                    f"`lg.GraphStart()`, got {type(start).__name__}."
                )
        first = self.starts[0]
        while isinstance(first, Probed | Screened):
            if isinstance(first, Screened):
                raise ValueError(
                    "`Screened` screens a start against the geodesics of earlier "
                    "starts: it cannot be the first start of `ShortestOf`."
                )
            first = first.start
        if isinstance(first, ConstantSpeedStart):
            raise ValueError(
                "`ConstantSpeedStart` restarts the curves of earlier starts: it "
                "cannot be the first start of `ShortestOf`."
            )

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        return [
            source
            for start in self.starts
            for source in start.sources(metric, points, pairs, num_segments, progress)
        ]

    def default_solver(self) -> AbstractCurveSolver:
        """The first start's default solver."""
        return self.starts[0].default_solver()

    def default_discretisation(self) -> Discretisation:
        """The first start's default discretisation."""
        return self.starts[0].default_discretisation()


class Probed(AbstractStart):
    """Solve a start's curves on a probe of the run's pairs, and on the other
    pairs only where they paid on the probe; for a start that finds shorter
    geodesics on some decoders and costs a solve per pair for nothing on
    others.

    The probe's `probe_pairs` pairs, spread evenly over the run's, are solved
    first, from every start of the run. The probed start is solved on the
    other pairs only if its geodesic came out more than 0.1% shorter than
    those of the run's other starts on at least `min_shorter` of the probe's
    pairs (the other starts: those not probed, and probed ones listed before
    it that were kept). The decision is stored in the run's checkpoint, so a
    resumed run keeps it. A run of at most `probe_pairs` pairs is its own
    probe: every pair is solved from every start. Used within
    [`ShortestOf`][latentgeo.ShortestOf]; the default start of
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics] in two latent
    dimensions probes a constant-speed restart this way, and
    [`Refined`][latentgeo.Refined] its refinement
    (measured on the
    [performance page](../performance.md#the-probe-does-another-start-pay-on-this-run)).

    **Arguments:**

    - `start`: the probed [`AbstractStart`][latentgeo.AbstractStart]; all its
      sources of curves are probed (each decided on its own).
    - `probe_pairs`: pairs of the probe (128).
    - `min_shorter`: probe pairs on which it must give the shortest geodesic
      for the rest of the run to solve it (2).

    **Example:**

    ```python
    init = lg.ShortestOf(lg.TwoRoutes(), lg.Probed(lg.StraightStart()))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    start: AbstractStart
    probe_pairs: int = eqx.field(static=True, default=128)
    min_shorter: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not isinstance(self.start, AbstractStart):
            raise TypeError(
                "`Probed` takes a start such as `lg.StraightStart()`, got "
                f"{type(self.start).__name__}."
            )
        if self.probe_pairs < 1 or self.min_shorter < 1:
            raise ValueError(
                "Need `probe_pairs` >= 1 and `min_shorter` >= 1, got "
                f"{self.probe_pairs}, {self.min_shorter}."
            )

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        inner = self.start.sources(metric, points, pairs, num_segments, progress)
        return [
            ProbedSource(
                source.source if isinstance(source, ProbedSource) else source,
                self.probe_pairs,
                self.min_shorter,
            )
            for source in inner
        ]

    def default_solver(self) -> AbstractCurveSolver:
        """The probed start's default solver."""
        return self.start.default_solver()

    def default_discretisation(self) -> Discretisation:
        """The probed start's default discretisation."""
        return self.start.default_discretisation()


class Screened(AbstractStart):
    """Solve a start's curves briefly first, and to convergence only where the
    brief solve came close to the shortest geodesic the run's earlier starts
    found: for a start whose full solve costs many steps and pays on few
    pairs.

    Every pair gets `steps` iterations of `solver` from the start's curve; a
    pair whose curve is then at most `within` (a fraction) longer than its
    shortest geodesic so far is solved on from there with the run's solver,
    the others keep the brief curve (which loses to the shorter one).
    `PairwiseResult.num_steps` counts both solves. Used after another start in
    [`ShortestOf`][latentgeo.ShortestOf], probed or not
    ([`Probed`][latentgeo.Probed] of a screened start probes the screened
    solve). The default start of
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics] in two latent
    dimensions screened the straight line this way until it dropped the
    straight line; what the screen keeps and saves, and why the default no
    longer solves the straight line, is measured on the
    [performance page](../performance.md#the-screen-a-brief-solve-before-the-full-one)
    ([without the straight line](../performance.md#without-the-straight-line)).

    **Arguments:**

    - `start`: the screened [`AbstractStart`][latentgeo.AbstractStart]; all
      its sources of curves are screened.
    - `steps`: iterations of the brief solve (20).
    - `within`: how much longer than the shortest geodesic so far the brief
      solve's curve may be for the full solve to run (0: only where it is
      already the shortest).
    - `solver`: the brief solve's solver; by default
      `AutoSolver(least_squares=LevenbergMarquardt())`: plain
      [`LevenbergMarquardt`][latentgeo.LevenbergMarquardt] where the energy
      is a sum of squares in two latent dimensions (as the default's is), the
      `AutoSolver`'s choice elsewhere.

    **Example:**

    ```python
    init = lg.ShortestOf(lg.TwoRoutes(), lg.Screened(lg.StraightStart()))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    start: AbstractStart
    steps: int = eqx.field(static=True, default=20)
    within: float = eqx.field(static=True, default=0.0)
    solver: AbstractCurveSolver = AutoSolver(least_squares=LevenbergMarquardt())

    def __check_init__(self):
        if not isinstance(self.start, AbstractStart):
            raise TypeError(
                "`Screened` takes a start such as `lg.StraightStart()`, got "
                f"{type(self.start).__name__}."
            )
        if not isinstance(self.solver, AbstractCurveSolver):
            raise TypeError(
                "`Screened`'s `solver` must be a curve solver such as "
                f"`lg.LevenbergMarquardt()`, got {type(self.solver).__name__}."
            )
        if self.steps < 1 or not self.within >= 0:
            raise ValueError(
                f"Need `steps` >= 1 and `within` >= 0, got {self.steps}, {self.within}."
            )

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        inner = self.start.sources(metric, points, pairs, num_segments, progress)
        return [self._screened(source) for source in inner]

    def _screened(self, source):
        if isinstance(source, ProbedSource):  # the probe stays outermost
            return dataclasses.replace(source, source=self._screened(source.source))
        if isinstance(source, ScreenedSource):
            source = source.source
        return ScreenedSource(source, self.solver, self.steps, self.within)

    def default_solver(self) -> AbstractCurveSolver:
        """The screened start's default solver."""
        return self.start.default_solver()

    def default_discretisation(self) -> Discretisation:
        """The screened start's default discretisation."""
        return self.start.default_discretisation()


@eqx.filter_jit
def _constant_speed_batch(metric, z0, z1, params, speed_points):
    def one(start, end, curve_params):
        curve = CubicSpline(start, end, curve_params)
        return constant_speed_params(metric, curve, speed_points)

    return jax.vmap(one)(z0, z1, params)


def _constant_speed_curves(
    metric, points, evenness, speed_points, ids, rows, cols, best
) -> np.ndarray:
    if best is None:
        raise ValueError(
            "`ConstantSpeedStart` restarts the curves of earlier starts: use it "
            "after one, as in `lg.ShortestOf(lg.TwoRoutes(), "
            "lg.ConstantSpeedStart())`."
        )
    params, unevenness = _constant_speed_batch(
        metric, points[rows], points[cols], jnp.asarray(best), speed_points
    )
    unevenness = np.asarray(unevenness)
    even = ~np.isfinite(unevenness) | (unevenness <= 1 + evenness)
    return np.where(even[:, None, None], np.nan, np.asarray(params))


class ConstantSpeedStart(AbstractStart):
    """Start every pair again from the shortest curve the run's earlier starts
    found for it, its path moved to constant metric speed: a restart for
    decoders whose geodesic energy has many local minima along one route.

    On a ReLU decoder a local solver can stop on a curve whose path is right
    but whose speed is uneven: it crosses an activation boundary at the wrong
    time, and moving the crossing means leaving a piece of the piecewise
    quadratic energy. Refitted at constant speed along its own path (one
    forward pass of the metric on `speed_points` points, no derivatives), the
    curve's energy drops to about its squared length and the solver goes on
    downhill ([`ConstantSpeedRestarts`][latentgeo.ConstantSpeedRestarts] does
    the same within one solve). A pair whose curve already runs at even speed
    (its largest step within `evenness` of the mean) is not solved again. Use
    it after another start in [`ShortestOf`][latentgeo.ShortestOf], probed
    ([`Probed`][latentgeo.Probed]) where it may not pay; what it gains is on
    the [performance page](../performance.md#constant-speed-restarts).

    **Arguments:**

    - `evenness`: speeds within this fraction of the mean count as even (0.05).
    - `speed_points`: points on which the speed is measured and the curve
      refitted (257).

    **Example:**

    ```python
    init = lg.ShortestOf(lg.TwoRoutes(), lg.Probed(lg.ConstantSpeedStart()))
    result = lg.pairwise_geodesics(metric, Z, init=init)
    ```
    """

    evenness: float = eqx.field(static=True, default=0.05)
    speed_points: int = eqx.field(static=True, default=257)

    def __check_init__(self):
        if not (self.evenness >= 0 and self.speed_points >= 2):
            raise ValueError(
                "Need `evenness` >= 0 and `speed_points` >= 2, got "
                f"{self.evenness}, {self.speed_points}."
            )

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        return [
            functools.partial(
                _constant_speed_curves,
                metric,
                points,
                self.evenness,
                self.speed_points,
            )
        ]


class GivenCurves(AbstractStart):
    """Start each pair from a curve of your own, e.g. the result of an earlier
    run (`init=result.curves`) or of another method.

    Passing a batched `CubicSpline` as `init=` is short for `GivenCurves(it)`.

    **Arguments:**

    - `curves`: a [`CubicSpline`][latentgeo.CubicSpline] batched over the run's
      `M` pairs (every field with a leading axis `M`), in the order of `pairs`
      (by default `numpy.triu_indices(N, 1)`); curve `m` must join the points
      of pair `m`. Its number of segments replaces the discretisation's.

    **Example:**

    ```python
    first = lg.pairwise_geodesics(
        metric, Z, discretisation=lg.Discretisation(max_steps=100)
    )
    again = lg.pairwise_geodesics(metric, Z, init=lg.GivenCurves(first.curves))
    ```
    """

    curves: CubicSpline

    def sources(
        self, metric, points, pairs, num_segments, progress
    ) -> list[CurveSource]:
        params = np.asarray(self.curves.params)
        count = params.shape[0] if params.ndim == 3 else 0
        if count != len(pairs):
            raise ValueError(
                f"`init` holds {count} curves, expected a CubicSpline batched over "
                f"the {len(pairs)} pairs."
            )
        if self.curves.num_segments != num_segments:
            raise ValueError(
                f"The given curves have {self.curves.num_segments} segments, but "
                f"the run's discretisation has {num_segments}."
            )
        for name, ends, index in (
            ("z0", self.curves.z0, pairs[:, 0]),
            ("z1", self.curves.z1, pairs[:, 1]),
        ):
            close = np.isclose(np.asarray(ends), points[index], rtol=1e-5, atol=1e-6)
            wrong = np.flatnonzero(~np.all(close, axis=1))
            if wrong.size:
                raise ValueError(
                    f"The given curves {wrong[:10].tolist()} have a `{name}` other "
                    "than their pair's point."
                )
        return [lambda ids, rows, cols, best: params[ids]]


def as_start(init: "AbstractStart | CubicSpline") -> "AbstractStart":
    """The start `init` stands for: a batched `CubicSpline` is short for
    `GivenCurves(init)`.

    **Raises:** `TypeError` for anything else."""
    if isinstance(init, CubicSpline):
        return GivenCurves(init)
    if not isinstance(init, AbstractStart):
        raise TypeError(
            "`init` must be a start such as `lg.StraightStart()` or "
            f"`lg.GraphStart()`, or a CubicSpline, got {type(init).__name__}."
        )
    return init


def run_discretisation(
    start: AbstractStart, discretisation: Discretisation
) -> Discretisation:
    """The discretisation of a run from `start`: given curves keep their own
    number of segments."""
    if isinstance(start, GivenCurves):
        segments = start.curves.num_segments
        return dataclasses.replace(discretisation, num_segments=segments)
    return discretisation
