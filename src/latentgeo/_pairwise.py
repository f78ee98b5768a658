"""Geodesics between many pairs of points: `pairwise_geodesics` and the graph
estimate.

The driver reads as its phases: check the input, open the store, choose the
starting curves, place the work on devices, solve the pending pairs chunk by
chunk (storing each), assemble the result. Each phase lives in the module that
owns it: `_starts` (starting curves), `_sharding` (devices and the chunk solve),
`_store` (the resumable store), `_pairwise_result` (the result).
"""

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from tqdm import tqdm

from ._checks import host_points, padded_chunks
from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._energy import AbstractEnergy, ExpectedEnergy
from ._geodesic import check_settings
from ._metric import AbstractMetric, check_metric
from ._pairwise_result import PairwiseResult, assemble, checked_pairs, warn_failures
from ._probe import kept_sources, probe_ids
from ._refined import (
    default_start,
    refinement_of,
    upsampled_on_host,
)
from ._screen import screen_of, screened_solve
from ._sharding import Placement, place, solve_chunk
from ._solvers import AbstractCurveSolver
from ._starts import (
    AbstractGraphStart,
    AbstractStart,
    CurveSource,
    as_start,
    default_graph,
    run_discretisation,
)
from ._store import empty_state, fingerprint, load_state, save_state


