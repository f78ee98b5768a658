import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import default_float

ZETA = 1e-3


class Linear(eqx.Module):
    matrix: jax.Array

    def __call__(self, z):
        return self.matrix @ z


def arc_data(noise=0.05, seed=0):
    """Two clusters on the unit circle (angles 0-70 and 110-180 degrees) with an
    empty gap at the top and the empty disc below; observations are a linear
    isometry of the latents plus Gaussian noise of std `noise`."""
    rng = np.random.default_rng(seed)
    angles = np.concatenate(
        [rng.uniform(0, np.deg2rad(70), 100), rng.uniform(np.deg2rad(110), np.pi, 100)]
    )
    latents = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    latents = (latents + 0.02 * rng.normal(size=latents.shape)).astype(default_float())
    mean = Linear(jnp.eye(3, 2))
    data = np.asarray(jax.vmap(mean)(jnp.asarray(latents)))
    data = (data + noise * rng.normal(size=data.shape)).astype(default_float())
    return mean, latents, data


def max_distance_to_data(curve, latents):
    distances = np.linalg.norm(curve[:, None, :] - latents[None, :, :], axis=-1)
    return float(np.max(np.min(distances, axis=1)))


@eqx.filter_jit
def geometry(metric, z, points):
    """Embedding, tensor and variance at `z` and the energy of `points`, in one
    compilation."""
    return (
        metric.embed(z),
        metric.tensor(z),
        metric.variance(z),
        metric.curve_energy(points),
    )


def negative_log_likelihood(precision, squared):
    return float(
        np.mean(0.5 * np.log(2 * np.pi / precision) + 0.5 * precision * squared)
    )


@pytest.fixture(scope="module")
def arc_metric():
    mean, latents, data = arc_data()
    metric = lg.RBFVarianceMetric.fit(
        mean, latents, data, key=jax.random.key(0), bandwidth_scale=2.0
    )
    return metric, latents


def test_variance_grows_far_from_data(arc_metric):
    metric, latents = arc_metric
    at_data = np.asarray(jax.vmap(metric.variance)(jnp.asarray(latents)))
    far = np.asarray(metric.variance(jnp.array([0.0, 10.0])))
    assert at_data.shape == (200, 3)
    # Far from every centre the precision is zeta alone.
    np.testing.assert_allclose(far, 1 / ZETA, rtol=1e-4)
    assert np.min(far) >= 100 * np.max(at_data)


def test_geodesic_between_clusters_follows_the_data(arc_metric):
    metric, latents = arc_metric
    z0, z1 = jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0])
    # From the chord a local solver can stay in a poor local minimum (length ~110,
    # the reason for graph initialisation); start from the circle through the gap.
    angles = jnp.linspace(0.0, jnp.pi, 50)
    arc = lg.CubicSpline.fit(jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1))
    result = lg.geodesic(metric, z0, z1, init=arc)
    times = jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS)
    line = z0[None] + times[:, None] * (z1 - z0)[None]
    curve_gap = max_distance_to_data(np.asarray(result.curve(times)), latents)
    line_gap = max_distance_to_data(np.asarray(line), latents)
    # The chord passes ~0.93 from the data; the arc's gap is ~0.34 wide at most.
    assert line_gap > 0.9
    assert curve_gap < 0.5
    assert float(result.length) < 0.2 * float(metric.curve_length(line))


def test_default_solver_leaves_the_chord_for_the_data(arc_metric):
    # From the straight line the RBF energy has a poor local minimum through the
    # empty disc (length ~110); the default solver's continued Gauss–Newton
    # attempt leaves it for the curve along the data.
    metric, latents = arc_metric
    z0, z1 = jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0])
    result = lg.geodesic(metric, z0, z1)
    times = jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS)
    line = z0[None] + times[:, None] * (z1 - z0)[None]
    assert max_distance_to_data(np.asarray(result.curve(times)), latents) < 0.5
    assert float(result.length) < 0.1 * float(metric.curve_length(line))


def test_pairwise_distances(arc_metric):
    metric, latents = arc_metric
    points = jnp.asarray(latents[[0, 50, 150]])
    # The sigma term makes the energy stiff: in float32 the default relative
    # decrement 1e-7 is below rounding, 1e-6 is not.
    result = lg.pairwise_geodesics(
        metric, points, solver=lg.LevenbergMarquardt(rtol=1e-6), progress=False
    )
    assert np.all(result.converged)
    distances = np.asarray(result.distances)
    np.testing.assert_array_equal(distances, distances.T)
    np.testing.assert_array_equal(np.diag(distances), 0.0)
    # Same cluster: close; across the gap: along the arc, far in the metric.
    assert 0 < 10 * distances[0, 1] < distances[0, 2]
    assert distances[0, 2] <= distances[0, 1] + distances[1, 2] + 1e-4


