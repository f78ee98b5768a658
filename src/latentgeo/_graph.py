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
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from tqdm import tqdm

from ._checks import host_points, padded_chunks
from ._curve import CubicSpline
from ._metric import AbstractMetric, check_metric


class GraphPaths(eqx.Module):
    """Shortest paths in a weighted graph over latent points: a
    k-nearest-neighbour graph ([`graph_paths`][latentgeo.graph_paths]) or a
    lattice ([`lattice_paths`][latentgeo.lattice_paths]).

    The graph's nodes are the `N` query points followed by the other nodes
    (extra points, lattice nodes). Distances between the query points are kept;
    paths are found again (Dijkstra from the pairs' first points) when asked
    for, so memory stays $O(N^2 + E)$ whatever the number of nodes.

    **Attributes:**

    - `distances`: `(N, N)` graph distances between the query points: the metric
      length of the shortest path, symmetric with zero diagonal. An estimate of
      the geodesic distance, usually above it (a path is a curve), though each
      edge is measured on a few points only, so on strongly curved metrics it
      can fall below. NaN for pairs that no path of finite edges joins: the
      metric is NaN or infinite between them.
    - `nodes`: `(V, d)` the graph's nodes, the query points first.
    - `edges`: `(E, 2)` the node indices of the finite edges (undirected).
    - `weights`: `(E,)` their metric lengths.
    """

    distances: Float[np.ndarray, "N N"]
    nodes: Float[np.ndarray, "V d"]
    edges: Int[np.ndarray, "E 2"]
    weights: Float[np.ndarray, " E"]

    def dijkstra(
        self, sources: Int[np.ndarray, " S"]
    ) -> tuple[Float[np.ndarray, "S V"], Int[np.ndarray, "S V"]]:
        """Distances `(S, V)` and predecessors `(S, V)` from the nodes
        `sources`, by Dijkstra: every node's graph distance from each source,
        and its previous node on the shortest path (-9999 where none)."""
        from scipy.sparse.csgraph import dijkstra

        distances, predecessors = dijkstra(
            _csr(self.edges, self.weights, self.nodes.shape[0]),
            directed=False,
            indices=sources,
            return_predecessors=True,
        )
        return distances, predecessors

    def path(self, i: int, j: int) -> Float[np.ndarray, "m d"]:
        """The nodes of the shortest path from query point `i` to `j`, `(m, d)`.

        **Raises:** `ValueError` if no path of finite edges joins them."""
        if i != j and not np.isfinite(self.distances[i, j]):
            raise ValueError(
                f"No path of finite edges joins query points {i} and {j}: the "
                "metric is NaN or infinite between them."
            )
        distances, predecessors = self.dijkstra(np.array([i]))
        hops = _walk(predecessors, np.array([0]), np.array([i]), np.array([j]))[0]
        keep = np.concatenate([[True], hops[1:] != hops[:-1]])
        return self.nodes[hops[keep]]

    def init_curves(
        self,
        rows: Int[np.ndarray, " B"],
        cols: Int[np.ndarray, " B"],
        num_segments: int = 10,
        *,
        fields: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
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
        - `fields`: as for
          [`alternative_curves`][latentgeo.GraphPaths.alternative_curves]:
          the query points' Dijkstra distances and predecessors, reused
          between calls; by default `dijkstra`, afresh.

        **Returns:** a `CubicSpline` batched over the `B` pairs.
        """
        rows, cols = np.asarray(rows), np.asarray(cols)
        sources, which = np.unique(rows, return_inverse=True)
        node_distances, predecessors = (fields or self.dijkstra)(sources)
        joined = np.isfinite(node_distances[which, cols])
        hops = _walk(predecessors, which, rows, np.where(joined, cols, rows))
        total = np.where(joined, node_distances[which, cols], 1.0)
        along = node_distances[which[:, None], hops] / total[:, None]
        return self._fitted(hops, along, joined, rows, cols, num_segments)

    def alternative_curves(
        self,
        rows: Int[np.ndarray, " B"],
        cols: Int[np.ndarray, " B"],
        num_segments: int = 10,
        *,
        separation: float = 0.1,
        slack: float = 0.01,
        fields: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> tuple[CubicSpline, Bool[np.ndarray, " B"]]:
        """Starting curves along each pair's best route *other* than its
        shortest path, where one nearly as short exists.

        Where a metric has many local minima (ReLU decoders), the shortest
        graph path and a second route a fraction of a percent longer can lead
        the solver to geodesics a percent or more apart, in either order: the
        graph's lengths, measured edge by edge, cannot rank such near-ties.
        Solving from both and keeping the shorter geodesic settles them
        ([`TwoRoutes`][latentgeo.TwoRoutes]).

        The second route is the shortest path from `rows[b]` to `cols[b]`
        through a *via node*: among the nodes farther than `separation` times
        the end points' Euclidean distance from every node of the shortest
        path, the one that minimises the length of the shortest path through
        it (its distances from both end points, by Dijkstra from both). The
        pair has one if that path is at most `1 + slack` times the shortest.

        **Arguments:**

        - `rows`, `cols`: `(B,)` indices of query points, `rows != cols`.
        - `num_segments`: $n$, segments of the fitted splines.
        - `separation`: how far the via node lies from the shortest path, a
          fraction of the end points' distance (0.1).
        - `slack`: how much longer than the shortest path the second route
          may be (0.01).
        - `fields`: a function from query-point indices `(S,)` to their
          distances and predecessors `(S, V)`, as
          [`dijkstra`][latentgeo.GraphPaths.dijkstra] returns them, to reuse
          them between calls ([`TwoRoutes`][latentgeo.TwoRoutes] keeps each
          point's for a whole run); by default `dijkstra`, afresh.

        **Returns:** a `CubicSpline` batched over the `B` pairs (the shortest
        path's curve where a pair has no second route), and a `(B,)` boolean
        array: which pairs have one.
        """
        from scipy.spatial import cKDTree

        if not (separation > 0 and slack >= 0):
            raise ValueError(
                f"Need `separation` > 0 and `slack` >= 0, got {separation}, {slack}."
            )
        rows, cols = np.asarray(rows), np.asarray(cols)
        sources, which = np.unique(np.concatenate([rows, cols]), return_inverse=True)
        node_distances, predecessors = (fields or self.dijkstra)(sources)
        from_row, from_col = np.split(which, 2)
        routes, arcs, found = [], [], np.zeros(len(rows), bool)
        for b, (i, j) in enumerate(zip(rows, cols)):
            to_i, to_j = node_distances[from_row[b]], node_distances[from_col[b]]
            shortest = to_i[j]
            through = to_i + to_j
            walk = lambda index, source, target: _walk(  # noqa: E731
                predecessors, np.array([index]), np.array([source]), np.array([target])
            )[0]
            best = walk(from_row[b], i, j) if np.isfinite(shortest) else np.array([i])
            near = np.flatnonzero(through <= (1 + slack) * shortest)
            if not np.isfinite(shortest):
                near = near[:0]
            radius = separation * np.linalg.norm(self.nodes[j] - self.nodes[i])
            if near.size and radius > 0:
                gap = cKDTree(self.nodes[best]).query(
                    self.nodes[near], distance_upper_bound=radius
                )[0]
                near = near[gap > radius]
            if near.size == 0:
                routes.append(best)
                arcs.append(to_i[best] / np.where(np.isfinite(shortest), shortest, 1))
                continue
            via = near[np.argmin(through[near])]
            first, second = walk(from_row[b], i, via), walk(from_col[b], j, via)[::-1]
            routes.append(np.concatenate([first, second[1:]]))
            arcs.append(
                np.concatenate([to_i[first], through[via] - to_j[second[1:]]])
                / through[via]
            )
            found[b] = True
        length = max(len(route) for route in routes)
        pad = lambda a, fill: np.pad(a, (length - len(a), 0), constant_values=fill)  # noqa: E731
        hops = np.stack([pad(route, route[0]) for route in routes])
        along = np.stack([pad(arc, 0.0) for arc in arcs])
        joined = np.isfinite(self.distances[rows, cols]) | (rows == cols)
        curves = self._fitted(hops, along, joined, rows, cols, num_segments)
        return curves, found

    def _fitted(
        self,
        hops: Int[np.ndarray, "B L"],
        along: Float[np.ndarray, "B L"],
        joined: Bool[np.ndarray, " B"],
        rows: Int[np.ndarray, " B"],
        cols: Int[np.ndarray, " B"],
        num_segments: int,
    ) -> CubicSpline:
        """Splines fitted to the node paths `hops` (each padded at its start by
        repeating its source), resampled at uniform `along` (the nodes' arc
        length from the source, as a fraction of the path's); straight lines
        for pairs not `joined`."""
        if hops.shape[1] == 1:  # every pair unjoined: no segment to walk
            hops = np.concatenate([hops, hops], axis=1)
            along = np.concatenate([along, along], axis=1)
        along = along.copy()
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


def _walk(
    predecessors: np.ndarray,
    which: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
) -> np.ndarray:
    """Node sequences `(B, L)` from `sources` to `targets` (reachable) through
    the predecessor rows `which`, each padded at its start by repeating its
    source."""
    current = np.asarray(targets)
    hops = [current]
    while np.any(current != sources):
        current = np.where(current == sources, current, predecessors[which, current])
        hops.append(current)
    return np.stack(hops[::-1], axis=1)


def _csr(edges: np.ndarray, weights: np.ndarray, num_nodes: int):
    from scipy.sparse import coo_array

    # Sparse graphs treat stored zeros as no edge: keep weights positive so that
    # duplicate points never look unconnected.
    positive = np.maximum(weights, np.finfo(weights.dtype).tiny)
    return coo_array(
        (positive, (edges[:, 0], edges[:, 1])), shape=(num_nodes, num_nodes)
    ).tocsr()


def shortest_paths(
    nodes: np.ndarray,
    edges: np.ndarray,
    weights: np.ndarray,
    num_query: int,
    chunk: int = 256,
) -> GraphPaths:
    """The `GraphPaths` of a graph: Dijkstra from the first `num_query` nodes, in
    chunks of sources, keeping the distances between them. Edges of non-finite
    weight are left out."""
    from scipy.sparse.csgraph import dijkstra

    finite = np.isfinite(weights)
    edges, weights = edges[finite].astype(np.intc), weights[finite]
    graph = _csr(edges, weights, nodes.shape[0])
    distances = np.empty((num_query, num_query), np.float64)
    for start in range(0, num_query, chunk):
        sources = np.arange(start, min(start + chunk, num_query))
        found = dijkstra(graph, directed=False, indices=sources)
        distances[sources] = found[:, :num_query]
    distances = np.triu(np.where(np.isinf(distances), np.nan, distances), 1)
    distances = (distances + distances.T).astype(nodes.dtype)
    return GraphPaths(distances=distances, nodes=nodes, edges=edges, weights=weights)


@functools.partial(jax.jit, static_argnums=2)
def _fit_paths(
    samples: Float[Array, "paths m d"], times: Float[Array, " m"], num_segments: int
) -> CubicSpline:
    """`CubicSpline.fit` of every path at the shared `times`, as one fit of all
    paths' coordinates side by side (the fit treats coordinates independently):
    one factorisation of the design matrix rather than a batch of them (batched
    LAPACK calls can hang several CPU devices: see `latentgeo._linalg`)."""
    num_paths, num_times, dim = samples.shape
    side_by_side = jnp.moveaxis(samples, 0, 1).reshape(num_times, num_paths * dim)
    fit = CubicSpline.fit(side_by_side, num_segments, times)
    params = jnp.moveaxis(fit.params.reshape(-1, num_paths, dim), 1, 0)
    return CubicSpline(
        fit.z0.reshape(num_paths, dim), fit.z1.reshape(num_paths, dim), params
    )


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
    neighbours: int | None = None,
    extra_points: Float[ArrayLike, "E d"] | None = None,
    edge_points: int = 16,
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
    (`scipy.sparse.csgraph.dijkstra`). In two latent dimensions
    [`lattice_paths`][latentgeo.lattice_paths] needs no data points to follow.

    Edges whose length is NaN or infinite (the metric is not finite along them)
    are left out. Query points that the remaining edges do not join, e.g. a
    point where the decoder is NaN, get NaN distances to each other; every other
    pair keeps its path. Only a neighbour graph that does not join the query
    points even with those edges is an error.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`: `(N, d)` query points.
    - `neighbours`: $k$, nearest neighbours per node. Default: 10 (or every
      other node, if fewer), doubled until the graph joins the query points.
    - `extra_points`: optional `(E, d)` further nodes, e.g. the training codes,
      so that paths can follow the data between sparse query points.
    - `edge_points`: points per edge at which its length is measured (16).
    - `batch_size`: edges per vmapped chunk (4096).
    - `progress`: show a progress bar over edge chunks.

    **Returns:** a [`GraphPaths`][latentgeo.GraphPaths]; its `distances` are the
    fast approximate geodesic distances, `init_curves` the starting curves.

    **Raises:** `ImportError` without scipy; `ValueError` for bad shapes or
    options, or when a given number of `neighbours` splits the query points
    into groups that no edge joins (raise it or add `extra_points`).

    **Example:**

    ```python
    graph = lg.graph_paths(metric, Z, extra_points=train_codes)
    graph.distances        # (N, N) graph estimate
    graph.path(0, 5)       # nodes of the path from Z[0] to Z[5]
    ```
    """
    require_scipy()
    check_metric(metric)
    points = host_points(points, metric.latent_dim, "points", min_rows=2, metric=metric)
    nodes = points
    if extra_points is not None:
        extra = host_points(extra_points, metric.latent_dim, "extra_points")
        nodes = np.concatenate([points, extra.astype(points.dtype)])
    num_nodes, num_query = nodes.shape[0], points.shape[0]
    if neighbours is not None and not 1 <= neighbours < num_nodes:
        raise ValueError(
            f"`neighbours` must be in 1..{num_nodes - 1} (nodes - 1), got {neighbours}."
        )
    if edge_points < 2 or batch_size < 1:
        raise ValueError("`edge_points` must be >= 2 and `batch_size` >= 1.")
    edges = _connecting_edges(nodes, num_query, neighbours)
    weights = edge_lengths(metric, nodes, edges, edge_points, batch_size, progress)
    return shortest_paths(nodes, edges, weights, num_query)


def edge_lengths(
    metric: AbstractMetric,
    nodes: np.ndarray,
    edges: np.ndarray,
    edge_points: int,
    batch_size: int = 4096,
    progress: bool = False,
) -> np.ndarray:
    """The metric lengths `(E,)` of the straight edges, each measured on
    `edge_points` points, in vmapped chunks of `batch_size` edges."""
    weights = np.empty(len(edges), nodes.dtype)
    if not len(edges):
        return weights
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
    return weights


def neighbour_edges(nodes: np.ndarray, k: int) -> np.ndarray:
    """The undirected edges `(E, 2)` joining each node to its `k` nearest."""
    near = _nearest_neighbours(nodes, k)
    tails = np.repeat(np.arange(nodes.shape[0]), k)
    edges = np.sort(np.stack([tails, near.ravel()], axis=1), axis=1)
    return np.unique(edges, axis=0).astype(np.intc)


def require_scipy() -> None:
    try:
        import scipy.sparse.csgraph  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "Graph initialisation needs scipy: `pip install latentgeo[graph]`."
        ) from error


def _connecting_edges(
    nodes: np.ndarray, num_query: int, neighbours: int | None
) -> np.ndarray:
    """The undirected edges `(E, 2)` of the `neighbours`-nearest-neighbour graph;
    by default of the first graph from `min(10, V - 1)` neighbours, doubling,
    that joins the query points."""
    num_nodes = nodes.shape[0]
    k = min(10, num_nodes - 1) if neighbours is None else neighbours
    while True:
        edges = neighbour_edges(nodes, k)
        groups = _query_groups(edges, num_nodes, num_query)
        if groups == 1:
            return edges
        if neighbours is not None or k == num_nodes - 1:
            raise ValueError(
                f"The {k}-nearest-neighbour graph splits the query points into "
                f"{groups} unconnected groups; raise `neighbours` or add "
                "`extra_points` between them."
            )
        k = min(2 * k, num_nodes - 1)


def _query_groups(edges, num_nodes: int, num_query: int) -> int:
    """How many connected groups the graph (finite or not) splits the query
    points into."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    ones = np.ones(len(edges), np.int8)
    structure = coo_array(
        (ones, (edges[:, 0], edges[:, 1])), shape=(num_nodes, num_nodes)
    ).tocsr()
    _, labels = connected_components(structure, directed=False)
    return np.unique(labels[:num_query]).size
