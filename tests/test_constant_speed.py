"""`ConstantSpeedRestarts` (`_solvers/_constant_speed.py`): refraction at a
ReLU fold against Snell's law (a local minimum that pins the crossing's time,
left by the restarts), the reparametrisation against closed forms (a flat
metric's uniform line, an even speed on the sphere), no cost on smooth
geodesics, degenerate pairs, `vmap`, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import (
    ConformalSphere,
    Fold,
    InverseStereographic,
    default_float,
    snell_length,
    sphere_pair,
)
from latentgeo._solvers._constant_speed import constant_speed_params


@eqx.filter_jit
def solve(metric, z0, z1, solver, discretisation=lg.Discretisation()):
    return lg.geodesic(
        metric, z0, z1, solver=solver, discretisation=discretisation, throw=False
    )


@pytest.mark.parametrize(
    ("segments", "points", "tolerance"), [(10, 64, 1.5e-3), (32, 128, 5e-4)]
)
def test_refraction_at_a_relu_fold_reaches_snells_law(segments, points, tolerance):
    """From the straight line, Levenberg–Marquardt stops at a local minimum
    whose curve crosses the fold at the wrong time (1.5% too long, at any
    number of segments); restarted at constant speed it reaches Snell's
    length up to the spline's resolution of the corner."""
    dtype = default_float()
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    z0, z1 = np.array([-1.0, -0.7]), np.array([1.0, 0.9])
    truth = snell_length(z0, z1)
    ends = jnp.asarray(z0, dtype), jnp.asarray(z1, dtype)
    discretisation = lg.Discretisation(segments, points)
    plain = solve(metric, *ends, lg.LevenbergMarquardt(), discretisation)
    restarted = solve(
        metric,
        *ends,
        lg.ConstantSpeedRestarts(lg.LevenbergMarquardt()),
        discretisation,
    )
    assert float(plain.length) > 1.01 * truth  # the pinned local minimum
    assert bool(restarted.converged)
    assert truth <= float(restarted.length) <= (1 + tolerance) * truth


def test_the_restarts_run_the_restart_solver():
    """The first solve pinned at the fold (plain Levenberg–Marquardt), then
    restarted by another solver: by Levenberg–Marquardt it reaches Snell's
    length; by one that cannot move (gradient steps of size zero) the curve
    stays as long as the pinned one, refitted, so the restarts are the
    restart solver's, not the first solver's."""
    dtype = default_float()
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    z0, z1 = np.array([-1.0, -0.7]), np.array([1.0, 0.9])
    truth = snell_length(z0, z1)
    ends = jnp.asarray(z0, dtype), jnp.asarray(z1, dtype)
    first = lg.LevenbergMarquardt()
    moved = solve(metric, *ends, lg.ConstantSpeedRestarts(first, restart_solver=first))
    assert truth <= float(moved.length) <= 1.0015 * truth
    frozen = lg.OptaxSolver(optax.sgd(0.0), patience=1)
    unmoved = solve(
        metric, *ends, lg.ConstantSpeedRestarts(first, restart_solver=frozen)
    )
    assert float(unmoved.length) > 1.01 * truth


def test_a_flat_metric_refits_the_uniform_line():
    """A curve along the chord, traversed unevenly ($z_0 + t^2 (z_1 - z_0)$):
    under a flat metric its constant-speed version is the uniform line, whose
    spline parameters (deviations from it) are zero."""
    dtype = default_float()
    metric = lg.PullbackMetric(lambda z: 3.0 * z, latent_dim=2)
    z0, z1 = jnp.asarray([0.5, -1.0], dtype), jnp.asarray([2.0, 1.5], dtype)
    times = jnp.linspace(0.0, 1.0, 41, dtype=dtype)
    uneven = lg.CubicSpline.fit(
        z0[None] + times[:, None] ** 2 * (z1 - z0)[None], 10, times=times
    )
    assert float(jnp.max(jnp.abs(uneven.params))) > 0.1
    params, unevenness = constant_speed_params(metric, uneven, 257)
    np.testing.assert_allclose(params, 0.0, atol=1e-5)
    # The largest step of t^2 on 257 points is twice the mean.
    np.testing.assert_allclose(float(unevenness), 2.0, rtol=1e-2)


