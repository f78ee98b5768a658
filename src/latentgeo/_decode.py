"""Data-space views of latent curves: what the decoders produce along them."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._checks import as_float
from ._curve import AbstractCurve
from ._ensemble import EnsembleDecoder


class DecodedCurve(eqx.Module):
    """The ensemble's outputs at points along a curve, from
    [`decode_along`][latentgeo.decode_along].

    **Attributes:**

    - `points`: `(n, d)` latent points.
    - `mean`: `(n, *out_shape)` member mean $\\mu(z)$ at each point.
    - `std`: `(n, *out_shape)` standard deviation across members (population,
      $1/K$) at each point: the ensemble's spread, large off the data.
    """

    points: Float[Array, "n d"]
    mean: Float[Array, " n *out"]
    std: Float[Array, " n *out"]


@eqx.filter_jit
def _decode(ensemble: EnsembleDecoder, points: Array) -> tuple[Array, Array]:
    outputs = jax.vmap(ensemble)(points)  # (n, K, *out)
    return jnp.mean(outputs, axis=1), jnp.std(outputs, axis=1)


def decode_along(
    ensemble: EnsembleDecoder,
    curve: AbstractCurve | Float[ArrayLike, "n d"],
    *,
    num_points: int = 9,
) -> DecodedCurve:
    """Decode points along a latent curve: the ensemble mean and spread there.

    **Arguments:**

    - `ensemble`: an [`EnsembleDecoder`][latentgeo.EnsembleDecoder]; decode to
      the quantity you want to see (for a VAE with logits, wrap the members in a
      sigmoid, as in the [digits notebook](../notebooks.md)).
    - `curve`: one [`AbstractCurve`][latentgeo.AbstractCurve] (e.g.
      `lg.geodesic(...).curve`), evaluated at `num_points` uniform times in
      $[0, 1]$; or an `(n, d)` array of points (e.g. `lg.exp_path(...).points`,
      a graph path), decoded as given.
    - `num_points`: points on a curve (9); ignored for arrays.

    **Returns:** a [`DecodedCurve`][latentgeo.DecodedCurve].

    **Raises:** `TypeError` if `ensemble` is not an `EnsembleDecoder`;
    `ValueError` for points of the wrong shape, NaN/inf points, a batch of
    curves, or `num_points < 2`.

    **Example:**

    ```python
    decoded = lg.decode_along(ens, lg.geodesic(metric, z0, z1).curve)
    decoded.mean.shape  # (9, *ens.out_shape)
    ```
    """
    if not isinstance(ensemble, EnsembleDecoder):
        raise TypeError(
            f"`ensemble` must be an EnsembleDecoder, got {type(ensemble)}; wrap a "
            "single decoder with `lg.EnsembleDecoder.from_members([decoder])`."
        )
    if isinstance(curve, AbstractCurve):
        if jnp.ndim(curve.z0) != 1:
            raise ValueError(
                "`curve` is a batch of curves (its `z0` has shape "
                f"{jnp.shape(curve.z0)}); pass one, e.g. `result.curve_of(i, j)`."
            )
        if num_points < 2:
            raise ValueError(f"`num_points` must be at least 2, got {num_points}.")
        times = jnp.linspace(0.0, 1.0, num_points, dtype=jnp.result_type(curve.z0))
        points = curve(times)
    else:
        points = as_float(curve)
    if points.ndim != 2 or points.shape[1] != ensemble.latent_dim:
        raise ValueError(
            f"`curve` has points of shape {points.shape}, expected "
            f"(n, {ensemble.latent_dim})."
        )
    if not bool(jnp.all(jnp.isfinite(points))):
        raise ValueError("`curve` has NaN or infinite points.")
    mean, std = _decode(ensemble, points)
    return DecodedCurve(points, mean, std)
