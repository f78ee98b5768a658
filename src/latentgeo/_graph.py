r"""Graph initialisation for all-pairs geodesics (Arvanitidis et al. 2019).

A k-nearest-neighbour graph over latent points, each edge weighted by the metric
length of its straight segment, gives by shortest paths both a fast estimate of
every geodesic distance and, per pair, a starting curve that follows the data
rather than cutting across it. The straight start of a curve solver finds the
nearest local geodesic; about one pair in thirty on a trained ensemble has a
shorter one that only the graph path leads to.

Shortest paths use `scipy.sparse.csgraph.dijkstra`: Dijkstra with a binary heap
over a sparse graph is the field's standard tool, written in C, and runs in
$O(N (E + V) \log V)$ for $N$ sources — nothing a JAX rewrite would beat on the
host, and the decoder evaluations (the edge lengths) are the part that runs in
JAX, batched over edges.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int
from tqdm import tqdm

from ._checks import host_points, padded_chunks
from ._curve import CubicSpline
from ._metric import AbstractMetric


class GraphPaths(eqx.Module):
    """Shortest paths in a k-nearest-neighbour graph over latent points.

    Built by [`graph_paths`][latentgeo.graph_paths]. The graph's nodes are the
    `N` query points followed by any extra points; distances and paths are kept
    from every query point to every node.

    **Attributes:**

    - `distances`: `(N, N)` graph distances between the query points: the metric
      length of the shortest path, symmetric with zero diagonal. An estimate of
      the geodesic distance, usually above it (a path is a curve), though each
      edge is measured on `edge_points` points only, so on strongly curved
      metrics it can fall below. NaN for pairs that no path of finite edges
      joins: the metric is NaN or infinite between them.
    - `nodes`: `(V, d)` the graph's nodes, the query points first.
    - `predecessors`: `(N, V)` node before node `v` on the shortest path from
      query point `i` (`-9999` at `v = i` and where no path reaches `v`).
    - `node_distances`: `(N, V)` graph distance from query point `i` to node `v`
      (`inf` where no path of finite edges reaches `v`).
    """

    distances: Float[np.ndarray, "N N"]
    nodes: Float[np.ndarray, "V d"]
    predecessors: Int[np.ndarray, "N V"]
    node_distances: Float[np.ndarray, "N V"]

    def path(self, i: int, j: int) -> Float[np.ndarray, "m d"]:
        """The nodes of the shortest path from query point `i` to `j`, `(m, d)`.

        **Raises:** `ValueError` if no path of finite edges joins them."""
        if not np.isfinite(self.node_distances[i, j]):
            raise ValueError(
                f"No path of finite edges joins query points {i} and {j}: the "
                "metric is NaN or infinite between them."
            )
        hops = self._walk(np.array([i]), np.array([j]))[0]
        keep = np.concatenate([[True], hops[1:] != hops[:-1]])
        return self.nodes[hops[keep]]

    def _walk(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Node sequences `(B, L)` from `sources` to `targets`, each padded at its
        start by repeating its source; `targets` must be reachable."""
        current = np.asarray(targets)
        hops = [current]
        while np.any(current != sources):
            current = np.where(
                current == sources, current, self.predecessors[sources, current]
            )
            hops.append(current)
        return np.stack(hops[::-1], axis=1)

    def init_curves(
        self,
        rows: Int[np.ndarray, " B"],
        cols: Int[np.ndarray, " B"],
        num_segments: int = 10,
    ) -> CubicSpline:
        """Starting curves for the pairs `(rows[b], cols[b])`: each graph path,
        resampled at uniform graph arc length, fitted by a cubic spline.

        The path's nodes get times proportional to their graph distance from the
        start (the metric arc length a geodesic spends at constant speed); the
        polygon is resampled at `4 (n + 1) + 1` uniform times and fitted with
        [`CubicSpline.fit`][latentgeo.CubicSpline.fit]. A pair that no path of
        finite edges joins (its distance is NaN) gets the straight line.

        **Arguments:**

        - `rows`, `cols`: `(B,)` indices of query points, `rows != cols`.
        - `num_segments`: $n$, segments of the fitted splines.

        **Returns:** a `CubicSpline` batched over the `B` pairs.
        """
        rows, cols = np.asarray(rows), np.asarray(cols)
        joined = np.isfinite(self.node_distances[rows, cols])
        hops = self._walk(rows, np.where(joined, cols, rows))  # (B, L)
        if hops.shape[1] == 1:  # every pair unjoined: no segment to walk
            hops = np.concatenate([hops, hops], axis=1)
        total = np.where(joined, self.node_distances[rows, cols], 1.0)
        along = self.node_distances[rows[:, None], hops] / total[:, None]
        along[:, -1] = 1.0
        times = np.linspace(0.0, 1.0, 4 * (num_segments + 1) + 1)
        # Index of the path segment holding each time: (B, S).
        segment = np.clip((along[:, None, :] <= times[:, None]).sum(-1) - 1, 0, None)
        segment = np.minimum(segment, hops.shape[1] - 2)
        take = lambda a, k: np.take_along_axis(a, k, axis=1)  # noqa: E731
        start, end = take(along, segment), take(along, segment + 1)
        width = np.where(end > start, end - start, 1.0)
        fraction = np.clip((times - start) / width, 0.0, 1.0)[..., None]
        a = self.nodes[take(hops, segment)]
        b = self.nodes[take(hops, segment + 1)]
        samples = a + fraction * (b - a)
        straight = self.nodes[rows, None] + times[:, None] * (
            self.nodes[cols, None] - self.nodes[rows, None]
        )
        samples = np.where(joined[:, None, None], samples, straight)
        samples[:, 0], samples[:, -1] = self.nodes[rows], self.nodes[cols]  # exact
        samples = jnp.asarray(samples, self.nodes.dtype)
        return _fit_paths(samples, jnp.asarray(times, samples.dtype), num_segments)


