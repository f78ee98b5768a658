"""Curve objectives (`_objective.py`): `PullbackEnergy`, `ExactDecorrelatedEnergy`,
`MonteCarloDecorrelatedEnergy`, `MetricEnergy`, against closed forms (the sphere
chart, a two-member affine ensemble), a brute-force expectation over member
pairs, and the law of large numbers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import ConformalSphere, InverseStereographic, float64, small_mlp
from latentgeo._objective import (
    ExactDecorrelatedEnergy,
    MetricEnergy,
    MonteCarloDecorrelatedEnergy,
    PullbackEnergy,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
STEP = jnp.array(0)


@eqx.filter_jit
def evaluate(objective, params, step=STEP):
    """`objective(params, step)`, compiled (eager dispatch is slow on a busy CPU)."""
    return objective(params, step)


@eqx.filter_jit
def evaluate_steps(objective, params, steps):
    """`objective(params, step)` for each of `steps`."""
    return jax.vmap(lambda step: objective(params, step))(steps)


class Affine(eqx.Module):
    """$f(z) = Az + c$."""

    matrix: jax.Array
    offset: jax.Array

    def __call__(self, z):
        return self.matrix @ z + self.offset


def affine_pair(key):
    """A two-member affine ensemble, its members' matrices and offsets."""
    keys = jax.random.split(key, 4)
    matrices = [jax.random.normal(k, (3, 2)) for k in keys[:2]]
    offsets = [jax.random.normal(k, (3,)) for k in keys[2:]]
    members = [Affine(a, c) for a, c in zip(matrices, offsets)]
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.from_members(members))
    return metric, np.asarray(matrices, np.float64), np.asarray(offsets, np.float64)


