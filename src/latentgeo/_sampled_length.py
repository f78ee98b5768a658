r"""The paper's official "length" of a curve under an ensemble, for reproductions.

Syrota, Moreno-Muñoz & Hauberg (2024) report geodesic lengths computed by the
official code (`mustass/ensertainty`, `Geodesics.calculate_length` in
`"ensemble"` mode, with 4096 points at inference). It is not a Riemannian
length: it decodes the curve at `num_points` times, draws one member
independently at each time, and sums the data-space distances between
consecutive decoded points. Where members disagree, about $(K - 1)/K$ of the
consecutive points come from different members, and each such step adds the
members' disagreement however close the times are: the sum grows linearly with
`num_points`. See the [robustness page](../robustness.md) for what this does to
the paper's experiment.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._curve import AbstractCurve
from ._ensemble import EnsembleDecoder
from ._metric import safe_norm


def sampled_member_length(
    ensemble: EnsembleDecoder,
    curve: AbstractCurve,
    num_points: int = 4096,
    *,
    key: PRNGKeyArray,
) -> Float[Array, ""]:
    r"""The official estimator of the paper's code: a reproduction aid, not a length.

    With times $t_i = i / (n - 1)$, $i = 0, \dots, n - 1$, and members
    $k_i$ drawn independently and uniformly at each time (one `jax.random.split`
    key per time and `jax.random.choice` over the $K$ members, as the official
    code draws them), it returns

    $$\sum_{i=1}^{n-1} \big\| f_{k_i}(c(t_i)) - f_{k_{i-1}}(c(t_{i-1})) \big\|_2,$$

    the Euclidean length of the data-space polyline that hops between members.
    With identical members (or $K = 1$) it is the polyline length of the
    decoded curve, which tends to its Euclidean data-space length as $n$ grows.
    With members that disagree by $\delta(z)$ it is about
    $\frac{K-1}{K}\sum_i \delta(c(t_i))$ plus the curve's length: it grows
    linearly with `num_points`, so it measures the members' disagreement along
    the curve more than the curve. Use it only to set a result beside the
    paper's; the curve's length is `metric.curve_length` (or
    `geodesic(...).length`).

    **Arguments:**

    - `ensemble`: an [`EnsembleDecoder`][latentgeo.EnsembleDecoder], decoding
      to the space the distances are measured in (e.g. pixels: wrap logits in
      a sigmoid). Outputs are flattened.
    - `curve`: one [`AbstractCurve`][latentgeo.AbstractCurve] (not a batch; use
      `jax.vmap` over curves and keys).
    - `num_points`: $n \ge 2$ (4096, the official inference setting).
    - `key`: PRNG key of the member draws.

    **Returns:** a scalar in the ensemble's dtype.

    **Raises:** `TypeError` if `ensemble` is not an `EnsembleDecoder`,
    `ValueError` if `num_points < 2` or the curve's points do not have the
    ensemble's latent dimension.

    **Example:**

    ```python
    result = lg.geodesic(metric, z0, z1)
    lg.sampled_member_length(ensemble, result.curve, key=jax.random.key(0))
    ```
    """
    if not isinstance(ensemble, EnsembleDecoder):
        raise TypeError(
            f"`ensemble` must be an EnsembleDecoder, got {type(ensemble).__name__}."
        )
    if num_points < 2:
        raise ValueError(f"`num_points` must be at least 2, got {num_points}.")
    return _sampled_member_length(ensemble, curve, num_points, key)


@eqx.filter_jit
def _sampled_member_length(ensemble, curve, num_points, key):
    dtype = jax.tree.leaves(eqx.filter(curve, eqx.is_inexact_array))[0].dtype
    points = curve(jnp.linspace(0.0, 1.0, num_points, dtype=dtype))
    if points.shape != (num_points, ensemble.latent_dim):
        raise ValueError(
            f"The curve gives points of shape {points.shape[1:]}, expected "
            f"({ensemble.latent_dim},) (one curve, not a batch)."
        )
    choose = lambda k: jr.choice(k, ensemble.num_members)  # noqa: E731
    members = jax.vmap(choose)(jr.split(key, num_points))
    decoded = _decode_drawn(ensemble, points, members)
    return jnp.sum(safe_norm(decoded[1:] - decoded[:-1]))


def _decode_drawn(
    ensemble: EnsembleDecoder,
    points: Float[Array, "n d"],
    members: Int[Array, " n"],
) -> Float[Array, "n D"]:
    """`f_{members[i]}(points[i])`, flattened, decoding each point with its own
    member only.

    The points are sorted by member; each round decodes, for every member, a
    window of `capacity` of its points (about 1.25 n / K, so one round nearly
    always suffices and the work is about 1.25 n decodes, not K n)."""
    num_points, num_members = members.shape[0], ensemble.num_members
    capacity = min(num_points, -(-5 * num_points // (4 * num_members)))
    order = jnp.argsort(members, stable=True)
    counts = jnp.bincount(members, length=num_members)
    starts = jnp.cumsum(counts) - counts
    slots = jnp.arange(capacity)
    size = math.prod(ensemble.out_shape)
    # (C, d) -> (C, *out) for one member; then over the members' stacked params.
    decode_member = eqx.filter_vmap(ensemble.apply, in_axes=(None, 0))
    decode = eqx.filter_vmap(decode_member, in_axes=(eqx.if_array(0), 0))

    def round_(carry):
        window, decoded = carry
        offset = window * capacity + slots  # (C,)
        valid = offset[None] < counts[:, None]  # (K, C)
        position = jnp.minimum(starts[:, None] + offset[None], num_points - 1)
        index = order[position]  # (K, C) point indices
        outputs = decode(ensemble.params, points[index])
        target = jnp.where(valid, index, num_points)  # out of range: dropped
        decoded = decoded.at[target.ravel()].set(outputs.reshape(-1, size), mode="drop")
        return window + 1, decoded

    def more(carry):
        return carry[0] * capacity < jnp.max(counts)

    dtype = points.dtype
    start = (jnp.array(0), jnp.zeros((num_points, size), dtype))
    return jax.lax.while_loop(more, round_, start)[1]
