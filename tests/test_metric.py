import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    default_float,
    float64,
    small_mlp,
)


@pytest.fixture
def ensemble(getkey):
    return lg.EnsembleDecoder.init(small_mlp, 4, key=getkey())


def test_linear_decoder_tensor_is_a_transpose_a():
    matrix = jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    np.testing.assert_allclose(metric.tensor(jnp.array([0.3, 4.0])), matrix.T @ matrix)
    u, v = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.5])
    np.testing.assert_allclose(
        metric.inner(jnp.zeros(2), u, v), u @ matrix.T @ matrix @ v
    )
    np.testing.assert_allclose(
        metric.norm(jnp.zeros(2), u), jnp.linalg.norm(matrix @ u)
    )


def test_expected_tensor_matches_jacfwd(ensemble):
    z = jnp.array([0.4, -0.3])
    jacobians = [jax.jacfwd(ensemble.member(k))(z) for k in range(4)]
    expected = sum(j.T @ j for j in jacobians) / 4
    np.testing.assert_allclose(
        lg.ExpectedMetric(ensemble).tensor(z), expected, rtol=1e-5, atol=1e-7
    )


def test_identical_members_equal_pullback_of_one(getkey):
    member = small_mlp(getkey())
    expected_metric = lg.ExpectedMetric(lg.EnsembleDecoder.from_members([member] * 3))
    pullback = lg.PullbackMetric(member)
    z = jnp.array([0.2, 0.1])
    points = jnp.stack([jnp.linspace(-1, 1, 9), jnp.linspace(0, 2, 9) ** 2], axis=1)
    np.testing.assert_allclose(expected_metric.tensor(z), pullback.tensor(z), rtol=1e-5)
    for method in ("curve_energy", "curve_length"):
        np.testing.assert_allclose(
            getattr(expected_metric, method)(points),
            getattr(pullback, method)(points),
            rtol=1e-5,
        )


def test_expected_energy_matches_definition(ensemble):
    points = jnp.array([[0.0, 0.0], [0.3, 0.2], [0.5, 0.7], [1.0, 1.0]])
    outputs = np.stack([np.asarray(ensemble(p), np.float64) for p in points])  # T+1,K,D
    steps = np.diff(outputs, axis=0)
    expected_energy = 3 * np.mean(np.sum(steps**2, axis=-1), axis=1).sum()
    expected_length = np.sqrt(np.mean(np.sum(steps**2, axis=-1), axis=1)).sum()
    metric = lg.ExpectedMetric(ensemble)
    np.testing.assert_allclose(metric.curve_energy(points), expected_energy, rtol=1e-5)
    np.testing.assert_allclose(metric.curve_length(points), expected_length, rtol=1e-5)


def test_image_outputs_use_flattened_geometry(getkey):
    def make(key):
        return eqx.nn.Sequential(
            [small_mlp(key, out_size=16), eqx.nn.Lambda(lambda x: x.reshape(1, 4, 4))]
        )

    ensemble = lg.EnsembleDecoder.init(make, 3, key=getkey(), latent_dim=2)
    assert ensemble.out_shape == (1, 4, 4)
    z = jnp.array([0.1, 0.2])
    jacobians = [jax.jacfwd(ensemble.member(k))(z).reshape(16, 2) for k in range(3)]
    np.testing.assert_allclose(
        lg.ExpectedMetric(ensemble).tensor(z),
        sum(j.T @ j for j in jacobians) / 3,
        rtol=1e-5,
        atol=1e-7,
    )


def test_decorrelated_closed_form_equals_monte_carlo_mean(ensemble):
    metric = lg.ExpectedMetric(ensemble)
    points = jnp.stack([jnp.linspace(-1, 1, 6), jnp.sin(jnp.linspace(0, 3, 6))], axis=1)
    exact = metric.decorrelated_energy(points)
    keys = jax.random.split(jax.random.key(1), 4000)
    samples = jax.vmap(lambda k: metric.decorrelated_energy(points, k))(keys)
    standard_error = jnp.std(samples) / jnp.sqrt(samples.shape[0])
    assert abs(float(jnp.mean(samples) - exact)) < 4 * float(standard_error)
    # The variance terms make it exceed the expected energy.
    assert float(exact) > float(metric.curve_energy(points))


