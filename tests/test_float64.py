"""float64 end to end: under x64 every public entry point, with its defaults,
computes and returns float64 (each test enables it with `float64()`, so this
file checks it in the default pass as well as in the x64 one). A linear ensemble
gives the closed-form length to 1e-8; float32 points with a float64 model run in
float64; a float32 problem under x64 stays float32."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, float64, sphere_pair

POINTS = np.array([[-0.6, 0.2], [0.5, -0.3], [0.1, 0.7]])


def assert_float64(tree):
    """Every float leaf of `tree` (JAX or NumPy arrays, Python floats) is float64."""
    leaves = jax.tree.leaves(tree)
    dtypes = [x.dtype if hasattr(x, "dtype") else np.result_type(x) for x in leaves]
    floats = [dtype for dtype in dtypes if np.issubdtype(dtype, np.floating)]
    assert floats, "no float outputs"
    assert all(dtype == np.float64 for dtype in floats), floats


def smooth_ensemble(key):
    """Two tanh decoders (twice differentiable, as the exponential map needs),
    made in float64: call inside `float64()`."""
    return lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 3, 8, 1, activation=jnp.tanh, key=k), 2, key=key
    )


def test_linear_ensemble_default_geodesic_is_the_closed_form(getkey):
    """Two linear members $A_k$: $G = \\frac{1}{K} \\sum_k A_k^T A_k$ everywhere,
    the geodesic is the straight line and its length
    $\\sqrt{\\frac{1}{K} \\sum_k |A_k (z_1 - z_0)|^2}$, to float64 accuracy."""
    with float64():
        members = [eqx.nn.Linear(2, 5, key=getkey()) for _ in range(2)]
        metric = lg.ExpectedMetric(lg.EnsembleDecoder.from_members(members))
        z0, z1 = jnp.array([-0.7, 0.4]), jnp.array([0.9, -0.2])
        result = lg.geodesic(metric, z0, z1)
        assert_float64((result.length, result.energy, result.curve))
        assert result.num_steps.dtype == result.num_evaluations.dtype == jnp.int32
        assert bool(result.converged)
        steps = [np.asarray(m.weight) @ np.asarray(z1 - z0) for m in members]
        exact = np.sqrt(np.mean([step @ step for step in steps]))
        np.testing.assert_allclose(result.length, exact, rtol=1e-8)
        # The straight line: no deviation from the chord.
        np.testing.assert_allclose(result.curve.params, 0.0, atol=1e-8)


def test_metric_geometry_is_float64(getkey):
    with float64():
        metric = lg.ExpectedMetric(smooth_ensemble(getkey()))
        z, v = jnp.array([0.1, -0.2]), jnp.array([0.3, 0.4])
        points = jnp.asarray(POINTS)
        assert_float64(metric.tensor(z))
        assert_float64(metric.norm(z, v))
        assert_float64(metric.curve_length(points))


def test_geodesic_maps_are_float64(getkey):
    with float64():
        metric = lg.ExpectedMetric(smooth_ensemble(getkey()))
        z0, z1 = jnp.asarray(POINTS[0]), jnp.asarray(POINTS[1])
        assert_float64(lg.geodesic(metric, z0, z1).length)
        velocity = lg.log_map(metric, z0, z1)
        assert_float64(velocity)
        assert_float64(lg.exp_map(metric, z0, velocity))
        assert_float64(lg.exp_path(metric, z0, velocity).points)


def test_all_pairs_and_graphs_are_float64(getkey):
    with float64():
        metric = lg.ExpectedMetric(smooth_ensemble(getkey()))
        result = lg.pairwise_geodesics(metric, POINTS, progress=False)
        assert_float64((result.points, result.lengths, result.curves))
        assert_float64(result.distances)
        assert_float64(lg.pairwise_distances(metric, POINTS, progress=False))
        estimate = lg.pairwise_graph_estimate(metric, POINTS, progress=False)
        assert_float64((estimate.lengths, estimate.curves))
        assert_float64(lg.graph_paths(metric, POINTS, neighbours=2).distances)
        assert_float64(lg.lattice_paths(metric, POINTS).distances)


def test_frechet_mean_is_float64(getkey):
    with float64():
        metric = lg.ExpectedMetric(smooth_ensemble(getkey()))
        assert_float64(lg.frechet_mean(metric, POINTS).mean)


def test_decoding_and_sampled_lengths_are_float64(getkey):
    with float64():
        ensemble = smooth_ensemble(getkey())
        curve = lg.CubicSpline.straight(
            jnp.asarray(POINTS[0]), jnp.asarray(POINTS[1]), 4
        )
        decoded = lg.decode_along(ensemble, curve)
        assert_float64((decoded.points, decoded.mean, decoded.std))
        assert_float64(lg.sampled_member_length(ensemble, curve, key=getkey()))


def test_statistics_and_baselines_are_float64(getkey):
    with float64():
        table = np.array([[1.0, 2.0, 3.0], [1.1, 2.2, 2.9], [0.9, 1.9, 3.2]])
        stability = lg.retraining_stability(table, baseline=table[::-1] ** 2)
        assert_float64(
            (stability.cv, stability.mean_rank_correlation, stability.t_statistic)
        )
        latents = jax.random.normal(getkey(), (40, 2))
        assert latents.dtype == jnp.float64
        clusters = lg.kmeans(latents, 3, key=getkey())
        assert_float64((clusters.centers, clusters.inertia))
        mean = Linear(jax.random.normal(getkey(), (3, 2)))
        data = jax.vmap(mean)(latents)
        rbf = lg.RBFVarianceMetric.fit(
            mean, latents, data, key=getkey(), num_centers=3, num_steps=10
        )
        assert_float64(eqx.filter(rbf, eqx.is_inexact_array))
        assert_float64(rbf.tensor(latents[0]))


# Mixed float32 / float64 promotion; float64 entry points stay in the
# default run (test_geodesic_maps_are_float64, test_all_pairs_and_graphs_are_float64).
@pytest.mark.slow
def test_float32_points_with_a_float64_model_run_in_float64(getkey):
    """As `weights @ z` promotes: the model's float64, not float32 curves
    carried through float64 solver steps (JAX's standard promotion, the
    default; strict promotion refuses the mix)."""
    with float64(), jax.numpy_dtype_promotion("standard"):
        metric = lg.ExpectedMetric(smooth_ensemble(getkey()))
        points = POINTS.astype(np.float32)
        z0, z1 = jnp.asarray(points[0]), jnp.asarray(points[1])
        assert_float64((lg.geodesic(metric, z0, z1).length, lg.log_map(metric, z0, z1)))
        assert_float64(lg.exp_map(metric, z0, z1 - z0))
        result = lg.pairwise_geodesics(metric, points, progress=False)
        assert_float64((result.points, result.lengths, result.curves))
        assert_float64(lg.graph_paths(metric, points, neighbours=2).distances)
    with float64(), pytest.raises(ValueError, match="promotion"):
        lg.geodesic(metric, z0, z1)  # strict, as the suite runs


# float32 under x64; the float32 default is the whole suite's.
@pytest.mark.slow
def test_a_float32_problem_under_x64_stays_float32():
    """float32 points and a metric without float64 arrays: float32 throughout,
    shooting included (optimistix's float64 trust region does not leak in)."""
    with float64():
        metric = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
        z0, z1, distance = sphere_pair(90.0)
        z0, z1 = z0.astype(jnp.float32), z1.astype(jnp.float32)
        result = lg.geodesic(metric, z0, z1)
        assert result.length.dtype == jnp.float32
        np.testing.assert_allclose(result.length, distance, rtol=1e-5)
        velocity = lg.log_map(metric, z0, z1)
        assert velocity.dtype == jnp.float32
        np.testing.assert_allclose(lg.exp_map(metric, z0, velocity), z1, atol=1e-4)


def test_the_latent_dimension_of_a_float32_decoder_is_inferred_under_x64():
    """The probe calls the decoder in its own dtype: float64 input would make a
    float32 decoder refuse every size under strict promotion."""
    with float64():
        matrix = jnp.ones((3, 2), jnp.float32)
        assert lg.PullbackMetric(Linear(matrix)).latent_dim == 2
        ensemble = lg.EnsembleDecoder(lambda m, z: m @ z, matrix[None])
        assert ensemble.latent_dim == 2
