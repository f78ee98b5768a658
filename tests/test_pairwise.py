import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, default_float, sphere_pair

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
LINEAR = lg.PullbackMetric(Linear(jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])))


def chart_points(num_points: int) -> np.ndarray:
    """Chart coordinates of points in the southern hemisphere."""
    rng = np.random.default_rng(0)
    return rng.uniform(-0.6, 0.6, size=(num_points, 2)).astype(default_float())


def great_circle(points: np.ndarray) -> np.ndarray:
    z = points.astype(np.float64)
    squared = np.sum(z**2, axis=1, keepdims=True)
    sphere = np.concatenate([2 * z, squared - 1], axis=1) / (squared + 1)
    return np.arccos(np.clip(sphere @ sphere.T, -1.0, 1.0))


def test_distances_are_great_circle_symmetric_with_zero_diagonal():
    points = chart_points(5)
    distances = np.asarray(lg.pairwise_distances(SPHERE, points, progress=False))
    np.testing.assert_array_equal(distances, distances.T)
    np.testing.assert_array_equal(np.diag(distances), 0.0)
    np.testing.assert_allclose(distances, great_circle(points), rtol=1e-3, atol=1e-6)


def test_independent_of_batch_size_and_equal_to_single_calls():
    points = chart_points(4)
    by_one = lg.pairwise_geodesics(SPHERE, points, batch_size=1, progress=False)
    by_four = lg.pairwise_geodesics(SPHERE, points, batch_size=4, progress=False)
    np.testing.assert_allclose(by_one.distances, by_four.distances, rtol=1e-5)
    for i, j in [(0, 1), (2, 3)]:
        single = lg.geodesic(SPHERE, jnp.asarray(points[i]), jnp.asarray(points[j]))
        np.testing.assert_allclose(by_four.distances[i, j], single.length, rtol=1e-5)
    assert bool(jnp.all(by_four.converged))


def test_curves_connect_their_pairs_in_both_directions():
    points = chart_points(3)
    result = lg.pairwise_geodesics(SPHERE, points, progress=False)
    # In 2-D the default start brings its own curve resolution: `TwoRoutes`'
    # 32 segments, refined on 64 (`Refined`).
    assert result.curves.num_segments == 64
    t = jnp.linspace(0, 1, 5)
    forward, backward = result.curve_of(0, 2), result.curve_of(2, 0)
    np.testing.assert_allclose(forward(t)[0], points[0], atol=1e-6)
    np.testing.assert_allclose(forward(t)[-1], points[2], atol=1e-6)
    np.testing.assert_allclose(backward(t), forward(1 - t), atol=1e-5)
    with pytest.raises(ValueError, match="i == j"):
        result.curve_of(1, 1)


def test_resume_with_another_batch_size_keeps_finished_pairs(tmp_path):
    points = chart_points(4)
    path = tmp_path / "run.npz"
    full = lg.pairwise_distances(
        SPHERE, points, batch_size=2, checkpoint=path, progress=False
    )
    # Pretend the run was interrupted after its first chunk, whose stored lengths
    # we mark: a resumed run, in chunks of another size, must keep them and
    # compute only the rest.
    with np.load(path) as stored:
        state = dict(stored)
    state["done"][2:] = False
    state["lengths"][:2] = [7.0, 8.0]
    state["lengths"][2:] = -1.0
    np.savez(path, **state)
    resumed = np.asarray(
        lg.pairwise_distances(
            SPHERE, points, batch_size=3, checkpoint=path, progress=False
        )
    )
    assert resumed[0, 1] == 7.0 and resumed[0, 2] == 8.0
    rows, cols = np.triu_indices(4, 1)
    np.testing.assert_allclose(
        resumed[rows[2:], cols[2:]], np.asarray(full)[rows[2:], cols[2:]], rtol=1e-5
    )
    np.testing.assert_allclose(
        resumed[rows[2:], cols[2:]], great_circle(points)[rows[2:], cols[2:]], rtol=1e-3
    )


def _straight_curves(points, num_segments=4):
    rows, cols = np.triu_indices(len(points), 1)
    return jax.vmap(lambda a, b: lg.CubicSpline.straight(a, b, num_segments))(
        jnp.asarray(points[rows]), jnp.asarray(points[cols])
    )


def test_checkpoint_of_another_run_is_refused_naming_what_changed(tmp_path):
    points = chart_points(3)
    path = tmp_path / "run.npz"
    curves = _straight_curves(points)
    options = dict(
        checkpoint=path,
        progress=False,
        init=curves,
        discretisation=lg.Discretisation(max_steps=200),
    )
    lg.pairwise_distances(LINEAR, points, **options)
    retrained = eqx.tree_at(
        lambda m: m.decoder.matrix, LINEAR, LINEAR.decoder.matrix * 1.01
    )
    bent = eqx.tree_at(lambda c: c.params, curves, curves.params + 0.01)
    more_steps = lg.Discretisation(max_steps=300)
    runs = [
        ("metric", retrained, dict()),
        ("solver", LINEAR, dict(solver=lg.OptaxSolver(optax.adam(1e-3)))),
        ("energy", LINEAR, dict(energy=lg.DecorrelatedEnergy())),
        ("starts", LINEAR, dict(init=bent)),
        ("discretisation", LINEAR, dict(discretisation=more_steps)),
    ]
    for changed, metric, change in runs:
        with pytest.raises(ValueError, match=rf"\(changed: {changed}\)"):
            lg.pairwise_distances(metric, points, **{**options, **change})
    with pytest.raises(ValueError, match=r"\(changed: points, pairs, starts\)"):
        lg.pairwise_distances(
            LINEAR,
            chart_points(4),
            **{**options, "init": _straight_curves(chart_points(4))},
        )
    # The unchanged run is accepted, and its stored distances are right. The
    # given curves keep their own 4 segments, so asking for 6 is the same run.
    same = lg.Discretisation(num_segments=6, max_steps=200)
    again = lg.pairwise_distances(LINEAR, points, **{**options, "discretisation": same})
    matrix = np.asarray(LINEAR.decoder.matrix)
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ matrix.T, axis=-1)
    np.testing.assert_allclose(again, exact, rtol=1e-4, atol=1e-6)