def test_curve_length_is_reparametrisation_invariant(ensemble):
    metric = lg.ExpectedMetric(ensemble)

    def curve(t):
        return jnp.stack([2 * t - 1, jnp.sin(3 * t)], axis=-1)

    t = jnp.linspace(0, 1, 2001)
    uniform = metric.curve_length(curve(t))
    warped = metric.curve_length(curve(t**2))
    np.testing.assert_allclose(warped, uniform, rtol=1e-4)
    # Energy is not invariant: it is minimal at constant speed.
    assert float(metric.curve_energy(curve(t**2))) > float(
        metric.curve_energy(curve(t))
    )


def test_edge_lengths_of_many_edges_match_member_outputs(ensemble):
    # More edges than one chunk of the gather (and not a multiple of it):
    # every edge's length is sqrt(mean_k |f_k(b) - f_k(a)|^2).
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.normal(size=(300, 2)), default_float())
    edges = rng.integers(0, 300, size=(1000, 2)).astype(np.int32)
    lengths = lg.ExpectedMetric(ensemble).edge_lengths(points, jnp.asarray(edges))
    outputs = np.stack(
        [np.asarray(jax.vmap(ensemble.member(k))(points)) for k in range(4)]
    )
    steps = outputs[:, edges[:, 1]] - outputs[:, edges[:, 0]]
    truth = np.sqrt(np.mean(np.sum(steps**2, axis=-1), axis=0))
    np.testing.assert_allclose(lengths, truth, rtol=1e-5, atol=1e-6)
    assert np.all(lengths[edges[:, 0] == edges[:, 1]] == 0)


def test_edge_lengths_of_a_linear_decoder_are_exact():
    matrix = jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    rng = np.random.default_rng(1)
    points = rng.normal(size=(50, 2)).astype(default_float())
    edges = rng.integers(0, 50, size=(600, 2)).astype(np.int32)
    lengths = eqx.filter_jit(metric.edge_lengths)(
        jnp.asarray(points), jnp.asarray(edges)
    )
    steps = points[edges[:, 1]] - points[edges[:, 0]]
    truth = np.linalg.norm(steps @ np.asarray(matrix).T, axis=-1)
    np.testing.assert_allclose(lengths, truth, rtol=1e-5, atol=1e-5)


def test_tensor_metric_quadrature_matches_pullback_sphere():
    points = jnp.stack([jnp.linspace(-0.5, 1.5, 401), jnp.linspace(0.2, -0.3, 401)], 1)
    chart = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
    conformal = ConformalSphere()
    np.testing.assert_allclose(
        conformal.tensor(points[3]), chart.tensor(points[3]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        conformal.curve_length(points), chart.curve_length(points), rtol=1e-5
    )
    np.testing.assert_allclose(
        conformal.curve_energy(points), chart.curve_energy(points), rtol=1e-4
    )


def test_norm_of_zero_is_zero_with_finite_gradient(ensemble):
    metric = lg.ExpectedMetric(ensemble)
    z = jnp.array([0.1, 0.1])
    assert float(metric.norm(z, jnp.zeros(2))) == 0.0
    gradient = jax.grad(metric.norm, argnums=1)(z, jnp.zeros(2))
    assert bool(jnp.all(jnp.isfinite(gradient)))
    constant = jnp.zeros((5, 2))
    assert float(metric.curve_length(constant)) == 0.0
    assert bool(jnp.all(jnp.isfinite(jax.grad(metric.curve_length)(constant))))


def test_float64(getkey):
    with float64():
        matrix = jnp.array([[1.0, 2.0], [0.5, -1.0]], jnp.float64)
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        points = jnp.stack([jnp.linspace(0, 1, 3), jnp.zeros(3)], axis=1)
        length = metric.curve_length(points)
        assert length.dtype == jnp.float64
        np.testing.assert_allclose(length, np.hypot(1.0, 0.5), rtol=1e-14)


def test_errors(ensemble):
    metric = lg.ExpectedMetric(ensemble)
    with pytest.raises(ValueError, match=r"`z` has shape \(3,\)"):
        metric.tensor(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"`points` has shape \(4, 3\)"):
        metric.curve_energy(jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="T >= 1"):
        metric.curve_length(jnp.zeros((1, 2)))
    with pytest.raises(TypeError, match="EnsembleDecoder"):
        lg.ExpectedMetric(ensemble.member(0))
    with pytest.raises(TypeError, match="ExpectedMetric"):
        lg.PullbackMetric(ensemble)
