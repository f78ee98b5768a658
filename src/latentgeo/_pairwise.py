"""All-pairs geodesic distances, in memory-bounded chunks of vmapped solves."""

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from tqdm import tqdm

from ._checks import host_points, padded_chunks
from ._curve import CubicSpline
from ._graph import graph_paths
from ._metric import AbstractMetric
from ._sharding import place, solve_chunk
from ._solvers import AbstractCurveSolver
from ._store import empty_state, fingerprint, load_state, save_state


class PairwiseResult(eqx.Module):
    """Geodesics between all unordered pairs of `N` points.

    **Attributes:**

    - `distances`: `(N, N)` symmetric matrix of geodesic lengths, zero diagonal.
    - `converged`: `(N, N)` boolean matrix, `True` on the diagonal.
    - `pairs`: `(M, 2)` indices `(i, j)`, `i < j`, of the `M = N (N - 1) / 2`
      solved pairs, in `numpy.triu_indices` order.
    - `curves`: a [`CubicSpline`][latentgeo.CubicSpline] batched over the `M`
      pairs (every field has a leading axis `M`); `curve_of(i, j)` picks one.
    - `num_steps`: `(M,)` solver iterations per pair.
    """

    distances: Float[Array, "N N"]
    converged: Bool[Array, "N N"]
    pairs: Int[Array, "M 2"]
    curves: CubicSpline
    num_steps: Int[Array, " M"]

    def curve_of(self, i: int, j: int) -> CubicSpline:
        """The geodesic from point `i` to point `j` (reversed if `i > j`)."""
        if i == j:
            raise ValueError(
                "`i == j`: the geodesic from a point to itself is trivial."
            )
        a, b = min(i, j), max(i, j)
        n = self.distances.shape[0]
        index = a * n - a * (a + 1) // 2 + (b - a - 1)
        curve = jtu.tree_map(lambda x: x[index], self.curves)
        if i < j:
            return curve
        # Reverse time: swap ends and flip the deviation, which is a spline too.
        # Splines on uniform knots are closed under t -> 1 - t, so the fit is exact.
        times = jnp.linspace(0.0, 1.0, 4 * curve.params.shape[0] + 1)
        return CubicSpline.fit(curve(1.0 - times), curve.num_segments, times)


