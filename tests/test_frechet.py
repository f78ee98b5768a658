import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    default_float,
    float64,
    stereographic,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
FAST = {"solver": lg.LevenbergMarquardt()}  # compiles faster than the default

# A centre on the unit sphere and an orthonormal tangent frame there.
CENTRE = np.array([np.sin(0.7) * np.cos(0.4), np.sin(0.7) * np.sin(0.4), -np.cos(0.7)])
E1 = np.cross(CENTRE, [0.0, 0.0, 1.0])
E1 /= np.linalg.norm(E1)
E2 = np.cross(CENTRE, E1)


def around_centre(radii, directions) -> jnp.ndarray:
    """Chart points at great-circle distance `radii` from the centre, in tangent
    directions at angles `directions` (closed-form exponential map)."""
    points = [
        stereographic(
            np.cos(r) * CENTRE + np.sin(r) * (np.cos(a) * E1 + np.sin(a) * E2)
        )
        for r, a in zip(radii, directions)
    ]
    return jnp.asarray(np.stack(points), default_float())


def test_symmetric_points_average_to_their_centre_for_both_metric_kinds():
    # Four points 0.8 rad from the centre, a quarter turn apart; the start is
    # halfway to one of them.
    points = around_centre([0.8] * 4, np.pi / 2 * np.arange(4) + 0.3)
    centre = stereographic(CENTRE)
    start = 0.5 * (points[0] + centre)
    for metric, options in ((SPHERE, FAST), (ConformalSphere(), {})):
        res = lg.frechet_mean(metric, points, jnp.ones(4), init=start, **options)
        assert bool(res.converged) and 1 < int(res.num_steps) < 10
        np.testing.assert_allclose(res.mean, centre, atol=1e-3)
        np.testing.assert_allclose(res.distances, 0.8, rtol=1e-3)
        ends = jax.vmap(lambda curve: curve(jnp.array([0.0, 1.0])))(res.curves)
        np.testing.assert_allclose(ends[:, 0], jnp.tile(res.mean, (4, 1)), atol=1e-6)
        np.testing.assert_allclose(ends[:, 1], points, atol=1e-6)
        np.testing.assert_allclose(res.variance, 0.64, rtol=2e-3)
        assert float(res.gradient_norm) <= 1e-3 * 0.8


def test_weights_move_the_mean_along_a_geodesic():
    # Two points on one great circle through the centre, 0.3 and 0.9 rad away
    # on opposite sides, weighted 3 : 1 (the weighted arc mean is the centre),
    # and two far points with zero weight.
    points = around_centre([0.3, 0.9, 1.2, 1.2], [0.0, np.pi, 1.0, 2.0])
    res = lg.frechet_mean(SPHERE, points, jnp.array([3.0, 1.0, 0.0, 0.0]), **FAST)
    np.testing.assert_allclose(res.mean, stereographic(CENTRE), atol=1e-3)
    np.testing.assert_allclose(res.distances[:2], [0.3, 0.9], rtol=2e-3)
    # Equal weights: the midpoint of the arc, 0.3 rad from the centre.
    res = lg.frechet_mean(SPHERE, points, jnp.array([1.0, 1.0, 0.0, 0.0]), **FAST)
    midpoint = around_centre([0.3], [np.pi])[0]
    np.testing.assert_allclose(res.mean, midpoint, atol=1e-3)


def test_linear_decoder_mean_is_the_weighted_euclidean_mean(getkey):
    metric = lg.PullbackMetric(Linear(jax.random.normal(getkey(), (4, 2))))
    points = jax.random.normal(getkey(), (5, 2))
    weights = jnp.array([1.0, 2.0, 0.5, 1.0, 3.0])
    expected = jnp.sum(weights[:, None] * points, axis=0) / jnp.sum(weights)
    res = lg.frechet_mean(metric, points, weights, init=jnp.array([4.0, -4.0]), **FAST)
    np.testing.assert_allclose(res.mean, expected, atol=1e-4)
    assert int(res.num_steps) <= 3  # a flat metric: one Karcher step lands


