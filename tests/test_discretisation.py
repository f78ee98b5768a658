"""`lg.Discretisation`: the spline's segments, the energy's points and the
solver's iteration cap, checked against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import LOCAL, InverseStereographic, Linear, default_float, sphere_pair

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
MATRIX = jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
LINEAR = lg.PullbackMetric(Linear(MATRIX), latent_dim=2)
# The local solver, without the default's lattice check: these tests are about
# the curve's discretisation, and each grid compiles the solver anew.


def test_defaults_and_integer_fields():
    assert lg.Discretisation() == lg.Discretisation(
        num_segments=10, num_points=64, max_steps=1000
    )
    # Integers of any kind become Python ints: equal settings compare (and
    # hash, for jit's cache and the checkpoint digests) equal.
    numpy_ints = lg.Discretisation(np.int64(4), np.int32(16), np.uint8(7))
    assert numpy_ints == lg.Discretisation(4, 16, 7)
    assert hash(numpy_ints) == hash(lg.Discretisation(4, 16, 7))
    assert all(
        type(value) is int
        for value in (
            numpy_ints.num_segments,
            numpy_ints.num_points,
            numpy_ints.max_steps,
        )
    )
    assert lg.Discretisation(num_segments=4) != lg.Discretisation(num_segments=5)


@pytest.mark.parametrize(
    "settings, name",
    [
        (dict(num_segments=0), "num_segments"),
        (dict(num_segments=-3), "num_segments"),
        (dict(num_points=1), "num_points"),
        (dict(max_steps=0), "max_steps"),
    ],
)
def test_too_small_values_are_refused(settings, name):
    with pytest.raises(ValueError, match=f"`{name}` must be at least"):
        lg.Discretisation(**settings)


@pytest.mark.parametrize("name", ["num_segments", "num_points", "max_steps"])
@pytest.mark.parametrize("value", [2.5, 4.0, "4", None])
def test_non_integers_are_refused(name, value):
    # `operator.index`: no silent truncation of 2.5, not even 4.0 is an index.
    with pytest.raises(TypeError):
        lg.Discretisation(**{name: value})


@pytest.mark.parametrize("num_segments", [1, 4, 7])
def test_num_segments_sets_the_spline(num_segments):
    z0, z1, _ = sphere_pair(120.0)
    result = lg.geodesic(
        SPHERE,
        z0,
        z1,
        solver=LOCAL,
        discretisation=lg.Discretisation(num_segments=num_segments),
    )
    assert result.curve.num_segments == num_segments
    assert result.curve.params.shape == (num_segments + 1, 2)


def test_more_segments_fit_the_great_circle_better():
    # A cubic is a spline on any knots: the spaces are nested, so more segments
    # can only shorten the curve, down to the great-circle distance.
    z0, z1, distance = sphere_pair(160.0, azimuth=0.3)
    lengths = [
        float(
            lg.geodesic(
                SPHERE,
                z0,
                z1,
                solver=LOCAL,
                discretisation=lg.Discretisation(num_segments=n),
            ).length
        )
        for n in (1, 8)
    ]
    coarse, fine = lengths
    assert fine < coarse
    assert distance * (1 - 1e-5) <= fine <= distance * (1 + 1e-4)
    assert coarse > distance * (1 + 3e-4)  # one cubic is visibly off the circle


def test_a_given_curve_keeps_its_own_segments():
    z0, z1, distance = sphere_pair(90.0)
    init = lg.CubicSpline.straight(z0, z1, 6)
    result = lg.geodesic(
        SPHERE,
        z0,
        z1,
        init=init,
        solver=LOCAL,
        discretisation=lg.Discretisation(num_segments=4),
    )
    assert result.curve.num_segments == 6
    np.testing.assert_allclose(result.length, distance, rtol=1e-3)


@pytest.mark.parametrize("num_points", [5, 17, 64, 257])
def test_straight_line_energy_is_exact_on_any_grid(num_points):
    # f(z) = A z: the geodesic is the straight line, whose image steps are all
    # A (z1 - z0) / T, so T * sum |step|^2 = |A (z1 - z0)|^2 for every T.
    z0, z1 = jnp.array([0.1, 0.2]), jnp.array([1.0, -0.5])
    result = lg.geodesic(
        LINEAR,
        z0,
        z1,
        solver=LOCAL,
        discretisation=lg.Discretisation(num_points=num_points),
    )
    closed_form = float(jnp.sum((MATRIX @ (z1 - z0)) ** 2))
    np.testing.assert_allclose(result.energy, closed_form, rtol=1e-5)


def test_num_points_is_the_energy_grid():
    # On the unit sphere the least discrete energy T sum |e(z_{i+1}) - e(z_i)|^2
    # over T chords is that of T equal chords of the great circle,
    # (2 T sin(d / 2T))^2: it depends on T = num_points - 1, and the solver
    # attains it on each grid.
    z0, z1, distance = sphere_pair(120.0)
    energies = {}
    for num_points in (5, 9, 64):
        discretisation = lg.Discretisation(num_points=num_points)
        result = lg.geodesic(
            SPHERE, z0, z1, solver=LOCAL, discretisation=discretisation
        )
        steps = num_points - 1
        closed_form = (2 * steps * np.sin(distance / (2 * steps))) ** 2
        np.testing.assert_allclose(result.energy, closed_form, rtol=1e-5)
        # A second method: the energy of the returned curve on that grid.
        times = jnp.linspace(0.0, 1.0, num_points)
        image = np.asarray(jax.vmap(InverseStereographic())(result.curve(times)))
        direct = steps * np.sum(np.diff(image.astype(np.float64), axis=0) ** 2)
        np.testing.assert_allclose(result.energy, direct, rtol=1e-5)
        energies[num_points] = float(result.energy)
    # The grids differ by more than the tolerance: each run used its own.
    assert energies[5] < 0.99 * energies[9] < 0.99 * energies[64]


@pytest.mark.parametrize(
    "solver",
    [lg.LevenbergMarquardt(), lg.OptaxSolver()],
    ids=lambda s: type(s).__name__,
)
@pytest.mark.parametrize("max_steps", [1, 2])
def test_max_steps_caps_the_iterations(solver, max_steps):
    z0, z1, _ = sphere_pair(120.0)
    capped = lg.geodesic(
        SPHERE,
        z0,
        z1,
        solver=solver,
        discretisation=lg.Discretisation(max_steps=max_steps),
        throw=False,
    )
    assert int(capped.num_steps) == max_steps
    assert not bool(capped.converged)
    assert capped.result == lg.RESULTS.max_steps_reached
    # The default cap lets the same solver converge.
    assert bool(lg.geodesic(SPHERE, z0, z1, solver=solver, throw=False).converged)


def test_every_driver_takes_a_discretisation():
    points = np.array([[0.1, 0.2], [1.0, -0.5], [-0.4, 0.3]], default_float())
    four = lg.Discretisation(num_segments=4, num_points=17)
    # The default solver's lattice check is not this test's subject.
    result = lg.pairwise_geodesics(
        LINEAR, points, solver=LOCAL, discretisation=four, progress=False
    )
    assert result.curves.num_segments == 4
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ np.asarray(MATRIX).T, axis=-1)
    np.testing.assert_allclose(result.distances, exact, rtol=1e-4, atol=1e-6)
    # log_map: the straight line's velocity z1 - z0, whatever the grid.
    velocity = lg.log_map(
        LINEAR, points[0], points[1], solver=LOCAL, discretisation=four
    )
    np.testing.assert_allclose(velocity, points[1] - points[0], rtol=1e-4)
    # frechet_mean: the Euclidean (here A-weighted) mean of a linear decoder's
    # points is their arithmetic mean, reached through curves of 4 segments.
    mean = lg.frechet_mean(LINEAR, points, solver=LOCAL, discretisation=four)
    np.testing.assert_allclose(mean.mean, points.mean(axis=0), atol=1e-3)
    assert mean.curves.num_segments == 4


def test_drivers_refuse_other_discretisations():
    points = jnp.array([[0.1, 0.2], [1.0, -0.5], [-0.4, 0.3]])
    old = dict(num_segments=4)  # the 0.1 keywords, gathered into a dict
    calls = [
        lambda: lg.geodesic(LINEAR, points[0], points[1], discretisation=old),
        lambda: lg.log_map(LINEAR, points[0], points[1], discretisation=old),
        lambda: lg.frechet_mean(LINEAR, points, discretisation=old),
        lambda: lg.pairwise_geodesics(LINEAR, points, discretisation=old),
        lambda: lg.pairwise_distances(LINEAR, points, discretisation=old),
    ]
    for call in calls:
        with pytest.raises(
            TypeError, match="`discretisation` must be a|parameter 'discretisation'"
        ):
            call()
    # Nor do they take the 0.1 keywords themselves.
    for call in (
        lambda: lg.pairwise_geodesics(LINEAR, points, num_segments=4),
        lambda: lg.pairwise_distances(LINEAR, points, max_steps=4),
        lambda: lg.log_map(LINEAR, points[0], points[1], num_points=16),
        lambda: lg.frechet_mean(LINEAR, points, num_segments=4),
    ):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            call()
