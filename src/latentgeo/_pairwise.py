"""All-pairs geodesic distances, in memory-bounded chunks of vmapped solves."""

import hashlib
import os
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, Bool, Float, Int
from tqdm.auto import tqdm

from ._curve import CubicSpline
from ._geodesic import geodesic
from ._metric import AbstractMetric
from ._solvers import AbstractCurveSolver


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
            raise ValueError("`i == j`: the geodesic from a point to itself is trivial.")
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


@eqx.filter_jit
def _solve_chunk(metric, starts, ends, init_params, solver, options):
    def solve(z0, z1, params):
        init = None if params is None else CubicSpline(z0, z1, params)
        return geodesic(
            metric, z0, z1, init=init, solver=solver, throw=False, **dict(options)
        )

    in_axes = (0, 0, None if init_params is None else 0)
    return jax.vmap(solve, in_axes=in_axes)(starts, ends, init_params)


def _fingerprint(points: np.ndarray, options: tuple) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(points).tobytes())
    digest.update(repr(options).encode())
    return digest.hexdigest()


def _empty_state(num_pairs: int, params_shape: tuple[int, int]) -> dict:
    return {
        "done": np.zeros(num_pairs, bool),
        "lengths": np.zeros(num_pairs),
        "converged": np.zeros(num_pairs, bool),
        "num_steps": np.zeros(num_pairs, np.int32),
        "params": np.zeros((num_pairs, *params_shape)),
    }


def _load_checkpoint(path: Path, fingerprint: str, empty: dict) -> dict:
    try:
        with np.load(path) as data:
            stored = {k: data[k] for k in (*empty, "fingerprint")}
    except Exception as error:
        raise ValueError(
            f"Cannot read the checkpoint {path}: {error}. Delete it to start afresh."
        ) from error
    if str(stored.pop("fingerprint")) != fingerprint:
        raise ValueError(
            f"The checkpoint {path} was written for other points or options; "
            "delete it or pass another `checkpoint` path."
        )
    return stored


def _save_checkpoint(path: Path, fingerprint: str, state: dict) -> None:
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, fingerprint=fingerprint, **state)
    os.replace(temporary, path)


def pairwise_geodesics(
    metric: AbstractMetric,
    points: Float[Array, "N d"],
    *,
    batch_size: int = 64,
    init: CubicSpline | None = None,
    solver: AbstractCurveSolver | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    **geodesic_options,
) -> PairwiseResult:
    """Geodesics between all unordered pairs of `points`, with their curves.

    Each pair `i < j` is solved once; pairs are processed in chunks of
    `batch_size` with one `jax.vmap`-ed, jit-compiled [`geodesic`][latentgeo.geodesic]
    call per chunk (the last chunk is padded, so there is one compilation), so
    memory is bounded whatever `N`. A pair that fails is reported in `converged`
    and neither stops nor corrupts the others.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` latent points.
    - `batch_size`: pairs per chunk (64).
    - `init`: optional starting curves, a `CubicSpline` batched over the
      `M = N (N - 1) / 2` pairs in `numpy.triu_indices(N, 1)` order.
    - `solver`: passed to `geodesic`.
    - `progress`: show a progress bar (tqdm) over pairs.
    - `checkpoint`: a `.npz` path; finished chunks are saved there as they
      complete, and a rerun with the same points and options resumes from it, so
      an interrupted run (e.g. `KeyboardInterrupt`) loses no finished work.
    - `**geodesic_options`: `energy`, `num_segments`, `num_points`, `max_steps`,
      `key` as for `geodesic`.

    **Returns:** a [`PairwiseResult`][latentgeo.PairwiseResult].

    **Raises:** `ValueError` for points of the wrong shape or containing NaN/inf,
    fewer than two points, a bad `batch_size`, or an unreadable or mismatched
    checkpoint.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != metric.latent_dim:
        raise ValueError(
            f"`points` has shape {points.shape}, expected (N, {metric.latent_dim})."
        )
    if points.shape[0] < 2:
        raise ValueError(f"`points` needs at least two points, got {points.shape[0]}.")
    if not np.all(np.isfinite(points)):
        bad = np.flatnonzero(~np.all(np.isfinite(points), axis=1))
        raise ValueError(f"`points` rows {bad.tolist()} contain NaN or inf.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    if not np.issubdtype(points.dtype, np.floating):
        points = points.astype(jnp.result_type(float))
    n = points.shape[0]
    rows, cols = np.triu_indices(n, 1)
    num_pairs = rows.size
    options = tuple(sorted(geodesic_options.items()))
    num_segments = (
        geodesic_options.get("num_segments", 10) if init is None else init.num_segments
    )
    if init is not None and init.params.shape[0] != num_pairs:
        raise ValueError(
            f"`init` holds {init.params.shape[0]} curves, expected one per pair "
            f"({num_pairs})."
        )
    params_shape = (num_segments + 1, points.shape[1])
    path = None if checkpoint is None else Path(checkpoint)
    fingerprint = _fingerprint(points, (options, batch_size, init is None))
    state = _empty_state(num_pairs, params_shape)
    if path is not None and path.exists():
        state = _load_checkpoint(path, fingerprint, state)
    batch_size = min(batch_size, num_pairs)
    chunks = [
        np.arange(s, min(s + batch_size, num_pairs))
        for s in range(0, num_pairs, batch_size)
    ]
    bar = tqdm(total=num_pairs, disable=not progress, desc="geodesics", unit="pair")
    bar.update(int(state["done"].sum()))
    with bar:
        for chunk in chunks:
            if state["done"][chunk].all():
                continue
            padded = np.resize(chunk, batch_size)  # repeat pairs to keep one shape
            init_params = None if init is None else init.params[padded]
            out = _solve_chunk(
                metric,
                jnp.asarray(points[rows[padded]]),
                jnp.asarray(points[cols[padded]]),
                init_params,
                solver,
                options,
            )
            k = chunk.size
            state["lengths"][chunk] = np.asarray(out.length)[:k]
            state["converged"][chunk] = np.asarray(out.converged)[:k]
            state["num_steps"][chunk] = np.asarray(out.num_steps)[:k]
            state["params"][chunk] = np.asarray(out.curve.params)[:k]
            state["done"][chunk] = True
            if path is not None:
                _save_checkpoint(path, fingerprint, state)
            bar.update(k)
    converged_pairs = state["converged"]
    if not converged_pairs.all():
        warnings.warn(
            f"{int((~converged_pairs).sum())} of {num_pairs} geodesics did not "
            "converge; their distances are the lengths of the best curves found. "
            "Inspect `PairwiseResult.converged`, raise `max_steps`, or pass `init=`.",
            RuntimeWarning,
            stacklevel=2,
        )
    dtype = points.dtype
    distances = np.zeros((n, n), dtype)
    distances[rows, cols] = state["lengths"]
    distances += distances.T
    converged = np.eye(n, dtype=bool)
    converged[rows, cols] = converged_pairs
    converged |= converged.T
    # Built under vmap so that each curve is checked with its own (d,) shapes.
    curves = jax.vmap(CubicSpline)(
        jnp.asarray(points[rows]),
        jnp.asarray(points[cols]),
        jnp.asarray(state["params"], dtype),
    )
    return PairwiseResult(
        distances=jnp.asarray(distances),
        converged=jnp.asarray(converged),
        pairs=jnp.asarray(np.stack([rows, cols], axis=1)),
        curves=curves,
        num_steps=jnp.asarray(state["num_steps"]),
    )


def pairwise_distances(
    metric: AbstractMetric, points: Float[Array, "N d"], **kwargs
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
