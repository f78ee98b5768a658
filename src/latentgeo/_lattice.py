r"""Shortest paths on a square lattice over a box of a 2-D latent space, in JAX.

A geodesic solver started from one curve finds the geodesic nearest to it; a
shorter one elsewhere (around a region the decoders disagree on, or past a ReLU
decoder's kinks) stays unseen. In two latent dimensions a lattice over the
pair's neighbourhood sees every route at once: its nodes are decoded once, its
edges (to the 16 nearest lattice directions) weighted by their metric length
(`metric.edge_lengths`, which shares the work at shared nodes), and the
shortest distances from a point relax in a `lax.while_loop` over whole arrays
(Bellman-Ford on the lattice). Everything is jit-compiled and `vmap`-able, so
the search runs inside [`geodesic`][latentgeo.geodesic] for each pair.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._checks import HIGHEST
from ._curve import CubicSpline, design_matrix
from ._metric import AbstractMetric

# Half of the 16 lattice directions, `(di, dj)`, each with `di >= 0`; the other
# half are their negatives. With knight moves the longest detour of a lattice
# path is 2.7% on a flat, isotropic metric (8 directions: 8.2%).
DIRECTIONS = np.array(
    [[1, 0], [0, 1], [1, 1], [1, -1], [2, 1], [1, 2], [2, -1], [1, -2]]
)
_MOVES = np.concatenate(
    [DIRECTIONS, -DIRECTIONS]
)  # (16, 2): move k goes node -> node + m_k
_PAD = 2  # the longest move along an axis
_BLOCK = 4  # a point off the lattice joins the BLOCK x BLOCK nodes around it


class Lattice(eqx.Module):
    """A square lattice of `(cells + 1)^2` nodes with spacing `spacing` from
    `origin` (the corner of least coordinates)."""

    origin: Float[Array, " 2"]
    spacing: Float[Array, ""]
    cells: int = eqx.field(static=True)

    @classmethod
    def around(
        cls, points: Float[Array, "m 2"], cells: int, margin: float
    ) -> "Lattice":
        """The lattice over the square box around `points`: their bounding
        box's longer side plus `margin` times it on each side, centred."""
        low, high = jnp.min(points, axis=0), jnp.max(points, axis=0)
        extent = jnp.max(high - low)
        extent = jnp.where(extent > 0, extent, 1.0)
        side = extent * (1 + 2 * margin)
        return cls((low + high) / 2 - side / 2, side / cells, cells)

    @property
    def size(self) -> int:
        return self.cells + 1

    def nodes(self) -> Float[Array, "size size 2"]:
        index = jnp.arange(self.size, dtype=self.origin.dtype)
        grid = jnp.stack(jnp.meshgrid(index, index, indexing="ij"), axis=-1)
        return self.origin[None, None] + self.spacing * grid

    def block(self, z: Float[Array, " 2"]) -> Int[Array, "BLOCK2 2"]:
        """Indices `(BLOCK^2, 2)` of the nodes around `z` (clipped to the
        lattice; a point outside joins its nearest border nodes)."""
        corner = jnp.floor((z - self.origin) / self.spacing).astype(jnp.int32)
        steps = jnp.arange(_BLOCK, dtype=jnp.int32) - (_BLOCK // 2 - 1)
        offsets = jnp.stack(jnp.meshgrid(steps, steps, indexing="ij"), -1)
        return jnp.clip(corner[None] + offsets.reshape(-1, 2), 0, self.cells)


def grid_weights(
    metric: AbstractMetric,
    origin: Float[Array, " 2"],
    spacing: Float[Array, ""],
    rows: int,
    cols: int,
) -> Float[Array, "rows cols 8"]:
    """`weights[i, j, k]`: the metric length of the edge from the node
    `origin + spacing * (i, j)` of a `rows x cols` grid along `DIRECTIONS[k]`; `inf`
    where it leaves the grid or is not finite."""
    index = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1)
    targets = index[:, :, None, :] + DIRECTIONS[None, None]  # (rows, cols, 8, 2)
    inside = np.all((targets >= 0) & (targets < (rows, cols)), axis=-1)
    source = np.broadcast_to(index[:, :, None, :], targets.shape)
    flat = lambda ij: ij[..., 0] * cols + ij[..., 1]  # noqa: E731
    edges = np.stack([flat(source), np.where(inside, flat(targets), flat(source))], -1)
    nodes = origin[None] + spacing * jnp.asarray(index.reshape(-1, 2), origin.dtype)
    lengths = metric.edge_lengths(nodes, jnp.asarray(edges.reshape(-1, 2)))
    lengths = lengths.reshape(rows, cols, len(DIRECTIONS))
    usable = jnp.asarray(inside) & jnp.isfinite(lengths)
    return jnp.where(usable, lengths, jnp.inf)


