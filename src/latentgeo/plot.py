r"""Plots of learned latent spaces: points and geodesics, background maps over a
latent grid, metric indicatrices, and the robustness experiment's histogram.

matplotlib is an optional dependency (`pip install latentgeo[plot]`), imported
only when a function here is called. Every function draws on `ax` when given and
on a new figure otherwise, and returns the `matplotlib.axes.Axes`, so plots can
be layered:

```python
ax = lg.plot.uncertainty_map(ens, points=Z, log=True)
lg.plot.latents(Z, y, curves=result.curves, ax=ax)
```

**Latent dimension.** Everything is drawn in a plane. For $d = 2$ it is the
latent space itself. For $d > 2$ it is the plane through the mean of the given
`points` spanned by their first two principal components (PCA): points and
curves are projected orthogonally onto it, while background maps and
indicatrices are evaluated *on* the plane, a 2-D slice of the latent space. The
axis labels (`PC 1`, `PC 2`) and the map titles say so. The same `points` give
the same plane, so layered plots line up.
"""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Shaped

from ._checks import HIGHEST, host_points, padded_chunks
from ._curve import AbstractCurve
from ._decode import decode_along
from ._ensemble import EnsembleDecoder
from ._metric import AbstractMetric

if TYPE_CHECKING:
    import matplotlib.axes

__all__ = [
    "cv_histogram",
    "image_strips",
    "indicatrices",
    "latents",
    "magnification_map",
    "uncertainty_map",
    "variance_map",
]

_CURVE_POINTS = 129  # evaluation points per drawn curve
_ELLIPSE_VERTICES = 64  # vertices per drawn indicatrix
_MARGIN = 0.1  # grid margin around the points, as a fraction of their extent


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "latentgeo.plot needs matplotlib: `pip install latentgeo[plot]`."
        ) from error
    return plt


def _new_axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


class _Plane(NamedTuple):
    """The drawing plane: `origin + u * basis[0] + v * basis[1]`."""

    origin: np.ndarray  # (d,)
    basis: np.ndarray  # (2, d), orthonormal rows

    @property
    def latent_dim(self) -> int:
        return self.basis.shape[1]

    def project(self, x: np.ndarray) -> np.ndarray:
        return (x - self.origin) @ self.basis.T

    def lift(self, uv: np.ndarray) -> np.ndarray:
        return self.origin + uv @ self.basis


def _plane(latent_dim: int, points: np.ndarray | None) -> _Plane:
    if latent_dim < 2:
        raise ValueError(
            f"Latent plots need d >= 2, got d = {latent_dim}; plot a 1-D latent "
            "space against another quantity directly."
        )
    if latent_dim == 2:
        return _Plane(np.zeros(2), np.eye(2))
    if points is None or points.shape[0] < 2:
        raise ValueError(
            f"The latent space has d = {latent_dim} > 2: pass `points` (N >= 2) "
            "whose first two principal components define the plane to draw."
        )
    origin = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - origin, full_matrices=False)
    return _Plane(origin, vt[:2])


def _label_axes(ax, plane: _Plane) -> None:
    d = plane.latent_dim
    if d == 2:
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    else:
        ax.set_xlabel(f"PC 1 (PCA projection of the {d}-D latents)")
        ax.set_ylabel(f"PC 2 (PCA projection of the {d}-D latents)")
    ax.set_aspect("equal")


def _title(quantity: str, plane: _Plane) -> str:
    if plane.latent_dim == 2:
        return quantity
    return f"{quantity}\non the PCA plane (2-D slice of the {plane.latent_dim}-D space)"


def _grid(plane: _Plane, points, bounds, resolution: int):
    """Grid axes `xs`, `ys` (resolution,) in plane coordinates and latent grid
    points `(resolution * resolution, d)`, row-major with `y` slowest."""
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
    return xs, ys, plane.lift(uv).astype(dtype)


@eqx.filter_jit
def _evaluate_chunk(field, chunk):
    return jax.vmap(field)(chunk)


