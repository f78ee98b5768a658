"""Curves with fixed end points: the search space of geodesic solvers."""

import abc
import functools

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._checks import HIGHEST, as_float


class AbstractCurve(eqx.Module):
    r"""A curve $\gamma: [0, 1] \to \mathbb{R}^d$ with fixed end points.

    Subclasses implement `__call__` and `derivative`; both take a batch of times.
    """

    z0: eqx.AbstractVar[Float[Array, " d"]]
    z1: eqx.AbstractVar[Float[Array, " d"]]

    @abc.abstractmethod
    def __call__(self, t: Float[Array, " n"]) -> Float[Array, "n d"]:
        """Points $\\gamma(t)$ for times `t` in $[0, 1]$, shape `(n, d)`."""

    @abc.abstractmethod
    def derivative(self, t: Float[Array, " n"]) -> Float[Array, "n d"]:
        """Velocities $\\gamma'(t)$, shape `(n, d)`."""


@functools.cache
def _deviation_basis(num_segments: int) -> np.ndarray:
    r"""Basis of cubic-spline deviations that vanish at both ends, orthonormal in
    $L^2[0, 1]$.

    Segment $j$ holds a cubic $a_j + b_j s + c_j s^2 + d_j s^3$ in its local time
    $s = n t - j \in [0, 1]$ (local coordinates keep the coefficients of order one,
    so float32 evaluation does not cancel). The coefficients $(4n,)$ satisfy
    $3(n - 1) + 2$ linear constraints: zero at both ends, and value, slope and
    curvature continuity at the $n - 1$ inner knots (the chain-rule factor $n$ is
    the same on both sides of a knot); the null space has dimension $n + 1$. It is
    orthonormalised in $L^2$ (Gram matrix by Gauss–Legendre quadrature, exact for
    these degree-6 products): a basis orthonormal in coefficient space is badly
    conditioned as functions, which makes energy Hessians singular in float32.
    Returns shape `(4n, n + 1)`.
    """
    n = num_segments

    def powers(s: float, order: int) -> np.ndarray:
        # d^order/ds^order of (1, s, s^2, s^3)
        values = [[1, s, s**2, s**3], [0, 1, 2 * s, 3 * s**2], [0, 0, 2, 6 * s]]
        return np.asarray(values[order], dtype=np.float64)

    start = np.zeros(4 * n)
    start[0:4] = powers(0.0, 0)
    end = np.zeros(4 * n)
    end[4 * (n - 1) :] = powers(1.0, 0)
    rows = [start, end]
    for j in range(1, n):
        for order in range(3):
            row = np.zeros(4 * n)
            row[4 * (j - 1) : 4 * j] = powers(1.0, order)
            row[4 * j : 4 * (j + 1)] = -powers(0.0, order)
            rows.append(row)
    constraints = np.stack(rows)
    _, _, vt = np.linalg.svd(constraints)
    null_space = vt[constraints.shape[0] :].T  # (4n, n + 1)
    nodes, node_weights = np.polynomial.legendre.leggauss(4)
    s = (nodes + 1) / 2
    monomials = np.stack([s**0, s, s**2, s**3], axis=1)  # (4 nodes, 4)
    values = np.einsum("qc,jcp->jqp", monomials, null_space.reshape(n, 4, n + 1))
    gram = np.einsum("jqp,q,jqr->pr", values, node_weights / (2 * n), values)
    return null_space @ np.linalg.inv(np.linalg.cholesky(gram)).T


