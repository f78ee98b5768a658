import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from latentgeo._kmeans import _lloyd_step, kmeans

TRUE_CENTERS = np.array(
    [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]
)


@pytest.fixture(autouse=True)
def strict_numpy_semantics():
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


def gaussian_blobs(dtype=np.float32, per_cluster=50, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(TRUE_CENTERS)), per_cluster)
    points = TRUE_CENTERS[labels] + 0.5 * rng.normal(size=(len(labels), 3))
    return jnp.asarray(points, dtype), labels


def matching_permutation(centers, true_centers):
    """The permutation of `centers` closest to `true_centers`, and its error."""
    errors = {
        perm: np.max(np.linalg.norm(centers[list(perm)] - true_centers, axis=-1))
        for perm in itertools.permutations(range(len(true_centers)))
    }
    best = min(errors, key=errors.get)
    return best, errors[best]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_separated_clusters(seed):
    points, labels = gaussian_blobs()
    result = kmeans(points, 4, key=jax.random.key(seed))
    perm, error = matching_permutation(np.asarray(result.centers), TRUE_CENTERS)
    # The mean of 50 points with std 0.5 is within ~0.07 per coordinate.
    assert error < 0.3
    # Estimated cluster perm[j] is true cluster j.
    relabelled = np.argsort(perm)[np.asarray(result.assignments)]
    np.testing.assert_array_equal(relabelled, labels)


def test_result_is_a_lloyd_fixed_point():
    points, _ = gaussian_blobs(seed=3)
    result = kmeans(points, 4, key=jax.random.key(0))
    points, centers = np.asarray(points), np.asarray(result.centers)
    assignments = np.asarray(result.assignments)
    squared = np.sum((points[:, None, :] - centers[None, :, :]) ** 2, axis=-1)
    np.testing.assert_array_equal(assignments, np.argmin(squared, axis=-1))
    for cluster in range(4):
        np.testing.assert_allclose(
            centers[cluster], points[assignments == cluster].mean(0), atol=1e-5
        )
    np.testing.assert_allclose(result.inertia, squared.min(-1).sum(), rtol=1e-5)
    assert 1 <= int(result.num_steps) < 100


@pytest.mark.parametrize("seed", range(5))
def test_plus_plus_initialisation_spreads_over_clusters(seed):
    # Uniform sampling would put all 4 first centres in distinct clusters only
    # 4!/4^4 ~ 9% of the time; distance-weighted sampling nearly always.
    points, labels = gaussian_blobs()
    result = kmeans(points, 4, key=jax.random.key(seed), max_steps=0)
    assert int(result.num_steps) == 0
    matches = np.all(np.asarray(points)[:, None, :] == result.centers[None], axis=-1)
    rows = np.argmax(matches, axis=0)
    assert matches.any(axis=0).all(), "initial centres must be data points"
    assert sorted(labels[rows]) == [0, 1, 2, 3]


def test_jit_matches_eager():
    points, _ = gaussian_blobs()
    key = jax.random.key(4)
    jitted = jax.jit(lambda p, k: kmeans(p, 4, key=k))(points, key)
    eager = kmeans(points, 4, key=key)
    np.testing.assert_allclose(jitted.centers, eager.centers, rtol=1e-6)
    np.testing.assert_array_equal(jitted.assignments, eager.assignments)


def test_float64():
    with jax.enable_x64(True):
        points, labels = gaussian_blobs(dtype=np.float64)
        result = kmeans(points, 4, key=jax.random.key(0), tol=1e-12)
        assert result.centers.dtype == jnp.float64
        perm, error = matching_permutation(np.asarray(result.centers), TRUE_CENTERS)
        assert error < 0.3
        relabelled = np.argsort(perm)[np.asarray(result.assignments)]
        np.testing.assert_array_equal(relabelled, labels)


def test_empty_cluster_keeps_its_centre():
    points = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    centers = jnp.array([[0.0, 0.0], [100.0, 100.0]])
    new_centers = _lloyd_step(points, centers)
    np.testing.assert_allclose(new_centers, [[1 / 3, 1 / 3], [100.0, 100.0]])


def test_fewer_distinct_points_than_clusters():
    points = jnp.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    result = kmeans(points, 3, key=jax.random.key(0))
    assert np.all(np.isfinite(result.centers))
    assert float(result.inertia) == 0.0


def test_as_many_clusters_as_points():
    points = jnp.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    result = kmeans(points, 3, key=jax.random.key(1))
    assert sorted(np.asarray(result.assignments).tolist()) == [0, 1, 2]
    assert float(result.inertia) == 0.0


@pytest.mark.parametrize("num_clusters", [0, 4])
def test_invalid_num_clusters(num_clusters):
    points = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="`num_clusters` is"):
        kmeans(points, num_clusters, key=jax.random.key(0))


def test_points_must_be_a_matrix():
    # Under the jaxtyping test hook the annotation rejects it first.
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match="points"):
        kmeans(jnp.zeros(5), 2, key=jax.random.key(0))


@pytest.mark.parametrize(
    "wrap, error",
    [
        (lambda f: f, eqx.EquinoxRuntimeError),
        (eqx.filter_jit, eqx.EquinoxRuntimeError),
        (jax.jit, jax.errors.JaxRuntimeError),
    ],
)
def test_nan_points_raise(wrap, error):
    points = jnp.zeros((4, 2)).at[2, 1].set(jnp.nan)
    with pytest.raises(error, match="NaN"):
        wrap(lambda p: kmeans(p, 2, key=jax.random.key(0)))(points)
