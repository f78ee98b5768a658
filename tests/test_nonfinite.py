"""NaN and inf stay NaN: a curve that meets a non-finite metric has no length,
its pair is flagged, and no other pair is touched."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import default_float

MATRIX = np.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]], default_float())


class NaNOutside(eqx.Module):
    """The linear decoder $A z$, NaN where `lo < z[0] < hi`."""

    lo: float
    hi: float

    def __call__(self, z):
        out = jnp.asarray(MATRIX) @ z
        return jnp.where((self.lo < z[0]) & (z[0] < self.hi), jnp.nan, out)


class InfiniteBeyondOne(lg.AbstractTensorMetric):
    """The Euclidean metric, infinite where `z[0] > 1`."""

    latent_dim: int = 2

    def tensor(self, z):
        scale = jnp.where(z[0] > 1.0, jnp.inf, 1.0)
        return scale * jnp.eye(2, dtype=z.dtype)


HALF_PLANE = lg.PullbackMetric(NaNOutside(1.0, np.inf), latent_dim=2)


def linear_distances(points):
    diff = points[:, None] - points[None]
    return np.linalg.norm(diff @ MATRIX.T, axis=-1)


def test_geodesic_to_a_nan_end_point_is_nan_and_flagged_others_exact():
    far = lg.geodesic(HALF_PLANE, jnp.array([2.0, 0.0]), jnp.zeros(2), throw=False)
    assert bool(jnp.isnan(far.length)) and bool(jnp.isnan(far.energy))
    assert far.result == lg.RESULTS.nonfinite and not bool(far.converged)
    with pytest.raises(Exception, match="NaN or infinite"):
        lg.geodesic(HALF_PLANE, jnp.array([2.0, 0.0]), jnp.zeros(2))
    z0, z1 = jnp.array([-1.0, 0.0]), jnp.array([0.0, 0.5])
    near = lg.geodesic(HALF_PLANE, z0, z1)
    exact = np.linalg.norm(MATRIX @ np.asarray(z1 - z0))
    np.testing.assert_allclose(near.length, exact, rtol=1e-5)
    # An infinite metric gives NaN too, not an infinite length.
    infinite = lg.geodesic(
        InfiniteBeyondOne(), jnp.array([2.0, 0.0]), jnp.zeros(2), throw=False
    )
    assert bool(jnp.isnan(infinite.length)) and not bool(infinite.converged)


def test_length_grid_meeting_nan_fails_although_the_solver_converged():
    # NaN on a strip only the 1025-point length grid hits (x = 0.5 is on it; the
    # solver's 64 points of the straight line, the exact geodesic, are not).
    strip = lg.PullbackMetric(NaNOutside(0.5 - 1e-4, 0.5 + 1e-4), latent_dim=2)
    z0, z1 = jnp.zeros(2), jnp.array([1.0, 0.0])
    result = lg.geodesic(strip, z0, z1, solver=lg.OptaxSolver(), throw=False)
    assert bool(jnp.isfinite(result.energy))
    assert bool(jnp.isnan(result.length))
    assert result.result == lg.RESULTS.nonfinite


@pytest.mark.parametrize("vmap_size", [1, None])
def test_pairwise_nan_pairs_are_nan_and_flagged_others_untouched(vmap_size):
    points = np.array(
        [[2.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [0.0, 0.5]], default_float()
    )
    with pytest.warns(RuntimeWarning, match="3 of 6 geodesics meet NaN or inf"):
        result = lg.pairwise_geodesics(
            HALF_PLANE, points, progress=False, vmap_size=vmap_size
        )
    distances, converged = np.asarray(result.distances), np.asarray(result.converged)
    assert np.all(np.isnan(distances[0, 1:])) and np.all(np.isnan(distances[1:, 0]))
    assert not converged[0, 1:].any()
    np.testing.assert_allclose(
        distances[1:, 1:], linear_distances(points[1:]), rtol=1e-5, atol=1e-6
    )
    assert converged[1:, 1:].all()


def test_graph_leaves_out_nan_edges_and_keeps_other_pairs():
    rng = np.random.default_rng(0)
    finite = rng.uniform(-1.0, 0.5, (6, 2)).astype(default_float())
    points = np.concatenate([[[2.0, 0.0]], finite]).astype(default_float())
    graph = lg.graph_paths(HALF_PLANE, points, neighbours=len(points) - 1)
    assert np.all(np.isnan(graph.distances[0, 1:]))
    # The complete graph holds each straight segment: exact linear distances.
    np.testing.assert_allclose(
        graph.distances[1:, 1:], linear_distances(finite), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="No path of finite edges"):
        graph.path(0, 3)
    curves = graph.init_curves(np.array([0, 1]), np.array([3, 4]), num_segments=4)
    np.testing.assert_allclose(curves.params[0], 0.0, atol=1e-6)  # straight line
    first = jax.tree.map(lambda x: x[0], curves)
    np.testing.assert_array_equal(first(jnp.array([0.0, 1.0])), points[[0, 3]])


def test_graph_split_by_a_nan_wall_gives_nan_across_not_an_error():
    wall = lg.PullbackMetric(NaNOutside(0.3, 0.7), latent_dim=2)
    ys = np.linspace(0.0, 1.0, 3, dtype=default_float())
    left = np.stack([np.zeros(3, default_float()), ys], axis=1)
    points = np.concatenate([left, left + np.array([1.0, 0.0], default_float())])
    graph = lg.graph_paths(wall, points, neighbours=5)
    across = graph.distances[:3, 3:]
    assert np.all(np.isnan(across))
    for side in (slice(0, 3), slice(3, 6)):
        np.testing.assert_allclose(
            graph.distances[side, side],
            linear_distances(points[side]),
            rtol=1e-5,
            atol=1e-6,
        )


def test_graph_start_and_estimate_flag_points_no_path_reaches():
    points = np.array(
        [[2.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [0.0, 0.5]], default_float()
    )
    start = lg.GraphStart(neighbours=3)
    with pytest.warns(RuntimeWarning, match="3 of 6 geodesics meet NaN or inf"):
        estimate = lg.pairwise_graph_estimate(HALF_PLANE, points, start, progress=False)
    with pytest.warns(RuntimeWarning, match="3 of 6 geodesics meet NaN or inf"):
        solved = lg.pairwise_geodesics(HALF_PLANE, points, init=start, progress=False)
    for result in (estimate, solved):
        distances = np.asarray(result.distances)
        converged = np.asarray(result.converged)
        assert np.all(np.isnan(distances[0, 1:])) and not converged[0, 1:].any()
        np.testing.assert_allclose(
            distances[1:, 1:], linear_distances(points[1:]), rtol=1e-5, atol=1e-6
        )
        assert converged[1:, 1:].all()
