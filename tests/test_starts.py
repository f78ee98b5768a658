"""Starting-curve strategies of `pairwise_geodesics`; the option strings of
latentgeo 0.1 they replaced are refused."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import LOCAL, Fold, Linear, default_float, snell_length

LINEAR = lg.PullbackMetric(Linear(jnp.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]])))


def _points(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(default_float())


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


def test_graph_start_finds_the_shorter_geodesic_and_shortest_of_keeps_it():
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], default_float())
    grid = np.linspace(-2.0, 2.0, 9, dtype=default_float())
    extra = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    graph_start = lg.GraphStart(neighbours=6, extra_points=extra)
    discretisation = lg.Discretisation(num_segments=8, max_steps=300)
    # A local solver: the default would search a lattice after the solve.
    options = dict(
        discretisation=discretisation, solver=lg.OptaxSolver(), progress=False
    )
    straight = lg.pairwise_geodesics(metric, points, init=lg.StraightStart(), **options)
    graph = lg.pairwise_geodesics(metric, points, init=graph_start, **options)
    times = jnp.linspace(0.0, 1.0, 101)
    below = straight.curve_of(0, 1)(times)[:, 1].mean()
    above = graph.curve_of(0, 1)(times)[:, 1].mean()
    assert below < 0 < above
    assert graph.distances[0, 1] < 0.97 * straight.distances[0, 1]
    # The default call, with neither start nor solver, finds the shorter route.
    default = lg.pairwise_geodesics(
        metric, points, discretisation=discretisation, progress=False
    )
    assert default.curve_of(0, 1)(times)[:, 1].mean() > 0
    np.testing.assert_allclose(default.distances, graph.distances, rtol=1e-3)
    best = lg.pairwise_geodesics(
        metric, points, init=lg.ShortestOf(lg.StraightStart(), graph_start), **options
    )
    np.testing.assert_allclose(best.distances, graph.distances, rtol=1e-6)
    assert best.num_steps[0] == straight.num_steps[0] + graph.num_steps[0]
    estimate = lg.pairwise_graph_estimate(
        metric,
        points,
        graph_start,
        discretisation=lg.Discretisation(num_segments=8),
        progress=False,
    )
    # Refining shortens the graph path, which is already on the right side.
    assert graph.distances[0, 1] <= estimate.distances[0, 1] * (1 + 1e-3)
    assert estimate.curve_of(0, 1)(times)[:, 1].mean() > 0


def test_graph_start_any_batch_size_and_checkpoint(tmp_path):
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 4, 8, 1, activation=jnp.tanh, key=k),
        3,
        key=jax.random.key(0),
    )
    metric = lg.ExpectedMetric(ensemble)
    points = _points(7, seed=3)
    options = dict(
        init=lg.GraphStart(neighbours=3),
        solver=LOCAL,  # the start and the store are the subject
        progress=False,
        discretisation=lg.Discretisation(num_points=16),
    )
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
    for other in (lg.StraightStart(), lg.GraphStart(neighbours=4)):
        with pytest.raises(ValueError, match=r"\(changed: starts\)"):
            lg.pairwise_geodesics(
                metric, points, checkpoint=path, **{**options, "init": other}
            )


@pytest.mark.parametrize(
    "old",
    [
        dict(init="straight"),
        dict(init="graph"),
        dict(init="best"),
        dict(init="graph", graph_neighbours=3),
        dict(init="best", graph_neighbours=3, graph_points=_points(3, seed=9)),
        dict(init=lg.GraphStart(), graph_neighbours=3),
        dict(graph_points=_points(3, seed=9)),
        dict(init="graph", refine=False),
        dict(refine=False),
    ],
    ids=lambda old: "-".join(old),
)
def test_old_spellings_fail_clearly(old):
    points = _points(4)
    # The graph's options and `refine` are no longer keywords (they are
    # `GraphStart(neighbours=, extra_points=)`, and `pairwise_graph_estimate`
    # for `refine=False`); without them, a string is not a start.
    gone = [name for name in old if name != "init"]
    if gone:
        message = f"unexpected keyword argument '{gone[0]}'"
    else:
        message = "`init` must be a start|parameter 'init'"
    for driver in (lg.pairwise_geodesics, lg.pairwise_distances):
        with pytest.raises(TypeError, match=message):
            driver(LINEAR, points, progress=False, **old)


def test_given_curves_start_each_pair():
    points = _points(3)
    rows, cols = np.triu_indices(3, 1)
    straight = jax.vmap(lambda a, b: lg.CubicSpline.straight(a, b, 5))(
        jnp.asarray(points[rows]), jnp.asarray(points[cols])
    )
    # Bent starting curves relax to the straight geodesics of a linear decoder.
    bent = eqx.tree_at(lambda c: c.params, straight, straight.params + 0.2)
    result = lg.pairwise_geodesics(
        LINEAR, points, init=lg.GivenCurves(bent), progress=False
    )
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ np.asarray(LINEAR.decoder.matrix).T, axis=-1)
    np.testing.assert_allclose(result.distances, exact, rtol=1e-4, atol=1e-6)
    assert result.curves.num_segments == 5
    with pytest.raises(ValueError, match="expected a CubicSpline batched over"):
        lg.pairwise_geodesics(LINEAR, _points(4), init=bent, progress=False)
    # The given curves keep their 5 segments whatever the discretisation says.
    six = lg.pairwise_geodesics(
        LINEAR,
        points,
        init=bent,
        discretisation=lg.Discretisation(num_segments=6),
        progress=False,
    )
    assert six.curves.num_segments == 5
    np.testing.assert_array_equal(six.distances, result.distances)
    moved = eqx.tree_at(lambda c: c.z1, bent, bent.z1.at[1].add(0.5))
    with pytest.raises(ValueError, match=r"curves \[1\] have a `z1`"):
        lg.pairwise_geodesics(LINEAR, points, init=moved, progress=False)


def test_bad_starts():
    with pytest.raises(ValueError, match="neighbours"):
        lg.GraphStart(neighbours=0)
    with pytest.raises(ValueError, match="edge_points"):
        lg.GraphStart(edge_points=1)
    # Depending on its version, jaxtyping checks the annotation first.
    with pytest.raises((TypeError, ValueError), match="extra_points"):
        lg.GraphStart(extra_points=np.zeros(3))
    with pytest.raises(ValueError, match="at least two"):
        lg.ShortestOf(lg.StraightStart())
    with pytest.raises(TypeError, match="ShortestOf"):
        lg.ShortestOf(lg.StraightStart(), "graph")
    points = _points(4)
    for init in ("curvy", 3, lg.ExpectedEnergy()):
        with pytest.raises(TypeError, match="`init` must be a start|parameter 'init'"):
            lg.pairwise_distances(LINEAR, points, init=init, progress=False)


class TwoWaysRound(lg.AbstractGraphStart):
    """A hand-made graph between two points: a path under the `Obstacles`
    (graph length 3) and one over them (`over`, by default 3.06)."""

    over: float = 3.06

    def graph(self, metric, points, progress):
        dtype = points.dtype
        nodes = np.concatenate([points, [[0.0, -1.3], [0.0, 1.0]]]).astype(dtype)
        edges = np.array([[0, 2], [2, 1], [0, 3], [3, 1]])
        weights = np.array([1.5, 1.5, self.over / 2, self.over / 2], dtype)
        shortest = min(3.0, self.over)
        distances = np.array([[0.0, shortest], [shortest, 0.0]], dtype)
        return lg.GraphPaths(distances, nodes, edges, weights)


def test_two_routes_solves_from_the_second_route_and_keeps_the_shorter():
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], default_float())
    graph = TwoWaysRound().graph(metric, points, False)
    # The second route: through the node over the bump, 2% longer in the graph.
    curves, found = graph.alternative_curves(
        np.array([0]), np.array([1]), 8, slack=0.05
    )
    assert found.tolist() == [True]
    middle = lg.CubicSpline(curves.z0[0], curves.z1[0], curves.params[0])(
        jnp.array([0.5])
    )
    np.testing.assert_allclose(middle[0], [0.0, 1.0], atol=0.1)
    # Not within the default slack (1%).
    _, found = graph.alternative_curves(np.array([0]), np.array([1]), 8)
    assert found.tolist() == [False]
    options = dict(
        discretisation=lg.Discretisation(num_segments=8, max_steps=300),
        solver=lg.OptaxSolver(),
        progress=False,
    )
    under = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(), **options)
    over = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(2.9), **options)
    times = jnp.linspace(0.0, 1.0, 101)
    assert under.curve_of(0, 1)(times)[:, 1].mean() < 0
    assert over.curve_of(0, 1)(times)[:, 1].mean() > 0
    assert over.distances[0, 1] < 0.97 * under.distances[0, 1]
    # Both routes solved, the shorter geodesic kept: the one over the bump.
    both = lg.pairwise_geodesics(
        metric, points, init=lg.TwoRoutes(TwoWaysRound(), slack=0.05), **options
    )
    np.testing.assert_allclose(both.distances, over.distances, rtol=1e-6)
    assert both.num_steps[0] == under.num_steps[0] + over.num_steps[0]
    # No second route within the slack: the first answer. One pair at a time
    # the pair is not solved again ...
    init = lg.TwoRoutes(TwoWaysRound())
    one = lg.pairwise_geodesics(metric, points, init=init, **options)
    np.testing.assert_allclose(one.distances, under.distances, rtol=1e-6)
    assert one.num_steps[0] == under.num_steps[0]
    # ... nor in refilled lockstep slots (a solver that runs as one loop; a
    # batched solve may round differently, so it is compared with the first
    # route solved alone in the same slots) ...
    lockstep = lg.pairwise_geodesics(
        metric, points, init=init, vmap_size=None, **options
    )
    alone = lg.pairwise_geodesics(
        metric, points, init=TwoWaysRound(), vmap_size=None, **options
    )
    np.testing.assert_allclose(lockstep.distances, under.distances, rtol=1e-5)
    np.testing.assert_allclose(lockstep.distances, alone.distances, rtol=1e-6)
    assert lockstep.num_steps[0] == alone.num_steps[0]
    # ... and in lockstep groups of other solvers it restarts from its
    # converged first curve: a few steps.
    composed = dict(
        options, solver=lg.WarmStart(lg.OptaxSolver(), lg.OptaxSolver(), warmup_steps=0)
    )
    under = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(), **composed)
    lockstep = lg.pairwise_geodesics(
        metric, points, init=init, vmap_size=None, **composed
    )
    np.testing.assert_allclose(lockstep.distances, under.distances, rtol=1e-5)
    first, again = int(under.num_steps[0]), int(lockstep.num_steps[0])
    assert first < again < 1.5 * first


def test_two_routes_probe_decides_whether_the_second_route_is_solved(tmp_path):
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], default_float())
    pairs = np.tile([[0, 1]], (5, 1))  # the probe takes pairs 0 and 4
    options = dict(
        discretisation=lg.Discretisation(num_segments=8, max_steps=300),
        solver=lg.OptaxSolver(),
        progress=False,
        pairs=pairs,
    )
    under = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(), **options)
    over = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(2.9), **options)
    assert over.lengths[0] < 0.97 * under.lengths[0]

    def two_routes(min_shorter, **more):
        init = lg.TwoRoutes(
            TwoWaysRound(), slack=0.05, probe_pairs=2, min_shorter=min_shorter
        )
        return lg.pairwise_geodesics(metric, points, init=init, **options, **more)

    # The second route was the shorter on both probe pairs: every pair solves it.
    kept = two_routes(2)
    np.testing.assert_allclose(kept.lengths, over.lengths, rtol=1e-6)
    # Asked to be the shorter on three, it is solved on the probe's pairs only;
    # the others cost one solve, from the first route.
    path = tmp_path / "run.npz"
    dropped = two_routes(3, checkpoint=path)
    probe = np.array([0, 4])
    rest = np.array([1, 2, 3])
    np.testing.assert_allclose(dropped.lengths[probe], over.lengths[probe], rtol=1e-6)
    np.testing.assert_allclose(dropped.lengths[rest], under.lengths[rest], rtol=1e-6)
    np.testing.assert_array_equal(dropped.num_steps[rest], under.num_steps[rest])
    np.testing.assert_array_equal(
        dropped.num_steps[probe], under.num_steps[probe] + over.num_steps[probe]
    )
    # A resumed run follows the stored decision rather than probing again.
    with np.load(path) as data:
        stored = dict(data)
    assert stored["kept_sources"].tolist() == [True, False]
    stored["done"][rest] = False
    np.savez(path, **stored)
    resumed = two_routes(3, checkpoint=path)
    np.testing.assert_allclose(resumed.lengths, dropped.lengths, rtol=1e-6)
    stored["kept_sources"] = np.array([True, True])
    np.savez(path, **stored)
    resumed = two_routes(3, checkpoint=path)
    np.testing.assert_allclose(resumed.lengths, over.lengths, rtol=1e-6)


def test_bad_two_routes():
    # Depending on its version, jaxtyping checks the annotation first.
    with pytest.raises(TypeError, match="graph start|parameter 'graph'"):
        lg.TwoRoutes(lg.StraightStart())
    with pytest.raises(ValueError, match="separation"):
        lg.TwoRoutes(separation=0.0)
    with pytest.raises(ValueError, match="slack"):
        lg.TwoRoutes(slack=-0.1)
    with pytest.raises(ValueError, match="probe_pairs"):
        lg.TwoRoutes(probe_pairs=0)
    with pytest.raises(ValueError, match="min_shorter"):
        lg.TwoRoutes(min_shorter=0)


def test_probed_start_is_solved_beyond_the_probe_only_where_it_paid(tmp_path):
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], default_float())
    pairs = np.tile([[0, 1]], (5, 1))  # the probe takes pairs 0 and 4
    options = dict(
        discretisation=lg.Discretisation(num_segments=8, max_steps=300),
        solver=lg.OptaxSolver(),
        progress=False,
        pairs=pairs,
    )
    # The straight start slides under the bump; the path over it is shorter.
    under = lg.pairwise_geodesics(metric, points, init=lg.StraightStart(), **options)
    over = lg.pairwise_geodesics(metric, points, init=TwoWaysRound(2.9), **options)
    assert over.lengths[0] < 0.97 * under.lengths[0]

    def probed(*min_shorter, **more):
        starts = [lg.Probed(TwoWaysRound(2.9), 2, m) for m in min_shorter]
        init = lg.ShortestOf(lg.StraightStart(), *starts)
        return lg.pairwise_geodesics(metric, points, init=init, **options, **more)

    # Shorter on both probe pairs: every pair solves it.
    kept = probed(2)
    np.testing.assert_allclose(kept.lengths, over.lengths, rtol=1e-6)
    steps = under.num_steps + over.num_steps
    np.testing.assert_array_equal(kept.num_steps, steps)
    # Asked to be shorter on three, it is solved on the probe's pairs only.
    path = tmp_path / "run.npz"
    dropped = probed(3, checkpoint=path)
    probe, rest = np.array([0, 4]), np.array([1, 2, 3])
    np.testing.assert_allclose(dropped.lengths[probe], over.lengths[probe], rtol=1e-6)
    np.testing.assert_allclose(dropped.lengths[rest], under.lengths[rest], rtol=1e-6)
    np.testing.assert_array_equal(dropped.num_steps[rest], under.num_steps[rest])
    with np.load(path) as data:
        assert data["kept_sources"].tolist() == [True, False]
    # Two probed starts that find the same shorter geodesic: the first is
    # kept, the second, no shorter than the first, is not.
    twice = probed(2, 2, checkpoint=tmp_path / "twice.npz")
    np.testing.assert_allclose(twice.lengths, over.lengths, rtol=1e-6)
    np.testing.assert_array_equal(twice.num_steps[rest], steps[rest])
    with np.load(tmp_path / "twice.npz") as data:
        assert data["kept_sources"].tolist() == [True, True, False]


def test_probe_keeps_probed_sources_in_order_against_those_kept():
    def source(ids, rows, cols, best):
        return None

    probed = lg._probe.ProbedSource(source, probe_pairs=4, min_shorter=2)
    lengths = np.array(
        [
            [1.0, 1.0, 1.0, 1.0],  # not probed: always kept
            [0.9, 0.9, 1.0, np.nan],  # shorter on two pairs: kept
            [0.9, 0.9, 0.95, 1.0],  # shorter than the kept ones on one only
            [0.8, 0.8, 1.0, 1.0],  # shorter than both kept on two
        ]
    )
    keep = lg._probe.kept_sources([source, probed, probed, probed], lengths)
    assert keep.tolist() == [True, True, False, True]
    # All probed: the first is the one the others must beat.
    keep = lg._probe.kept_sources([probed, probed], lengths[[2, 0]])
    assert keep.tolist() == [True, False]


def test_bad_probed():
    with pytest.raises(TypeError, match="start such as|parameter 'start'"):
        lg.Probed("straight")
    with pytest.raises(ValueError, match="probe_pairs"):
        lg.Probed(lg.StraightStart(), probe_pairs=0)
    with pytest.raises(ValueError, match="min_shorter"):
        lg.Probed(lg.StraightStart(), min_shorter=0)


def test_constant_speed_start_leaves_the_local_minimum_at_a_relu_fold():
    """From the straight line, Levenberg–Marquardt stops at a curve that
    crosses the fold at the wrong time (over 1% above Snell's law); started
    again from that curve at constant speed, it comes within 0.5% of Snell's
    length, and within 0.15% after a second restart. On a
    flat metric the straight geodesic already runs at even speed and is not
    solved again."""
    metric = lg.PullbackMetric(Fold(), latent_dim=2)
    points = np.array([[-1.0, -0.7], [1.0, 0.9]], default_float())
    truth = snell_length(points[0], points[1])
    options = dict(
        solver=lg.LevenbergMarquardt(),
        discretisation=lg.Discretisation(10, 64),
        progress=False,
    )
    plain = lg.pairwise_geodesics(metric, points, init=lg.StraightStart(), **options)
    init = lg.ShortestOf(lg.StraightStart(), lg.ConstantSpeedStart())
    restarted = lg.pairwise_geodesics(metric, points, init=init, **options)
    twice = lg.ShortestOf(init, lg.ConstantSpeedStart())
    restarted_twice = lg.pairwise_geodesics(metric, points, init=twice, **options)
    assert float(plain.lengths[0]) > 1.01 * truth
    assert truth <= float(restarted.lengths[0]) <= 1.005 * truth
    assert truth <= float(restarted_twice.lengths[0]) <= 1.0015 * truth
    assert int(restarted.num_steps[0]) > int(plain.num_steps[0])
    flat = lg.pairwise_geodesics(LINEAR, points, init=lg.StraightStart(), **options)
    again = lg.pairwise_geodesics(LINEAR, points, init=init, **options)
    np.testing.assert_allclose(again.lengths, flat.lengths, rtol=1e-6)
    np.testing.assert_array_equal(again.num_steps, flat.num_steps)


def test_constant_speed_start_needs_an_earlier_start():
    points = _points(3)
    with pytest.raises(ValueError, match="earlier starts"):
        lg.pairwise_distances(
            LINEAR, points, init=lg.ConstantSpeedStart(), progress=False
        )
    with pytest.raises(ValueError, match="first start"):
        lg.ShortestOf(lg.Probed(lg.ConstantSpeedStart()), lg.StraightStart())
    with pytest.raises(ValueError, match="evenness"):
        lg.ConstantSpeedStart(evenness=-1.0)


def test_screened_start_is_solved_on_only_where_its_brief_solve_came_close():
    """The straight line between the `Obstacles` points, screened against the
    geodesic over the bump: a brief solve of the straight line is far longer
    (the line crosses the bump), so with no slack the full solve is skipped;
    with a generous slack it runs, and slides under the bump to a geodesic
    longer than the one over it, which is kept either way."""
    metric = Obstacles()
    points = np.array([[-1.5, -0.1], [1.5, -0.1]], default_float())
    discretisation = lg.Discretisation(num_segments=8, max_steps=300)
    options = dict(discretisation=discretisation, progress=False)
    over = lg.pairwise_geodesics(
        metric, points, init=TwoWaysRound(2.9), solver=lg.OptaxSolver(), **options
    )
    under = lg.pairwise_geodesics(
        metric, points, init=lg.StraightStart(), solver=lg.OptaxSolver(), **options
    )
    brief_settings = dataclasses.replace(discretisation, max_steps=5)
    brief = lg.geodesic(
        metric,
        points[0],
        points[1],
        solver=lg.OptaxSolver(),
        discretisation=brief_settings,
        throw=False,
    )
    assert float(brief.length) > 1.2 * float(over.lengths[0])
    assert float(under.lengths[0]) > 1.03 * float(over.lengths[0])

    def screened(within, **more):
        screen = lg.Screened(lg.StraightStart(), 5, within, lg.OptaxSolver())
        init = lg.ShortestOf(TwoWaysRound(2.9), screen)
        return lg.pairwise_geodesics(
            metric, points, init=init, solver=lg.OptaxSolver(), **options, **more
        )

    skipped = screened(0.1)
    np.testing.assert_allclose(skipped.lengths, over.lengths, rtol=1e-6)
    assert skipped.num_steps[0] == over.num_steps[0] + 5
    # The same in refilled lockstep slots, against the route solved there.
    lockstep = screened(0.1, vmap_size=None)
    alone = lg.pairwise_geodesics(
        metric,
        points,
        init=TwoWaysRound(2.9),
        solver=lg.OptaxSolver(),
        vmap_size=None,
        **options,
    )
    np.testing.assert_allclose(lockstep.lengths, alone.lengths, rtol=1e-6)
    assert lockstep.num_steps[0] == alone.num_steps[0] + 5
    solved = screened(1.0)
    np.testing.assert_allclose(solved.lengths, over.lengths, rtol=1e-6)
    # The full solve went on from the brief one's curve, to the geodesic
    # under the bump: more steps than the brief solve alone.
    assert solved.num_steps[0] > over.num_steps[0] + 5
    # Probed and screened compose: the screened straight line never beats
    # the route over the bump, so the probe drops it.
    init = lg.ShortestOf(
        TwoWaysRound(2.9),
        lg.Probed(lg.Screened(lg.StraightStart(), 5, 1.0, lg.OptaxSolver()), 2, 1),
    )
    pairs = np.tile([[0, 1]], (3, 1))
    probed = lg.pairwise_geodesics(
        metric, points, init=init, solver=lg.OptaxSolver(), pairs=pairs, **options
    )
    np.testing.assert_allclose(probed.lengths, over.lengths[0], rtol=1e-6)
    # The probe's pairs paid the screened start's full solve, as `solved` did
    # (compiled in another program, its stopping test may fall a step either
    # side on another CPU).
    np.testing.assert_allclose(
        probed.num_steps[np.array([0, 2])], solved.num_steps[0], atol=1
    )
    assert np.all(probed.num_steps[np.array([0, 2])] > over.num_steps[0] + 5)
    assert probed.num_steps[1] == over.num_steps[0]  # not in the probe


def test_screened_start_needs_an_earlier_start():
    points = _points(3)
    with pytest.raises(ValueError, match="earlier starts"):
        lg.pairwise_distances(
            LINEAR, points, init=lg.Screened(lg.StraightStart()), progress=False
        )
    with pytest.raises(ValueError, match="first start"):
        lg.ShortestOf(lg.Probed(lg.Screened(lg.StraightStart())), lg.StraightStart())
    with pytest.raises(TypeError, match="start such as|parameter 'start'"):
        lg.Screened("straight")
    with pytest.raises(TypeError, match="curve solver|parameter 'solver'"):
        lg.Screened(lg.StraightStart(), solver="lm")
    with pytest.raises(ValueError, match="steps"):
        lg.Screened(lg.StraightStart(), steps=0)
    with pytest.raises(ValueError, match="within"):
        lg.Screened(lg.StraightStart(), within=-0.1)
