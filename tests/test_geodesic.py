import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    float64,
    small_mlp,
    sphere_pair,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
SOLVERS = [lg.OptaxSolver(), lg.LevenbergMarquardt()]


def test_linear_decoder_geodesic_is_the_straight_line():
    matrix = jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    z0, z1 = jnp.array([0.1, 0.2]), jnp.array([1.0, -0.5])
    result = lg.geodesic(metric, z0, z1)
    np.testing.assert_allclose(
        result.length, jnp.linalg.norm(matrix @ (z1 - z0)), rtol=1e-4
    )
    t = jnp.linspace(0, 1, 7)
    line = np.asarray(z0)[None] + np.asarray(t)[:, None] * np.asarray(z1 - z0)[None]
    np.testing.assert_allclose(result.curve(t), line, atol=1e-4)
    assert bool(result.converged)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("angle", [20.0, 90.0, 120.0])
def test_sphere_geodesic_is_the_great_circle(solver, angle):
    z0, z1, distance = sphere_pair(angle, azimuth=0.0)
    result = lg.geodesic(SPHERE, z0, z1, solver=solver)
    np.testing.assert_allclose(result.length, distance, rtol=1e-3)
    # The curve lies on the great circle: its image is in the plane of p, q, 0.
    points = jax.vmap(InverseStereographic())(result.curve(jnp.linspace(0, 1, 50)))
    p, q = InverseStereographic()(z0), InverseStereographic()(z1)
    normal = jnp.cross(p, q) / jnp.linalg.norm(jnp.cross(p, q))
    assert float(jnp.max(jnp.abs(points @ normal))) < 1e-3


def test_tensor_only_metric_uses_quadrature_and_finds_the_great_circle():
    z0, z1, distance = sphere_pair(100.0, azimuth=0.7)
    result = lg.geodesic(ConformalSphere(), z0, z1)
    np.testing.assert_allclose(result.length, distance, rtol=1e-3)


def test_length_is_the_fine_metric_length_of_the_curve(getkey):
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 3, key=getkey()))
    z0, z1 = jnp.array([-1.0, 0.5]), jnp.array([1.0, -0.5])
    for energy in (lg.ExpectedEnergy(), lg.DecorrelatedEnergy()):
        result = lg.geodesic(
            metric,
            z0,
            z1,
            energy=energy,
            discretisation=lg.Discretisation(num_points=16),
        )
        fine = result.curve(jnp.linspace(0, 1, lg.LENGTH_POINTS))
        np.testing.assert_allclose(result.length, metric.curve_length(fine), rtol=1e-5)
        # The minimiser is no longer than the straight line in the metric.
        straight = z0[None] + jnp.linspace(0, 1, 1025)[:, None] * (z1 - z0)[None]
        if isinstance(energy, lg.ExpectedEnergy):
            assert float(result.length) <= float(metric.curve_length(straight)) + 1e-5


def test_monte_carlo_decorrelated_energy_improves_the_exact_objective(getkey):
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 3, key=getkey()))
    z0, z1 = jnp.array([-1.0, 0.5]), jnp.array([1.0, -0.5])
    energy = lg.DecorrelatedEnergy(key=getkey())
    result = lg.geodesic(
        metric,
        z0,
        z1,
        energy=energy,
        discretisation=lg.Discretisation(max_steps=500),
        throw=False,
    )
    times = jnp.linspace(0, 1, 64)
    straight = lg.CubicSpline.straight(z0, z1)(times)
    # The noisy objective's minimiser lowers the exact (expected) objective.
    found = metric.decorrelated_energy(result.curve(times))
    assert float(found) < float(metric.decorrelated_energy(straight))


