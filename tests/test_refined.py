import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import JUMP, Fold, InverseStereographic, default_float, snell_length

FOLD = lg.PullbackMetric(Fold(), latent_dim=2)
SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
PROBED_ON_TWO = lg.Refined(lg.TwoRoutes(), probe_pairs=2, min_shorter=1)


def fold_polyline_length(points: np.ndarray) -> float:
    """The exact length of the polyline through `points` `(m, 2)` under the
    fold's metric (identity below z2 = 0, stretched by 1 + JUMP^2 along z2
    above), each segment split where it crosses the fold: independent of the
    library's quadrature."""
    points = points.astype(np.float64)
    total = 0.0
    for p, q in zip(points[:-1], points[1:]):
        pieces = [(p, q)]
        if p[1] * q[1] < 0:
            crossing = p + (q - p) * (p[1] / (p[1] - q[1]))
            pieces = [(p, crossing), (crossing, q)]
        for a, b in pieces:
            dx, dy = b - a
            stretch = 1 + JUMP**2 if (a[1] + b[1]) > 0 else 1.0
            total += np.sqrt(dx**2 + stretch * dy**2)
    return total


def curve_excess(result, pairs, points) -> np.ndarray:
    """Each curve's exact length over the Snell's-law geodesic's, minus one."""
    t = jnp.linspace(0, 1, 4097)
    excess = []
    for index, (i, j) in enumerate(pairs):
        curve = jax.tree.map(lambda x: x[index], result.curves)
        length = fold_polyline_length(np.asarray(curve(t)))
        truth = snell_length(points[i].astype(np.float64), points[j].astype(np.float64))
        excess.append(length / truth - 1)
    return np.asarray(excess)


def test_upsampled_splines_are_the_same_curves(getkey):
    z0 = jax.random.normal(getkey(), (3, 2), default_float())
    z1 = jax.random.normal(getkey(), (3, 2), default_float())
    params = jax.random.normal(getkey(), (3, 9, 2), default_float())
    t = jax.random.uniform(getkey(), (50,), default_float())
    finer = lg._refined.upsampled(z0, z1, params, 16)
    assert finer.shape == (3, 17, 2)
    for k in range(3):
        coarse_curve = lg.CubicSpline(z0[k], z1[k], params[k])
        fine_curve = lg.CubicSpline(z0[k], z1[k], finer[k])
        np.testing.assert_allclose(fine_curve(t), coarse_curve(t), atol=2e-5)
        np.testing.assert_allclose(
            fine_curve.derivative(t), coarse_curve.derivative(t), atol=2e-4
        )


def test_refinement_brings_a_relu_fold_geodesics_closer_to_snell():
    points = np.array([[-1.0, -0.8], [0.9, 0.7], [-0.3, -0.5]], default_float())
    pairs = np.array([[0, 1], [2, 1]])
    options = dict(pairs=pairs, progress=False)
    # the default's search, on 32 segments
    search = lg.ShortestOf(lg.TwoRoutes(), lg.Probed(lg.ConstantSpeedStart()))
    coarse = lg.pairwise_geodesics(FOLD, points, init=search, **options)
    # The default refines this run's pairs: it is its own probe.
    refined = lg.pairwise_geodesics(FOLD, points, **options)
    assert coarse.curves.num_segments == 32 and refined.curves.num_segments == 64
    before = curve_excess(coarse, pairs, points)
    after = curve_excess(refined, pairs, points)
    assert np.all(before > 1e-4)  # 32 segments round the kink off
    assert np.all(after >= -1e-7)  # a curve is never shorter than the geodesic
    assert np.all(after < 0.7 * before)
    assert np.all(refined.pair_converged)


def test_probe_drops_the_refinement_on_a_smooth_metric(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.6, 0.6, size=(3, 2)).astype(default_float())
    path = tmp_path / "run.npz"
    result = lg.pairwise_geodesics(
        SPHERE,
        points,
        init=PROBED_ON_TWO,
        checkpoint=path,
        progress=False,
    )
    with np.load(path) as stored:
        assert stored["kept_sources"].tolist()[-1] is False
    # The unrefined curves come back exactly on the refinement's segments.
    assert result.curves.num_segments == 64
    z = points.astype(np.float64)
    squared = np.sum(z**2, axis=1, keepdims=True)
    sphere = np.concatenate([2 * z, squared - 1], axis=1) / (squared + 1)
    great_circle = np.arccos(np.clip(sphere @ sphere.T, -1.0, 1.0))
    np.testing.assert_allclose(result.distances, great_circle, rtol=1e-3, atol=1e-6)


def test_refined_wraps_the_whole_start():
    points = np.zeros((3, 2), default_float()) + np.arange(3)[:, None]
    nested = lg.ShortestOf(lg.Refined(lg.TwoRoutes()), lg.StraightStart())
    with pytest.raises(TypeError, match="whole start"):
        lg.pairwise_geodesics(FOLD, points, init=nested, progress=False)
    with pytest.raises(TypeError, match="not another"):
        lg.Refined(lg.Refined(lg.TwoRoutes()))
    with pytest.raises(TypeError, match="Discretisation"):
        lg.Refined(lg.TwoRoutes(), discretisation=64)
    with pytest.raises(TypeError, match="curve solver|parameter 'solver'"):
        lg.Refined(lg.TwoRoutes(), solver="lm")
    with pytest.raises(ValueError, match="probe_pairs"):
        lg.Refined(lg.TwoRoutes(), probe_pairs=0)