def straight_line_decorrelated(matrices, offsets, z0, z1, num_points):
    r"""The exact decorrelated energy of the straight line through `num_points`
    uniform points, for two affine members (closed form).

    The mean $\mu(z) = \bar A z + \bar c$ moves by $\bar A \Delta / T$ per step,
    so its part is $|\bar A \Delta|^2$. The variance of two members is
    $v = |f_1 - f_2|^2 / 4 = |u + t w|^2 / 4$ along the line, with
    $u = (A_1 - A_2) z_0 + c_1 - c_2$, $w = (A_1 - A_2)\Delta$; each inner point
    touches two segments, each end one: $T (2 \sum_i v_i - v_0 - v_T)$, with
    $\sum_i t_i = (T + 1) / 2$ and $\sum_i t_i^2 = (T + 1)(2T + 1) / (6T)$.
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    delta = z1 - z0
    scale = num_points - 1
    mean_part = np.sum((matrices.mean(0) @ delta) ** 2)
    u = (matrices[0] - matrices[1]) @ z0 + offsets[0] - offsets[1]
    w = (matrices[0] - matrices[1]) @ delta
    sum_t = (scale + 1) / 2
    sum_t2 = (scale + 1) * (2 * scale + 1) / (6 * scale)
    sum_v = (num_points * u @ u + 2 * sum_t * u @ w + sum_t2 * w @ w) / 4
    ends = (u @ u + (u + w) @ (u + w)) / 4
    return mean_part + scale * (2 * sum_v - ends)


def brute_force_decorrelated(ensemble, points):
    r"""$T \sum_i \frac{1}{K^2} \sum_{k, k'} |f_k(z_{i+1}) - f_{k'}(z_i)|^2$: the
    expectation over independent members at neighbouring points, by a double
    loop over member pairs in NumPy."""
    outputs = np.asarray(jax.vmap(ensemble)(points), np.float64)
    outputs = outputs.reshape(points.shape[0], ensemble.num_members, -1)
    scale = points.shape[0] - 1
    total = 0.0
    for i in range(scale):
        for k in range(ensemble.num_members):
            for j in range(ensemble.num_members):
                total += np.sum((outputs[i + 1, k] - outputs[i, j]) ** 2)
    return scale * total / ensemble.num_members**2


def bent(key, num_segments=4, scale=0.3):
    return scale * jax.random.normal(key, (num_segments + 1, 2))


def test_points_are_the_spline_and_linear_in_the_parameters(getkey):
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 9)
    objective = lg.ExpectedEnergy().objective(SPHERE, z0, z1, times)
    params = bent(getkey())
    points = objective.points(params)
    np.testing.assert_array_equal(points, lg.CubicSpline(z0, z1, params)(times))
    np.testing.assert_array_equal(points[0], z0)
    np.testing.assert_array_equal(points[-1], z1)
    # `design` is the Jacobian of the points in one latent coordinate's
    # parameters (by autodiff of the spline), zero at both ends.
    design = objective.design(params.shape[0] - 1)
    jacobian = jax.jacfwd(lambda p: objective.points(p))(params)  # (T + 1, d, n + 1, d)
    for axis in range(2):
        np.testing.assert_allclose(
            jacobian[:, axis, :, axis], design, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(jacobian[:, axis, :, 1 - axis], 0.0, atol=1e-7)
    np.testing.assert_allclose(design[jnp.array([0, -1])], 0.0, atol=1e-6)
    line = z0[None] + times[:, None] * (z1 - z0)[None]
    np.testing.assert_allclose(points, line + design @ params, rtol=1e-5, atol=1e-6)


def test_pullback_energy_is_the_metric_energy_from_its_features(getkey):
    metric = lg.PullbackMetric(small_mlp(getkey()), latent_dim=2)
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 12)
    objective = PullbackEnergy(metric, z0, z1, times)
    params = bent(getkey())
    points = objective.points(params)
    value = evaluate(objective, params)
    np.testing.assert_allclose(value, metric.curve_energy(points), rtol=1e-6)
    # The features are the embedding; all of them are step features.
    assert objective.num_step_features == 5
    features = jax.vmap(objective.features)(points)
    np.testing.assert_array_equal(features, jax.vmap(metric.embed)(points))
    steps = jnp.sum(jnp.diff(features, axis=0) ** 2)
    np.testing.assert_allclose(value, (times.size - 1) * steps, rtol=1e-6)


def test_exact_decorrelated_energy_is_the_expectation_over_member_pairs(getkey):
    with float64():
        ensemble = lg.EnsembleDecoder.init(small_mlp, 3, key=getkey())
        metric = lg.ExpectedMetric(ensemble)
        z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
        times = jnp.linspace(0.0, 1.0, 10)
        objective = ExactDecorrelatedEnergy(metric, z0, z1, times)
        params = bent(getkey())
        points = objective.points(params)
        expected = brute_force_decorrelated(ensemble, points)
        np.testing.assert_allclose(evaluate(objective, params), expected, rtol=1e-12)
        # Features (mean, deviations), weights (segments touching each point)
        # and the split between them reproduce the same number.
        assert objective.num_step_features == 5
        features = jax.vmap(objective.features)(points)
        mean, spread = features[:, :5], features[:, 5:]
        np.testing.assert_allclose(
            mean, jax.vmap(ensemble.mean)(points), rtol=1e-12, atol=1e-14
        )
        np.testing.assert_allclose(
            jnp.sum(spread**2, axis=1),
            jnp.sum(jax.vmap(ensemble.variance)(points), axis=1),
            rtol=1e-12,
        )
        weights = objective.weights()
        np.testing.assert_array_equal(weights, [1.0] + [2.0] * 8 + [1.0])
        from_features = (times.size - 1) * (
            jnp.sum(jnp.diff(mean, axis=0) ** 2)
            + jnp.sum(weights * jnp.sum(spread**2, axis=1))
        )
        np.testing.assert_allclose(from_features, expected, rtol=1e-12)


def test_exact_decorrelated_energy_of_an_affine_pair_is_the_closed_form(getkey):
    with float64():
        metric, matrices, offsets = affine_pair(getkey())
        z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
        for num_points in (2, 7, 33):
            times = jnp.linspace(0.0, 1.0, num_points)
            objective = ExactDecorrelatedEnergy(metric, z0, z1, times)
            value = evaluate(objective, jnp.zeros((5, 2)))
            expected = straight_line_decorrelated(matrices, offsets, z0, z1, num_points)
            np.testing.assert_allclose(value, expected, rtol=1e-12)
        # The variance terms do not vanish as the curve is refined: this is an
        # objective, not a squared length (which would converge).
        mean_part = np.sum((matrices.mean(0) @ np.asarray(z1 - z0)) ** 2)
        assert float(value) > 10 * mean_part


def test_one_member_decorrelated_energies_are_the_pullback_energy(getkey):
    """With a single member there is no variance and nothing to sample."""
    ensemble = lg.EnsembleDecoder.init(small_mlp, 1, key=getkey())
    metric = lg.ExpectedMetric(ensemble)
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 12)
    params = bent(getkey())
    pullback = evaluate(PullbackEnergy(metric, z0, z1, times), params)
    exact = evaluate(ExactDecorrelatedEnergy(metric, z0, z1, times), params)
    sampled = MonteCarloDecorrelatedEnergy(metric, z0, z1, times, getkey())
    np.testing.assert_allclose(exact, pullback, rtol=1e-6)
    for step in range(3):
        np.testing.assert_allclose(
            evaluate(sampled, params, jnp.array(step)), pullback, rtol=1e-6
        )


def test_monte_carlo_energy_averages_to_the_exact_energy(getkey):
    """Law of large numbers: the mean over many steps (fresh members each) is
    within five standard errors of the exact expectation; the exact one is the
    closed form on the straight line of an affine pair."""
    metric, matrices, offsets = affine_pair(getkey())
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 9)
    sampled = MonteCarloDecorrelatedEnergy(metric, z0, z1, times, getkey())
    exact = ExactDecorrelatedEnergy(metric, z0, z1, times)
    steps = jnp.arange(4000)
    for params in (jnp.zeros((5, 2)), bent(getkey(), scale=0.5)):
        samples = np.asarray(
            evaluate_steps(sampled, params, steps),
            np.float64,
        )
        assert np.std(samples) > 0  # the estimate is random
        standard_error = np.std(samples) / np.sqrt(samples.size)
        truth = float(evaluate(exact, params))
        assert abs(np.mean(samples) - truth) < 5 * standard_error
    closed = straight_line_decorrelated(matrices, offsets, z0, z1, 9)
    np.testing.assert_allclose(evaluate(exact, jnp.zeros((5, 2))), closed, rtol=1e-5)


def test_monte_carlo_energy_is_fixed_by_key_and_step(getkey):
    metric, _, _ = affine_pair(getkey())
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 9)
    key = getkey()
    sampled = MonteCarloDecorrelatedEnergy(metric, z0, z1, times, key)
    params = bent(getkey())
    values = [float(evaluate(sampled, params, jnp.array(s))) for s in range(8)]
    assert len(set(values)) > 1  # a fresh draw per step
    again = MonteCarloDecorrelatedEnergy(metric, z0, z1, times, key)
    for s in range(8):
        assert float(evaluate(again, params, jnp.array(s))) == values[s]
    # Step s draws with `fold_in(key, s)`: one random member per point.
    points = sampled.points(params)
    np.testing.assert_allclose(
        values[3],
        metric.decorrelated_energy(points, jax.random.fold_in(key, 3)),
        rtol=1e-6,
    )


def test_deterministic_objectives_ignore_the_step(getkey):
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, 9)
    ensemble = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 2, key=getkey()))
    params = bent(getkey())
    for objective in (
        PullbackEnergy(SPHERE, z0, z1, times),
        ExactDecorrelatedEnergy(ensemble, z0, z1, times),
        MetricEnergy(ConformalSphere(), z0, z1, times),
    ):
        first = evaluate(objective, params, jnp.array(0))
        assert float(evaluate(objective, params, jnp.array(17))) == float(first)


def test_metric_and_pullback_energies_of_the_sphere_meet_the_closed_form():
    r"""The chart's straight line through the south pole, $z(t) = (s(1 - 2t), 0)$,
    is a meridian at non-constant speed; its energy is
    $\int_0^1 16 s^2 / (1 + s^2 (1 - 2t)^2)^2 dt = 8s (s / (1 + s^2) + \arctan s)$.
    The tensor-only metric's midpoint quadrature (`MetricEnergy`) and the chart's
    finite differences (`PullbackEnergy`) both converge to it at second order."""
    s = 0.8
    z0, z1 = jnp.array([s, 0.0]), jnp.array([-s, 0.0])
    closed = 8 * s * (s / (1 + s**2) + np.arctan(s))
    errors = {}
    for num_points in (33, 129):
        times = jnp.linspace(0.0, 1.0, num_points)
        straight = jnp.zeros((5, 2))
        quadrature = evaluate(MetricEnergy(ConformalSphere(), z0, z1, times), straight)
        differences = evaluate(PullbackEnergy(SPHERE, z0, z1, times), straight)
        errors[num_points] = (
            abs(float(quadrature) / closed - 1),
            abs(float(differences) / closed - 1),
        )
    for coarse, fine in zip(errors[33], errors[129]):
        assert fine < 1e-4
        assert fine < coarse / 8  # second order: 16 times smaller, with slack
