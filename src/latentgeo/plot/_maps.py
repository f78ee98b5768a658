r"""Background maps over a latent grid: the ensemble's uncertainty, a metric's
log-volume element, a model's output variance. Each is one call of
`grid_map` (in `_grid.py`) with its own per-point quantity."""

from typing import TYPE_CHECKING

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._ensemble import EnsembleDecoder
from .._metric import AbstractMetric, check_metric
from ._grid import grid_map

if TYPE_CHECKING:
    import matplotlib.axes


def _uncertainty(ensemble: EnsembleDecoder, z: Array) -> Array:
    return ensemble.uncertainty(z)


def _log_det(metric: AbstractMetric, z: Array) -> Array:
    sign, log_abs_det = jnp.linalg.slogdet(metric.tensor(z))
    return jnp.where(sign > 0, log_abs_det, jnp.nan)


def _mean_variance(model, z: Array) -> Array:
    return jnp.mean(model.variance(z))


def uncertainty_map(
    ensemble: EnsembleDecoder,
    *,
    points: Float[ArrayLike, "N d"] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 100,
    batch_size: int = 4096,
    log: bool = False,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    r"""The ensemble's uncertainty $u(z)$ (the paper's eq. 13: mean over outputs of
    the standard deviation across members) over a latent grid.

    Values come from [`EnsembleDecoder.uncertainty`][latentgeo.EnsembleDecoder],
    `jax.vmap`-ed over `batch_size` grid points at a time, so memory stays bounded
    for large decoders and fine grids. The image array holds the raw values;
    `log=True` changes only the colour scale.

    **Arguments:**

    - `ensemble`: an [`EnsembleDecoder`][latentgeo.EnsembleDecoder].
    - `points`: `(N, d)` latent codes; the grid covers them with a 10% margin, and
      for $d > 2$ they define the PCA plane of the map. Default `None`.
    - `bounds`: `(xmin, xmax, ymin, ymax)` of the grid in plane coordinates;
      overrides the extent from `points`. One of the two is needed.
    - `resolution`: grid points per axis (100).
    - `batch_size`: grid points per vmapped evaluation (4096).
    - `log`: logarithmic colour scale (`False`).
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`; the map is its first collection, a
    `QuadMesh` with one cell centred on each grid point.

    **Raises:** `TypeError` if `ensemble` is not an `EnsembleDecoder`;
    `ValueError` for missing or empty bounds, or `points` of the wrong shape.
    """
    if not isinstance(ensemble, EnsembleDecoder):
        hint = " (use `metric.ensemble`)" if hasattr(ensemble, "ensemble") else ""
        raise TypeError(
            f"`ensemble` must be an EnsembleDecoder, got {type(ensemble).__name__}"
            f"{hint}."
        )
    return grid_map(
        _uncertainty,
        ensemble,
        points=points,
        bounds=bounds,
        resolution=resolution,
        batch_size=batch_size,
        log=log,
        title="ensemble uncertainty",
        label="uncertainty $u(z)$",
        ax=ax,
    )


def magnification_map(
    metric: AbstractMetric,
    *,
    points: Float[ArrayLike, "N d"] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 100,
    batch_size: int = 4096,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    r"""The log-volume element $\log \det G(z)$ of a metric over a latent grid.

    $\sqrt{\det G}$ is the magnification factor: how much the decoder stretches
    a small latent area. Cells where $G$ is singular ($\det G = 0$) are left blank
    (NaN). For $d > 2$ the determinant is that of the full $d \times d$ tensor at
    points of the PCA plane.

    **Arguments:**

    - `metric`: any [`AbstractMetric`][latentgeo.AbstractMetric].
    - `points`, `bounds`, `resolution`, `batch_size`, `ax`: as for
      [`uncertainty_map`][latentgeo.plot.uncertainty_map].

    **Returns:** the `matplotlib.axes.Axes`, with the map as its first collection.

    **Raises:** `TypeError` if `metric` is not an `AbstractMetric`; `ValueError`
    as for `uncertainty_map`.
    """
    check_metric(metric)
    return grid_map(
        _log_det,
        metric,
        points=points,
        bounds=bounds,
        resolution=resolution,
        batch_size=batch_size,
        log=False,
        title="magnification",
        label=r"$\log \det G(z)$",
        ax=ax,
    )


def variance_map(
    model,
    *,
    points: Float[ArrayLike, "N d"] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 100,
    batch_size: int = 4096,
    log: bool = False,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    r"""A model's output variance over a latent grid, averaged over outputs.

    Meant for the RBF-variance baseline, whose variance $\sigma^2(z) = 1 /
    \beta(z)$ grows away from the data, but any object with a `latent_dim` and a
    method `variance(z)` taking one point `(d,)` and returning an array of
    per-output variances works, e.g. an
    [`EnsembleDecoder`][latentgeo.EnsembleDecoder] (variance across members).
    The value plotted at $z$ is `mean(model.variance(z))`.

    **Arguments:**

    - `model`: an object with `latent_dim` and `variance(z)`.
    - `points`, `bounds`, `resolution`, `batch_size`, `log`, `ax`: as for
      [`uncertainty_map`][latentgeo.plot.uncertainty_map].

    **Returns:** the `matplotlib.axes.Axes`, with the map as its first collection.

    **Raises:** `TypeError` if `model` has no `variance` method or `latent_dim`;
    `ValueError` as for `uncertainty_map`.
    """
    if not callable(getattr(model, "variance", None)) or not isinstance(
        getattr(model, "latent_dim", None), int
    ):
        raise TypeError(
            f"`model` ({type(model).__name__}) needs an int `latent_dim` and a "
            "method `variance(z)`."
        )
    return grid_map(
        _mean_variance,
        model,
        points=points,
        bounds=bounds,
        resolution=resolution,
        batch_size=batch_size,
        log=log,
        title="output variance",
        label=r"mean output variance $\sigma^2(z)$",
        ax=ax,
    )