class CubicSpline(AbstractCurve):
    r"""A cubic spline from `z0` to `z1`: the straight line plus a $C^2$ piecewise
    cubic deviation that is zero at both ends.

    With $n$ segments the deviation has $n + 1$ free parameters per latent
    dimension (the null space of the end-point and continuity constraints, in an
    orthonormal basis). Zero parameters give the straight line. End points are
    exact by construction, never by optimisation.

    **Attributes:**

    - `z0`, `z1`: end points, shape `(d,)`.
    - `params`: deviation coefficients, shape `(n + 1, d)`.

    **Example:**

    ```python
    curve = lg.CubicSpline.straight(z0, z1, num_segments=10)
    curve(jnp.linspace(0, 1, 5))  # (5, d)
    ```
    """

    z0: Float[Array, "*batch d"]
    z1: Float[Array, "*batch d"]
    params: Float[Array, "*batch num_params d"]

    def __check_init__(self):
        # Leading batch axes (e.g. one curve per pair) are allowed if they agree.
        z0, z1, params = map(jnp.shape, (self.z0, self.z1, self.params))
        if len(z0) < 1 or z1 != z0:
            raise ValueError(
                f"`z0` and `z1` must both have shape (d,); got {z0} and {z1}."
            )
        if len(params) != len(z0) + 1 or params[:-2] + params[-1:] != z0:
            raise ValueError(
                f"`params` has shape {params}, expected (num_segments + 1, {z0[-1]})."
            )
        if params[-2] < 2:
            raise ValueError("A CubicSpline needs at least one segment.")

    @classmethod
    def straight(
        cls,
        z0: Float[ArrayLike, " d"],
        z1: Float[ArrayLike, " d"],
        num_segments: int = 10,
    ) -> "CubicSpline":
        """The straight line from `z0` to `z1` as a spline of `num_segments`."""
        z0 = as_float(z0)
        params = jnp.zeros((num_segments + 1, z0.shape[-1]), jnp.result_type(z0))
        return cls(z0, jnp.asarray(z1, z0.dtype), params)

    @classmethod
    def fit(
        cls,
        points: Float[ArrayLike, "m d"],
        num_segments: int = 10,
        times: Float[ArrayLike, " m"] | None = None,
    ) -> "CubicSpline":
        """Least-squares spline through `points`, with exact end points.

        **Arguments:**

        - `points`: `(m, d)` points along a path, from `z0 = points[0]` to
          `z1 = points[-1]` (e.g. a shortest path in a graph).
        - `num_segments`: $n$, the spline's number of segments.
        - `times`: `(m,)` increasing times in $[0, 1]$ of the points; by default
          proportional to cumulative Euclidean arc length (chord length).

        **Returns:** the `CubicSpline` closest to the points in least squares.
        """
        points = as_float(points)
        if points.ndim != 2 or points.shape[0] < 2:
            raise ValueError(f"`points` has shape {points.shape}, expected (m>=2, d).")
        z0, z1 = points[0], points[-1]
        if times is None:
            steps = jnp.linalg.norm(jnp.diff(points, axis=0), axis=1)
            cumulative = jnp.concatenate([jnp.zeros(1, steps.dtype), jnp.cumsum(steps)])
            times = cumulative / jnp.maximum(
                cumulative[-1], jnp.finfo(steps.dtype).tiny
            )
        line = z0[None] + times[:, None] * (z1 - z0)[None]
        design = design_matrix(times, num_segments, 0)
        params, *_ = jnp.linalg.lstsq(design, points - line)
        return cls(z0, z1, params.astype(points.dtype))

    @property
    def num_segments(self) -> int:
        return self.params.shape[-2] - 1

    def __call__(self, t: Float[Array, " n"]) -> Float[Array, "n d"]:
        t = jnp.asarray(t, self.params.dtype)
        line = self.z0[None] + t[:, None] * (self.z1 - self.z0)[None]
        design = design_matrix(t, self.num_segments, 0)
        points = line + jnp.matmul(design, self.params, precision=HIGHEST)
        # End points exact by construction, not up to float rounding.
        points = jnp.where((t == 0)[:, None], self.z0[None], points)
        return jnp.where((t == 1)[:, None], self.z1[None], points)

    def derivative(self, t: Float[Array, " n"]) -> Float[Array, "n d"]:
        t = jnp.asarray(t, self.params.dtype)
        design = design_matrix(t, self.num_segments, 1)
        slope = jnp.matmul(design, self.params, precision=HIGHEST)
        return (self.z1 - self.z0)[None] + slope


def design_matrix(t: Array, num_segments: int, order: int) -> Array:
    """Map from spline parameters to the `order`-th derivative at times `t`.

    Shape `(len(t), num_segments + 1)`: row $i$ evaluates the basis deviations
    (or their time derivative) at `t[i]`.
    """
    basis = jnp.asarray(_deviation_basis(num_segments), t.dtype)
    scaled = t * num_segments
    segment = jnp.clip(jnp.floor(scaled).astype(int), 0, num_segments - 1)
    s = scaled - segment.astype(t.dtype)
    if order == 0:
        monomials = jnp.stack([jnp.ones_like(s), s, s**2, s**3], axis=-1)
    else:  # d/dt = num_segments * d/ds
        monomials = num_segments * jnp.stack(
            [jnp.zeros_like(s), jnp.ones_like(s), 2 * s, 3 * s**2], axis=-1
        )
    coefficients = basis.reshape(num_segments, 4, -1)[segment]  # (n_t, 4, n+1)
    return jnp.einsum("tc,tcp->tp", monomials, coefficients, precision=HIGHEST)