def _evaluate(field, grid: np.ndarray, batch_size: int) -> np.ndarray:
    """`jax.vmap(field)` over the rows of `grid`, `batch_size` rows at a time.
    The last chunk is padded by repetition, so there is one compilation."""
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    values = []
    for chunk, count in padded_chunks(grid.shape[0], min(batch_size, grid.shape[0])):
        out = _evaluate_chunk(field, jnp.asarray(grid[chunk]))
        values.append(np.asarray(out)[:count])
    return np.concatenate(values)


def _draw_map(ax, xs, ys, values, *, title, label, log, plane):
    image = ax.pcolormesh(
        xs,
        ys,
        values.reshape(ys.size, xs.size),
        shading="nearest",
        cmap="viridis",
        norm="log" if log else None,
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_title(_title(title, plane))
    _label_axes(ax, plane)
    return ax


def _uncertainty(ensemble: EnsembleDecoder, z: Array) -> Array:
    return ensemble.uncertainty(z)


def _log_det(metric: AbstractMetric, z: Array) -> Array:
    sign, log_abs_det = jnp.linalg.slogdet(metric.tensor(z))
    return jnp.where(sign > 0, log_abs_det, jnp.nan)


def _mean_variance(model, z: Array) -> Array:
    return jnp.mean(model.variance(z))


def _plane_tensor(metric: AbstractMetric, basis: Array, z: Array) -> Array:
    return jnp.matmul(
        basis,
        jnp.matmul(metric.tensor(z), basis.T, precision=HIGHEST),
        precision=HIGHEST,
    )


def _map_points(model, points):
    points = None if points is None else host_points(points, model.latent_dim)
    return points, _plane(model.latent_dim, points)


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
    plane = _plane(points.shape[1], points)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (points.shape[0],):
            raise ValueError(
                f"`labels` has shape {labels.shape}, expected ({points.shape[0]},) "
                "to match `points`."
            )
    paths = [] if curves is None else _curve_points(curves, points.shape[1])
    ax = _new_axes(ax)
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
        ax.legend(fontsize="small")
    _label_axes(ax, plane)
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
    points, plane = _map_points(ensemble, points)
    xs, ys, grid = _grid(plane, points, bounds, resolution)
    values = _evaluate(jtu.Partial(_uncertainty, ensemble), grid, batch_size)
    ax = _new_axes(ax)
    return _draw_map(
        ax,
        xs,
        ys,
        values,
        title="ensemble uncertainty",
        label="uncertainty $u(z)$",
        log=log,
        plane=plane,
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
    if not isinstance(metric, AbstractMetric):
        raise TypeError(f"`metric` must be an AbstractMetric, got {type(metric)}.")
    points, plane = _map_points(metric, points)
    xs, ys, grid = _grid(plane, points, bounds, resolution)
    values = _evaluate(jtu.Partial(_log_det, metric), grid, batch_size)
    ax = _new_axes(ax)
    return _draw_map(
        ax,
        xs,
        ys,
        values,
        title="magnification",
        label=r"$\log \det G(z)$",
        log=False,
        plane=plane,
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
    points, plane = _map_points(model, points)
    xs, ys, grid = _grid(plane, points, bounds, resolution)
    values = _evaluate(jtu.Partial(_mean_variance, model), grid, batch_size)
    ax = _new_axes(ax)
    return _draw_map(
        ax,
        xs,
        ys,
        values,
        title="output variance",
        label=r"mean output variance $\sigma^2(z)$",
        log=log,
        plane=plane,
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
    if not isinstance(metric, AbstractMetric):
        raise TypeError(f"`metric` must be an AbstractMetric, got {type(metric)}.")
    if scale is not None and not scale > 0:
        raise ValueError(f"`scale` must be positive, got {scale}.")
    points, plane = _map_points(metric, points)
    xs, ys, grid = _grid(plane, points, bounds, resolution)
    basis = jnp.asarray(plane.basis, grid.dtype)
    field = jtu.Partial(_plane_tensor, metric, basis)
    tensors = _evaluate(field, grid, grid.shape[0]).astype(np.float64)
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
    centres = plane.project(grid[drawn].astype(np.float64))
    ax = _new_axes(ax)
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
    ax.legend(fontsize="small")
    _label_axes(ax, plane)
    return ax


def cv_histogram(
    cv_a: Float[ArrayLike, " pairs_a"],
    cv_b: Float[ArrayLike, " pairs_b"],
    *,
    labels: tuple[str, str] = ("ensemble", "RBF"),
    bins: int = 20,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    """Histograms of two methods' coefficients of variation, on shared bins.

    In the robustness experiment each test pair's geodesic distance is computed
    under models retrained with different seeds; its coefficient of variation
    (CV = std / mean across seeds) measures how stable the distance is. Lower is
    better. Each method's mean CV is marked with a dashed line and given in the
    legend.

    **Arguments:**

    - `cv_a`, `cv_b`: `(pairs,)` CVs of the two methods (finite, non-empty).
    - `labels`: the methods' names (`("ensemble", "RBF")`).
    - `bins`: number of shared bins (20).
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`; `ax.containers` holds the two
    histograms' bars, in argument order.

    **Raises:** `ValueError` if a CV array is not 1-D, is empty or is not finite.
    """
    values = []
    for name, cv in (("cv_a", cv_a), ("cv_b", cv_b)):
        cv = np.asarray(cv, dtype=np.float64)
        if cv.ndim != 1 or cv.size == 0 or not np.all(np.isfinite(cv)):
            raise ValueError(
                f"`{name}` must be a non-empty 1-D array of finite CVs, got shape "
                f"{cv.shape}."
            )
        values.append(cv)
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
    ax = _new_axes(ax)
    for cv, label, colour in zip(values, labels, ("tab:blue", "tab:orange")):
        mean = cv.mean()
        ax.hist(
            cv, bins=edges, color=colour, alpha=0.6, label=f"{label} (mean {mean:.3g})"
        )
        ax.axvline(mean, color=colour, ls="--", lw=1.5)
    ax.set_xlabel("coefficient of variation across seeds (std / mean)")
    ax.set_ylabel("test pairs")
    ax.legend()
    return ax


def _as_image(output: np.ndarray, reshape) -> np.ndarray:
    """One decoded output as an image `(H, W)` or `(H, W, 3|4)`."""
    if callable(reshape):
        image = np.asarray(reshape(output))
    elif reshape is not None:
        if math.prod(reshape) != output.size:
            raise ValueError(
                f"`reshape={tuple(reshape)}` has {math.prod(reshape)} entries, but "
                f"each output has {output.size} (shape {output.shape})."
            )
        image = output.reshape(reshape)
    else:
        image = output
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[-1] in (3, 4)):
        hint = "" if reshape is not None else ", e.g. `reshape=(28, 28)`"
        raise ValueError(
            f"Outputs of shape {output.shape} are not images (H, W) or (H, W, 3|4)"
            f"; pass `reshape` (a shape, or a function output -> image){hint}."
        )
    return image


def image_strips(
    ensemble: EnsembleDecoder,
    curve: AbstractCurve | Float[ArrayLike, "n d"],
    *,
    num_images: int = 9,
    reshape: tuple[int, ...] | Callable[[np.ndarray], np.ndarray] | None = None,
    straight: bool = True,
    spread: bool = False,
    label: str = "geodesic",
    cmap: str = "gray",
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    """Decoded images along a latent curve, next to those along the straight line.

    Each row shows the ensemble mean decoded at `num_images` uniform times from
    $t = 0$ to $1$ ([`decode_along`][latentgeo.decode_along]): the curve first,
    then the straight line between its end points. With `spread=True` each row
    is followed by the members' standard deviation (same times, its own colour
    scale): where a path leaves the data, the members disagree. Mean rows share
    one grey scale.

    **Arguments:**

    - `ensemble`: an [`EnsembleDecoder`][latentgeo.EnsembleDecoder] producing
      what should be seen (e.g. members wrapped in a sigmoid for logits).
    - `curve`: one [`AbstractCurve`][latentgeo.AbstractCurve], or an `(n, d)`
      array of points (e.g. `lg.exp_path(...).points`), shown as given.
    - `num_images`: images per row for a curve (9).
    - `reshape`: how one output becomes an image: `None` for outputs that are
      images already (`(H, W)`, or channels-last `(H, W, 1|3|4)`), a shape such
      as `(28, 28)` for flat outputs, or a function `output -> image`, e.g.
      `lambda x: x.transpose(1, 2, 0)` for channels-first outputs.
    - `straight`: add the straight-line row(s) (`True`).
    - `spread`: add a row of the members' standard deviation after each mean
      row (`False`); for colour images, averaged over channels.
    - `label`: the curve's row label (`"geodesic"`).
    - `cmap`: colour map of single-channel images (`"gray"`).
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`; `ax.images` holds the tiles row by
    row, left to right.

    **Raises:** `ValueError` for outputs that are not images without a fitting
    `reshape`, or a bad `curve` (as `decode_along`); `ImportError` without
    matplotlib.

    **Example:**

    ```python
    res = lg.geodesic(lg.ExpectedMetric(ens), z0, z1)
    lg.plot.image_strips(ens, res.curve, reshape=(28, 28), spread=True)
    ```
    """
    if num_images < 2:
        raise ValueError(f"`num_images` must be at least 2, got {num_images}.")
    decoded = decode_along(ensemble, curve, num_points=num_images)
    rows = [(label, decoded.mean, False)]
    if spread:
        rows.append((f"{label}: spread", decoded.std, True))
    if straight:
        ends = decoded.points[jnp.array([0, -1])]
        times = jnp.linspace(0.0, 1.0, decoded.points.shape[0], dtype=ends.dtype)
        line = ends[0][None] + times[:, None] * (ends[1] - ends[0])[None]
        along_line = decode_along(ensemble, line)
        rows.append(("straight line", along_line.mean, False))
        if spread:
            rows.append(("straight line: spread", along_line.std, True))
    images = [
        [_as_image(np.asarray(x, np.float64), reshape) for x in values]
        for _, values, _ in rows
    ]
    for row, (_, _, is_spread) in zip(images, rows):
        if is_spread and row[0].ndim == 3:
            row[:] = [image[..., :3].mean(axis=-1) for image in row]
    height, width = images[0][0].shape[:2]
    gap = max(1, width // 8)

    def scale(is_spread: bool) -> dict:
        values = [im for im, r in zip(images, rows) if r[2] == is_spread]
        stack = np.stack([np.stack(row) for row in values])
        low = 0.0 if is_spread else float(stack.min())
        return {"vmin": low, "vmax": max(float(stack.max()), low + 1e-12)}

    norms = {False: scale(False), True: scale(True) if spread else None}
    ax = _new_axes(ax)
    for r, (row, (_, _, is_spread)) in enumerate(zip(images, rows)):
        top = r * (height + gap)
        for i, image in enumerate(row):
            left = i * (width + gap)
            extent = (left, left + width, top + height, top)
            if image.ndim == 3:
                ax.imshow(np.clip(image, 0.0, 1.0), extent=extent)
            else:
                colours = "magma" if is_spread else cmap
                ax.imshow(image, extent=extent, cmap=colours, **norms[is_spread])
    count = len(images[0])
    ax.set_xlim(0, count * (width + gap) - gap)
    ax.set_ylim(len(rows) * (height + gap) - gap, 0)
    ax.set_xticks([i * (width + gap) + width / 2 for i in range(count)])
    ax.set_xticklabels([f"{t:.2f}" for t in np.linspace(0, 1, count)])
    ax.set_xlabel("t along the path")
    ax.set_yticks([r * (height + gap) + height / 2 for r in range(len(rows))])
    ax.set_yticklabels([name for name, _, _ in rows])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax
