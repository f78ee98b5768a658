"""k-means clustering with k-means++ initialisation, written in JAX."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


class KMeansResult(eqx.Module):
    """The outcome of [`kmeans`][latentgeo.kmeans].

    **Fields:**

    - `centers`: the cluster centres, shape `(k, d)`.
    - `assignments`: the index of each point's nearest centre, shape `(n,)`.
    - `inertia`: the sum of squared distances of the points to their centres; the
        lower, the better a clustering (compare runs with different keys by it).
    - `num_steps`: the number of Lloyd iterations run.
    """

    centers: Float[Array, "k d"]
    assignments: Int[Array, " n"]
    inertia: Float[Array, ""]
    num_steps: Int[Array, ""]


def _squared_distances(
    points: Float[Array, "n d"], centers: Float[Array, "k d"]
) -> Float[Array, "n k"]:
    def to_centers(point: Float[Array, " d"]) -> Float[Array, " k"]:
        return jnp.sum((centers - point[None, :]) ** 2, axis=-1)

    return jax.vmap(to_centers)(points)


def _plus_plus_centers(
    points: Float[Array, "n d"], num_clusters: int, key: PRNGKeyArray
) -> Float[Array, "k d"]:
    """k-means++: the first centre is a uniformly drawn point, each next one a point
    drawn with probability proportional to its squared distance to the nearest
    centre so far."""
    num_points = points.shape[0]
    keys = jax.random.split(key, num_clusters)
    first = points[jax.random.choice(keys[0], num_points)]
    centers = jnp.zeros((num_clusters, points.shape[1]), points.dtype).at[0].set(first)
    nearest = _squared_distances(points, first[None, :])[:, 0]

    def add_center(index, carry):
        centers, nearest = carry
        total = jnp.sum(nearest)
        # Every point sits on a centre (duplicates): fall back to uniform sampling.
        safe_total = jnp.where(total > 0, total, 1)
        probabilities = jnp.where(total > 0, nearest / safe_total, 1 / num_points)
        chosen = points[jax.random.choice(keys[index], num_points, p=probabilities)]
        distances = _squared_distances(points, chosen[None, :])[:, 0]
        return centers.at[index].set(chosen), jnp.minimum(nearest, distances)

    centers, _ = jax.lax.fori_loop(1, num_clusters, add_center, (centers, nearest))
    return centers


def _lloyd_step(
    points: Float[Array, "n d"], centers: Float[Array, "k d"]
) -> Float[Array, "k d"]:
    """Move each centre to the mean of its points; an empty cluster keeps its
    centre."""
    num_clusters = centers.shape[0]
    assignments = jnp.argmin(_squared_distances(points, centers), axis=-1)
    sums = jax.ops.segment_sum(points, assignments, num_segments=num_clusters)
    counts = jax.ops.segment_sum(
        jnp.ones_like(points[:, 0]), assignments, num_segments=num_clusters
    )
    means = sums / jnp.maximum(counts, 1)[:, None]
    return jnp.where(counts[:, None] > 0, means, centers)


@eqx.filter_jit
def kmeans(
    points: Float[Array, "n d"],
    num_clusters: int,
    *,
    key: PRNGKeyArray,
    max_steps: int = 100,
    tol: float = 1e-6,
) -> KMeansResult:
    r"""Cluster `points` into `num_clusters` groups with Lloyd's algorithm.

    The centres start from k-means++ (each drawn with probability proportional to
    the squared distance to the nearest centre already drawn), then alternate
    assigning each point to its nearest centre and moving each centre to the mean of
    its points, until no centre moves more than `tol` (Euclidean) or after
    `max_steps` iterations. A cluster that loses all its points keeps its centre.
    The loop runs in `jax.lax.while_loop`; the function is jitted with
    `num_clusters`, `max_steps` and `tol` static.

    **Arguments:**

    - `points`: the data, shape `(n, d)`, floating point.
    - `num_clusters`: the number of clusters $k$, $1 \le k \le n$.
    - `key`: a JAX random key for the initialisation.
    - `max_steps`: the most Lloyd iterations. Default 100.
    - `tol`: stop once no centre moves farther than this. Default 1e-6.

    **Returns:**

    A [`KMeansResult`][latentgeo.KMeansResult] with `centers` `(k, d)`,
    `assignments` `(n,)` consistent with the returned centres, `inertia` and
    `num_steps`.

    **Raises:**

    - `ValueError` if `points` is not a 2-D float array, `num_clusters` is outside
        $[1, n]$, `max_steps` is negative or `tol` is negative.
    - `EquinoxRuntimeError` if `points` contains NaN or inf, also under
        `eqx.filter_jit` (under `jax.jit` the same message comes as a
        `jax.errors.JaxRuntimeError`).

    !!! example

        ```python
        result = kmeans(latents, 10, key=jax.random.key(0))
        result.centers, result.assignments
        ```
    """
    if points.ndim != 2 or not jnp.issubdtype(points.dtype, jnp.floating):
        raise ValueError(
            f"`points` has shape {points.shape} and dtype {points.dtype}; expected a "
            "2-D float array (n, d)."
        )
    num_points = points.shape[0]
    if not 1 <= num_clusters <= num_points:
        raise ValueError(
            f"`num_clusters` is {num_clusters}, expected between 1 and the number of "
            f"points, {num_points}."
        )
    if max_steps < 0:
        raise ValueError(f"`max_steps` must be non-negative, got {max_steps}.")
    if tol < 0:
        raise ValueError(f"`tol` must be non-negative, got {tol}.")
    points = eqx.error_if(
        points, ~jnp.all(jnp.isfinite(points)), "`points` contains NaN or inf."
    )

    def keep_going(carry):
        _, shift, step = carry
        return (step < max_steps) & (shift > tol)

    def lloyd_iteration(carry):
        centers, _, step = carry
        new_centers = _lloyd_step(points, centers)
        shift = jnp.max(jnp.sqrt(jnp.sum((new_centers - centers) ** 2, axis=-1)))
        return new_centers, shift, step + 1

    initial = (
        _plus_plus_centers(points, num_clusters, key),
        jnp.asarray(jnp.inf, points.dtype),
        jnp.zeros((), jnp.int32),
    )
    centers, _, num_steps = jax.lax.while_loop(keep_going, lloyd_iteration, initial)
    distances = _squared_distances(points, centers)
    return KMeansResult(
        centers=centers,
        assignments=jnp.argmin(distances, axis=-1),
        inertia=jnp.sum(jnp.min(distances, axis=-1)),
        num_steps=num_steps,
    )
