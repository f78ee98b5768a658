"""Energy strategies (`_energy.py`): which objective `ExpectedEnergy` and
`DecorrelatedEnergy` build for which metric, and what a geodesic under each
minimises, against closed forms for an affine two-member ensemble."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import ConformalSphere, InverseStereographic, small_mlp
from latentgeo._objective import (
    ExactDecorrelatedEnergy,
    MetricEnergy,
    MonteCarloDecorrelatedEnergy,
    PullbackEnergy,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
Z0, Z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
TIMES = jnp.linspace(0.0, 1.0, 9)


class Affine(eqx.Module):
    """$f(z) = Az + c$."""

    matrix: jax.Array
    offset: jax.Array

    def __call__(self, z):
        return self.matrix @ z + self.offset


def affine_pair(key):
    keys = jax.random.split(key, 4)
    matrices = [jax.random.normal(k, (3, 2)) for k in keys[:2]]
    offsets = [jax.random.normal(k, (3,)) for k in keys[2:]]
    members = [Affine(a, c) for a, c in zip(matrices, offsets)]
    return lg.ExpectedMetric(lg.EnsembleDecoder.from_members(members)), matrices


@eqx.filter_jit
def evaluate(objective, params):
    return objective(params, jnp.array(0))


def test_expected_energy_is_the_metric_energy_of_each_kind(getkey):
    ensemble = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 2, key=getkey()))
    params = 0.3 * jax.random.normal(getkey(), (5, 2))
    kinds = [
        (SPHERE, PullbackEnergy),
        (ensemble, PullbackEnergy),  # the expected energy is a pull-back's
        (ConformalSphere(), MetricEnergy),  # tensor only: no sum of squares
    ]
    for metric, kind in kinds:
        objective = lg.ExpectedEnergy().objective(metric, Z0, Z1, TIMES)
        assert type(objective) is kind
        assert objective.metric is metric
        assert objective.z0 is Z0 and objective.z1 is Z1 and objective.times is TIMES
        assert isinstance(objective, lg.AbstractLeastSquaresObjective) == (
            kind is PullbackEnergy
        )
        points = lg.CubicSpline(Z0, Z1, params)(TIMES)
        np.testing.assert_allclose(
            evaluate(objective, params), metric.curve_energy(points), rtol=1e-6
        )


def test_decorrelated_energy_is_exact_without_a_key_and_sampled_with_one(getkey):
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 3, key=getkey()))
    params = 0.3 * jax.random.normal(getkey(), (5, 2))
    points = lg.CubicSpline(Z0, Z1, params)(TIMES)
    exact = lg.DecorrelatedEnergy().objective(metric, Z0, Z1, TIMES)
    assert type(exact) is ExactDecorrelatedEnergy
    assert isinstance(exact, lg.AbstractLeastSquaresObjective)
    np.testing.assert_allclose(
        evaluate(exact, params), metric.decorrelated_energy(points), rtol=1e-6
    )
    key = getkey()
    sampled = lg.DecorrelatedEnergy(key=key).objective(metric, Z0, Z1, TIMES)
    assert type(sampled) is MonteCarloDecorrelatedEnergy
    assert isinstance(sampled, lg.AbstractStochasticObjective)
    assert not isinstance(sampled, lg.AbstractLeastSquaresObjective)
    assert sampled.key is key
    np.testing.assert_allclose(
        evaluate(sampled, params),
        metric.decorrelated_energy(points, jax.random.fold_in(key, 0)),
        rtol=1e-6,
    )


def test_decorrelated_energy_needs_an_ensemble():
    for metric in (SPHERE, ConformalSphere()):
        for energy in (
            lg.DecorrelatedEnergy(),
            lg.DecorrelatedEnergy(jax.random.key(0)),
        ):
            name = type(metric).__name__
            with pytest.raises(ValueError, match=f"ExpectedMetric.*got {name}"):
                energy.objective(metric, Z0, Z1, TIMES)


def test_geodesics_under_each_energy_of_an_affine_pair(getkey):
    r"""The expected metric of affine members is constant, $G = \frac12 \sum_k
    A_k^\top A_k$: its geodesic is the straight line, of length
    $\sqrt{\Delta^\top G \Delta}$ and energy $\Delta^\top G \Delta$ whatever the
    offsets. The decorrelated energy adds the members' variance, which the
    offsets make vary: its minimiser leaves the line, lowering that objective and
    lengthening the curve."""
    metric, matrices = affine_pair(getkey())
    delta = Z1 - Z0
    squared = sum(jnp.sum((a @ delta) ** 2) for a in matrices) / 2
    solver = lg.LevenbergMarquardt()
    grid = lg.Discretisation(num_points=17)
    times = grid.times(jnp.float32)
    expected = lg.geodesic(
        metric, Z0, Z1, solver=solver, energy=lg.ExpectedEnergy(), discretisation=grid
    )
    np.testing.assert_allclose(expected.length, jnp.sqrt(squared), rtol=1e-5)
    np.testing.assert_allclose(expected.energy, squared, rtol=1e-5)
    np.testing.assert_allclose(
        expected.curve(times), lg.CubicSpline.straight(Z0, Z1)(times), atol=1e-5
    )
    decorrelated = lg.geodesic(
        metric,
        Z0,
        Z1,
        solver=solver,
        energy=lg.DecorrelatedEnergy(),
        discretisation=grid,
    )
    # The energy reported is the decorrelated objective of the curve found, the
    # length the metric length (measured the same way for either energy).
    np.testing.assert_allclose(
        decorrelated.energy,
        metric.decorrelated_energy(decorrelated.curve(times)),
        rtol=1e-5,
    )
    fine = decorrelated.curve(jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS))
    np.testing.assert_allclose(
        decorrelated.length, metric.curve_length(fine), rtol=1e-6
    )
    straight = metric.decorrelated_energy(lg.CubicSpline.straight(Z0, Z1)(times))
    assert float(decorrelated.energy) < 0.9 * float(straight)
    assert float(decorrelated.length) > 1.01 * float(jnp.sqrt(squared))
