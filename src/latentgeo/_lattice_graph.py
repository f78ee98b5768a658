r"""A lattice graph over a two-dimensional latent space: one graph for all pairs
of many points, needing no data points to follow.

The lattice covers the points'
bounding box plus a margin; its edges join each node to its 16 nearest lattice
directions, and every query point is joined to the 4 x 4 lattice nodes around
it. Edge lengths are the metric's (`metric.edge_lengths`, each lattice node
decoded once), computed in jit-compiled blocks of lattice rows; shortest paths
are Dijkstra's, as for the neighbour graph ([`graph_paths`][latentgeo.graph_paths]).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float
from tqdm import tqdm

from ._checks import host_points, padded_chunks
from ._graph import (
    GraphPaths,
    edge_lengths,
    neighbour_edges,
    require_scipy,
    shortest_paths,
)
from ._lattice import DIRECTIONS, Lattice, attach, grid_weights
from ._metric import AbstractMetric, check_metric

_ROWS = 8  # lattice rows per compiled block of edge lengths
_QUERIES = 256  # query points per compiled block of attachments


@eqx.filter_jit
def _row_block(metric, lattice: Lattice, first_row) -> jax.Array:
    """Weights `(_ROWS, size, 8)` of the edges leaving rows `first_row ..
    first_row + _ROWS - 1` (two more rows hold their ends)."""
    origin = lattice.origin + jnp.stack([first_row * lattice.spacing, 0.0])
    weights = grid_weights(metric, origin, lattice.spacing, _ROWS + 2, lattice.size)
    return weights[:_ROWS]


@eqx.filter_jit
def _attachments(metric, lattice: Lattice, points) -> tuple[jax.Array, jax.Array]:
    return jax.vmap(lambda z: attach(metric, lattice, z))(points)


def lattice_paths(
    metric: AbstractMetric,
    points: Float[ArrayLike, "N d"],
    *,
    cells: int = 512,
    margin: float = 0.25,
    neighbours: int = 10,
    edge_points: int = 16,
    progress: bool = False,
) -> GraphPaths:
    r"""Shortest paths between points of a two-dimensional latent space on a
    lattice over their bounding box, with edges weighted by their metric length.

    The lattice has `(cells + 1)^2` nodes over the square around the points'
    bounding box (its longer side plus `margin` times it on each side). Each
    node is joined to its neighbours in the 16 nearest lattice directions
    (so that a lattice path is at most 2.7% longer than a straight segment of
    a flat metric, more for strongly anisotropic ones), and each query point to
    the 4 x 4 nodes around it and to its `neighbours` nearest query points
    (edges measured on `edge_points` points, for pairs closer than a few
    lattice cells). Unlike a neighbour graph
    ([`graph_paths`][latentgeo.graph_paths]) it needs no data points between
    the query points, and it covers every route through the box.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric] of a
      two-dimensional latent space.
    - `points`: `(N, 2)` query points, $N \ge 2$.
    - `cells`: lattice cells along the box's side (512).
    - `margin`: the box's margin on each side, a fraction of the points'
      extent (0.25).
    - `neighbours`: direct edges from each query point to its nearest query
      points (10, or every other one if fewer).
    - `edge_points`: points on which those edges are measured (16).
    - `progress`: show a progress bar over blocks of lattice rows.

    **Returns:** a [`GraphPaths`][latentgeo.GraphPaths] (query points first,
    then the lattice nodes row by row).

    **Raises:** `ImportError` without scipy; `ValueError` for points of the
    wrong shape or with NaN/inf, a latent dimension other than 2, `cells < 2`
    or a negative `margin`.

    **Example:**

    ```python
    graph = lg.lattice_paths(metric, Z)
    graph.distances        # (N, N)
    ```
    """
    require_scipy()
    check_metric(metric)
    if metric.latent_dim != 2:
        raise ValueError(
            f"A lattice covers a 2-D latent space; this metric's is "
            f"{metric.latent_dim}-D: use `lg.graph_paths`."
        )
    if cells < 2 or not margin >= 0:
        raise ValueError(f"Need `cells` >= 2 and `margin` >= 0, got {cells}, {margin}.")
    points = host_points(points, 2, "points", min_rows=2, metric=metric)
    lattice = Lattice.around(jnp.asarray(points), cells, margin)
    size, num_query = lattice.size, points.shape[0]
    nodes = np.asarray(lattice.nodes(), points.dtype).reshape(-1, 2)
    lattice_edges, lattice_weights = _lattice_edges(metric, lattice, progress)
    blocks, lengths = [], []
    for chunk, count in padded_chunks(num_query, min(_QUERIES, num_query)):
        block, length = _attachments(metric, lattice, jnp.asarray(points[chunk]))
        blocks.append(np.asarray(block)[:count])
        lengths.append(np.asarray(length)[:count])
    block, length = np.concatenate(blocks), np.concatenate(lengths)  # (N, 16, ..)
    query = np.repeat(np.arange(num_query), block.shape[1])
    target = num_query + block[..., 0].ravel() * size + block[..., 1].ravel()
    near = neighbour_edges(points, min(neighbours, num_query - 1))
    near_weights = edge_lengths(metric, points, near, edge_points)
    edges = np.concatenate(
        [np.stack([query, target], axis=1), lattice_edges + num_query, near]
    )
    weights = np.concatenate([length.ravel(), lattice_weights, near_weights])
    nodes = np.concatenate([points, nodes])
    return shortest_paths(nodes, edges, weights.astype(points.dtype), num_query)


def _lattice_edges(
    metric: AbstractMetric, lattice: Lattice, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The lattice's edges `(E, 2)` (indices of its nodes, row-major) and their
    weights, block of rows by block of rows."""
    size = lattice.size
    weights = np.empty((-(-size // _ROWS) * _ROWS, size, len(DIRECTIONS)))
    for first in tqdm(
        range(0, size, _ROWS), disable=not progress, desc="lattice edges"
    ):
        block = _row_block(metric, lattice, jnp.asarray(first, lattice.origin.dtype))
        weights[first : first + _ROWS] = np.asarray(block)
    weights = weights[:size]
    index = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1)
    targets = index[:, :, None, :] + DIRECTIONS[None, None]
    inside = np.all((targets >= 0) & (targets < size), axis=-1)
    tails = np.broadcast_to(
        (index[..., 0] * size + index[..., 1])[..., None], inside.shape
    )
    heads = targets[..., 0] * size + targets[..., 1]
    edges = np.stack([tails[inside], heads[inside]], axis=1)
    return edges, weights[inside]
