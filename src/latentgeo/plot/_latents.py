"""Scatter plots of latent codes, coloured by label, with curves on top."""

from typing import TYPE_CHECKING

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import ArrayLike, Float, Shaped

from .._checks import host_points
from .._curve import AbstractCurve
from ._axes import new_axes
from ._plane import drawing_plane, label_axes

if TYPE_CHECKING:
    import matplotlib.axes

_CURVE_POINTS = 129  # evaluation points per drawn curve


def latents(
    points: Float[ArrayLike, "N d"],
    labels: Shaped[ArrayLike, " N"] | None = None,
    *,
    curves: AbstractCurve | Float[ArrayLike, "n_curves n_points d"] | None = None,
    straight: bool = True,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    """Scatter latent codes, coloured by label, with curves and straight lines on top.

    **Arguments:**

    - `points`: `(N, d)` latent codes, $d \\ge 2$; for $d > 2$ they are projected
      onto their first two principal components (see the module notes).
    - `labels`: `(N,)` class labels (any dtype), one colour and legend entry per
      class; default `None`, one colour.
    - `curves`: curves to draw (in red), either an
      [`AbstractCurve`][latentgeo.AbstractCurve] such as a
      [`CubicSpline`][latentgeo.CubicSpline] — one curve, or a batch with a
      leading axis on every field, e.g. `jax.vmap(lg.geodesic, ...)(...).curve` or
      [`PairwiseResult.curves`][latentgeo.PairwiseResult] — evaluated at 129
      times, or an array of polylines of shape `(n_curves, n_points, d)`.
      Default `None`.
    - `straight`: also draw the straight line between each curve's end points
      (dashed grey). Default `True`.
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`.

    **Raises:** `ValueError` for `points`, `labels` or `curves` of the wrong shape,
    or $d < 2$; `ImportError` without matplotlib.

    **Example:**

    ```python
    result = lg.pairwise_geodesics(lg.ExpectedMetric(ens), Z[:10])
    lg.plot.latents(Z, y, curves=result.curves)
    ```
    """
    points = host_points(points, None)
    plane = drawing_plane(points.shape[1], points)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (points.shape[0],):
            raise ValueError(
                f"`labels` has shape {labels.shape}, expected ({points.shape[0]},) "
                "to match `points`."
            )
    paths = [] if curves is None else _curve_points(curves, points.shape[1])
    ax = new_axes(ax)
    uv = plane.project(points)
    if labels is None:
        ax.scatter(uv[:, 0], uv[:, 1], s=8, color="tab:blue")
    else:
        import matplotlib

        classes = np.unique(labels)
        colormap = matplotlib.colormaps["tab10" if classes.size <= 10 else "viridis"]
        for index, label in enumerate(classes):
            colour = colormap(index if classes.size <= 10 else index / classes.size)
            members = uv[labels == label]
            ax.scatter(members[:, 0], members[:, 1], s=8, color=colour, label=label)
    for index, path in enumerate(plane.project(path) for path in paths):
        first = index == 0
        if straight:
            ends = path[[0, -1]]
            ax.plot(
                *ends.T,
                "--",
                color="0.4",
                lw=1,
                label="straight line" if first else None,
            )
        ax.plot(*path.T, color="tab:red", lw=1.5, label="geodesic" if first else None)
    if labels is not None or curves is not None:
        ax.legend(fontsize="small", loc="upper right")  # "best" is slow on many points
    label_axes(ax, plane)
    return ax


def _curve_points(curves, latent_dim: int) -> np.ndarray:
    """Polylines `(n_curves, n_points, d)` from curves or an array of them."""
    if isinstance(curves, AbstractCurve):
        z0 = jnp.asarray(curves.z0)
        if z0.ndim == 1:  # one curve: give every field a leading axis of 1
            curves = jtu.tree_map(lambda x: x[None] if eqx.is_array(x) else x, curves)
            z0 = z0[None]
        times = jnp.linspace(0.0, 1.0, _CURVE_POINTS, dtype=z0.dtype)
        paths = np.asarray(eqx.filter_vmap(lambda curve: curve(times))(curves))
    else:
        paths = np.asarray(curves)
    if paths.ndim != 3 or paths.shape[1] < 2 or paths.shape[2] != latent_dim:
        raise ValueError(
            f"`curves` has point shape {paths.shape}, expected (n_curves, n_points, "
            f"{latent_dim}) with n_points >= 2."
        )
    return paths