def pairwise_geodesics(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    *,
    pairs: Int[ArrayLike, "M 2"] | None = None,
    init: AbstractStart | CubicSpline | None = None,
    solver: AbstractCurveSolver | None = None,
    energy: AbstractEnergy = ExpectedEnergy(),
    discretisation: Discretisation | None = None,
    batch_size: int = 64,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    devices: Sequence[jax.Device] | None = None,
    vmap_size: int | None | Literal["auto"] = "auto",
) -> PairwiseResult:
    """Geodesics between all unordered pairs of `points` (or the `pairs` asked),
    with their curves.

    Pairs are processed in chunks of `batch_size` with one jit-compiled
    [`geodesic`][latentgeo.geodesic] call per chunk (the last chunk is padded,
    so there is one compilation), so memory is bounded whatever `N`. The
    pairs of a chunk are sharded over `devices` (all of them by default:
    every GPU of a machine, or of every host after `jax.distributed.initialize()`),
    each device solving its share. A pair whose kept curve stops short of
    convergence is solved once more from that curve, with a fresh step
    budget. A pair that still fails, or whose curve meets a NaN or infinite
    metric (its length is then NaN), is reported in `converged` and neither
    stops nor corrupts the others.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.
    - `pairs`: optional `(M, 2)` integer indices `(i, j)` into `points`, `i != j`:
      solve only these pairs, from `points[i]` to `points[j]`, in this order.
      Default: all `N (N - 1) / 2` pairs `i < j`.
    - `init`: the starting curves, a start strategy:
      [`StraightStart()`][latentgeo.StraightStart],
      [`GraphStart(neighbours=..., extra_points=...)`][latentgeo.GraphStart],
      [`LatticeStart()`][latentgeo.LatticeStart],
      [`ShortestOf(...)`][latentgeo.ShortestOf] of several,
      [`TwoRoutes(...)`][latentgeo.TwoRoutes] (a graph's shortest path and its
      best route away from it),
      [`Probed(...)`][latentgeo.Probed] (a start solved beyond a probe of
      the run only where it pays),
      [`Screened(...)`][latentgeo.Screened] (a start solved in full only
      where a brief solve from it came close to the shortest geodesic),
      [`ConstantSpeedStart()`][latentgeo.ConstantSpeedStart] (the shortest
      curve so far, restarted at constant speed),
      [`Refined(...)`][latentgeo.Refined] (a start's search, then each pair's
      shortest curve solved once more on finer curves), or
      [`GivenCurves`][latentgeo.GivenCurves] (a batched `CubicSpline` passed
      here is short for it). Default: in a 2-D latent space both routes of
      every pair on one lattice over the points' box
      ([`TwoRoutes()`][latentgeo.TwoRoutes]: every route, no data points
      needed), then, each where the run's probe finds that it pays, a
      restart at constant speed and a last solve on 64-segment curves
      (`Refined(ShortestOf(TwoRoutes(), Probed(ConstantSpeedStart())))`;
      add `Probed(Screened(StraightStart()))` to the search for the
      straight line too; without the refinement where
      `discretisation` is given, so that the curves are of that
      discretisation); in more dimensions the shorter of
      the straight start and the path through the neighbour graph of
      `points` (`ShortestOf(StraightStart(), GraphStart())`; add data codes
      as nodes with `GraphStart(extra_points=...)`).
    - `solver`, `energy`, `discretisation`: as for
      [`geodesic`][latentgeo.geodesic]. The default solver and
      discretisation are the start's
      ([`AbstractStart.default_solver`][latentgeo.AbstractStart.default_solver]):
      after `TwoRoutes` (and a `ShortestOf` that begins with it, as the 2-D
      default does) the local solver,
      `AutoSolver(least_squares=Escalating())`, on 32-segment curves with
      128 energy points; after other starts
      [`AutoSolver()`][latentgeo.AutoSolver] on
      [`Discretisation()`][latentgeo.Discretisation]. A
      [`Refined`][latentgeo.Refined] start's search uses these, and its
      refinement its own solver and discretisation (and so the result's
      curves are of the refinement's discretisation).
    - `batch_size`: pairs per chunk (64), rounded up to a multiple of the number
      of devices.
    - `progress`: show a progress bar (tqdm) over pairs.
    - `checkpoint`: a `.npz` path; every finished chunk's pairs are saved there
      (atomically), and a rerun of the same run resumes from it, solving only the
      pairs not yet done, so an interrupted run (`KeyboardInterrupt`, even
      `kill -9`) loses at most the chunk in progress. The file records a digest
      of everything the results depend on: the points and pairs, the metric (its
      arrays and static structure), the solver, the energy (with its key), the
      starting curves and the discretisation; a checkpoint of a run that
      differs in any of them is refused with an error naming what changed.
      `batch_size`, `devices` and `vmap_size` may change between runs. Across
      hosts, give a path on a shared file system; process 0 writes it.
    - `devices`: the devices to shard each chunk over; default `jax.devices()`.
      On a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=<cores>` (set
      before importing jax) makes one device per core, and so solves that many
      pairs at once.
    - `vmap_size`: pairs per device solved in lockstep under `jax.vmap`. With
      a solver that runs as one loop (`TwoRoutes`' default `Escalating`,
      `LevenbergMarquardt`, `OptaxSolver`) these are slots: as soon as a
      slot's pair stops, the slot takes the next pair of the device's share,
      so a batch pays for the steps its pairs need, not for its slowest pair's
      steps times its size. Other solvers (`LatticeSearch`, `WarmStart`) are
      solved in groups of `vmap_size`, one group after the other, each running
      until its slowest pair stops. `None`: the device's whole share of the
      chunk at once (wide batches, for GPUs; no slot is refilled). `1`: one
      pair after the other (`jax.lax.map`), which is fastest on CPUs, where a
      lockstep batch gains little parallelism and under `vmap` the solvers'
      conditionals (line searches) evaluate both branches. `"auto"`
      (default): `1` on CPU devices, else `None`. What each costs is measured
      on the [performance page](../performance.md#batching).

    **Returns:** a [`PairwiseResult`][latentgeo.PairwiseResult].

    **Raises:** `TypeError` for a metric, start, solver, energy or
    discretisation not of its kind; `ValueError` for points of the wrong shape
    or containing NaN/inf,
    fewer than two points, bad `pairs`, a bad `batch_size`, starting curves that
    do not fit, a graph that splits the points, or an unreadable or mismatched
    checkpoint.

    **Example:**

    ```python
    init = lg.GraphStart(neighbours=10, extra_points=train_codes)
    result = lg.pairwise_geodesics(metric, Z, init=init, checkpoint="run.npz")
    result.distances, result.converged, result.curve_of(0, 3)
    ```
    """
    check_metric(metric)
    if init is None:  # a run that names its discretisation gets its curves
        start = default_start(metric.latent_dim, refined=discretisation is None)
    else:
        start = as_start(init)
    solver = start.default_solver() if solver is None else solver
    if discretisation is None:
        discretisation = start.default_discretisation()
    check_settings(metric, solver, energy, discretisation)
    points = host_points(points, metric.latent_dim, "points", min_rows=2, metric=metric)
    pairs = checked_pairs(pairs, points.shape[0])
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    discretisation = run_discretisation(start, discretisation)
    digests = fingerprint(
        points=points,
        pairs=pairs,
        metric=metric,
        solver=solver,
        energy=energy,
        starts=start,
        discretisation=discretisation,
    )
    stored_segments = (start.refinement() or discretisation).num_segments
    params_shape = (stored_segments + 1, points.shape[1])
    state = _open_store(checkpoint, digests, len(pairs), params_shape)
    if not state["done"].all():
        sources = start.sources(
            metric, points, pairs, discretisation.num_segments, progress
        )
        if any(refinement_of(s) for s in sources) != (start.refinement() is not None):
            raise TypeError(
                "`Refined` wraps a run's whole start, as in "
                "`lg.Refined(lg.ShortestOf(...))`, not a start within one."
            )
        placement = place(devices, vmap_size)
        solve = functools.partial(
            _solve_from_starts,
            placement,
            placement.replicate(metric),
            points,
            pairs,
            (solver, energy, discretisation),
            stored_segments,
        )
        batch = placement.round_up(min(batch_size, len(pairs)))
        _solve_pending(state, solve, sources, batch, checkpoint, digests, progress)
    warn_failures(state["lengths"], state["converged"])
    return assemble(points, pairs, state)


