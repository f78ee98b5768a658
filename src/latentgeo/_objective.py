r"""The objectives a geodesic solver minimises: a curve energy as a function of
the spline's deviation parameters.

Three layers:

- [`AbstractCurveObjective`][latentgeo.AbstractCurveObjective]: the energy of the
  spline from `z0` to `z1` sampled at `times`; first-order solvers only call it.
- [`AbstractLeastSquaresObjective`][latentgeo.AbstractLeastSquaresObjective]: the
  energy is a sum of squares of per-point features $a(z), b(z)$,
  $$E = T \sum_{i<T} \|a(z_{i+1}) - a(z_i)\|^2 + T \sum_i w_i \|b(z_i)\|^2,$$
  with the points $z_i$ a fixed linear map (`design`) of the parameters; this is
  the typed interface Gauss–Newton solvers use.
- [`AbstractStochasticObjective`][latentgeo.AbstractStochasticObjective]: a Monte
  Carlo estimate that changes with the step; only solvers that tolerate noise
  (Adam) apply.

Objectives are built by an energy strategy
([`ExpectedEnergy`][latentgeo.ExpectedEnergy],
[`DecorrelatedEnergy`][latentgeo.DecorrelatedEnergy]), never by hand.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._curve import CubicSpline, design_matrix
from ._metric import AbstractMetric, AbstractPullbackMetric, ExpectedMetric


class AbstractCurveObjective(eqx.Module):
    """The energy of the cubic spline from `z0` to `z1` with given deviation
    parameters `(n + 1, d)`, sampled at `times` `(T + 1,)` uniform in $[0, 1]$."""

    metric: eqx.AbstractVar[AbstractMetric]
    z0: eqx.AbstractVar[Float[Array, " d"]]
    z1: eqx.AbstractVar[Float[Array, " d"]]
    times: eqx.AbstractVar[Float[Array, " num_points"]]

    def points(
        self, params: Float[Array, "num_params d"]
    ) -> Float[Array, "num_points d"]:
        """The curve's points at `times`, shape `(T + 1, d)`."""
        return CubicSpline(self.z0, self.z1, params)(self.times)

    @abc.abstractmethod
    def __call__(
        self, params: Float[Array, "num_params d"], step: Int[Array, ""]
    ) -> Float[Array, ""]:
        """The energy, a scalar; `step` (the solver's iteration) seeds stochastic
        estimates and is ignored by deterministic ones."""


class MetricEnergy(AbstractCurveObjective):
    """The metric's own `curve_energy` of the points: any
    [`AbstractMetric`][latentgeo.AbstractMetric], e.g. a tensor-only metric."""

    metric: AbstractMetric
    z0: Float[Array, " d"]
    z1: Float[Array, " d"]
    times: Float[Array, " num_points"]

    def __call__(
        self, params: Float[Array, "num_params d"], step: Int[Array, ""]
    ) -> Float[Array, ""]:
        return self.metric.curve_energy(self.points(params))


class AbstractLeastSquaresObjective(AbstractCurveObjective):
    r"""An energy that is a sum of squares of per-point features.

    $E = T \sum_{i<T} \|a(z_{i+1}) - a(z_i)\|^2 + T \sum_i w_i \|b(z_i)\|^2$ with
    $w_i$ the number of segments touching point $i$. Implement `features`; the
    energy, weights and design matrix follow.
    """

    @abc.abstractmethod
    def features(self, z: Float[Array, " d"]) -> Float[Array, " F"]:
        """$(a(z), b(z))$ concatenated, shape `(F,)`; $a$ is the first
        `num_step_features` entries."""

    @property
    @abc.abstractmethod
    def num_step_features(self) -> int:
        """Length of $a$; the rest of `features` is $b$."""

    def weights(self) -> Float[Array, " num_points"]:
        """$w_i$: each point's $\\|b\\|^2$ counts once per segment it touches."""
        num_points = self.times.shape[0]
        touching = jnp.full(num_points, 2.0, self.times.dtype).at[jnp.array([0, -1])]
        return touching.set(1.0)

    def design(self, num_segments: int) -> Float[Array, "num_points num_params"]:
        """The linear map from one latent coordinate's parameters to the points'
        deviation from the straight line, `(T + 1, n + 1)`; rows 0 and T are
        zero."""
        return design_matrix(self.times, num_segments, 0)

    def __call__(
        self, params: Float[Array, "num_params d"], step: Int[Array, ""]
    ) -> Float[Array, ""]:
        del step
        features = jax.vmap(self.features)(self.points(params))
        a, b = (
            features[:, : self.num_step_features],
            features[:, self.num_step_features :],
        )
        scale = self.times.shape[0] - 1
        steps = jnp.sum(jnp.diff(a, axis=0) ** 2)
        return scale * (steps + jnp.sum(self.weights() * jnp.sum(b**2, axis=-1)))


class PullbackEnergy(AbstractLeastSquaresObjective):
    r"""The energy $T \sum_i \|e(z_{i+1}) - e(z_i)\|^2$ of a pull-back metric
    (for [`ExpectedMetric`][latentgeo.ExpectedMetric], the expected energy)."""

    metric: AbstractPullbackMetric
    z0: Float[Array, " d"]
    z1: Float[Array, " d"]
    times: Float[Array, " num_points"]

    def features(self, z: Float[Array, " d"]) -> Float[Array, " F"]:
        return self.metric.embed(z)

    @property
    def num_step_features(self) -> int:
        # filter_eval_shape: the metric's arrays may be tracers (a metric
        # passed into `jit`); jax.eval_shape would compare them in its cache.
        return eqx.filter_eval_shape(self.metric.embed, self.z0).shape[0]


class ExactDecorrelatedEnergy(AbstractLeastSquaresObjective):
    r"""The paper's decorrelated energy in closed form:
    $T \sum_i \|\mu(z_{i+1}) - \mu(z_i)\|^2 + v(z_{i+1}) + v(z_i)$."""

    metric: ExpectedMetric
    z0: Float[Array, " d"]
    z1: Float[Array, " d"]
    times: Float[Array, " num_points"]

    def features(self, z: Float[Array, " d"]) -> Float[Array, " F"]:
        mean, centred = self.metric.decorrelated_features(z)
        return jnp.concatenate([mean, centred])

    @property
    def num_step_features(self) -> int:
        return eqx.filter_eval_shape(self.metric.ensemble.mean, self.z0).size


class AbstractStochasticObjective(AbstractCurveObjective):
    """A Monte Carlo energy: a fresh estimate at every `step`."""


class MonteCarloDecorrelatedEnergy(AbstractStochasticObjective):
    """The paper's one-sample Monte Carlo decorrelated energy: one random member
    per point, redrawn every step from `fold_in(key, step)`."""

    metric: ExpectedMetric
    z0: Float[Array, " d"]
    z1: Float[Array, " d"]
    times: Float[Array, " num_points"]
    key: PRNGKeyArray

    def __call__(
        self, params: Float[Array, "num_params d"], step: Int[Array, ""]
    ) -> Float[Array, ""]:
        key = jax.random.fold_in(self.key, step)
        return self.metric.decorrelated_energy(self.points(params), key)