def test_one_point_and_repeated_points():
    point = jnp.array([[0.2, -0.1]])
    res = lg.frechet_mean(SPHERE, point, **FAST)
    np.testing.assert_allclose(res.mean, point[0], atol=1e-6)
    np.testing.assert_allclose(res.variance, 0.0, atol=1e-10)
    res = lg.frechet_mean(SPHERE, jnp.tile(point, (3, 1)), init=jnp.zeros(2), **FAST)
    np.testing.assert_allclose(res.mean, point[0], atol=1e-4)


def test_vmap_equals_single_calls():
    sets = jnp.stack(
        [
            around_centre([0.5, 0.5, 0.5], [0.0, 2.0, 4.0]),
            around_centre([0.2, 0.6, 0.4], [1.0, 2.5, 5.0]),
        ]
    )
    batched = jax.vmap(lambda p: lg.frechet_mean(SPHERE, p, throw=False, **FAST))(sets)
    assert batched.mean.shape == (2, 2) and bool(jnp.all(batched.converged))
    for points, mean in zip(sets, batched.mean):
        np.testing.assert_allclose(
            mean, lg.frechet_mean(SPHERE, points, **FAST).mean, atol=1e-5
        )


@pytest.mark.slow  # float64 exp/log are in the default run (test_exp_log.py)
def test_float64_with_shooting_is_tighter():
    with float64():
        points = around_centre([0.8] * 4, np.pi / 2 * np.arange(4) + 0.3)
        res = lg.frechet_mean(
            SPHERE,
            points.astype(jnp.float64),
            rtol=1e-9,
            shooting=lg.Shooting(rtol=1e-11, atol=1e-11),
            **FAST,
        )
        assert res.mean.dtype == jnp.float64
        np.testing.assert_allclose(res.mean, stereographic(CENTRE), atol=1e-8)


# float64 Fréchet means stay in the default run (test_float64.py).
@pytest.mark.slow
def test_float64_symmetric_points_average_to_the_chart_origin():
    # Four points 0.8 rad from the south pole, the chart's origin, a quarter
    # turn apart; the start is halfway to one of them. The chart is rotationally
    # symmetric about the origin, so the logarithm maps from there cancel however
    # they are discretised; shooting makes them exact enough for a 1e-8 mean.
    with float64():
        angles = np.pi / 2 * np.arange(4) + 0.3
        radial = np.sin(0.8) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        rim = np.concatenate([radial, np.full((4, 1), -np.cos(0.8))], axis=1)
        points = jnp.asarray(np.stack([stereographic(x) for x in rim]))
        shooting = lg.Shooting(rtol=1e-11, atol=1e-11)
        res = lg.frechet_mean(
            SPHERE, points, init=0.5 * points[0], rtol=1e-9, shooting=shooting, **FAST
        )
        assert res.mean.dtype == res.variance.dtype == jnp.float64
        assert bool(res.converged) and int(res.num_steps) > 1
        np.testing.assert_allclose(res.mean, 0.0, atol=1e-8)
        np.testing.assert_allclose(res.distances, 0.8, rtol=1e-6)


def test_three_points_match_a_direct_minimisation_on_the_sphere():
    # An asymmetric triple: the Karcher mean minimises the sum of squared
    # great-circle distances, minimised here directly over the chart.
    points = np.array([[0.3, -0.2], [-0.4, 0.5], [0.6, 0.7]])

    def on_sphere(z):
        squared = np.sum(z**2, axis=-1, keepdims=True)
        return np.concatenate([2 * z, squared - 1], axis=-1) / (squared + 1)

    def sum_of_squares(z):
        cosines = np.clip(on_sphere(points) @ on_sphere(z), -1.0, 1.0)
        return np.sum(np.arccos(cosines) ** 2)

    expected = scipy.optimize.minimize(
        sum_of_squares, points.mean(axis=0), method="BFGS", options={"gtol": 1e-12}
    ).x
    # Tight logarithm maps (the default solver tolerance leaves about 3e-4 here),
    # which need float64.
    with float64():
        tight = lg.LevenbergMarquardt(rtol=1e-12)
        res = lg.frechet_mean(SPHERE, jnp.asarray(points), rtol=1e-6, solver=tight)
        assert bool(res.converged)
        np.testing.assert_allclose(res.mean, expected, atol=1e-4)
        np.testing.assert_allclose(
            3 * res.variance, sum_of_squares(expected), rtol=1e-6
        )