@pytest.mark.parametrize("x64", [False, True])
def test_linear_decoder_with_zero_weights_is_euclidean_pullback(x64, getkey):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        matrix = jax.random.normal(getkey(), (5, 2), dtype)
        ensemble = lg.EnsembleDecoder.from_members([Linear(matrix)], latent_dim=2)
        centers = jax.random.normal(getkey(), (4, 2), dtype)
        metric = lg.RBFVarianceMetric(
            ensemble.member(0), centers, jnp.ones(4, dtype), jnp.zeros((5, 4), dtype)
        )
        z = jnp.array([0.3, -0.7], dtype)
        points = jax.random.normal(getkey(), (7, 2), dtype)
        embedded, tensor, variance, energy = geometry(metric, z, points)
        assert embedded.dtype == tensor.dtype == dtype
        np.testing.assert_allclose(embedded[:5], matrix @ z, rtol=1e-6)
        np.testing.assert_allclose(embedded[5:], ZETA**-0.5, rtol=1e-6)
        np.testing.assert_allclose(variance, 1 / ZETA, rtol=1e-6)
        expected = np.asarray(matrix).T @ np.asarray(matrix)
        np.testing.assert_allclose(tensor, expected, rtol=1e-6, atol=1e-6)
        steps = np.diff(np.asarray(points), axis=0) @ np.asarray(matrix).T
        np.testing.assert_allclose(energy, 6 * np.sum(steps**2), rtol=1e-5)


def test_tensor_matches_closed_form(getkey):
    matrix = jax.random.normal(getkey(), (3, 2))
    centers = jax.random.normal(getkey(), (4, 2))
    bandwidths = jnp.array([0.5, 1.0, 2.0, 4.0])
    weights = jax.random.uniform(getkey(), (3, 4), maxval=10.0)
    metric = lg.RBFVarianceMetric(Linear(matrix), centers, bandwidths, weights)
    z = jnp.array([0.2, 0.4])
    points = jnp.stack([z, z + 1e-3])
    _, tensor, variance, energy = geometry(metric, z, points)
    # Closed form: d sigma / dz = -1/2 beta^(-3/2) W dv/dz, dv_j/dz = -2 lambda_j
    # (z - c_j) v_j.
    c, lam, w = (np.asarray(x, np.float64) for x in (centers, bandwidths, weights))
    diff = np.asarray(z, np.float64) - c
    v = np.exp(-lam * np.sum(diff**2, axis=1))
    beta = w @ v + ZETA
    jac_sigma = -0.5 * beta[:, None] ** -1.5 * (w @ (-2 * (lam * v)[:, None] * diff))
    expected = np.asarray(matrix).T @ np.asarray(matrix) + jac_sigma.T @ jac_sigma
    np.testing.assert_allclose(tensor, expected, rtol=1e-4)
    np.testing.assert_allclose(variance, 1 / beta, rtol=1e-5)
    # The finite-difference energy of a short step is the quadratic form.
    step = np.array([1e-3, 1e-3])
    np.testing.assert_allclose(energy, step @ expected @ step, rtol=2e-2)


def test_fit_maximises_the_likelihood(getkey):
    # Two clusters with noise std 0.02 and 0.1: the fitted variances must tell
    # them apart (true ratio 25).
    rng = np.random.default_rng(1)
    latents = np.concatenate(
        [
            rng.normal(size=(100, 2)) * 0.3 - [2, 0],
            rng.normal(size=(100, 2)) * 0.3 + [2, 0],
        ]
    ).astype(default_float())
    mean = Linear(jax.random.normal(getkey(), (3, 2)))
    predictions = np.asarray(jax.vmap(mean)(jnp.asarray(latents)))
    noise = np.repeat([0.02, 0.1], 100)[:, None]
    data = (predictions + noise * rng.normal(size=(200, 3))).astype(default_float())
    metric = lg.RBFVarianceMetric.fit(mean, latents, data, key=getkey())

    weights = np.asarray(metric.weights)
    assert weights.shape == (3, 10) and np.all(weights >= 0)
    features = np.exp(
        -np.asarray(metric.bandwidths)
        * np.sum((latents[:, None, :] - np.asarray(metric.centers)) ** 2, axis=-1)
    ).astype(np.float64)
    squared = (data - predictions).astype(np.float64) ** 2
    fitted = features @ weights.T + ZETA
    np.testing.assert_allclose(
        1 / fitted, jax.vmap(metric.variance)(jnp.asarray(latents)), rtol=1e-4
    )
    nll = negative_log_likelihood(fitted, squared)
    assert nll < negative_log_likelihood(np.full_like(squared, ZETA), squared) - 5
    # Optimal scale: d/ds NLL(s W) = 0 at s = 1, per output.
    np.testing.assert_allclose(
        np.sum((fitted - ZETA) * squared, 0),
        np.sum((fitted - ZETA) / fitted, 0),
        rtol=0.02,
    )
    # A second method: multiplicative (majorise-minimise) updates of the convex
    # problem, in float64.
    reference = np.ones_like(weights, np.float64)
    for _ in range(5000):
        precision = features @ reference.T + ZETA
        reference *= ((1 / precision).T @ features) / (squared.T @ features)
    assert nll < negative_log_likelihood(features @ reference.T + ZETA, squared) + 1e-4
    # Typical fitted variances match the true noise variances 4e-4 and 1e-2.
    for rows, true_variance in ((slice(0, 100), 0.02**2), (slice(100, 200), 0.1**2)):
        medians = np.median(1 / fitted[rows], axis=0)
        np.testing.assert_allclose(medians, true_variance, rtol=0.5)


