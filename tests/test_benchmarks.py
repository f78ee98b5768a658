"""The benchmark reference (`benchmarks/reference.py`) against closed forms."""

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    JUMP,
    Fold,
    InverseStereographic,
    Linear,
    float64,
    snell_length,
    sphere_pair,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import reference  # noqa: E402

SMALL = reference.Schedule(
    explore=(reference.Level(8, 2, 100, 1e-12, 10),),
    refine=(
        reference.Level(32, 1, 200, 1e-12, 10),
        reference.Level(64, 1, 200, 1e-12, 10),
    ),
    restarts=1,
)


def _solve(metric, starts, polish=None, schedule=SMALL):
    """`solve_pair` compiled, with no curves to polish unless given."""
    if polish is None:
        polish = jnp.zeros((0, reference.last_nodes(schedule), starts.shape[-1]))
    return jax.jit(lambda s, p: reference.solve_pair(metric, s, p, schedule))(
        starts, polish
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


def test_constant_speed_evens_a_bent_polylines_metric_steps():
    """Through a linear decoder every step's length is exact, so the moved
    nodes are at equal metric arc length on the same path."""
    with float64():
        matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
        metric = lg.PullbackMetric(Linear(matrix))
        corners = jnp.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
        times = jnp.array([0.0, 0.05, 0.1, 0.2, 0.5, 0.6, 0.7, 0.9, 1.0])
        nodes = reference.polyline_at(corners, times)  # uneven, 8 segments
        moved = reference.constant_speed(metric, nodes)
        legs = [jnp.linalg.norm(matrix @ (b - a)) for a, b in zip(corners, corners[1:])]
        on_first = moved[:, 0] <= 1.0
        # Each node's metric arc length from the start, were it on the path.
        arc = jnp.where(
            on_first,
            jnp.linalg.norm(moved @ matrix.T, axis=1),
            legs[0] + jnp.linalg.norm((moved - corners[1][None]) @ matrix.T, axis=1),
        )
        np.testing.assert_allclose(arc, jnp.arange(9.0) * sum(legs) / 8, atol=1e-12)
        # ... and on it: the first leg's line y = 2x, the second's x + 2y = 5.
        residual = jnp.where(
            on_first, moved[:, 1] - 2 * moved[:, 0], moved[:, 0] + 2 * moved[:, 1] - 5
        )
        np.testing.assert_allclose(residual, 0.0, atol=1e-12)


def _fold_pair():
    """The ReLU fold's metric, a pair across it, Snell's length between them
    and the straight line as one start `(1, 9, 2)` (call under `float64()`)."""
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    z0, z1 = np.array([-1.0, -0.7]), np.array([1.0, 0.9])
    t = np.linspace(0.0, 1.0, 9)[:, None]
    line = jnp.asarray(z0 + t * (z1 - z0))[None]
    return metric, z0, z1, snell_length(z0, z1), line


def test_reference_restarts_leave_a_relu_folds_pinned_crossing():
    """From the straight line the polyline stops with its crossing of the fold
    at the wrong time; restarted at constant speed it comes within the
    64-segment polyline's resolution of Snell's length."""
    with float64():
        metric, _, _, truth, line = _fold_pair()
        pinned = _solve(metric, line, schedule=dataclasses.replace(SMALL, restarts=0))
        restarted = _solve(metric, line)
        assert pinned.length > (1 + 1e-3) * truth
        assert truth <= restarted.length <= (1 + 6e-4) * truth


def test_reference_polishes_a_better_curve_and_keeps_it():
    """Given Snell's broken line to polish, the reference is the polished
    curve's length, not the pinned independent solve's."""
    with float64():
        metric, z0, z1, truth, line = _fold_pair()
        pinned = dataclasses.replace(SMALL, restarts=0)
        # Snell's crossing, from a scalar minimisation like `snell_length`'s.
        grid = np.linspace(-1.0, 1.0, 200_001)
        total = np.hypot(grid - z0[0], z0[1]) + np.sqrt(
            (z1[0] - grid) ** 2 + (1 + JUMP**2) * z1[1] ** 2
        )
        corner = np.array([grid[np.argmin(total)], 0.0])
        share = np.hypot(*(corner - z0)) / total.min()  # time of the crossing
        times = np.linspace(0.0, 1.0, reference.last_nodes(SMALL))[:, None]
        broken = np.where(
            times <= share,
            z0 + times / share * (corner - z0),
            corner + (times - share) / (1 - share) * (z1 - corner),
        )
        good = _solve(metric, line, jnp.asarray(broken)[None], pinned)
        assert good.independent_length > (1 + 1e-3) * truth
        assert truth <= good.length <= (1 + 6e-4) * truth


def test_reference_straightens_a_linear_decoder():
    with float64():
        matrix = jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
        metric = lg.PullbackMetric(Linear(matrix))
        z0, z1 = jnp.array([-1.0, 0.3]), jnp.array([1.2, -0.4])
        starts = _bent_starts(z0, z1, 9)
        length, _, start_lengths, nodes, _ = _solve(metric, starts)
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
        length = _solve(metric, _bent_starts(z0, z1, 9)).length
        # A 64-segment polyline in the chart is a little longer than the arc.
        assert distance <= float(length) <= distance * (1 + 2e-4)