def edge_weights(metric: AbstractMetric, lattice: Lattice) -> Float[Array, "s s 8"]:
    """`weights[i, j, k]`: the metric length of the edge from node `(i, j)` along
    `DIRECTIONS[k]`; `inf` where it leaves the lattice or is not finite."""
    size = lattice.size
    return grid_weights(metric, lattice.origin, lattice.spacing, size, size)


def _shift(values: Array, move: np.ndarray) -> Array:
    """`out[m] = values[m - move]`, `inf` where `m - move` is off the lattice."""
    padded = jnp.pad(values, _PAD, constant_values=jnp.inf)
    size = values.shape[0]
    i, j = _PAD - int(move[0]), _PAD - int(move[1])
    return padded[i : i + size, j : j + size]


def attach(
    metric: AbstractMetric, lattice: Lattice, z: Float[Array, " 2"]
) -> tuple[Int[Array, "b 2"], Float[Array, " b"]]:
    """The block of nodes around `z` and the metric lengths from `z` to them."""
    block = lattice.block(z)
    nodes = lattice.nodes()[block[:, 0], block[:, 1]]
    points = jnp.concatenate([z[None], nodes])
    edges = jnp.stack(
        [
            jnp.zeros(len(block), jnp.int32),
            jnp.arange(1, len(block) + 1, dtype=jnp.int32),
        ],
        -1,
    )
    lengths = metric.edge_lengths(points, edges)
    return block, jnp.where(jnp.isfinite(lengths), lengths, jnp.inf)


class LatticeDistances(eqx.Module):
    """Shortest distances from one point to every lattice node.

    - `distances`: `(s, s)`, `inf` where no finite path reaches a node.
    - `moves`: `(s, s)` the lattice move (index into `_MOVES`) by which each
      node is reached, `-1` at the nodes joined to the point directly.
    """

    distances: Float[Array, "s s"]
    moves: Int[Array, "s s"]


def shortest_distances(
    metric: AbstractMetric,
    lattice: Lattice,
    weights: Float[Array, "s s 8"],
    source: Float[Array, " 2"],
) -> LatticeDistances:
    """Bellman-Ford relaxation on the lattice from `source` (joined to the
    nodes around it), until no distance falls."""
    block, lengths = attach(metric, lattice, source)
    size = lattice.size
    start = jnp.full((size, size), jnp.inf, lengths.dtype)
    start = start.at[block[:, 0], block[:, 1]].min(lengths)
    moves = jnp.full((size, size), -1, jnp.int32)
    num_half = len(DIRECTIONS)

    def candidates(distances: Array) -> Array:
        forward = [  # arrive by +m_k from m - m_k, over that node's edge k
            _shift(distances + weights[..., k], DIRECTIONS[k]) for k in range(num_half)
        ]
        backward = [  # arrive by -m_k from m + m_k, over this node's edge k
            _shift(distances, -DIRECTIONS[k]) + weights[..., k] for k in range(num_half)
        ]
        return jnp.stack(forward + backward)  # (16, s, s), ordered as _MOVES

    def relax(carry):
        distances, moves, _ = carry
        options = candidates(distances)
        best = jnp.min(options, axis=0)
        better = best < distances
        moves = jnp.where(better, jnp.argmin(options, axis=0).astype(jnp.int32), moves)
        return jnp.where(better, best, distances), moves, jnp.any(better)

    distances, moves, _ = jax.lax.while_loop(
        lambda carry: carry[2], relax, (start, moves, jnp.array(True))
    )
    return LatticeDistances(distances, moves)


