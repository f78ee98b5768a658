"""Graph initialisation: k-nearest-neighbour graphs with metric edge lengths."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import default_float


class Linear(eqx.Module):
    matrix: jax.Array

    def __call__(self, z):
        return self.matrix @ z


def _linear_metric():
    matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
    return lg.PullbackMetric(Linear(matrix)), matrix


def _points(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(default_float())


def test_linear_graph_distance_bounds_and_converges():
    metric, matrix = _linear_metric()
    points = _points(20)
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ np.asarray(matrix).T, axis=-1)
    previous = np.full_like(exact, np.inf)
    for k in (2, 4, 8, 19):
        graph = lg.graph_paths(metric, points, neighbours=k)
        estimate = np.asarray(graph.distances)
        # A graph path is a curve: never shorter than the straight geodesic.
        assert np.all(estimate >= exact - 1e-5)
        # More neighbours, more edges: paths only get shorter.
        assert np.all(estimate <= previous + 1e-5)
        previous = estimate
    # The complete graph holds the straight segment itself.
    np.testing.assert_allclose(previous, exact, rtol=1e-5, atol=1e-5)
    assert np.allclose(np.diag(previous), 0.0) and np.allclose(previous, previous.T)


def test_path_and_init_curves_follow_the_graph():
    metric, _ = _linear_metric()
    points = _points(15, seed=1)
    graph = lg.graph_paths(metric, points, neighbours=5)
    path = graph.path(2, 9)
    np.testing.assert_allclose(path[0], points[2])
    np.testing.assert_allclose(path[-1], points[9])
    steps = np.linalg.norm(
        np.diff(path @ np.asarray(_linear_metric()[1]).T, axis=0), axis=1
    )
    np.testing.assert_allclose(steps.sum(), graph.distances[2, 9], rtol=1e-5)
    curves = graph.init_curves(np.array([2, 0]), np.array([9, 14]), num_segments=8)
    assert curves.params.shape == (2, 9, 2)
    first = jax.tree.map(lambda x: x[0], curves)
    ends = first(jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(ends, points[[2, 9]])  # exact, not fitted
    # The fitted spline stays close to the polygon of the path.
    along = first(jnp.linspace(0, 1, 200))
    gap = np.min(np.linalg.norm(along[:, None] - path[None], axis=-1), axis=1)
    assert gap.max() < 0.5 * np.linalg.norm(points[2] - points[9])


def test_disconnected_graph_raises():
    metric, _ = _linear_metric()
    points = np.concatenate([_points(5), _points(5, seed=2) + 10.0])
    with pytest.raises(ValueError, match="unconnected"):
        lg.graph_paths(metric, points, neighbours=2)
    graph = lg.graph_paths(metric, points, neighbours=5)
    assert np.all(np.isfinite(graph.distances))


def test_bad_arguments():
    metric, _ = _linear_metric()
    with pytest.raises(ValueError, match="neighbours"):
        lg.graph_paths(metric, _points(4), neighbours=4)
    # jaxtyping catches the mismatched `d` first when it checks the call.
    with pytest.raises((TypeError, ValueError), match="extra_points"):
        lg.graph_paths(metric, _points(4), extra_points=np.zeros((3, 3)))


def test_graph_estimate_is_the_graph_distance_with_fitted_paths():
    metric, matrix = _linear_metric()
    points = _points(8, seed=4)
    start = lg.GraphStart(neighbours=7)  # complete: each straight segment is an edge
    estimate = lg.pairwise_graph_estimate(
        metric,
        points,
        start,
        discretisation=lg.Discretisation(num_segments=6),
        progress=False,
    )
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ np.asarray(matrix).T, axis=-1)
    np.testing.assert_allclose(estimate.distances, exact, rtol=1e-5, atol=1e-6)
    assert bool(estimate.converged.all()) and not np.any(estimate.num_steps)
    # The curves are the fitted straight paths: their metric lengths are exact too.
    times = jnp.linspace(0.0, 1.0, 65)
    lengths = jax.vmap(lambda c: metric.curve_length(c(times)))(estimate.curves)
    np.testing.assert_allclose(lengths, estimate.lengths, rtol=1e-4)
    asked = lg.pairwise_graph_estimate(
        metric, points, start, pairs=np.array([[5, 1]]), progress=False
    )
    np.testing.assert_allclose(asked.lengths, [exact[5, 1]], rtol=1e-5)


@pytest.mark.parametrize("latent_dim", [2, 3])
def test_default_graph_estimate_of_two_points_is_their_distance(latent_dim):
    """With no graph named, two points get their distance: in 2-D the default
    lattice also joins each point to its nearest query points, above the
    neighbour graph takes every other point as neighbour, so for a linear
    decoder the straight edge between the two is the shortest path."""
    matrix = jnp.asarray(
        np.random.default_rng(2).normal(size=(4, latent_dim)), default_float()
    )
    metric = lg.PullbackMetric(Linear(matrix))
    points = np.zeros((2, latent_dim), default_float())
    points[1] = 1.0
    estimate = lg.pairwise_graph_estimate(metric, points, progress=False)
    exact = np.linalg.norm(np.asarray(matrix) @ points[1])
    np.testing.assert_allclose(estimate.lengths, [exact], rtol=1e-5)


def test_dijkstra_fields_are_graph_distances_and_kept_between_calls(monkeypatch):
    from latentgeo._distance_fields import DistanceFields

    metric, matrix = _linear_metric()
    points = _points(15, seed=1)
    graph = lg.graph_paths(metric, points, neighbours=5)
    distances, predecessors = graph.dijkstra(np.array([2, 9]))
    # The fields hold the query points' graph distances (kept at build time)
    # and each path's previous node, whose edges add up to them.
    np.testing.assert_allclose(distances[:, :15], graph.distances[[2, 9]], rtol=1e-6)
    node, length = 9, 0.0
    while node != 2:
        before = predecessors[0, node]
        length += np.linalg.norm(np.asarray(matrix) @ (points[node] - points[before]))
        node = before
    np.testing.assert_allclose(length, distances[0, 9], rtol=1e-5)
    # Kept between calls: only points not seen before are computed.
    asked = []
    dijkstra = lg.GraphPaths.dijkstra

    def counted(self, sources):
        asked.append(sorted(np.asarray(sources).tolist()))
        return dijkstra(self, sources)

    monkeypatch.setattr(lg.GraphPaths, "dijkstra", counted)
    fields = DistanceFields(graph)
    kept, _ = fields(np.array([9, 2, 9]))
    again, again_predecessors = fields(np.array([4, 2]))
    assert asked == [[2, 9], [4]]
    np.testing.assert_allclose(kept, distances[[1, 0, 1]], rtol=1e-6)
    np.testing.assert_array_equal(again_predecessors[1], predecessors[0])
    # A budget of one field keeps one: answers stay exact, work is repeated.
    small = DistanceFields(graph, budget=1)
    for sources in ([2, 9], [9, 2], [2]):
        found, _ = small(np.array(sources))
        np.testing.assert_allclose(found, graph.dijkstra(np.array(sources))[0], 1e-6)
    # Second routes from kept fields are those from fresh ones.
    rows, cols = np.array([2, 0, 9]), np.array([9, 14, 2])
    fresh, found = graph.alternative_curves(rows, cols, 8, slack=0.2)
    reused, found_again = graph.alternative_curves(
        rows, cols, 8, slack=0.2, fields=DistanceFields(graph)
    )
    assert found.any() and found.tolist() == found_again.tolist()
    np.testing.assert_allclose(fresh.params, reused.params, atol=1e-5)
    # So are shortest paths' curves, and the two share the kept fields.
    shared = DistanceFields(graph)
    first = graph.init_curves(rows, cols, 8, fields=shared)
    np.testing.assert_allclose(
        graph.init_curves(rows, cols, 8).params, first.params, atol=1e-5
    )
    asked.clear()
    graph.alternative_curves(rows, cols, 8, slack=0.2, fields=shared)
    assert asked == [[14]]  # only the column point not yet a row