def test_bandwidths_and_singleton_cluster(getkey):
    rng = np.random.default_rng(2)
    latents = np.concatenate(
        [
            rng.normal(size=(50, 2)) * 0.2,
            rng.normal(size=(50, 2)) * 0.5 + [5, 0],
            [[0, 30]],
        ]
    ).astype(default_float())
    mean = Linear(jnp.eye(2))
    data = latents + 0.1 * rng.normal(size=latents.shape).astype(default_float())
    key = getkey()
    metric = lg.RBFVarianceMetric.fit(
        mean, latents, data, key=key, num_centers=3, bandwidth_scale=1.5, num_steps=0
    )
    clusters = lg.kmeans(jnp.asarray(latents), 3, key=key)
    assignments = np.asarray(clusters.assignments)
    centers = np.asarray(clusters.centers)
    spreads = np.array(
        [
            np.mean(np.linalg.norm(latents[assignments == j] - centers[j], axis=1))
            for j in range(3)
        ]
    )
    singleton = np.bincount(assignments, minlength=3) == 1
    assert singleton.sum() == 1  # the outlier at (0, 30)
    spreads[singleton] = spreads[~singleton].mean()
    np.testing.assert_allclose(metric.bandwidths, 0.5 / (1.5 * spreads) ** 2, rtol=1e-5)


def test_construction_errors():
    mean = Linear(jnp.eye(3, 2))
    centers, bandwidths, weights = jnp.zeros((4, 2)), jnp.ones(4), jnp.ones((3, 4))
    with pytest.raises(ValueError, match=r"`mean` cannot be called .* \(5,\)"):
        lg.RBFVarianceMetric(mean, jnp.zeros((4, 5)), bandwidths, weights)
    with pytest.raises(
        ValueError, match=r"`weights` has shape \(3, 3\), expected \(3, 4\)"
    ):
        lg.RBFVarianceMetric(mean, centers, bandwidths, jnp.ones((3, 3)))
    with pytest.raises(ValueError, match=r"`bandwidths` has shape \(2,\)"):
        lg.RBFVarianceMetric(mean, centers, jnp.ones(2), weights)
    with pytest.raises(ValueError, match="`zeta` must be positive"):
        lg.RBFVarianceMetric(mean, centers, bandwidths, weights, zeta=0.0)
    with pytest.raises(TypeError, match="EnsembleDecoder"):
        lg.RBFVarianceMetric(
            lg.EnsembleDecoder.from_members([mean], latent_dim=2),
            centers,
            bandwidths,
            weights,
        )
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        lg.RBFVarianceMetric(mean, centers, bandwidths, -weights)
    with pytest.raises(ValueError, match="`bandwidths` must be positive"):
        lg.RBFVarianceMetric(mean, centers, bandwidths.at[1].set(jnp.nan), weights)

    @eqx.filter_jit
    def build(weights):
        return lg.RBFVarianceMetric(mean, centers, bandwidths, weights).weights

    np.testing.assert_array_equal(build(weights), weights)
    with pytest.raises(eqx.EquinoxRuntimeError, match="`weights` must be non-negative"):
        build(-weights)
    metric = lg.RBFVarianceMetric(mean, centers, bandwidths, weights)
    with pytest.raises(ValueError, match=r"`z` has shape \(3,\), expected \(2,\)"):
        metric.variance(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"`z0` has shape \(3,\)"):
        lg.geodesic(metric, jnp.zeros(3), jnp.ones(3))


def test_fit_errors(getkey):
    mean, latents, data = arc_data()
    with pytest.raises(ValueError, match=r"`data` has shape \(200, 2\), expected"):
        lg.RBFVarianceMetric.fit(mean, latents, data[:, :2], key=getkey())
    with pytest.raises(ValueError, match=r"`mean` cannot be called .* \(3,\)"):
        lg.RBFVarianceMetric.fit(mean, data, data, key=getkey())
    bad = data.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="`data` contains NaN"):
        lg.RBFVarianceMetric.fit(mean, latents, bad, key=getkey())
    with pytest.raises(ValueError, match="`num_clusters` is 500"):
        lg.RBFVarianceMetric.fit(mean, latents, data, key=getkey(), num_centers=500)
    with pytest.raises(ValueError, match="`bandwidth_scale` must be positive"):
        lg.RBFVarianceMetric.fit(mean, latents, data, key=getkey(), bandwidth_scale=0.0)
