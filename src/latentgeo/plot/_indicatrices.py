r"""Metric indicatrices: ellipses of unit-speed tangent vectors on a latent grid."""

from typing import TYPE_CHECKING

import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import HIGHEST
from .._metric import AbstractMetric, check_metric
from ._axes import new_axes
from ._grid import evaluate, latent_grid
from ._plane import label_axes

if TYPE_CHECKING:
    import matplotlib.axes

_ELLIPSE_VERTICES = 64  # vertices per drawn indicatrix


def _plane_tensor(metric: AbstractMetric, basis: Array, z: Array) -> Array:
    return jnp.matmul(
        basis,
        jnp.matmul(metric.tensor(z), basis.T, precision=HIGHEST),
        precision=HIGHEST,
    )


def indicatrices(
    metric: AbstractMetric,
    *,
    points: Float[ArrayLike, "N d"] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 7,
    scale: float | None = None,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    r"""Metric indicatrices: the ellipses $\{v : v^\top G(z) v = 1\}$ of unit-speed
    tangent vectors, drawn at grid points $z$ and multiplied by `scale`.

    A large ellipse means the decoder changes slowly there (cheap to travel), a
    small one that it changes fast (or, for an ensemble, that members disagree).
    For $d > 2$ the ellipse is that of the metric restricted to the PCA plane,
    $B G(z) B^\top$ with $B$ the `(2, d)` plane basis. Ellipses of a singular
    restricted metric are unbounded and are not drawn.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`, `bounds`: the grid's extent (and plane), as for
      [`uncertainty_map`][latentgeo.plot.uncertainty_map].
    - `resolution`: ellipses per axis (7).
    - `scale`: factor applied to every ellipse; default `None` chooses it so the
      largest semi-axis is 0.45 grid spacings (no overlaps). The value used is in
      the legend.
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`; the ellipses are a `PolyCollection`
    (its last collection), one closed polygon per drawn grid point. No title is
    set, so it can be drawn over a map.

    **Raises:** `TypeError` if `metric` is not an `AbstractMetric`; `ValueError`
    as for `uncertainty_map`, or for a non-positive `scale`.
    """
    check_metric(metric)
    if scale is not None and not scale > 0:
        raise ValueError(f"`scale` must be positive, got {scale}.")
    grid = latent_grid(metric.latent_dim, points, bounds, resolution)
    plane, xs, ys = grid.plane, grid.xs, grid.ys
    basis = jnp.asarray(plane.basis, grid.points.dtype)
    field = jtu.Partial(_plane_tensor, metric, basis)
    tensors = evaluate(field, grid.points, grid.points.shape[0]).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(tensors)  # (n, 2), (n, 2, 2)
    drawn = np.all(eigenvalues > 0, axis=1)
    semi_axes = 1.0 / np.sqrt(eigenvalues[drawn])
    if scale is None:
        spacing = min(xs[1] - xs[0], ys[1] - ys[0])
        scale = 0.45 * spacing / semi_axes.max() if semi_axes.size else 1.0
    angles = np.linspace(0.0, 2 * np.pi, _ELLIPSE_VERTICES, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)])  # (2, m)
    # v = U diag(1 / sqrt(lambda)) (cos, sin): exactly v^T G v = 1.
    offsets = np.einsum("nij,nj,jm->nmi", eigenvectors[drawn], semi_axes, circle)
    centres = plane.project(grid.points[drawn].astype(np.float64))
    ax = new_axes(ax)
    from matplotlib.collections import PolyCollection

    collection = PolyCollection(
        centres[:, None, :] + scale * offsets,
        facecolors="tab:orange",
        edgecolors="tab:red",
        alpha=0.6,
        label=f"indicatrices $v^\\top G v = 1$, scaled by {scale:.3g}",
    )
    ax.add_collection(collection)
    ax.autoscale_view()
    ax.legend(fontsize="small", loc="upper right")  # "best" is slow on many points
    label_axes(ax, plane)
    return ax