def test_vmap_over_pairs_equals_single_calls():
    pairs = [sphere_pair(a, azimuth=b) for a, b in [(40, 0.1), (80, 0.5), (110, 1.0)]]
    z0 = jnp.stack([p[0] for p in pairs])
    z1 = jnp.stack([p[1] for p in pairs])
    batched = jax.vmap(lambda a, b: lg.geodesic(SPHERE, a, b, throw=False))(z0, z1)
    for i, (a, b, distance) in enumerate(pairs):
        single = lg.geodesic(SPHERE, a, b)
        np.testing.assert_allclose(batched.length[i], single.length, rtol=1e-5)
        np.testing.assert_allclose(batched.length[i], distance, rtol=1e-3)


def test_equal_end_points_give_zero_length():
    z = jnp.array([0.3, -0.2])
    result = lg.geodesic(SPHERE, z, z)
    assert float(result.length) == 0.0
    assert bool(result.converged)


def test_init_from_a_good_curve_converges_fast():
    z0, z1, distance = sphere_pair(120.0, azimuth=0.0)
    first = lg.geodesic(SPHERE, z0, z1)
    again = lg.geodesic(SPHERE, z0, z1, init=first.curve)
    np.testing.assert_allclose(again.length, distance, rtol=1e-3)
    assert int(again.num_steps) <= int(first.num_steps)


def test_paper_adam_converges_on_the_sphere():
    z0, z1, distance = sphere_pair(60.0, azimuth=0.0)
    result = lg.geodesic(
        SPHERE,
        z0,
        z1,
        solver=lg.OptaxSolver.paper_adam(),
        discretisation=lg.Discretisation(max_steps=4096),
    )
    np.testing.assert_allclose(result.length, distance, rtol=1e-3)


def test_float64():
    with float64():
        z0, z1, distance = sphere_pair(120.0, azimuth=0.0)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        solver = lg.LevenbergMarquardt(rtol=1e-12)
        result = lg.geodesic(
            SPHERE,
            z0,
            z1,
            solver=solver,
            discretisation=lg.Discretisation(num_points=257),
        )
        assert result.length.dtype == jnp.float64
        np.testing.assert_allclose(result.length, distance, rtol=1e-5)


def test_non_convergence_is_reported_or_raised():
    z0, z1, _ = sphere_pair(120.0)
    result = lg.geodesic(
        SPHERE, z0, z1, discretisation=lg.Discretisation(max_steps=1), throw=False
    )
    assert not bool(result.converged)
    assert result.result == lg.RESULTS.max_steps_reached
    with pytest.raises(Exception, match="max_steps"):
        lg.geodesic(SPHERE, z0, z1, discretisation=lg.Discretisation(max_steps=1))


def test_bad_input():
    z = jnp.zeros(2)
    with pytest.raises(ValueError, match=r"`z0` has shape \(3,\), expected \(2,\)"):
        lg.geodesic(SPHERE, jnp.zeros(3), jnp.zeros(3))
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's hook may fire first
        lg.geodesic(SPHERE, jnp.zeros(3), z)
    with pytest.raises(Exception, match="`z1` contains NaN or inf"):
        lg.geodesic(SPHERE, z, jnp.array([jnp.nan, 0.0]))
    with pytest.raises(Exception, match="`z0` contains NaN or inf"):
        lg.geodesic(SPHERE, jnp.array([jnp.inf, 0.0]), z)
    with pytest.raises((ValueError, TypeError), match="kinetic"):
        lg.geodesic(SPHERE, z, jnp.ones(2), energy="kinetic")
    with pytest.raises(ValueError, match="needs an ExpectedMetric"):
        lg.geodesic(SPHERE, z, jnp.ones(2), energy=lg.DecorrelatedEnergy())
    with pytest.raises(ValueError, match="sum-of-squares"):
        lg.geodesic(ConformalSphere(), z, jnp.ones(2), solver=lg.LevenbergMarquardt())
    wrong_start = lg.CubicSpline.straight(jnp.ones(2), jnp.zeros(2))
    with pytest.raises(Exception, match="`init` does not start"):
        lg.geodesic(SPHERE, z, jnp.ones(2), init=wrong_start)
