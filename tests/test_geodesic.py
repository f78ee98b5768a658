import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    LOCAL,
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


def test_one_member_of_an_ensemble_as_a_pullback_decoder(getkey):
    """`PullbackMetric(ensemble.member(k))`, a `jax.tree_util.Partial` whose
    arrays become tracers inside `geodesic`'s jit: the straight line and
    $|W_k (z_1 - z_0)|$ for linear members, alone and in all pairs."""
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.Linear(2, 3, use_bias=False, key=k), 2, key=getkey()
    )
    metric = lg.PullbackMetric(ensemble.member(1), latent_dim=2)
    weight = np.asarray(ensemble.params.weight[1])
    points = jnp.array([[0.1, 0.2], [1.0, -0.5], [-0.3, 0.8]])
    result = lg.geodesic(metric, points[0], points[1], solver=LOCAL)
    exact = np.linalg.norm(weight @ np.asarray(points[1] - points[0]))
    np.testing.assert_allclose(result.length, exact, rtol=1e-5)
    distances = lg.pairwise_distances(
        metric, points, init=lg.StraightStart(), solver=LOCAL, progress=False
    )
    steps = np.asarray(points[:, None] - points[None])
    np.testing.assert_allclose(
        distances, np.linalg.norm(steps @ weight.T, axis=-1), rtol=1e-5, atol=1e-6
    )


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
            solver=LOCAL,
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
    few = lg.Discretisation(max_steps=500)
    result = lg.geodesic(metric, z0, z1, energy=energy, discretisation=few, throw=False)
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
        fine = lg.Discretisation(num_points=257)
        result = lg.geodesic(SPHERE, z0, z1, solver=solver, discretisation=fine)
        assert result.length.dtype == jnp.float64
        np.testing.assert_allclose(result.length, distance, rtol=1e-5)


def test_non_convergence_is_reported_or_raised():
    z0, z1, _ = sphere_pair(120.0)
    # A local solver: the default would try again from a lattice path.
    one_step = dict(
        solver=lg.LevenbergMarquardt(), discretisation=lg.Discretisation(max_steps=1)
    )
    result = lg.geodesic(SPHERE, z0, z1, **one_step, throw=False)
    assert not bool(result.converged)
    assert result.result == lg.RESULTS.max_steps_reached
    with pytest.raises(Exception, match="max_steps"):
        lg.geodesic(SPHERE, z0, z1, **one_step)
    # The default gives an unconverged solve a second attempt, from the
    # lattice path, which on the sphere is close enough to converge at once.
    retried = lg.geodesic(SPHERE, z0, z1, discretisation=one_step["discretisation"])
    assert bool(retried.converged) and int(retried.num_steps) > 1


def _wrong_kind(name: str) -> str:
    """The message of a `TypeError` for argument `name` not of its kind: the
    library's own, or jaxtyping's when its import hook checks annotations first."""
    return f"`{name}` must be a|parameter '{name}'"


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
    with pytest.raises(TypeError, match=_wrong_kind("energy")):
        lg.geodesic(SPHERE, z, jnp.ones(2), energy="kinetic")
    with pytest.raises(ValueError, match="needs an ExpectedMetric"):
        lg.geodesic(SPHERE, z, jnp.ones(2), energy=lg.DecorrelatedEnergy())
    with pytest.raises(ValueError, match="sum-of-squares"):
        lg.geodesic(ConformalSphere(), z, jnp.ones(2), solver=lg.LevenbergMarquardt())
    wrong_start = lg.CubicSpline.straight(jnp.ones(2), jnp.zeros(2))
    with pytest.raises(Exception, match="`init` does not start"):
        lg.geodesic(SPHERE, z, jnp.ones(2), init=wrong_start)


def test_spellings_of_version_0_1_fail_clearly(getkey):
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 3, key=getkey()))
    z0, z1 = jnp.array([-1.0, 0.5]), jnp.array([1.0, -0.5])
    # The string energies are gone: a string is not an energy strategy.
    for name in ("expected", "decorrelated"):
        with pytest.raises(TypeError, match=_wrong_kind("energy")):
            lg.geodesic(metric, z0, z1, energy=name)
    # `key=` and the discretisation's keywords are no longer arguments.
    old_keywords = [
        dict(key=getkey()),
        dict(num_segments=4),
        dict(num_points=16),
        dict(max_steps=10),
    ]
    for old in old_keywords:
        (name,) = old
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{name}'"):
            lg.geodesic(metric, z0, z1, energy=lg.DecorrelatedEnergy(), **old)


def test_settings_of_the_wrong_kind_are_refused():
    z0, z1 = jnp.zeros(2), jnp.ones(2)
    wrong = [
        dict(solver="lm"),
        dict(energy=lg.Discretisation()),
        dict(discretisation=dict(num_segments=4)),
        dict(discretisation=10),
        dict(metric=InverseStereographic()),
    ]
    for settings in wrong:
        (name,) = settings
        arguments = dict(metric=SPHERE, z0=z0, z1=z1) | settings
        with pytest.raises(TypeError, match=_wrong_kind(name)):
            lg.geodesic(**arguments)