def _open_store(checkpoint, digests, num_pairs, params_shape) -> dict:
    """The per-pair results stored at `checkpoint` for this run, or none yet."""
    state = empty_state(num_pairs, params_shape)
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_state(checkpoint, digests, state)
    return state


Solve = Callable[[list[CurveSource], np.ndarray], tuple[dict, np.ndarray]]


def _solve_pending(
    state: dict,
    solve: Solve,
    sources: list[CurveSource],
    batch: int,
    checkpoint: str | os.PathLike | None,
    digests: dict[str, str],
    progress: bool,
) -> None:
    """Solve the pairs of `state` not yet done, `batch` at a time, recording each
    chunk in `state` and, from process 0, in the checkpoint; the probe's pairs
    (`latentgeo._probe`) first, as one unit, which decides the sources of the
    others."""
    total = state["done"].size
    bar = tqdm(
        total=total,
        initial=np.count_nonzero(state["done"]),
        disable=not progress,
        desc="geodesics",
        unit="pair",
    )

    def save():
        if checkpoint is not None and jax.process_index() == 0:
            save_state(checkpoint, digests, state)

    def solve_and_record(ids, sources, each_chunk):
        lengths = []
        for chunk, count in padded_chunks(ids.size, batch):
            found, by_source = solve(sources, ids[chunk])  # padded: one shape
            done = ids[chunk][:count]
            for key, value in found.items():
                state[key][done] = value[:count]
            state["done"][done] = True
            lengths.append(by_source[:, :count])
            if each_chunk:
                save()
            bar.update(count)
        return np.concatenate(lengths, axis=1) if lengths else None

    with bar:
        if "kept_sources" not in state:
            probe = probe_ids(sources, total)
            lengths = solve_and_record(probe[~state["done"][probe]], sources, False)
            keep = np.ones(len(sources), bool)  # nothing left to probe: keep all
            state["kept_sources"] = (
                keep if lengths is None else kept_sources(sources, lengths)
            )
            save()  # the probe's pairs and its decision, as one unit
        kept = [s for s, keep in zip(sources, state["kept_sources"]) if keep]
        solve_and_record(np.flatnonzero(~state["done"]), kept, True)


def _solve_from_starts(
    placement: Placement,
    metric: AbstractMetric,
    points: np.ndarray,
    pairs: np.ndarray,
    settings: tuple[AbstractCurveSolver, AbstractEnergy, Discretisation],
    stored_segments: int,
    sources: list[CurveSource],
    ids: np.ndarray,
) -> tuple[dict[str, np.ndarray], Float[np.ndarray, "S B"]]:
    """Solve the pairs `ids` once per source of starting curves with the
    `(solver, energy, discretisation)` of `settings`; keep each pair's shortest
    finite curve, and count the steps of all its solves; then refine it where
    a source is a refinement (`latentgeo._refined`). The curves come back with
    `stored_segments` segments. Also returns each source's lengths (NaN where
    it had no curve of its own for a pair)."""
    rows, cols = pairs[ids, 0], pairs[ids, 1]
    ends = [placement.shard(points[index]) for index in (rows, cols)]
    search = [s for s in sources if refinement_of(s) is None]
    found = _search(placement, metric, ends, settings, search, ids, rows, cols)
    best = _shortest(found)
    steps = sum(f["num_steps"] for f in found)
    steps = steps + _retry_unconverged(placement, metric, ends, settings, best)
    best["params"] = upsampled_on_host(
        points, rows, cols, best["params"], stored_segments
    )
    by_source = {id(s): f["lengths"] for s, f in zip(search, found)}
    for source in sources:
        if refinement_of(source) is not None:
            start = source(ids, rows, cols, best["params"])
            refined = _refine(placement, metric, ends, settings, source, start, best)
            steps = steps + refined["num_steps"]
            by_source[id(source)] = refined["lengths"]
    result = dict(
        lengths=best["lengths"],
        converged=best["converged"],
        params=best["params"],
        num_steps=steps,
    )
    return result, np.stack([by_source[id(s)] for s in sources])


