import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    default_float,
    float64,
    sphere_pair,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
FAST = {"solver": lg.LevenbergMarquardt()}  # compiles faster than the default
# Both kinds of metric, with geodesic options for each (Levenberg-Marquardt needs
# a pull-back); the tensor-only sphere is a user-defined AbstractTensorMetric.
CASES = [
    pytest.param(SPHERE, FAST, id="pullback"),
    pytest.param(ConformalSphere(), {}, id="tensor"),
]


def sphere_log(z0, z1):
    r"""Closed form: $\log_p(q) = \theta (q - \cos\theta\, p) / \sin\theta$ on the
    sphere, pulled back to the chart ($J v = w$, least squares)."""
    chart = InverseStereographic()
    z0 = np.asarray(z0, np.float64)
    p, q = np.asarray(chart(z0)), np.asarray(chart(np.asarray(z1, np.float64)))
    angle = np.arccos(np.clip(p @ q, -1, 1))
    w = angle * (q - np.cos(angle) * p) / np.sin(angle)
    jacobian = np.asarray(jax.jacfwd(chart)(jnp.asarray(z0, jnp.float32)), np.float64)
    return np.linalg.lstsq(jacobian, w, rcond=None)[0]


@pytest.mark.parametrize("metric, options", CASES)
@pytest.mark.parametrize("angle", [30, 150])
def test_log_on_the_sphere_is_the_closed_form(metric, options, angle):
    z0, z1, distance = sphere_pair(angle)
    truth = sphere_log(z0, z1)
    estimate = lg.log_map(metric, z0, z1, shooting=None, **options)
    # The boundary-value estimate is as good as the spline (max 6e-3 measured).
    np.testing.assert_allclose(estimate, truth, rtol=0, atol=1e-2 * distance)
    # The estimate's norm is the boundary-value length, the great-circle distance.
    np.testing.assert_allclose(metric.norm(z0, estimate), distance, rtol=2e-4)
    # Shooting: float32 integration error, up to a few 1e-5 across jax and
    # diffrax versions, 200x below the boundary-value bound.
    refined = lg.log_map(metric, z0, z1, shooting=lg.Shooting(), **options)
    np.testing.assert_allclose(refined, truth, rtol=0, atol=5e-5 * distance)
    # The default shoots: a smooth metric gets the refined accuracy.
    default = lg.log_map(metric, z0, z1, **options)
    np.testing.assert_allclose(default, truth, rtol=0, atol=5e-5 * distance)


# the boundary-value estimate stays in the default run (test_log_of_exp_round_trips).
@pytest.mark.slow
def test_default_geodesic_solver_gives_the_same_log():
    z0, z1, distance = sphere_pair(90, azimuth=0.4)
    truth = sphere_log(z0, z1)
    boundary_value = lg.log_map(SPHERE, z0, z1, shooting=None)
    np.testing.assert_allclose(boundary_value, truth, atol=1e-2 * distance)
    np.testing.assert_allclose(lg.log_map(SPHERE, z0, z1), truth, atol=5e-5 * distance)


@pytest.mark.parametrize("metric, options", CASES)
def test_log_of_exp_round_trips(metric, options):
    z0 = jnp.array([0.2, -0.3])
    for v in (jnp.array([0.9, 0.4]), jnp.array([-0.3, 1.6])):
        z1 = lg.exp_map(metric, z0, v)
        speed = float(metric.norm(z0, v))
        refined = lg.log_map(metric, z0, z1, shooting=lg.Shooting(), **options)
        np.testing.assert_allclose(refined, v, atol=2e-5 * speed)
        estimate = lg.log_map(metric, z0, z1, shooting=None, **options)
        np.testing.assert_allclose(estimate, v, atol=1e-2 * speed)
        default = lg.log_map(metric, z0, z1, **options)  # shoots
        np.testing.assert_allclose(default, v, atol=2e-5 * speed)


def test_linear_decoder_log_is_the_difference(getkey):
    metric = lg.PullbackMetric(Linear(jax.random.normal(getkey(), (4, 2))))
    z0, z1 = jnp.array([1.0, -2.0]), jnp.array([-0.5, 0.7])
    np.testing.assert_allclose(lg.log_map(metric, z0, z1, **FAST), z1 - z0, atol=1e-5)


@pytest.fixture(scope="module")
def smooth_ensemble():
    """Four tanh decoders fitted to a circle embedded in R^5 (twice
    differentiable, as the geodesic ODE needs)."""
    latents, data = lg.datasets.make_circle(256, obs_dim=5, seed=0)  # float32
    latents, data = latents.astype(default_float()), data.astype(default_float())
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 5, 16, 2, activation=jax.nn.tanh, key=k),
        4,
        key=jax.random.key(0),
    )
    trained, _ = lg.train_decoders(
        ensemble, latents, data, key=jax.random.key(1), num_steps=1500, progress=False
    )
    return lg.ExpectedMetric(trained)


