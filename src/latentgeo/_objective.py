r"""The objective a geodesic solver minimises: a curve energy as a function of
the spline parameters.

For pull-back metrics every energy latentgeo offers is a sum of squares over
per-point features $a(z), b(z)$:

$$E = T \sum_{i<T} \|a(z_{i+1}) - a(z_i)\|^2 + T \sum_i w_i \|b(z_i)\|^2,$$

with the points $z_i$ a fixed linear map of the parameters. Second-order solvers
use this structure (`features`, `weights`, `design`); first-order solvers only
call the objective.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._curve import CubicSpline, _design_matrix
from ._metric import AbstractMetric, AbstractPullbackMetric


class CurveObjective(eqx.Module):
    """The energy of the spline from `z0` to `z1` with given deviation parameters,
    sampled at `times`.

    **Attributes:**

    - `metric`: the [`AbstractMetric`][latentgeo.AbstractMetric].
    - `z0`, `z1`: end points `(d,)`.
    - `times`: `(T + 1,)` uniform evaluation times from 0 to 1.
    - `energy`: `"expected"` (the metric's `curve_energy`) or `"decorrelated"`.
    - `key`: `None`, or a PRNG key for the Monte Carlo decorrelated energy.
    """

    metric: AbstractMetric
    z0: Float[Array, " d"]
    z1: Float[Array, " d"]
    times: Float[Array, " num_points"]
    energy: str = eqx.field(static=True)
    key: PRNGKeyArray | None

    def points(
        self, params: Float[Array, "num_params d"]
    ) -> Float[Array, "num_points d"]:
        """The curve's points at `times`."""
        return CubicSpline(self.z0, self.z1, params)(self.times)

    def __call__(self, params: Float[Array, "num_params d"], step: Int[Array, ""]):
        """The energy, a scalar; `step` seeds the Monte Carlo estimate."""
        points = self.points(params)
        if self.energy == "expected":
            return self.metric.curve_energy(points)
        key = None if self.key is None else jax.random.fold_in(self.key, step)
        return self.metric.decorrelated_energy(points, key)

    @property
    def is_sum_of_squares(self) -> bool:
        """Whether `features` is available (deterministic pull-back energies)."""
        return isinstance(self.metric, AbstractPullbackMetric) and self.key is None

    def features(self, z: Float[Array, " d"]) -> Float[Array, " F"]:
        """$(a(z), b(z))$ concatenated; split at `num_step_features`."""
        if self.energy == "expected":
            return self.metric.embed(z)
        mean, centred = self.metric.decorrelated_features(z)
        return jnp.concatenate([mean, centred])

    @property
    def num_step_features(self) -> int:
        """Length of $a$; the rest of `features` is $b$."""
        if self.energy == "expected":
            return jax.eval_shape(self.metric.embed, self.z0).shape[0]
        return math.prod(self.metric.ensemble.out_shape)

    def weights(self) -> Float[Array, " num_points"]:
        """$w_i$: each point's variance counts once per segment it touches."""
        num_points = self.times.shape[0]
        touching = jnp.full(num_points, 2.0, self.times.dtype).at[jnp.array([0, -1])]
        return touching.set(1.0)

    def design(self, num_segments: int) -> Float[Array, "num_points num_params"]:
        """The linear map from one latent coordinate's parameters to the points'
        deviation from the straight line; rows 0 and T are zero."""
        return _design_matrix(self.times, num_segments, 0)