def test_the_refit_keeps_the_path_and_evens_the_speed():
    """A bowed curve on the sphere chart, traversed unevenly: after the refit
    its metric speed is even (largest of 256 steps within 1% of the mean,
    measured with the sphere's conformal factor) and its points stay on the
    original path."""
    dtype = default_float()
    metric = ConformalSphere()
    z0, z1, _ = sphere_pair(120.0)
    times = jnp.linspace(0.0, 1.0, 81, dtype=dtype)
    along = times**2
    normal = jnp.asarray([-(z1 - z0)[1], (z1 - z0)[0]], dtype)
    path = (
        z0[None]
        + along[:, None] * (z1 - z0)[None]
        + 0.3 * jnp.sin(jnp.pi * along)[:, None] * normal[None]
    )
    bowed = lg.CubicSpline.fit(path, 10, times=times)
    params, unevenness = constant_speed_params(metric, bowed, 257)
    assert float(unevenness) > 1.5
    refit = lg.CubicSpline(z0, z1, params)
    points = np.asarray(refit(jnp.linspace(0.0, 1.0, 257, dtype=dtype)), np.float64)
    middles = 0.5 * (points[1:] + points[:-1])
    conformal = 2.0 / (1.0 + np.sum(middles**2, axis=1))  # sqrt of G's factor
    steps = conformal * np.linalg.norm(np.diff(points, axis=0), axis=1)
    assert steps.max() / steps.mean() < 1.01
    original = np.asarray(bowed(jnp.linspace(0.0, 1.0, 4097, dtype=dtype)))
    gaps = np.min(np.linalg.norm(points[:, None] - original[None], axis=-1), axis=1)
    assert gaps.max() < 2e-3 * np.linalg.norm(np.asarray(z1 - z0))


def test_a_smooth_geodesic_costs_no_restart():
    """On the sphere the local solve already ends at constant speed: no
    restart runs (the same evaluations), and the length is the great-circle
    angle."""
    metric = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
    z0, z1, angle = sphere_pair(120.0)
    alone = solve(metric, z0, z1, lg.LevenbergMarquardt())
    wrapped = solve(metric, z0, z1, lg.ConstantSpeedRestarts(lg.LevenbergMarquardt()))
    assert int(wrapped.num_evaluations) == int(alone.num_evaluations)
    assert bool(wrapped.converged)
    np.testing.assert_allclose(float(wrapped.length), angle, rtol=5e-4)


def test_equal_end_points_give_zero_and_no_nan():
    dtype = default_float()
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    z = jnp.asarray([0.3, 0.0], dtype)
    result = solve(metric, z, z, lg.ConstantSpeedRestarts(lg.LevenbergMarquardt()))
    assert float(result.length) == 0.0
    assert np.all(np.isfinite(np.asarray(result.curve.params)))


def test_vmap_equals_one_pair_at_a_time():
    dtype = default_float()
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    solver = lg.ConstantSpeedRestarts(lg.LevenbergMarquardt())
    z0s = jnp.asarray([[-1.0, -0.7], [-0.5, -1.0], [0.2, -0.3]], dtype)
    z1s = jnp.asarray([[1.0, 0.9], [1.5, 0.4], [-0.8, 1.1]], dtype)
    batched = eqx.filter_jit(
        jax.vmap(lambda a, b: lg.geodesic(metric, a, b, solver=solver, throw=False))
    )(z0s, z1s)
    for k in range(3):
        single = solve(metric, z0s[k], z1s[k], solver)
        np.testing.assert_allclose(batched.length[k], single.length, rtol=1e-5)
        truth = snell_length(np.asarray(z0s[k]), np.asarray(z1s[k]))
        assert float(single.length) <= 1.002 * truth


@pytest.mark.parametrize(
    "options",
    [{"max_restarts": -1}, {"speed_points": 1}, {"rtol": -1.0}, {"evenness": -0.1}],
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError, match="must be"):
        lg.ConstantSpeedRestarts(lg.LevenbergMarquardt(), **options)
