r"""Maps over a latent grid, written once: check the points, lay a grid over the
drawing plane, evaluate a per-point quantity on it in bounded chunks, and draw
the values as an image.

Every background map ([`uncertainty_map`][latentgeo.plot.uncertainty_map],
[`magnification_map`][latentgeo.plot.magnification_map],
[`variance_map`][latentgeo.plot.variance_map]) is one call of `grid_map`;
[`indicatrices`][latentgeo.plot.indicatrices] uses its first two steps,
`latent_grid` and `evaluate`, and draws ellipses instead.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array

from .._checks import host_points, padded_chunks
from ._axes import new_axes
from ._plane import Plane, drawing_plane, label_axes, plane_title

_MARGIN = 0.1  # grid margin around the points, as a fraction of their extent


class LatentGrid(NamedTuple):
    """A square grid on the drawing plane, in plane and in latent coordinates."""

    plane: Plane
    xs: np.ndarray  # (resolution,) plane coordinates of the columns
    ys: np.ndarray  # (resolution,) plane coordinates of the rows
    points: np.ndarray  # (resolution * resolution, d), row-major with y slowest


def latent_grid(latent_dim: int, points, bounds, resolution: int) -> LatentGrid:
    """Check the points, choose the drawing plane and lay a grid over it.

    **Arguments:**

    - `latent_dim`: the latent dimension $d$ of the model to evaluate.
    - `points`: `(N, d)` latent codes or `None`; the grid covers them with a 10%
      margin, and for $d > 2$ they define the PCA plane.
    - `bounds`: `(xmin, xmax, ymin, ymax)` in plane coordinates or `None`;
      overrides the extent from `points`. One of the two is needed.
    - `resolution`: grid points per axis, at least 2.

    **Returns:** a `LatentGrid`; its `points` have the default float dtype.

    **Raises:** `ValueError` for `points` of the wrong shape or not finite, a
    resolution below 2, or missing or empty bounds.
    """
    points = None if points is None else host_points(points, latent_dim)
    plane = drawing_plane(latent_dim, points)
    if resolution < 2:
        raise ValueError(f"`resolution` must be at least 2, got {resolution}.")
    if bounds is None:
        if points is None:
            raise ValueError(
                "Pass `points` (the grid then covers them with a margin) or "
                "`bounds=(xmin, xmax, ymin, ymax)`."
            )
        uv = plane.project(points)
        low, high = uv.min(axis=0), uv.max(axis=0)
        margin = _MARGIN * (high - low)
        bounds = (low[0] - margin[0], high[0] + margin[0])
        bounds += (low[1] - margin[1], high[1] + margin[1])
    if len(bounds) != 4:
        raise ValueError(f"`bounds` must be (xmin, xmax, ymin, ymax), got {bounds}.")
    xmin, xmax, ymin, ymax = map(float, bounds)
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(
            f"`bounds` {bounds} is empty: need xmin < xmax and ymin < ymax "
            "(points on a line span no area; pass `bounds`)."
        )
    dtype = jnp.result_type(float)
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    uv = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return LatentGrid(plane, xs, ys, plane.lift(uv).astype(dtype))


@eqx.filter_jit
def _evaluate_chunk(field, chunk):
    return jax.vmap(field)(chunk)


def evaluate(field, grid: np.ndarray, batch_size: int) -> np.ndarray:
    """`jax.vmap(field)` over the rows of `grid`, `batch_size` rows at a time.

    The last chunk is padded by repetition, so there is one compilation; a
    `field` built as `jtu.Partial(function, model)` of a module-level function
    is compiled once per model structure, not once per call.

    **Arguments:**

    - `field`: a function of one latent point `(d,)`, returning an array.
    - `grid`: `(n, d)` latent points.
    - `batch_size`: rows per vmapped evaluation, at least 1.

    **Returns:** the stacked values `(n, ...)`, as a NumPy array.

    **Raises:** `ValueError` for a `batch_size` below 1.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    values = []
    for chunk, count in padded_chunks(grid.shape[0], min(batch_size, grid.shape[0])):
        out = _evaluate_chunk(field, jnp.asarray(grid[chunk]))
        values.append(np.asarray(out)[:count])
    return np.concatenate(values)


def grid_map(
    quantity: Callable[..., Array],
    model,
    *,
    points,
    bounds,
    resolution: int,
    batch_size: int,
    log: bool,
    title: str,
    label: str,
    ax,
):
    """Draw `quantity(model, z)` over a latent grid as an image with a colour bar.

    Validate the points → lay the grid (`latent_grid`) → evaluate
    `jtu.Partial(quantity, model)` at every grid point (`evaluate`) → draw one
    `pcolormesh` cell centred on each grid point, titled and labelled for the
    drawing plane. The image array holds the raw values; `log` changes only the
    colour scale.

    **Arguments:**

    - `quantity`: a module-level function `(model, z) -> value`, `z` one latent
      point `(d,)` and `value` a scalar `()`.
    - `model`: the pytree passed as `quantity`'s first argument; it has an int
      `latent_dim`.
    - `points`, `bounds`, `resolution`: the grid, as for `latent_grid`.
    - `batch_size`: grid points per vmapped evaluation, as for `evaluate`.
    - `log`: logarithmic colour scale.
    - `title`: the quantity's name, the axes' title (with a note on the slice for
      $d > 2$).
    - `label`: the colour bar's label.
    - `ax`: the axes to draw on, or `None` for a new figure.

    **Returns:** the `matplotlib.axes.Axes`; the map is its first collection, a
    `QuadMesh` of shape `(resolution, resolution)`, rows along `y`.

    **Raises:** `ValueError` as for `latent_grid` and `evaluate`.
    """
    grid = latent_grid(model.latent_dim, points, bounds, resolution)
    values = evaluate(jtu.Partial(quantity, model), grid.points, batch_size)
    ax = new_axes(ax)
    image = ax.pcolormesh(
        grid.xs,
        grid.ys,
        values.reshape(grid.ys.size, grid.xs.size),
        shading="nearest",
        cmap="viridis",
        norm="log" if log else None,
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_title(plane_title(title, grid.plane))
    label_axes(ax, grid.plane)
    return ax