def test_unreadable_checkpoint_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="Cannot read the checkpoint"):
        lg.pairwise_distances(SPHERE, chart_points(3), checkpoint=path, progress=False)
    np.savez(path, fingerprint="an older store")
    with pytest.raises(ValueError, match="older latentgeo"):
        lg.pairwise_distances(SPHERE, chart_points(3), checkpoint=path, progress=False)


def test_pairs_solves_only_the_pairs_asked(tmp_path):
    points = chart_points(5)
    asked = np.array([[3, 0], [1, 2], [0, 3]])
    path = tmp_path / "asked.npz"
    options = dict(pairs=asked, progress=False, batch_size=2, checkpoint=path)
    result = lg.pairwise_geodesics(SPHERE, points, **options)
    truth = great_circle(points)
    np.testing.assert_array_equal(result.pairs, asked)
    np.testing.assert_allclose(
        result.lengths, truth[asked[:, 0], asked[:, 1]], rtol=1e-3
    )
    assert bool(result.pair_converged.all())
    distances, converged = np.asarray(result.distances), np.asarray(result.converged)
    np.testing.assert_allclose(
        distances[[3, 0, 1, 2], [0, 3, 2, 1]],
        truth[[3, 0, 1, 2], [0, 3, 2, 1]],
        rtol=1e-3,
    )
    assert np.isnan(distances[0, 1]) and not converged[0, 1]
    assert np.all(np.diag(distances) == 0) and np.all(np.diag(converged))
    t = jnp.array([0.0, 1.0])
    np.testing.assert_allclose(result.curve_of(3, 0)(t), points[[3, 0]], atol=1e-6)
    np.testing.assert_allclose(result.curve_of(2, 1)(t), points[[2, 1]], atol=1e-5)
    with pytest.raises(ValueError, match=r"pair \(0, 1\) was not solved"):
        result.curve_of(0, 1)
    with pytest.raises(ValueError, match=r"\(changed: pairs\)"):
        lg.pairwise_geodesics(SPHERE, points, **{**options, "pairs": asked[:2]})


def test_non_converged_pairs_are_reported_not_fatal():
    z0, z1, _ = sphere_pair(120.0)
    points = np.stack([z0, z1, np.zeros(2, default_float())])
    with pytest.warns(RuntimeWarning, match="did not converge"):
        result = lg.pairwise_geodesics(
            SPHERE,
            points,
            init=lg.StraightStart(),
            solver=lg.LevenbergMarquardt(),  # the default would try again
            discretisation=lg.Discretisation(max_steps=1),  # twice 1 < 3 needed
            progress=False,
        )
    assert not bool(result.converged[0, 1])
    assert bool(jnp.all(jnp.isfinite(result.distances)))


def test_a_pair_stopped_short_is_solved_once_more_from_its_curve():
    """With a step budget just below what the solver needs, the first attempt
    stops short; the second, from its curve, reaches the great circle."""
    z0, z1, exact = sphere_pair(120.0)
    solver = lg.LevenbergMarquardt()
    needed = int(lg.geodesic(SPHERE, z0, z1, solver=solver).num_steps)
    budget = needed - 1
    assert budget >= 1
    result = lg.pairwise_geodesics(
        SPHERE,
        np.stack([z0, z1]),
        init=lg.StraightStart(),
        solver=solver,
        discretisation=lg.Discretisation(max_steps=budget),
        progress=False,
    )
    assert bool(result.pair_converged[0])
    assert budget < int(result.num_steps[0]) <= 2 * budget
    np.testing.assert_allclose(result.lengths[0], exact, rtol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        lg.pairwise_distances(SPHERE, np.zeros((3, 3)), progress=False)
    with pytest.raises(ValueError, match="at least 2 points"):
        lg.pairwise_distances(SPHERE, np.zeros((1, 2)), progress=False)
    with pytest.raises(ValueError, match=r"rows \[1\] contain NaN"):
        lg.pairwise_distances(
            SPHERE, np.array([[0.0, 0.0], [np.nan, 1.0]]), progress=False
        )
    with pytest.raises(ValueError, match="batch_size"):
        lg.pairwise_distances(SPHERE, np.zeros((2, 2)), batch_size=0, progress=False)
    points = chart_points(3)
    # jaxtyping checks the annotation `Int[ArrayLike, "M 2"]` first in the tests.
    for pairs in (np.array([0, 1]), np.array([[0.0, 1.0]])):
        with pytest.raises((TypeError, ValueError), match="pairs"):
            lg.pairwise_distances(SPHERE, points, pairs=pairs, progress=False)
    for pairs, message in [
        (np.array([[0, 3]]), r"rows \[0\] index outside the 3 points"),
        (np.array([[0, 1], [2, 2]]), r"rows \[1\] join a point to itself"),
    ]:
        with pytest.raises(ValueError, match=message):
            lg.pairwise_distances(SPHERE, points, pairs=pairs, progress=False)
