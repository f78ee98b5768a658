"""Graph initialisation: k-nearest-neighbour graphs with metric edge lengths."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg


class Linear(eqx.Module):
    matrix: jax.Array

    def __call__(self, z):
        return self.matrix @ z


def _linear_metric():
    matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
    return lg.PullbackMetric(Linear(matrix)), matrix


def _points(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(np.float32)


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
    with pytest.raises(ValueError, match="init='graph'"):
        lg.pairwise_distances(metric, _points(4), refine=False, progress=False)
    with pytest.raises((TypeError, ValueError), match="init"):
        lg.pairwise_distances(metric, _points(4), init="curvy", progress=False)


class Obstacles(lg.AbstractTensorMetric):
    """A conformal metric with a tall bump at the origin and a mild hill below
    it: between `(-1.5, -0.1)` and `(1.5, -0.1)` there are two local geodesics,
    over the bump (shorter) and under it (longer, but the one a straight start
    slides into)."""

    latent_dim: int = 2

    def tensor(self, z):
        bump = 40.0 * jnp.exp(-jnp.sum(z**2) / (2 * 0.3**2))
        hill = 2.0 * jnp.exp(-jnp.sum((z - jnp.array([0.0, -0.9])) ** 2) / (2 * 0.5**2))
        return (1.0 + bump + hill) * jnp.eye(2, dtype=z.dtype)


def test_graph_start_finds_the_shorter_geodesic():
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], np.float32)
    grid = np.linspace(-2.0, 2.0, 9, dtype=np.float32)
    extra = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    options = dict(num_segments=8, max_steps=300, progress=False)
    straight = lg.pairwise_geodesics(metric, points, **options)
    graph = lg.pairwise_geodesics(
        metric, points, init="graph", graph_points=extra, graph_neighbours=6, **options
    )
    times = jnp.linspace(0.0, 1.0, 101)
    below = straight.curve_of(0, 1)(times)[:, 1].mean()
    above = graph.curve_of(0, 1)(times)[:, 1].mean()
    assert below < 0 < above
    assert graph.distances[0, 1] < 0.97 * straight.distances[0, 1]
    estimate = lg.pairwise_geodesics(
        metric,
        points,
        init="graph",
        graph_points=extra,
        graph_neighbours=6,
        refine=False,
        **options,
    )
    best = lg.pairwise_geodesics(
        metric,
        points,
        init="best",
        graph_points=extra,
        graph_neighbours=6,
        **options,
    )
    np.testing.assert_allclose(best.distances, graph.distances, rtol=1e-6)
    assert best.num_steps[0] == straight.num_steps[0] + graph.num_steps[0]
    # Refining shortens the graph path, which is already on the right side.
    assert graph.distances[0, 1] <= estimate.distances[0, 1] * (1 + 1e-3)
    assert estimate.curve_of(0, 1)(times)[:, 1].mean() > 0


def test_graph_init_pairwise_properties(tmp_path):
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 4, 8, 1, activation=jnp.tanh, key=k),
        3,
        key=jax.random.key(0),
    )
    metric = lg.ExpectedMetric(ensemble)
    points = _points(7, seed=3)
    options = dict(init="graph", graph_neighbours=3, progress=False, num_points=16)
    small = lg.pairwise_geodesics(metric, points, batch_size=4, **options)
    large = lg.pairwise_geodesics(metric, points, batch_size=32, **options)
    np.testing.assert_allclose(small.distances, large.distances, rtol=1e-5)
    assert np.allclose(small.distances, small.distances.T)
    assert np.all(np.diag(small.distances) == 0)
    path = tmp_path / "graph.npz"
    first = lg.pairwise_geodesics(
        metric, points, batch_size=4, checkpoint=path, **options
    )
    again = lg.pairwise_geodesics(
        metric, points, batch_size=4, checkpoint=path, **options
    )
    np.testing.assert_array_equal(first.distances, again.distances)
    with pytest.raises(ValueError, match=r"\(changed: starts\)"):
        lg.pairwise_geodesics(
            metric, points, batch_size=4, checkpoint=path, **{**options, "init": None}
        )