def test_max_steps_is_reported_or_raised():
    points = around_centre([0.8] * 4, np.pi / 2 * np.arange(4))
    far = jnp.asarray(points[0])
    res = lg.frechet_mean(SPHERE, points, init=far, max_steps=1, throw=False, **FAST)
    assert bool(res.result == lg.GEOMETRY_RESULTS.mean_max_steps)
    assert not bool(res.converged)
    # The mean returned is the one its distances belong to: still the start.
    np.testing.assert_array_equal(res.mean, far)
    np.testing.assert_allclose(res.distances[0], 0.0, atol=1e-6)
    with pytest.raises(Exception, match="max_steps"):
        lg.frechet_mean(SPHERE, points, init=far, max_steps=1, **FAST)


def test_discretisation_is_the_logarithm_maps_not_the_iterations():
    points = around_centre([0.8] * 4, np.pi / 2 * np.arange(4) + 0.3)
    centre = stereographic(CENTRE)
    four = lg.Discretisation(num_segments=4)
    res = lg.frechet_mean(SPHERE, points, discretisation=four, **FAST)
    assert res.curves.num_segments == 4
    np.testing.assert_allclose(res.mean, centre, atol=1e-3)
    np.testing.assert_allclose(res.distances, 0.8, rtol=1e-3)
    # One solver step per logarithm map fails the geodesic solves, reported
    # as theirs, not as the mean's own `max_steps`.
    far = jnp.asarray(points[0])
    one_step = lg.Discretisation(max_steps=1)
    failed = lg.frechet_mean(
        SPHERE, points, init=far, discretisation=one_step, throw=False, **FAST
    )
    assert bool(failed.result == lg.GEOMETRY_RESULTS.max_steps_reached)
    assert not bool(failed.converged)
    with pytest.raises(Exception, match="max_steps"):
        lg.frechet_mean(SPHERE, points, init=far, discretisation=one_step, **FAST)


def test_bad_input():
    points = jnp.zeros((3, 2))
    with pytest.raises((ValueError, TypeError), match="points"):
        lg.frechet_mean(SPHERE, jnp.zeros((3, 3)))
    with pytest.raises((ValueError, TypeError), match="weights"):
        lg.frechet_mean(SPHERE, points, jnp.ones(4))
    with pytest.raises(Exception, match="`points` contains NaN or inf"):
        lg.frechet_mean(SPHERE, points.at[1, 0].set(jnp.nan), **FAST)
    with pytest.raises(Exception, match=">= 0"):
        lg.frechet_mean(SPHERE, points, jnp.array([1.0, -1.0, 1.0]), **FAST)
    with pytest.raises(Exception, match="not all be zero"):
        lg.frechet_mean(SPHERE, points, jnp.zeros(3), **FAST)
    with pytest.raises(ValueError, match="step_size"):
        lg.frechet_mean(SPHERE, points, step_size=0.0)
    wrong = [
        dict(solver="lm"),
        dict(energy="expected"),
        dict(discretisation=dict(num_segments=4)),
    ]
    for settings in wrong:
        (name,) = settings
        message = f"`{name}` must be a|parameter '{name}'"
        with pytest.raises(TypeError, match=message):
            lg.frechet_mean(SPHERE, points, **settings)
    for old in (dict(num_segments=4), dict(num_points=16), dict(key=None)):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            lg.frechet_mean(SPHERE, points, **old)
