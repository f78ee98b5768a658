"""The discretisation of a geodesic solve: one typed settings object, validated
once, with its defaults in one place."""

import operator

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class Discretisation(eqx.Module):
    r"""How a geodesic is discretised and how long its solver may run; pass one
    as `discretisation=` to [`geodesic`][latentgeo.geodesic],
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics],
    [`log_map`][latentgeo.log_map] and
    [`frechet_mean`][latentgeo.frechet_mean].

    The curve is a [`CubicSpline`][latentgeo.CubicSpline] of `num_segments`
    segments; its energy is evaluated at `num_points` uniform times in
    $[0, 1]$; the solver takes at most `max_steps` iterations. How these
    defaults were chosen, and what they cost, is on the
    [performance page](../performance.md).

    **Arguments:**

    - `num_segments`: spline segments, $n \ge 1$ ($n + 1$ free parameters per
      latent dimension) (10). A starting curve given by the user keeps its
      own number of segments.
    - `num_points`: points at which the energy is evaluated, $\ge 2$ (64).
    - `max_steps`: the iteration cap of each solver stage, $\ge 1$ (1000);
      composite solvers (a warm start, an escalation, a second start) give
      each stage this cap, so their total `num_steps` can exceed it.

    **Example:**

    ```python
    fine = lg.Discretisation(num_segments=20, num_points=256)
    lg.geodesic(metric, z0, z1, discretisation=fine)
    ```
    """

    num_segments: int = eqx.field(static=True, default=10, converter=operator.index)
    num_points: int = eqx.field(static=True, default=64, converter=operator.index)
    max_steps: int = eqx.field(static=True, default=1000, converter=operator.index)

    def __check_init__(self):
        for name, value, least in (
            ("num_segments", self.num_segments, 1),
            ("num_points", self.num_points, 2),
            ("max_steps", self.max_steps, 1),
        ):
            if value < least:
                raise ValueError(f"`{name}` must be at least {least}, got {value}.")

    def times(self, dtype) -> Float[Array, " num_points"]:
        """The `num_points` uniform times in $[0, 1]$ of the energy."""
        return jnp.linspace(0.0, 1.0, self.num_points, dtype=dtype)
