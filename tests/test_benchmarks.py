"""The benchmark reference (`benchmarks/reference.py`) against closed forms."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, float64, sphere_pair

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import reference  # noqa: E402

SMALL = reference.Schedule(
    explore=(reference.Level(8, 2, 100, 1e-12, 10),),
    refine=(
        reference.Level(32, 1, 200, 1e-12, 10),
        reference.Level(64, 1, 200, 1e-12, 10),
    ),
)


def _bent_starts(z0, z1, num):
    """Straight line, and two curves bulging to either side, `(3, num, 2)`."""
    t = jnp.linspace(0.0, 1.0, num)[:, None]
    line = z0[None] + t * (z1 - z0)[None]
    normal = jnp.stack([-(z1 - z0)[1], (z1 - z0)[0]])
    bump = jnp.sin(jnp.pi * t) * normal[None]
    return jnp.stack([line, line + 0.5 * bump, line - 0.5 * bump])


def test_hierarchical_coordinates_round_trip_and_energy():
    with float64():
        nodes = jax.random.normal(jax.random.key(0), (33, 2), jnp.float64)
        details = reference.analyse(nodes)
        assert [d.shape[0] for d in details] == [1, 2, 4, 8, 16]
        back = reference.synthesise(details, nodes[0], nodes[-1])
        np.testing.assert_allclose(back, nodes, rtol=0, atol=1e-13)
        # Hat functions are H^1-orthogonal to each other and to the line, each
        # with energy 2 |y|^2 in these coordinates.
        energy = 32 * jnp.sum(jnp.diff(nodes, axis=0) ** 2)
        expected = jnp.sum((nodes[-1] - nodes[0]) ** 2) + 2 * sum(
            jnp.sum(d**2) for d in details
        )
        np.testing.assert_allclose(energy, expected, rtol=1e-12)


def test_polyline_samples_nodes_and_midpoints():
    with float64():
        nodes = jnp.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]])
        points = reference.polyline(nodes, 5)
        expected = [[0.0, 0.0], [0.5, 1.0], [1.0, 2.0], [2.0, 2.0], [3.0, 2.0]]
        np.testing.assert_allclose(points, expected)
        np.testing.assert_allclose(reference.upsample(nodes), expected)


def test_reference_straightens_a_linear_decoder():
    with float64():
        matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
        metric = lg.PullbackMetric(Linear(matrix))
        z0, z1 = jnp.array([-1.0, 0.3]), jnp.array([1.2, -0.4])
        starts = _bent_starts(z0, z1, 9)
        length, start_lengths, nodes, _ = jax.jit(
            lambda s: reference.solve_pair(metric, s, SMALL)
        )(starts)
        exact = jnp.linalg.norm(matrix @ (z1 - z0))
        np.testing.assert_allclose(length, exact, rtol=1e-9)
        np.testing.assert_allclose(start_lengths, exact, rtol=1e-6)
        t = jnp.linspace(0.0, 1.0, nodes.shape[0])[:, None]
        line = z0[None] + t * (z1 - z0)[None]
        np.testing.assert_allclose(nodes, line, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("angle", [60.0, 150.0])
def test_reference_finds_great_circles(angle):
    with float64():
        metric = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
        z0, z1, distance = sphere_pair(angle)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        length, _, _, _ = jax.jit(lambda s: reference.solve_pair(metric, s, SMALL))(
            _bent_starts(z0, z1, 9)
        )
        # A 64-segment polyline in the chart is a little longer than the arc.
        assert distance <= float(length) <= distance * (1 + 2e-4)
