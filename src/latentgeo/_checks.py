"""Input checks, float promotion and the precision constant, written once.

Two kinds of check:

- *traced* (inside `jit`/`vmap`): shapes raise `ValueError` at trace time, naming
  the argument; values (NaN/inf) raise at run time through `eqx.error_if`;
- *host* (NumPy arrays before a long computation starts): every fault raises
  `ValueError` at once, naming the argument and the offending rows.
"""

from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from equinox._enum import EnumerationItem  # the type of `RESULTS.successful`
from jaxtyping import Array, ArrayLike, Bool, PyTree

HIGHEST = jax.lax.Precision.HIGHEST
"""Full float32 precision for matrix products: GPUs otherwise round them to
about three significant digits, which moves curves and lengths."""


def as_float(x: ArrayLike) -> Array:
    """`x` as a JAX array of a floating dtype (integers become the default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def check_point_shape(z: ArrayLike, latent_dim: int, name: str = "z") -> None:
    """Raise `ValueError` (at trace time) unless `z` has shape `(latent_dim,)`."""
    if jnp.shape(z) != (latent_dim,):
        raise ValueError(
            f"`{name}` has shape {jnp.shape(z)}, expected ({latent_dim},); "
            "functions take one latent point, batch with `jax.vmap`."
        )


def working_dtype(metric: PyTree, dtype: np.dtype) -> np.dtype:
    """The float dtype of a computation on points of float `dtype` with `metric`:
    JAX's promotion of `dtype` with the metric's float arrays, as `weights @ z`
    promotes. float32 points with a float64 model run in float64 (under x64),
    rather than carry float32 curves through float64 solver steps; strict dtype
    promotion refuses that mix, as JAX does."""
    arrays = jtu.tree_leaves(eqx.filter(metric, eqx.is_inexact_array))
    return np.dtype(jnp.result_type(dtype, *arrays))


def checked_point(
    z: ArrayLike, latent_dim: int, name: str = "z", dtype: np.dtype | None = None
) -> Array:
    """`z` as a float array of shape `(latent_dim,)`, in `dtype` if given, that
    raises at run time if it holds NaN or inf. Works under `jit` and `vmap`."""
    check_point_shape(z, latent_dim, name)
    z = as_float(z) if dtype is None else jnp.asarray(z, dtype)
    return eqx.error_if(z, ~jnp.all(jnp.isfinite(z)), f"`{name}` contains NaN or inf.")


def host_points(
    points: ArrayLike,
    latent_dim: int | None,
    name: str = "points",
    min_rows: int = 1,
    metric: PyTree = None,
) -> np.ndarray:
    """`points` as a NumPy float array `(N, latent_dim)` with `N >= min_rows`, all
    finite, in the `working_dtype` of `metric` if given; otherwise `ValueError`
    naming the argument (and the bad rows)."""
    points = np.asarray(points)
    expected = "d" if latent_dim is None else latent_dim
    if points.ndim != 2 or (latent_dim is not None and points.shape[1] != latent_dim):
        raise ValueError(
            f"`{name}` has shape {points.shape}, expected (N, {expected})."
        )
    if points.shape[0] < min_rows:
        raise ValueError(
            f"`{name}` needs at least {min_rows} points, got {points.shape[0]}."
        )
    if not np.issubdtype(points.dtype, np.floating):
        points = points.astype(jnp.result_type(float))
    # float64 input becomes float32 unless float64 is enabled (as JAX would).
    points = points.astype(jax.dtypes.canonicalize_dtype(points.dtype), copy=False)
    if metric is not None:
        points = points.astype(working_dtype(metric, points.dtype), copy=False)
    bad = np.flatnonzero(~np.all(np.isfinite(points), axis=1))
    if bad.size:
        shown = bad[:10].tolist()
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise ValueError(f"`{name}` rows {shown}{more} contain NaN or inf.")
    return points


def padded_chunks(num_items: int, size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Split `range(num_items)` into chunks of exactly `size` indices, the last
    one padded by repeating its own indices, so a compiled function sees one
    shape. Yields `(indices, count)`: only the first `count` results are real."""
    if size < 1:
        raise ValueError(f"Chunk size must be at least 1, got {size}.")
    for start in range(0, num_items, size):
        count = min(size, num_items - start)
        yield np.resize(np.arange(start, start + count), size), count


def select_tree(mask: Bool[ArrayLike, ""], new: PyTree, old: PyTree) -> PyTree:
    """`new` where `mask` holds, else `old`, leaf by leaf (the trees share one
    structure; the leaves are arrays or `eqx.Enumeration` items)."""
    return jtu.tree_map(lambda a, b: jnp.where(mask, a, b), new, old)


def raise_if_failed(
    throw: bool, value: PyTree, result: EnumerationItem, ok: Bool[Array, ""]
) -> PyTree:
    """With `throw`, `value` tied to a run-time error carrying `result`'s message
    unless `ok` (`eqx.error_if`, under `jit` and `vmap`); else `value` as it is."""
    return result.error_if(value, ~ok) if throw else value