def test_exp_of_log_follows_the_geodesic_on_a_trained_ensemble(smooth_ensemble):
    metric = smooth_ensemble
    angles = np.array([[0.0, 1.2], [0.3, 2.8]])
    for a, b in angles:
        z0 = jnp.array([np.cos(a), np.sin(a)], default_float())
        z1 = jnp.array([np.cos(b), np.sin(b)], default_float())
        chord = float(jnp.linalg.norm(z1 - z0))
        solved = lg.geodesic(metric, z0, z1, **FAST)
        velocity = lg.log_map(metric, z0, z1, shooting=None, **FAST)
        path = lg.exp_path(metric, z0, velocity, num_points=17)
        # Two solvers, one curve: the ODE from the spline's initial velocity
        # retraces the boundary-value spline.
        deviation = jnp.linalg.norm(path.points - solved.curve(path.times), axis=1)
        assert float(jnp.max(deviation)) < 1e-2 * chord
        refined = lg.log_map(metric, z0, z1, shooting=lg.Shooting(), **FAST)
        np.testing.assert_allclose(lg.exp_map(metric, z0, refined), z1, atol=1e-5)
        np.testing.assert_allclose(metric.norm(z0, refined), solved.length, rtol=1e-3)


def test_shooting_rejects_a_relu_decoder_whose_ode_misses_the_kinks():
    """A 1-D ReLU 'decoder' f(z) = (z, 3 relu(z_1)): the metric jumps at z_1 = 0,
    the ODE sees straight lines, the boundary-value geodesic bends."""

    class Kink(eqx.Module):
        def __call__(self, z):
            return jnp.concatenate([z, 3 * jax.nn.relu(z[:1])])

    metric = lg.PullbackMetric(Kink(), latent_dim=2)
    z0, z1 = jnp.array([-1.0, 0.0]), jnp.array([1.0, 4.0])
    strict = lg.Shooting(strict=True)
    with pytest.raises(Exception, match="differs from the boundary-value"):
        lg.log_map(metric, z0, z1, shooting=strict, **FAST)
    failed = lg.log_map(metric, z0, z1, shooting=strict, throw=False, **FAST)
    assert bool(jnp.all(jnp.isnan(failed)))
    # Not strict (the default), the boundary-value estimate is kept, as a success.
    boundary_value = lg.log_map(metric, z0, z1, shooting=None, **FAST)
    assert bool(jnp.all(jnp.isfinite(boundary_value)))
    for shooting in (lg.Shooting(), lg.Shooting(strict=False)):
        kept = lg.log_map(metric, z0, z1, shooting=shooting, **FAST)
        np.testing.assert_allclose(kept, boundary_value, rtol=1e-5, atol=1e-6)
    # The boundary-value geodesic bends through the kink: the straight line's
    # velocity z1 - z0, all the ODE can see, is not it.
    assert float(jnp.max(jnp.abs(boundary_value - (z1 - z0)))) > 1e-2


# float64 exp/log stay in the default run (test_float64.py).
@pytest.mark.slow
def test_float64_is_tighter():
    with float64():
        z0, z1, distance = sphere_pair(120)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        shooting = lg.Shooting(rtol=1e-10, atol=1e-10)
        v = lg.log_map(SPHERE, z0, z1, shooting=shooting, **FAST)
        assert v.dtype == jnp.float64
        np.testing.assert_allclose(v, sphere_log(z0, z1), atol=1e-8 * distance)


def test_vmap_equals_single_calls():
    z0 = jnp.array([0.1, -0.2])
    targets = jnp.array([[0.5, 0.3], [-0.4, 0.1], [0.0, -0.9]])
    batched = jax.vmap(lambda z1: lg.log_map(SPHERE, z0, z1, throw=False, **FAST))(
        targets
    )
    for z1, v in zip(targets, batched):
        np.testing.assert_allclose(v, lg.log_map(SPHERE, z0, z1, **FAST), atol=1e-6)


def test_equal_points_give_zero():
    z = jnp.array([0.3, 0.4])
    np.testing.assert_array_equal(lg.log_map(SPHERE, z, z, **FAST), jnp.zeros(2))


def test_failures_are_reported_or_raised():
    z0, z1, _ = sphere_pair(120)
    one_step = lg.Discretisation(max_steps=1)
    for shooting in (None, lg.Shooting()):
        failed = lg.log_map(
            SPHERE,
            z0,
            z1,
            discretisation=one_step,
            shooting=shooting,
            throw=False,
            **FAST,
        )
        assert bool(jnp.all(jnp.isnan(failed)))
        with pytest.raises(Exception, match="max_steps"):
            lg.log_map(
                SPHERE, z0, z1, discretisation=one_step, shooting=shooting, **FAST
            )


def test_bad_input():
    z = jnp.zeros(2)
    with pytest.raises(ValueError, match=r"`z0` has shape \(3,\), expected \(2,\)"):
        lg.log_map(SPHERE, jnp.zeros(3), jnp.zeros(3))
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's hook may fire first
        lg.log_map(SPHERE, z, jnp.zeros(3))
    with pytest.raises(Exception, match="`z1` contains NaN or inf"):
        lg.log_map(SPHERE, z, jnp.array([0.0, jnp.nan]), **FAST)
    with pytest.raises(ValueError, match="positive"):
        lg.Shooting(atol=0.0)
    with pytest.raises(TypeError, match="AbstractMetric"):
        lg.log_map(InverseStereographic(), z, z)
    wrong = [
        dict(shooting="yes"),
        dict(shooting=lg.Discretisation()),
        dict(energy="expected"),
        dict(discretisation=dict(max_steps=10)),
    ]
    for settings in wrong:
        (name,) = settings
        message = f"`{name}` must be a|parameter '{name}'"
        with pytest.raises(TypeError, match=message):
            lg.log_map(SPHERE, z, jnp.ones(2), **settings)
    for old in (dict(max_steps=10), dict(num_segments=4), dict(key=None)):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            lg.log_map(SPHERE, z, jnp.ones(2), **old)
