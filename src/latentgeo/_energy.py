r"""Energy strategies: what `geodesic(..., energy=)` minimises over curves.

Each strategy turns a metric, two end points and the evaluation times into an
objective ([`AbstractCurveObjective`][latentgeo.AbstractCurveObjective]); the
objective's type tells solvers what structure they may use (a sum of squares for
Gauss–Newton, a noisy estimate for Adam). Whatever the energy, the length a
geodesic reports is the metric length of the curve found.
"""

import abc

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray

from ._metric import AbstractMetric, AbstractPullbackMetric, ExpectedMetric
from ._objective import (
    AbstractCurveObjective,
    ExactDecorrelatedEnergy,
    MetricEnergy,
    MonteCarloDecorrelatedEnergy,
    PullbackEnergy,
)


class AbstractEnergy(eqx.Module):
    """A curve energy to minimise; pass one as `geodesic(..., energy=)`."""

    @abc.abstractmethod
    def objective(
        self,
        metric: AbstractMetric,
        z0: Float[Array, " d"],
        z1: Float[Array, " d"],
        times: Float[Array, " num_points"],
    ) -> AbstractCurveObjective:
        """The objective over spline parameters for the curve from `z0` to `z1`
        sampled at `times`. Raises `ValueError` (at trace time) if the energy does
        not apply to `metric`."""


class ExpectedEnergy(AbstractEnergy):
    r"""The metric's own curve energy $\approx \int_0^1 \gamma'^\top G \gamma'\,dt$
    (the default). For an [`ExpectedMetric`][latentgeo.ExpectedMetric] this is the
    expected (correlated) energy
    $T \sum_i \frac1K \sum_k \|f_k(z_{i+1}) - f_k(z_i)\|^2$. For pull-back metrics
    it is a sum of squares, which Gauss–Newton solvers exploit.

    **Example:**

    ```python
    lg.geodesic(metric, z0, z1, energy=lg.ExpectedEnergy())
    ```
    """

    def objective(
        self,
        metric: AbstractMetric,
        z0: Float[Array, " d"],
        z1: Float[Array, " d"],
        times: Float[Array, " num_points"],
    ) -> AbstractCurveObjective:
        if isinstance(metric, AbstractPullbackMetric):
            return PullbackEnergy(metric, z0, z1, times)
        return MetricEnergy(metric, z0, z1, times)


class DecorrelatedEnergy(AbstractEnergy):
    r"""The paper's decorrelated energy (Syrota et al. 2024, sec. 4), for *finding*
    curves under an [`ExpectedMetric`][latentgeo.ExpectedMetric].

    Members at neighbouring points are drawn independently:
    $T \sum_i \|\mu(z_{i+1}) - \mu(z_i)\|^2 + v(z_{i+1}) + v(z_i)$, with $\mu$ the
    member mean and $v$ the member variance. The variance terms act as a
    potential that pushes curves off uncertain regions and do not vanish as the
    curve is refined, so this is an objective, not a length (see
    [`ExpectedMetric.decorrelated_energy`][latentgeo.ExpectedMetric.decorrelated_energy]).

    **Arguments:**

    - `key`: `None` (default) for the exact expectation (a sum of squares, so
      Gauss–Newton solvers apply); a PRNG key for the paper's one-sample Monte
      Carlo estimate, one random member per point, redrawn every step (only
      noise-tolerant solvers such as Adam apply; `geodesic` then defaults to
      [`OptaxSolver.paper_adam`][latentgeo.OptaxSolver.paper_adam]).

    **Example:**

    ```python
    lg.geodesic(metric, z0, z1, energy=lg.DecorrelatedEnergy())
    lg.geodesic(metric, z0, z1, energy=lg.DecorrelatedEnergy(key=jax.random.key(0)))
    ```
    """

    key: PRNGKeyArray | None = None

    def objective(
        self,
        metric: AbstractMetric,
        z0: Float[Array, " d"],
        z1: Float[Array, " d"],
        times: Float[Array, " num_points"],
    ) -> AbstractCurveObjective:
        if not isinstance(metric, ExpectedMetric):
            raise ValueError(
                "DecorrelatedEnergy needs an ExpectedMetric (a decoder ensemble), "
                f"got {type(metric).__name__}."
            )
        if self.key is None:
            return ExactDecorrelatedEnergy(metric, z0, z1, times)
        return MonteCarloDecorrelatedEnergy(metric, z0, z1, times, self.key)
