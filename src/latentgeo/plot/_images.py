"""Image strips: what an ensemble decodes along a latent curve and along the
straight line between its end points."""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._curve import AbstractCurve
from .._decode import decode_along
from .._ensemble import EnsembleDecoder
from ._axes import new_axes

if TYPE_CHECKING:
    import matplotlib.axes


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
    ax = new_axes(ax)
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