def _search(
    placement: Placement,
    metric: AbstractMetric,
    ends: list,
    settings: tuple[AbstractCurveSolver, AbstractEnergy, Discretisation],
    sources: list[CurveSource],
    ids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> list[dict[str, np.ndarray]]:
    """Each source's per-pair results for the pairs `ids`, in order: each
    source sees the solves before it."""
    found = []
    for source in sources:
        start, none = _starting_curves(source, ids, rows, cols, found)
        skip = None if none is None else placement.shard(none)
        start = None if start is None else placement.shard(start)
        screen = screen_of(source)
        if screen is None:
            found.append(solve_chunk(placement, metric, *ends, start, *settings, skip))
            continue
        if not found:
            raise ValueError(
                "`Screened` screens a start against the geodesics of earlier "
                "starts: use it after one, as in `lg.ShortestOf(lg.TwoRoutes(), "
                "lg.Screened(lg.StraightStart()))`."
            )
        solve = functools.partial(solve_chunk, placement, metric, *ends)
        best_lengths = _shortest(found)["lengths"]
        found.append(
            screened_solve(
                solve, placement.shard, start, none, settings, screen, best_lengths
            )
        )
    return found


def _retry_unconverged(
    placement: Placement,
    metric: AbstractMetric,
    ends: list,
    settings: tuple[AbstractCurveSolver, AbstractEnergy, Discretisation],
    best: dict[str, np.ndarray],
) -> np.ndarray | int:
    """Solve each pair whose kept curve in `best` stopped short of convergence
    once more from that curve, with a fresh step budget, before it is
    reported; keep the retry in `best` where it is finite. Returns its
    steps."""
    again = ~best["converged"] & np.isfinite(best["lengths"])
    if not again.any():
        return 0
    start = placement.shard(best["params"])
    retry = solve_chunk(
        placement, metric, *ends, start, *settings, placement.shard(~again)
    )
    better = again & np.isfinite(retry["lengths"])
    for key, value in best.items():  # fresh arrays from `_shortest`
        value[better] = retry[key][better]
    return retry["num_steps"]


def _refine(
    placement: Placement,
    metric: AbstractMetric,
    ends: list,
    settings: tuple[AbstractCurveSolver, AbstractEnergy, Discretisation],
    source: CurveSource,
    start: np.ndarray,
    best: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Solve from `start` (each pair's shortest curve `best`, on the
    refinement's curves) with the solver and on the discretisation of the
    refinement `source`, with the run's energy, and keep the refined curve in
    `best` where it is shorter. Returns the refinement's own per-pair
    results."""
    _, energy, _ = settings
    refinement = refinement_of(source)
    refined = solve_chunk(
        placement,
        metric,
        *ends,
        placement.shard(start),
        refinement.solver,
        energy,
        refinement.discretisation,
        placement.shard(~np.isfinite(best["lengths"])),
    )
    bound = np.where(np.isnan(best["lengths"]), np.inf, best["lengths"])
    shorter = refined["lengths"] < bound
    for key, value in best.items():
        value[shorter] = refined[key][shorter]
    return refined


def _starting_curves(
    source: CurveSource,
    ids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    found: list[dict[str, np.ndarray]],
) -> tuple[Float[np.ndarray, "B n d"] | None, Bool[np.ndarray, " B"] | None]:
    """A source's starting curves for the pairs `ids` (endpoints `rows`,
    `cols`), given the solves `found` before it, and the pairs it has no curve
    of its own for, which are not solved again. `(None, None)`: the straight
    line for every pair (a first source without curves)."""
    best = _shortest(found)["params"] if found else None
    params = source(ids, rows, cols, best)
    if params is None and not found:
        return None, None
    if params is None:
        params = np.zeros_like(best)  # the straight line, as explicit curves
    # In lockstep groups of a solver that is not one loop a skipped pair
    # restarts from its best curve. Every source with curves passes the skip
    # mask: one compilation for all.
    params = np.asarray(params)
    none = np.all(np.isnan(params), axis=(1, 2)) & bool(found)
    if none.any():
        params = np.where(none[:, None, None], best, params)
    return params, none


def _shortest(found: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each pair's shortest finite solve among `found` (lists of per-pair
    `lengths`, `converged` and `params`)."""
    lengths = np.stack([f["lengths"] for f in found])
    shortest = np.argmin(np.where(np.isnan(lengths), np.inf, lengths), axis=0)
    return {
        key: np.stack([f[key] for f in found])[shortest, np.arange(lengths.shape[1])]
        for key in ("lengths", "converged", "params")
    }


def pairwise_graph_estimate(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    graph: AbstractGraphStart | None = None,
    *,
    pairs: Int[ArrayLike, "M 2"] | None = None,
    curves: bool = True,
    discretisation: Discretisation = Discretisation(),
    progress: bool = True,
) -> PairwiseResult:
    """The graph estimate of the geodesics between all pairs of `points` (or the
    `pairs` asked): graph path lengths as distances, fitted graph paths as
    curves, with no curve solver.

    The fast path for many points: seconds where the solved matrix takes
    minutes or hours, within a few percent of the refined distances (measured
    on the [performance page](../performance.md#the-graph-estimate)). It is
    not a bound: a graph path is a curve, which puts it above the geodesic
    distance, but each edge is measured by a few points (a lattice edge by the
    chord between its decoded ends), which on ReLU decoders can put it below.
    A function of its own,
    rather than an option of `pairwise_geodesics`, because it shares none of
    that function's machinery: no solver, no devices, no checkpoint.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.
    - `graph`: the graph, an
      [`AbstractGraphStart`][latentgeo.AbstractGraphStart]. Default: in a 2-D
      latent space a lattice over the points' box
      ([`LatticeStart()`][latentgeo.LatticeStart]), in others the neighbour
      graph of the points ([`GraphStart()`][latentgeo.GraphStart]; pass
      `GraphStart(extra_points=train_codes)` to let it follow the data).
    - `pairs`: optional `(M, 2)` indices `(i, j)`, as for `pairwise_geodesics`.
    - `curves`: fit a spline to every pair's path (`True`); `False` returns
      `curves=None`, for matrices too large to hold a curve per pair.
    - `discretisation`: its `num_segments` is that of the fitted splines.
    - `progress`: show a progress bar over the graph's edges.

    **Returns:** a [`PairwiseResult`][latentgeo.PairwiseResult] with `num_steps`
    zero; pairs that no path of finite edges joins (the metric is NaN or
    infinite between them) have NaN length, straight curves and
    `pair_converged` `False`.

    **Raises:** as [`graph_paths`][latentgeo.graph_paths] and
    [`lattice_paths`][latentgeo.lattice_paths], and `ValueError` for bad
    `pairs`.

    **Example:**

    ```python
    estimate = lg.pairwise_graph_estimate(metric, Z)
    estimate.distances
    ```
    """
    check_metric(metric)
    points = host_points(points, metric.latent_dim, "points", min_rows=2, metric=metric)
    pairs = checked_pairs(pairs, points.shape[0])
    graph = default_graph(metric.latent_dim) if graph is None else graph
    if not isinstance(graph, AbstractGraphStart):
        raise TypeError(
            "`graph` must be a graph start such as `lg.GraphStart()` or "
            f"`lg.LatticeStart()`, got {type(graph).__name__}."
        )
    paths = graph.graph(metric, points, progress)
    rows, cols = pairs[:, 0], pairs[:, 1]
    params = None
    if curves:
        num_segments = discretisation.num_segments
        shape = (len(pairs), num_segments + 1, points.shape[1])
        params = np.zeros(shape, points.dtype)
        for chunk, count in padded_chunks(len(pairs), min(1024, len(pairs))):
            fitted = paths.init_curves(rows[chunk], cols[chunk], num_segments)
            params[chunk[:count]] = np.asarray(fitted.params)[:count]
    lengths = paths.distances[rows, cols]
    state = dict(
        lengths=lengths,
        converged=np.isfinite(lengths),
        params=params,
        num_steps=np.zeros(len(pairs), np.int32),
    )
    warn_failures(state["lengths"], state["converged"])
    return assemble(points, pairs, state)


def pairwise_distances(
    metric: AbstractMetric, points: Float[ArrayLike, "N d"], **kwargs
) -> Float[Array, "N N"]:
    """Geodesic distance matrix between all pairs of `points`.

    A convenience for [`pairwise_geodesics`][latentgeo.pairwise_geodesics]`(...)
    .distances`; it takes the same keyword arguments (`init`, `solver`,
    `energy`, `discretisation`, `batch_size`, `progress`, `checkpoint`, ...).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.

    **Returns:** `(N, N)` symmetric matrix with zero diagonal (NaN for pairs not
    asked, with `pairs=`, and for pairs whose curves meet NaN or inf).

    **Example:**

    ```python
    D = lg.pairwise_distances(lg.ExpectedMetric(ens), Z, batch_size=128)
    ```
    """
    return pairwise_geodesics(metric, points, **kwargs).distances