def pairwise_geodesics(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    *,
    batch_size: int = 64,
    init: CubicSpline | Literal["straight", "graph", "best"] | None = None,
    graph_neighbours: int = 10,
    graph_points: Float[ArrayLike, "E d"] | None = None,
    refine: bool = True,
    solver: AbstractCurveSolver | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    devices: Sequence[jax.Device] | None = None,
    vmap_size: int | None | Literal["auto"] = "auto",
    **geodesic_options,
) -> PairwiseResult:
    """Geodesics between all unordered pairs of `points`, with their curves.

    Each pair `i < j` is solved once; pairs are processed in chunks of
    `batch_size` with one `jax.vmap`-ed, jit-compiled [`geodesic`][latentgeo.geodesic]
    call per chunk (the last chunk is padded, so there is one compilation), so
    memory is bounded whatever `N`. The pairs of a chunk are sharded over
    `devices` (all of them by default: every GPU of a machine, or of every host
    after `jax.distributed.initialize()`), each device solving its share. A pair
    that fails is reported in `converged` and neither stops nor corrupts the
    others.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.
    - `batch_size`: pairs per chunk (64), rounded up to a multiple of the number
      of devices.
    - `init`: starting curves. `"straight"` (or `None`, the default): straight
      lines. `"graph"`: the shortest path in a k-nearest-neighbour graph with
      metric edge lengths, fitted by a spline ([`graph_paths`][latentgeo.graph_paths],
      Arvanitidis et al. 2019), which can avoid the longer of two local
      geodesics. `"best"`: solve from both the straight line and the graph path
      and keep the shorter curve (twice the work; `num_steps` counts both).
      Or a `CubicSpline` batched over the `M = N (N - 1) / 2` pairs in
      `numpy.triu_indices(N, 1)` order.
    - `graph_neighbours`: $k$ of the graph (10).
    - `graph_points`: optional `(E, d)` extra graph nodes, e.g. the training
      codes, so that graph paths follow the data between the query points.
    - `refine`: `True` (default) runs the curve solver from the starting curves.
      `False` (with `init="graph"` or `"best"`) returns the graph estimate:
      distances are graph path lengths, curves the fitted paths, `num_steps`
      zero; fast and approximate (no checkpoint is written).
    - `solver`: passed to `geodesic`.
    - `progress`: show a progress bar (tqdm) over pairs.
    - `checkpoint`: a `.npz` path; every finished chunk's pairs are saved there
      (atomically), and a rerun of the same run resumes from it, solving only the
      pairs not yet done, so an interrupted run (`KeyboardInterrupt`, even
      `kill -9`) loses at most the chunk in progress. The file records a digest
      of everything the results depend on: the points, the metric (its arrays
      and static structure), the solver, the energy and `key`, the starting
      curves, `num_segments`, `num_points` and `max_steps`; a checkpoint of a
      run that differs in any of them is refused with an error naming what
      changed. `batch_size`, `devices` and `vmap_size` may change between runs.
      Across hosts, give a path on a shared file system; process 0 writes it.
    - `devices`: the devices to shard each chunk over; default `jax.devices()`.
      On a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=<cores>` (set
      before importing jax) makes one device per core, and so solves that many
      pairs at once.
    - `vmap_size`: pairs per device solved in lockstep under `jax.vmap`. `None`:
      the device's whole share of the chunk (best on GPUs, which reward wide
      batches). `1`: one pair after the other (`jax.lax.map`), which is fastest
      on CPUs: a lockstep batch runs until its slowest pair converges, and under
      `vmap` the solvers' conditionals (line searches) evaluate both branches.
      `"auto"` (default): `1` on CPU devices, else `None`.
    - `**geodesic_options`: `energy`, `num_segments`, `num_points`, `max_steps`,
      `key` as for `geodesic`.

    **Returns:** a [`PairwiseResult`][latentgeo.PairwiseResult].

    **Raises:** `ValueError` for points of the wrong shape or containing NaN/inf,
    fewer than two points, a bad `batch_size` or `init`, a disconnected graph,
    or an unreadable or mismatched checkpoint.
    """
    points = host_points(points, metric.latent_dim, "points", min_rows=2)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    if isinstance(init, str) and init not in ("straight", "graph", "best"):
        raise ValueError(
            "`init` must be 'straight', 'graph', 'best' or a CubicSpline, "
            f"got {init!r}."
        )
    if not refine and init not in ("graph", "best"):
        raise ValueError(
            "`refine=False` returns the graph estimate: pass `init='graph'`."
        )
    n, n_dim = points.shape
    rows, cols = np.triu_indices(n, 1)
    num_pairs = rows.size
    given = isinstance(init, CubicSpline)
    num_segments = (
        init.num_segments if given else geodesic_options.get("num_segments", 10)
    )
    if given and init.params.shape[0] != num_pairs:
        raise ValueError(
            f"`init` holds {init.params.shape[0]} curves, expected one per pair "
            f"({num_pairs})."
        )
    graph = None
    if init in ("graph", "best"):
        graph = graph_paths(
            metric,
            points,
            neighbours=graph_neighbours,
            extra_points=graph_points,
            progress=progress,
        )
        if not refine:
            return _graph_estimate(graph, rows, cols, num_segments, batch_size)
    placement = place(devices, vmap_size)
    options = tuple(sorted(geodesic_options.items()))
    digests = fingerprint(
        points=points,
        pairs=(rows, cols),
        metric=metric,
        solver=solver,
        energy=(geodesic_options.get("energy"), geodesic_options.get("key")),
        starts=(init, graph_neighbours, graph_points) if graph or given else None,
        options=[(k, v) for k, v in options if k not in ("energy", "key")],
    )
    state = _open_store(checkpoint, digests, num_pairs, (num_segments + 1, n_dim))
    pending = np.flatnonzero(~state["done"])
    batch_size = min(batch_size, num_pairs)
    batch_size = -(-batch_size // placement.num_devices) * placement.num_devices
    metric = placement.replicate(metric)
    bar = tqdm(total=num_pairs, disable=not progress, desc="geodesics", unit="pair")
    bar.update(num_pairs - pending.size)
    with bar:
        for chunk, count in padded_chunks(pending.size, batch_size):
            padded = pending[chunk]  # repeats pairs to keep one shape
            ends = [placement.shard(points[x[padded]]) for x in (rows, cols)]
            starts = []  # one solve per kind of start; each pair keeps the shortest
            if init in (None, "straight", "best"):
                starts.append(None)
            if graph is not None:
                fitted = graph.init_curves(rows[padded], cols[padded], num_segments)
                starts.append(placement.shard(fitted.params))
            if given:
                starts.append(placement.shard(init.params[padded]))
            found = [
                solve_chunk(placement, metric, *ends, start, solver, options)
                for start in starts
            ]
            lengths = np.stack([f["lengths"] for f in found])
            shortest = np.argmin(np.where(np.isnan(lengths), np.inf, lengths), axis=0)
            real = padded[:count]
            for key in ("lengths", "converged", "params"):
                chosen = np.stack([f[key] for f in found])[
                    shortest, np.arange(batch_size)
                ]
                state[key][real] = chosen[:count]
            state["num_steps"][real] = sum(f["num_steps"] for f in found)[:count]
            state["done"][real] = True
            if checkpoint is not None and jax.process_index() == 0:
                save_state(checkpoint, digests, state)
            bar.update(count)
    _warn_failures(state["lengths"], state["converged"])
    return _assemble(
        points,
        rows,
        cols,
        state["lengths"],
        state["converged"],
        state["params"],
        state["num_steps"],
    )


def _warn_failures(lengths: np.ndarray, converged: np.ndarray) -> None:
    """One warning for the pairs whose curves meet NaN/inf and for those that
    did not converge."""
    nonfinite = ~np.isfinite(lengths)
    unconverged = ~converged & ~nonfinite
    if not (nonfinite.any() or unconverged.any()):
        return
    parts = []
    if nonfinite.any():
        parts.append(
            f"{int(nonfinite.sum())} of {lengths.size} geodesics meet NaN or inf "
            "(the metric is not finite along every curve tried, often at an end "
            "point); their distances are NaN"
        )
    if unconverged.any():
        parts.append(
            f"{int(unconverged.sum())} of {lengths.size} geodesics did not "
            "converge; their distances are the lengths of the best curves found"
        )
    warnings.warn(
        "; ".join(parts) + ". Inspect `PairwiseResult.converged`, raise "
        "`max_steps`, or pass `init=`.",
        RuntimeWarning,
        stacklevel=3,
    )


def _open_store(checkpoint, digests, num_pairs, params_shape) -> dict:
    """The per-pair results stored at `checkpoint` for this run, or none yet."""
    state = empty_state(num_pairs, params_shape)
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_state(checkpoint, digests, state)
    return state


def _graph_estimate(graph, rows, cols, num_segments, batch_size) -> PairwiseResult:
    """The graph distances, and the fitted graph paths as curves."""
    points = graph.nodes[: graph.distances.shape[0]]
    size = min(max(batch_size, 1024), rows.size)
    params = np.zeros((rows.size, num_segments + 1, points.shape[1]), points.dtype)
    for chunk, count in padded_chunks(rows.size, size):
        fitted = graph.init_curves(rows[chunk], cols[chunk], num_segments).params
        params[chunk[:count]] = np.asarray(fitted)[:count]
    lengths = graph.distances[rows, cols]
    converged = np.isfinite(lengths)
    num_steps = np.zeros(rows.size, np.int32)
    return _assemble(points, rows, cols, lengths, converged, params, num_steps)


def _assemble(points, rows, cols, lengths, converged_pairs, params, num_steps):
    n, dtype = points.shape[0], points.dtype
    distances = np.zeros((n, n), dtype)
    distances[rows, cols] = lengths
    distances += distances.T
    converged = np.eye(n, dtype=bool)
    converged[rows, cols] = converged_pairs
    converged |= converged.T
    curves = CubicSpline(
        jnp.asarray(points[rows]),
        jnp.asarray(points[cols]),
        jnp.asarray(params, dtype),
    )
    return PairwiseResult(
        distances=jnp.asarray(distances),
        converged=jnp.asarray(converged),
        pairs=jnp.asarray(np.stack([rows, cols], axis=1)),
        curves=curves,
        num_steps=jnp.asarray(num_steps),
    )


def pairwise_distances(
    metric: AbstractMetric, points: Float[ArrayLike, "N d"], **kwargs
) -> Float[Array, "N N"]:
    """Geodesic distance matrix between all pairs of `points`.

    A convenience for [`pairwise_geodesics`][latentgeo.pairwise_geodesics]`(...)
    .distances`; it takes the same keyword arguments (`batch_size`, `progress`,
    `checkpoint`, `solver`, `init`, `energy`, `num_points`, ...).

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.

    **Returns:** `(N, N)` symmetric matrix with zero diagonal.

    **Example:**

    ```python
    D = lg.pairwise_distances(lg.ExpectedMetric(ens), Z, batch_size=128)
    ```
    """
    return pairwise_geodesics(metric, points, **kwargs).distances
