"""The result of many geodesic solves, and the pieces every way of computing one
shares: the check of a pair list, the warning about failed pairs, the assembly."""

import warnings

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._curve import CubicSpline


class PairwiseResult(eqx.Module):
    """Geodesics between `M` pairs of `N` points: all unordered pairs, or the
    `pairs` asked.

    **Attributes:**

    - `points`: `(N, d)` the points.
    - `pairs`: `(M, 2)` indices `(i, j)` of the solved pairs; for all pairs
      `i < j` in `numpy.triu_indices(N, 1)` order, otherwise as asked.
    - `lengths`: `(M,)` geodesic length of each pair; NaN where the curve meets
      a NaN or infinite metric.
    - `pair_converged`: `(M,)` whether each pair's solve succeeded.
    - `curves`: a [`CubicSpline`][latentgeo.CubicSpline] batched over the `M`
      pairs (every field has a leading axis `M`), curve `m` running from
      `points[pairs[m, 0]]` to `points[pairs[m, 1]]`; `curve_of(i, j)` picks one.
      `None` for a graph estimate asked without curves.
    - `num_steps`: `(M,)` solver iterations per pair (zero for the graph
      estimate).

    **Properties:**

    - `distances`: `(N, N)` symmetric matrix of the lengths, zero diagonal, NaN
      for pairs not solved.
    - `converged`: `(N, N)` the same for `pair_converged`: `True` on the
      diagonal, `False` for pairs not solved.
    """

    points: Float[Array, "N d"]
    pairs: Int[Array, "M 2"]
    lengths: Float[Array, " M"]
    pair_converged: Bool[Array, " M"]
    curves: CubicSpline | None
    num_steps: Int[Array, " M"]

    @property
    def distances(self) -> Float[Array, "N N"]:
        return jnp.asarray(self._matrix(np.asarray(self.lengths), np.nan, 0.0))

    @property
    def converged(self) -> Bool[Array, "N N"]:
        return jnp.asarray(self._matrix(np.asarray(self.pair_converged), False, True))

    def _matrix(self, values: np.ndarray, missing, diagonal) -> np.ndarray:
        n = self.points.shape[0]
        matrix = np.full((n, n), missing, values.dtype)
        rows, cols = np.asarray(self.pairs).T
        matrix[rows, cols] = values
        matrix[cols, rows] = values
        np.fill_diagonal(matrix, diagonal)
        return matrix

    def curve_of(self, i: int, j: int) -> CubicSpline:
        """The geodesic from point `i` to point `j` (a solved pair, in either
        direction).

        **Raises:** `ValueError` if `i == j` or the pair was not solved."""
        if i == j:
            raise ValueError(
                "`i == j`: the geodesic from a point to itself is trivial."
            )
        if self.curves is None:
            raise ValueError("This result holds no curves (`curves=False`).")
        pairs = np.asarray(self.pairs)
        for a, b, forward in ((i, j, True), (j, i, False)):
            found = np.flatnonzero((pairs[:, 0] == a) & (pairs[:, 1] == b))
            if found.size:
                break
        else:
            raise ValueError(f"The pair ({i}, {j}) was not solved.")
        curve = jtu.tree_map(lambda x: x[found[0]], self.curves)
        if forward:
            return curve
        # Reverse time: swap ends and flip the deviation, which is a spline too.
        # Splines on uniform knots are closed under t -> 1 - t, so the fit is exact.
        times = jnp.linspace(0.0, 1.0, 4 * curve.params.shape[0] + 1)
        return CubicSpline.fit(curve(1.0 - times), curve.num_segments, times)


def checked_pairs(pairs, num_points: int) -> np.ndarray:
    """`pairs` as an `(M, 2)` int array of valid distinct indices; all pairs
    `i < j` by default."""
    if pairs is None:
        return np.stack(np.triu_indices(num_points, 1), axis=1)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] < 1:
        raise ValueError(f"`pairs` has shape {pairs.shape}, expected (M, 2), M >= 1.")
    if not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"`pairs` must hold integer indices, got {pairs.dtype}.")
    outside = np.flatnonzero(np.any((pairs < 0) | (pairs >= num_points), axis=1))
    if outside.size:
        raise ValueError(
            f"`pairs` rows {outside[:10].tolist()} index outside the {num_points} "
            "points."
        )
    same = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
    if same.size:
        raise ValueError(f"`pairs` rows {same[:10].tolist()} join a point to itself.")
    return pairs.astype(np.int64)


def warn_failures(lengths: np.ndarray, converged: np.ndarray) -> None:
    """One warning for the pairs whose curves meet NaN/inf and for those that
    did not converge."""
    nonfinite = ~np.isfinite(lengths)
    unconverged = ~converged & ~nonfinite
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
            "converge; their distances are the lengths of the best curves found "
            "(raise `max_steps`, or pass another `init=`)"
        )
    if parts:
        warnings.warn(
            "; ".join(parts) + ". Inspect `PairwiseResult.converged`.",
            RuntimeWarning,
            stacklevel=3,
        )


def assemble(points: np.ndarray, pairs: np.ndarray, state: dict) -> PairwiseResult:
    """The `PairwiseResult` of per-pair `state` (lengths, converged, curve
    parameters or `None`, steps), in the points' float dtype."""
    dtype = points.dtype
    curves = None
    if state["params"] is not None:
        curves = CubicSpline(
            jnp.asarray(points[pairs[:, 0]]),
            jnp.asarray(points[pairs[:, 1]]),
            jnp.asarray(state["params"], dtype),
        )
    return PairwiseResult(
        points=jnp.asarray(points),
        pairs=jnp.asarray(pairs),
        lengths=jnp.asarray(state["lengths"], dtype),
        pair_converged=jnp.asarray(state["converged"]),
        curves=curves,
        num_steps=jnp.asarray(state["num_steps"]),
    )