@functools.partial(jax.jit, static_argnums=2)
def _fit_paths(samples: Array, times: Array, num_segments: int) -> CubicSpline:
    return jax.vmap(lambda p: CubicSpline.fit(p, num_segments, times))(samples)


@eqx.filter_jit
def _edge_lengths(metric, starts, ends, num_points: int):
    times = jnp.linspace(0.0, 1.0, num_points, dtype=starts.dtype)

    def length(a, b):
        return metric.curve_length(a[None] + times[:, None] * (b - a)[None])

    with jax.default_matmul_precision("highest"):
        return jax.vmap(length)(starts, ends)


def _nearest_neighbours(nodes: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Indices `(V, k)` of each node's `k` nearest other nodes (Euclidean)."""
    squared = np.sum(nodes**2, axis=1)
    found = []
    for start in range(0, len(nodes), chunk):
        block = nodes[start : start + chunk]
        d2 = squared[start : start + chunk, None] - 2 * block @ nodes.T + squared
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        found.append(np.argpartition(d2, k - 1, axis=1)[:, :k])
    return np.concatenate(found)


def graph_paths(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    *,
    neighbours: int = 10,
    extra_points: Float[ArrayLike, "E d"] | None = None,
    edge_points: int = 8,
    batch_size: int = 4096,
    progress: bool = False,
) -> GraphPaths:
    r"""Shortest paths between latent points in a k-nearest-neighbour graph whose
    edges are weighted by their metric length (Arvanitidis et al. 2019).

    Each node is joined to its `neighbours` nearest nodes in Euclidean latent
    distance (and the graph made undirected); an edge's weight is
    `metric.curve_length` of its straight segment on `edge_points` points,
    computed in `jax.vmap`-ed, jit-compiled chunks of `batch_size` edges. Paths
    from every query point come from Dijkstra's algorithm
    (`scipy.sparse.csgraph.dijkstra`).

    Edges whose length is NaN or infinite (the metric is not finite along them)
    are left out. Query points that the remaining edges do not join, e.g. a
    point where the decoder is NaN, get NaN distances to each other; every other
    pair keeps its path. Only a neighbour graph that does not join the query
    points even with those edges is an error.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` query points.
    - `neighbours`: $k$, nearest neighbours per node (10).
    - `extra_points`: optional `(E, d)` further nodes, e.g. the training codes,
      so that paths can follow the data between sparse query points.
    - `edge_points`: points per edge at which its length is measured (8).
    - `batch_size`: edges per vmapped chunk (4096).
    - `progress`: show a progress bar over edge chunks.

    **Returns:** a [`GraphPaths`][latentgeo.GraphPaths]; its `distances` are the
    fast approximate geodesic distances, `init_curves` the starting curves.

    **Raises:** `ImportError` without scipy; `ValueError` for bad shapes or
    options, or when the neighbour graph splits the query points into groups
    that no edge joins (raise `neighbours` or add `extra_points`).

    **Example:**

    ```python
    graph = lg.graph_paths(metric, Z, neighbours=10, extra_points=train_codes)
    graph.distances        # (N, N) graph estimate
    graph.path(0, 5)       # nodes of the path from Z[0] to Z[5]
    ```
    """
    try:
        from scipy.sparse import coo_array
        from scipy.sparse.csgraph import dijkstra
    except ImportError as error:
        raise ImportError(
            "Graph initialisation needs scipy: `pip install latentgeo[graph]`."
        ) from error
    points = host_points(points, metric.latent_dim, "points", min_rows=2)
    nodes = points
    if extra_points is not None:
        extra = host_points(extra_points, metric.latent_dim, "extra_points")
        nodes = np.concatenate([points, extra.astype(points.dtype)])
    num_nodes, num_query = nodes.shape[0], points.shape[0]
    if not 1 <= neighbours < num_nodes:
        raise ValueError(
            f"`neighbours` must be in 1..{num_nodes - 1} (nodes - 1), got {neighbours}."
        )
    if edge_points < 2 or batch_size < 1:
        raise ValueError("`edge_points` must be >= 2 and `batch_size` >= 1.")

    near = _nearest_neighbours(nodes, neighbours)
    tails = np.repeat(np.arange(num_nodes), neighbours)
    edges = np.unique(np.sort(np.stack([tails, near.ravel()], axis=1), axis=1), axis=0)
    edges = edges.astype(np.intc)  # the index type csgraph's routines take
    weights = np.empty(len(edges), points.dtype)
    size = min(batch_size, len(edges))
    chunks = padded_chunks(len(edges), size)
    for chunk, count in tqdm(
        chunks, total=-(-len(edges) // size), disable=not progress, desc="graph edges"
    ):
        lengths = _edge_lengths(
            metric,
            jnp.asarray(nodes[edges[chunk, 0]]),
            jnp.asarray(nodes[edges[chunk, 1]]),
            edge_points,
        )
        weights[chunk[:count]] = np.asarray(lengths)[:count]
    _check_connected(edges, num_nodes, num_query, neighbours)
    finite = np.isfinite(weights)
    # Sparse graphs treat stored zeros as edges, but keep weights positive anyway
    # so that duplicate points never look unconnected.
    weights = np.maximum(weights[finite], np.finfo(weights.dtype).tiny)
    graph = coo_array(
        (weights, (edges[finite, 0], edges[finite, 1])), shape=(num_nodes, num_nodes)
    ).tocsr()
    node_distances, predecessors = dijkstra(
        graph, directed=False, indices=np.arange(num_query), return_predecessors=True
    )
    distances = node_distances[:, :num_query].astype(points.dtype)
    distances = np.triu(np.where(np.isinf(distances), np.nan, distances), 1)
    return GraphPaths(
        distances=distances + distances.T,
        nodes=nodes,
        predecessors=predecessors.astype(np.int64),
        node_distances=node_distances,
    )


def _check_connected(edges, num_nodes: int, num_query: int, neighbours: int) -> None:
    """Raise unless the neighbour graph, finite or not, joins all query points."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    ones = np.ones(len(edges), np.int8)
    structure = coo_array(
        (ones, (edges[:, 0], edges[:, 1])), shape=(num_nodes, num_nodes)
    ).tocsr()
    _, labels = connected_components(structure, directed=False)
    components = np.unique(labels[:num_query]).size
    if components > 1:
        raise ValueError(
            f"The {neighbours}-nearest-neighbour graph splits the query points into "
            f"{components} unconnected groups; raise `neighbours` or add "
            "`extra_points` between them."
        )
