"""Geodesic distance matrices in scikit-learn estimators that take precomputed
distances: on the sphere chart they must act exactly as great-circle distances
do, and recover structure that is there by construction."""

import inspect

import jax
import numpy as np
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.manifold import MDS, Isomap
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import KNeighborsClassifier

import latentgeo as lg
from helpers import InverseStereographic, Linear, stereographic

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
OPTIONS = {"solver": lg.LevenbergMarquardt(), "progress": False}


def great_circle(chart_points: np.ndarray) -> np.ndarray:
    """Exact distances between chart points, through the sphere."""
    z = chart_points.astype(np.float64)
    squared = np.sum(z**2, axis=1, keepdims=True)
    sphere = np.concatenate([2 * z, squared - 1], axis=1) / (squared + 1)
    return np.arccos(np.clip(sphere @ sphere.T, -1.0, 1.0))


def on_sphere(directions: np.ndarray) -> np.ndarray:
    """Chart points of unit vectors (rows), all in the southern hemisphere."""
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return np.stack([stereographic(u) for u in unit]).astype(np.float32)


def groups(num_groups=3, size=4, spread=0.08, seed=0):
    """`size` points within about `spread` rad of each of `num_groups` centres
    about 1.2 rad apart around the south pole."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(num_groups) / num_groups
    centres = np.stack(
        [
            np.sin(0.7) * np.cos(angles),
            np.sin(0.7) * np.sin(angles),
            np.full(num_groups, -np.cos(0.7)),
        ]
    ).T
    points = centres[:, None] + spread * rng.normal(size=(num_groups, size, 3))
    labels = np.repeat(np.arange(num_groups), size)
    return on_sphere(points.reshape(-1, 3)), labels


def test_knn_with_geodesic_distances_is_knn_with_great_circles():
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(16, 3))
    directions[:, 2] = -np.abs(directions[:, 2]) - 0.6
    points = on_sphere(directions)
    labels = rng.integers(0, 3, size=16)
    geodesic = np.asarray(lg.pairwise_distances(SPHERE, points, **OPTIONS))
    exact = great_circle(points)
    train, test = np.arange(10), np.arange(10, 16)
    k = 3
    # The test is only meaningful if the exact k-th and (k+1)-th neighbours are
    # further apart than the solver's error (about 1e-4 relative).
    ordered = np.sort(exact[np.ix_(test, train)], axis=1)
    assert np.all(ordered[:, k] - ordered[:, k - 1] > 1e-2 * ordered[:, k])
    found = {}
    for name, distances in (("geodesic", geodesic), ("exact", exact)):
        knn = KNeighborsClassifier(n_neighbors=k, metric="precomputed")
        knn.fit(distances[np.ix_(train, train)], labels[train])
        neighbours = knn.kneighbors(distances[np.ix_(test, train)])[1]
        found[name] = (
            np.sort(neighbours, axis=1),
            knn.predict(distances[test][:, train]),
        )
    np.testing.assert_array_equal(found["geodesic"][0], found["exact"][0])
    np.testing.assert_array_equal(found["geodesic"][1], found["exact"][1])


def test_clustering_recovers_separated_groups_and_flags_an_outlier():
    points, labels = groups()
    outlier = on_sphere(np.array([[0.0, 0.0, -1.0]]))  # the south pole
    all_points = np.concatenate([points, outlier])
    distances = np.asarray(lg.pairwise_distances(SPHERE, all_points, **OPTIONS))
    np.testing.assert_allclose(
        distances, great_circle(all_points), rtol=1e-3, atol=1e-5
    )
    inner = distances[:-1, :-1]
    clusters = AgglomerativeClustering(
        n_clusters=3, metric="precomputed", linkage="average"
    ).fit_predict(inner)
    assert adjusted_rand_score(labels, clusters) == 1.0
    # DBSCAN: a group's points lie within 0.35 rad of each other, groups and the
    # pole (0.7 rad from every centre) are further apart.
    assert inner[labels[:, None] == labels[None]].max() < 0.35
    assert distances[-1, :-1].min() > 0.35
    found = DBSCAN(eps=0.35, min_samples=3, metric="precomputed").fit_predict(distances)
    assert adjusted_rand_score(labels, found[:-1]) == 1.0
    assert found[-1] == -1  # noise


def precomputed_mds(num_components: int) -> MDS:
    if "metric_mds" in inspect.signature(MDS).parameters:  # scikit-learn >= 1.8
        return MDS(
            num_components, metric="precomputed", init="classical_mds", random_state=0
        )
    return MDS(num_components, dissimilarity="precomputed", random_state=0)


def test_embeddings_recover_the_arc_length_along_a_great_circle():
    # Points at known arc positions along one great circle (not through the
    # pole): geodesic distances are |s_i - s_j|, a 1-D configuration.
    positions = np.array([0.0, 0.15, 0.4, 0.5, 0.8, 1.1, 1.25, 1.6])
    start = np.array([np.sin(0.9), 0.0, -np.cos(0.9)])
    tangent = np.array([0.0, 1.0, 0.0])
    arc = np.cos(positions)[:, None] * start + np.sin(positions)[:, None] * tangent
    distances = np.asarray(lg.pairwise_distances(SPHERE, on_sphere(arc), **OPTIONS))
    for estimator in (
        precomputed_mds(1),
        Isomap(n_neighbors=3, n_components=1, metric="precomputed"),
    ):
        embedded = estimator.fit_transform(distances)[:, 0]
        embedded = embedded * np.sign(np.corrcoef(embedded, positions)[0, 1])
        np.testing.assert_allclose(
            embedded - embedded.mean(), positions - positions.mean(), atol=2e-3
        )


def test_mds_of_a_linear_decoder_recovers_the_decoded_points(getkey):
    matrix = np.asarray(jax.random.normal(getkey(), (2, 2)))
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    points = np.asarray(jax.random.normal(getkey(), (8, 2)))
    distances = np.asarray(lg.pairwise_distances(metric, points, **OPTIONS))
    embedded = precomputed_mds(2).fit_transform(distances)
    decoded = points @ matrix.T
    # Equal up to a rigid motion: orthogonal Procrustes.
    a, b = embedded - embedded.mean(0), decoded - decoded.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    np.testing.assert_allclose(a @ u @ vt, b, atol=1e-3 * np.abs(b).max())
