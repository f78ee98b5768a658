"""The lattice search of two-dimensional latent spaces: shortest lattice paths
(in JAX, inside each solve) and the lattice graph over many points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import Linear, default_float, float64
from latentgeo import _lattice


class Bump(lg.AbstractTensorMetric):
    """A conformal metric with a tall bump at the origin: the geodesic between
    (-1, 0) and (1, 0) goes around it, the straight line goes through it."""

    height: float = 60.0
    latent_dim: int = 2

    def tensor(self, z):
        scale = 1.0 + self.height * jnp.exp(-jnp.sum(z**2) / 0.05)
        return scale * jnp.eye(2, dtype=z.dtype)


def _lattice_path(metric, z0, z1, cells=32, margin=0.5):
    lattice = _lattice.Lattice.around(jnp.stack([z0, z1]), cells, margin)
    weights = _lattice.edge_weights(metric, lattice)
    found = _lattice.shortest_distances(metric, lattice, weights, z0)
    return _lattice.path_to(metric, lattice, found, z0, z1, 10)


def test_lattice_path_on_a_flat_metric():
    # An isotropic linear decoder: the lattice path is a curve (never shorter
    # than the segment) and, with 16 directions, at most 2.7% longer.
    metric = lg.PullbackMetric(Linear(2.0 * jnp.eye(2)))
    for z1 in (jnp.array([1.0, 0.3]), jnp.array([-0.4, 1.7]), jnp.array([0.9, 0.9])):
        z0 = jnp.array([0.1, -0.2])
        path = _lattice_path(metric, z0, z1)
        exact = 2.0 * float(jnp.linalg.norm(z1 - z0))
        assert exact * (1 - 1e-5) <= float(path.length) <= exact * 1.028
        ends = path.curve(jnp.array([0.0, 1.0]))
        np.testing.assert_array_equal(ends, jnp.stack([z0, z1]))
        np.testing.assert_array_equal(
            path.points[jnp.array([0, -1])], jnp.stack([z0, z1])
        )


def test_lattice_search_goes_around_a_bump():
    metric = Bump()
    z0, z1 = jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.0])
    # From the straight line the local solver stays on the symmetric line
    # through the bump (a saddle of the energy).
    local = lg.geodesic(metric, z0, z1, solver=lg.OptaxSolver(), throw=False)
    found = lg.geodesic(metric, z0, z1, solver=lg.LatticeSearch(lg.OptaxSolver()))
    straight = float(metric.curve_length(jnp.linspace(z0, z1, 4097)))
    assert float(local.length) > 0.9 * straight
    # The geodesic around the bump, independently: a dense lattice graph.
    dense = lg.lattice_paths(metric, jnp.stack([z0, z1]), cells=256, margin=0.5)
    around = float(dense.distances[0, 1])
    assert float(found.length) < 0.5 * straight
    assert float(found.length) <= around * 1.001
    assert float(found.length) >= around * 0.95


def test_lattice_search_keeps_a_global_straight_start():
    # On a flat metric the lattice path agrees with the straight geodesic: no
    # second solve, the same curve and cost as the local solver alone.
    metric = lg.PullbackMetric(Linear(jnp.array([[1.0, 0.5], [0.0, 2.0]])))
    z0, z1 = jnp.array([-1.0, 0.3]), jnp.array([0.8, -0.6])
    local = lg.geodesic(metric, z0, z1, solver=lg.LevenbergMarquardt())
    found = lg.geodesic(
        metric, z0, z1, solver=lg.LatticeSearch(lg.LevenbergMarquardt())
    )
    assert int(found.num_evaluations) == int(local.num_evaluations)
    np.testing.assert_allclose(found.length, local.length, rtol=1e-6)


def test_lattice_search_tier_follows_the_local_solves_iterations():
    # A flat metric: the local solve converges in a step or two. Checked by
    # the coarse or the middle lattice, the path stays on the curve and
    # nothing more is solved; sent to the fine lattice (every solve counts
    # as rough), the local solver always runs again, to the same geodesic.
    metric = lg.PullbackMetric(Linear(jnp.array([[1.0, 0.5], [0.0, 2.0]])))
    z0, z1 = jnp.array([-1.0, 0.3]), jnp.array([0.8, -0.6])
    bent = lg.CubicSpline(z0, z1, jnp.full((11, 2), 0.05))  # a step or more
    local = lg.geodesic(metric, z0, z1, init=bent, solver=lg.LevenbergMarquardt())
    assert 0 < int(local.num_steps) <= 8

    def searched(**tiers):
        solver = lg.LatticeSearch(lg.LevenbergMarquardt(), **tiers)
        return lg.geodesic(metric, z0, z1, init=bent, solver=solver)

    middle = searched(quick_steps=0, rough_steps=100)
    fine = searched(quick_steps=0, rough_steps=0)
    assert int(middle.num_evaluations) == int(local.num_evaluations)
    assert int(fine.num_evaluations) > int(local.num_evaluations)
    exact = float(jnp.linalg.norm(metric.decoder.matrix @ (z1 - z0)))
    for result in (middle, fine):
        np.testing.assert_allclose(result.length, exact, rtol=1e-5)


def test_lattice_search_under_vmap_and_in_more_dimensions(getkey):
    metric = Bump()
    z0s = jnp.array([[-1.0, 0.0], [-1.0, 0.2], [0.5, -1.0]])
    z1s = jnp.array([[1.0, 0.0], [1.0, -0.1], [0.4, 1.0]])
    solver = lg.LatticeSearch(lg.OptaxSolver())
    batched = jax.vmap(lambda a, b: lg.geodesic(metric, a, b, solver=solver))(z0s, z1s)
    for k in range(3):
        single = lg.geodesic(metric, z0s[k], z1s[k], solver=solver)
        np.testing.assert_allclose(batched.length[k], single.length, rtol=1e-4)
    # Not two-dimensional: the local solve, as it is.
    linear = lg.PullbackMetric(Linear(jax.random.normal(getkey(), (4, 3))))
    a, b = jnp.zeros(3), jnp.ones(3)
    searched = lg.geodesic(linear, a, b, solver=lg.LatticeSearch(lg.OptaxSolver()))
    local = lg.geodesic(linear, a, b, solver=lg.OptaxSolver())
    np.testing.assert_array_equal(searched.length, local.length)


def test_lattice_search_in_float64():
    with float64():
        metric = lg.PullbackMetric(Linear(jnp.array([[2.0, 0.5], [0.0, 1.0]])))
        z0, z1 = jnp.array([0.0, 0.0]), jnp.array([1.0, -0.5])
        result = lg.geodesic(metric, z0, z1)
        assert result.length.dtype == jnp.float64
        exact = jnp.linalg.norm(metric.decoder.matrix @ (z1 - z0))
        np.testing.assert_allclose(result.length, exact, rtol=1e-8)


def test_lattice_graph_distances_on_a_linear_decoder():
    matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
    metric = lg.PullbackMetric(Linear(matrix))
    points = np.random.default_rng(0).uniform(-1, 1, (25, 2)).astype(default_float())
    graph = lg.lattice_paths(metric, points, cells=64, neighbours=3)
    exact = np.linalg.norm(
        (points[:, None] - points[None]) @ np.asarray(matrix).T, axis=-1
    )
    upper = np.triu_indices(25, 1)
    ratio = np.asarray(graph.distances)[upper] / exact[upper]
    assert ratio.min() >= 1 - 1e-5  # a path is a curve
    assert np.median(ratio) < 1.02 and ratio.max() < 1.1
    path = graph.path(0, 7)
    np.testing.assert_allclose(path[[0, -1]], points[[0, 7]])
    steps = np.linalg.norm(np.diff(path @ np.asarray(matrix).T, axis=0), axis=1)
    np.testing.assert_allclose(steps.sum(), graph.distances[0, 7], rtol=1e-5)


def test_lattice_graph_bad_input():
    metric = lg.PullbackMetric(Linear(jnp.ones((2, 3))))
    with pytest.raises(ValueError, match="2-D latent space"):
        lg.lattice_paths(metric, np.zeros((3, 3)))
    flat = lg.PullbackMetric(Linear(jnp.eye(2)))
    with pytest.raises(ValueError, match="cells"):
        lg.lattice_paths(flat, np.random.rand(3, 2), cells=1)
    with pytest.raises(ValueError, match="NaN"):
        lg.lattice_paths(flat, np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="cells"):
        lg.LatticeSearch(lg.OptaxSolver(), cells=1)
    with pytest.raises(ValueError, match="cells"):
        lg.LatticeSearch(lg.OptaxSolver(), middle_cells=1)
    with pytest.raises(ValueError, match="quick_steps"):
        lg.LatticeSearch(lg.OptaxSolver(), quick_steps=30, rough_steps=20)