class LatticePath(eqx.Module):
    """The shortest lattice path from a source point to a target point.

    - `length`: its metric length (`inf` if none is finite).
    - `curve`: a [`CubicSpline`][latentgeo.CubicSpline] fitted to it at uniform
      metric speed (the straight line if there is no path).
    - `points`: `(L, 2)` the path's nodes from source to target, the first ones
      repeated to a fixed length.
    """

    length: Float[Array, ""]
    curve: CubicSpline
    points: Float[Array, "L 2"]


def path_to(
    metric: AbstractMetric,
    lattice: Lattice,
    found: LatticeDistances,
    source: Float[Array, " 2"],
    target: Float[Array, " 2"],
    num_segments: int,
) -> LatticePath:
    """The shortest path from `source` (as in `found`) to `target`, walked back
    through the moves and fitted by a spline of `num_segments` segments."""
    block, lengths = attach(metric, lattice, target)
    totals = found.distances[block[:, 0], block[:, 1]] + lengths
    last = block[jnp.argmin(totals)]
    length = jnp.min(totals)
    max_hops = 4 * lattice.size

    def back(node, _):
        move = found.moves[node[0], node[1]]
        previous = node - jnp.asarray(_MOVES, jnp.int32)[jnp.maximum(move, 0)]
        return jnp.where(move >= 0, previous, node), node

    first, walked = jax.lax.scan(back, last, None, length=max_hops)
    reached = found.moves[first[0], first[1]] < 0  # else the walk was cut short
    walked = walked[::-1]  # source side first, the first node repeated
    nodes = lattice.nodes()[walked[:, 0], walked[:, 1]]
    along = found.distances[walked[:, 0], walked[:, 1]]
    points = jnp.concatenate([source[None], nodes, target[None]])
    along = jnp.concatenate([jnp.zeros(1, along.dtype), along, length[None]])
    usable = jnp.isfinite(length) & reached
    safe_total = jnp.where(usable, length, 1.0)
    along = jnp.clip(jnp.where(usable, along, 0.0) / safe_total, 0.0, 1.0)
    curve = _fit(points, along, num_segments)
    straight = CubicSpline.straight(source, target, num_segments)
    curve = jax.tree.map(lambda a, b: jnp.where(usable, a, b), curve, straight)
    return LatticePath(jnp.where(usable, length, jnp.inf), curve, points)


def _fit(points: Array, along: Array, num_segments: int) -> CubicSpline:
    """The spline through the polyline `points` at times `along` (non-decreasing
    in [0, 1]), resampled at uniform times first and fitted in least squares
    (as `CubicSpline.fit`). The uniform times make the fit a fixed linear map,
    computed once while tracing: no LAPACK call per path, so none in a batch
    (see `latentgeo._linalg`)."""
    with jax.ensure_compile_time_eval():
        times = jnp.linspace(0.0, 1.0, 4 * (num_segments + 1) + 1, dtype=points.dtype)
        fit = jnp.linalg.pinv(design_matrix(times, num_segments, 0))
    samples = jax.vmap(lambda x: jnp.interp(times, along, x), in_axes=1, out_axes=1)(
        points
    )
    samples = samples.at[0].set(points[0]).at[-1].set(points[-1])
    z0, z1 = points[0], points[-1]
    line = z0[None] + times[:, None] * (z1 - z0)[None]
    params = jnp.matmul(fit, samples - line, precision=HIGHEST)
    return CubicSpline(z0, z1, params)


def leaves_tube(
    path: Float[Array, "L 2"], curve: Float[Array, "T 2"], radius: Float[Array, ""]
) -> Bool[Array, ""]:
    """Whether some node of `path` lies farther than `radius` from every point
    of `curve` (a different route)."""
    gaps = jnp.linalg.norm(path[:, None, :] - curve[None, :, :], axis=-1)
    return jnp.max(jnp.min(gaps, axis=1)) > radius
