r"""The RBF-variance baseline metric of Arvanitidis, Hansen & Hauberg (2018).

A deterministic decoder $\mu$ is given a variance that grows away from the data:
the precision $\beta(z) = W v(z) + \zeta$ is a non-negative combination of
Gaussian bumps $v_j(z) = \exp(-\lambda_j \|z - c_j\|^2)$ around k-means centres of
the training latents, plus a small floor $\zeta$. The metric is the pull-back of
$e(z) = (\mu(z), \sigma(z))$ with $\sigma = \beta^{-1/2}$.
"""

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._checks import HIGHEST
from ._ensemble import EnsembleDecoder
from ._kmeans import kmeans
from ._metric import AbstractPullbackMetric


def _rbf_features(
    z: Float[Array, " d"], centers: Float[Array, "C d"], bandwidths: Float[Array, " C"]
) -> Float[Array, " C"]:
    squared = jnp.sum((z[None, :] - centers) ** 2, axis=-1)
    return jnp.exp(-bandwidths * squared)


def _checked(x: Array, valid: Callable[[Array], Array], message: str) -> Array:
    """`x`, once `valid` (elementwise, written with operators so that it works on
    NumPy arrays and tracers) holds everywhere: a `ValueError` now for concrete
    arrays, `eqx.error_if` at run time under `jit`."""
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(x, ~jnp.all(valid(x)), message)
    if not np.all(valid(np.asarray(x))):
        raise ValueError(message)
    return x


def _output_shape(mean: Callable[[Array], Array], latent_dim: int, dtype) -> tuple:
    try:
        out = eqx.filter_eval_shape(mean, jax.ShapeDtypeStruct((latent_dim,), dtype))
    except Exception as error:  # noqa: BLE001 - re-raised with the shapes named
        raise ValueError(
            f"`mean` cannot be called on a latent point of shape ({latent_dim},) "
            f"(the latent dimension of `centers`): {error}"
        ) from error
    return tuple(out.shape)


class RBFVarianceMetric(AbstractPullbackMetric):
    r"""The RBF-variance metric (Arvanitidis, Hansen & Hauberg, *Latent Space
    Oddity*, ICLR 2018): a mean decoder with a variance that grows off the data.

    With a mean decoder $\mu: \mathbb{R}^d \to \mathbb{R}^D$ (output flattened),
    centres $c_j$, bandwidths $\lambda_j$, weights $W \ge 0$ of shape $(D, C)$ and
    $\zeta > 0$:

    $$v_j(z) = \exp(-\lambda_j \|z - c_j\|^2), \quad \beta(z) = W v(z) + \zeta,
    \quad \sigma(z) = \beta(z)^{-1/2}.$$

    It is the pull-back of $e(z) = (\mu(z), \sigma(z)) \in \mathbb{R}^{2D}$, so
    $G = J_\mu^\top J_\mu + J_\sigma^\top J_\sigma$ and the curve energy is
    $T \sum_i \|\mu(z_{i+1}) - \mu(z_i)\|^2 + \|\sigma(z_{i+1}) - \sigma(z_i)\|^2$.
    Far from every centre $\beta \to \zeta$ and $\sigma \to \zeta^{-1/2}$, so
    $\sigma$ climbs steeply where the data end and geodesics avoid empty regions.

    Build one from training data with
    [`RBFVarianceMetric.fit`][latentgeo.RBFVarianceMetric.fit], or directly:

    **Arguments:**

    - `mean`: the mean decoder, a callable `z -> output` (e.g. an `eqx.Module`
      or `ensemble.member(0)`), `z` of shape `(d,)`, output of any shape.
    - `centers`: $c_j$, shape `(C, d)`; they fix the latent dimension $d$.
    - `bandwidths`: $\lambda_j > 0$, shape `(C,)`.
    - `weights`: $W \ge 0$, shape `(D, C)` with $D$ the flattened output size.
    - `zeta`: $\zeta > 0$, the precision far from the data. Default `1e-3`.

    **Raises:**

    - `TypeError` if `mean` is an `EnsembleDecoder`.
    - `ValueError` for inconsistent shapes, a `mean` that rejects points of
      shape `(d,)`, or `zeta <= 0`.
    - `ValueError` if `centers`, `bandwidths` or `weights` contain NaN/inf, a
      bandwidth is not positive or a weight is negative; under `jit`, the same
      message as a runtime error (`eqx.error_if`).

    **Example:**

    ```python
    metric = lg.RBFVarianceMetric.fit(decoder, latents, data, key=key)
    metric.variance(z)                # shape of decoder(z)
    lg.geodesic(metric, z0, z1).length
    ```
    """

    mean: Callable[[Array], Array]
    centers: Float[Array, "C d"]
    bandwidths: Float[Array, " C"]
    weights: Float[Array, "D C"]
    zeta: float = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        mean: Callable[[Array], Array],
        centers: Float[ArrayLike, "..."],
        bandwidths: Float[ArrayLike, "..."],
        weights: Float[ArrayLike, "..."],
        zeta: float = 1e-3,
    ):
        if isinstance(mean, EnsembleDecoder):
            raise TypeError(
                "`mean` is an EnsembleDecoder: pass one decoder, e.g. "
                "`ensemble.member(0)`, or use `lg.ExpectedMetric` for the ensemble."
            )
        centers, bandwidths, weights = map(jnp.asarray, (centers, bandwidths, weights))
        if centers.ndim != 2:
            raise ValueError(f"`centers` has shape {centers.shape}, expected (C, d).")
        self.mean = mean
        self.latent_dim = centers.shape[1]
        self.out_shape = _output_shape(mean, self.latent_dim, centers.dtype)
        self.zeta = float(zeta)
        # Value checks keep the output of `eqx.error_if` under `jit`, so they live
        # here; shape checks are in `__check_init__`.
        self.centers = _checked(
            centers, lambda x: abs(x) < np.inf, "`centers` contains NaN or inf."
        )
        self.bandwidths = _checked(
            bandwidths,
            lambda x: (x > 0) & (x < np.inf),
            "`bandwidths` must be positive and finite.",
        )
        self.weights = _checked(
            weights,
            lambda x: (x >= 0) & (x < np.inf),
            "`weights` must be non-negative and finite.",
        )

    def __check_init__(self):
        num_centers = self.centers.shape[0]
        if num_centers < 1:
            raise ValueError("`centers` is empty: the metric needs at least one.")
        if self.bandwidths.shape != (num_centers,):
            raise ValueError(
                f"`bandwidths` has shape {self.bandwidths.shape}, expected "
                f"({num_centers},), one per row of `centers`."
            )
        out_size = math.prod(self.out_shape)
        if self.weights.shape != (out_size, num_centers):
            raise ValueError(
                f"`weights` has shape {self.weights.shape}, expected ({out_size}, "
                f"{num_centers}): (flattened output size of `mean`, number of "
                "centres)."
            )
        if not (math.isfinite(self.zeta) and self.zeta > 0):
            raise ValueError(f"`zeta` must be positive and finite, got {self.zeta}.")

    def _precision(self, z: Float[Array, " d"]) -> Float[Array, " D"]:
        features = _rbf_features(z, self.centers, self.bandwidths)
        return jnp.matmul(self.weights, features, precision=HIGHEST) + self.zeta

    def embed(self, z: Float[Array, " d"]) -> Float[Array, " E"]:
        r"""$e(z) = (\mu(z), \sigma(z))$, flattened, shape `(2 D,)`."""
        self.check_point(z)
        mean = jnp.ravel(self.mean(z))
        return jnp.concatenate([mean, jax.lax.rsqrt(self._precision(z))])

    def variance(self, z: Float[Array, " d"]) -> Float[Array, " *out"]:
        r"""The decoder variance $\sigma^2(z) = 1 / \beta(z)$ per output, in the
        shape of `mean(z)`; at most $1 / \zeta$, reached far from the data."""
        self.check_point(z)
        return jnp.reshape(1 / self._precision(z), self.out_shape)

    @classmethod
    def fit(
        cls,
        mean_decoder: Callable[[Array], Array],
        latents: Float[ArrayLike, "N d"],
        data: Float[ArrayLike, "N *out"],  # noqa: F821
        *,
        key: PRNGKeyArray,
        num_centers: int = 10,
        bandwidth_scale: float = 1.0,
        zeta: float = 1e-3,
        min_variance: float = 1e-6,
        num_steps: int = 1000,
        optimiser: optax.GradientTransformation | None = None,
    ) -> "RBFVarianceMetric":
        r"""Fit the variance network to training data, with `mean_decoder` fixed.

        1. Centres $c_j$: k-means with k-means++ initialisation
           ([`kmeans`][latentgeo.kmeans]) on `latents`.
        2. Bandwidths $\lambda_j = \frac12 (a\, s_j)^{-2}$, $s_j$ the mean distance
           of cluster $j$'s points to $c_j$ and $a$ = `bandwidth_scale`. A cluster
           with fewer than two points, or whose points all sit on its centre,
           takes the mean $s_j$ of the other clusters.
        3. Weights $W \ge 0$: maximise the Gaussian log-likelihood
           $\sum_{n, i} \frac12 \log \beta_i(z_n) - \frac12 \beta_i(z_n)
           (x_{n i} - \mu_i(z_n))^2$ of the training data. $W = \exp(U)$ with $U$
           unconstrained, because precisions span orders of magnitude (a step of
           Adam changes every weight by a similar factor); full-batch steps run
           in one `jax.lax.scan`. $U$ starts where $\beta$ is about the
           reciprocal of each output's mean squared residual.

        The objective is convex in $W$ (a linear term minus the log of an affine
        one), so the optimum does not depend on the starting point. It needs
        $N \times D$ memory for the residuals.

        **Arguments:**

        - `mean_decoder`: the trained mean decoder $\mu$, `z -> output`.
        - `latents`: `(N, d)` training latent codes (e.g. encoder means).
        - `data`: `(N, *out)` training observations, `out` the output shape of
          `mean_decoder`.
        - `key`: PRNG key for the k-means initialisation.
        - `num_centers`: $C$ (10, as in the paper's comparison of Syrota et al.).
        - `bandwidth_scale`: $a$ (1.0, the paper's choice); larger values give
          wider bumps, a variance that rises farther from the data.
        - `zeta`: $\zeta$, the precision far from the data, so $\zeta^{-1/2}$ is
          the largest standard deviation. Default `1e-3`: a standard deviation of
          at most about 32, far above the spread of data scaled to about unit
          range, so that empty regions are expensive. The paper only asks for a
          small $\zeta > 0$; StochMan's building blocks (`PosLinear` followed by
          `Reciprocal(b)`) leave the offset $b$ to the user. Like
          `min_variance`, it is in the units of `data`.
        - `min_variance`: squared residuals are floored at this value (1e-6), so
          outputs that the decoder reproduces exactly (e.g. constant background
          pixels) do not drive the likelihood to infinite precision.
        - `num_steps`: optimiser steps (1000).
        - `optimiser`: an optax transformation acting on $U = \log W$; default
          `optax.adam(0.05)`.

        **Returns:** the fitted `RBFVarianceMetric`.

        **Raises:** `ValueError` for mismatched shapes, NaN/inf in `latents` or
        `data`, non-positive `bandwidth_scale`, `zeta` or `min_variance`, negative
        `num_steps`, a `num_centers` outside $[1, N]$, or clusters too small to
        set any bandwidth.
        """
        if isinstance(mean_decoder, EnsembleDecoder):
            raise TypeError(
                "`mean_decoder` is an EnsembleDecoder: pass one decoder, e.g. "
                "`ensemble.member(0)`."
            )
        latents, data = jnp.asarray(latents), jnp.asarray(data)
        if latents.ndim != 2 or not jnp.issubdtype(latents.dtype, jnp.floating):
            raise ValueError(
                f"`latents` has shape {latents.shape} and dtype {latents.dtype}, "
                "expected a 2-D float array (N, d)."
            )
        out_shape = _output_shape(mean_decoder, latents.shape[1], latents.dtype)
        if data.shape != (latents.shape[0], *out_shape):
            raise ValueError(
                f"`data` has shape {data.shape}, expected ({latents.shape[0]}, "
                f"*{out_shape}): one row per latent code, in the output shape of "
                "`mean_decoder`."
            )
        for name, x in (("latents", latents), ("data", data)):
            if not np.all(np.isfinite(np.asarray(x))):
                raise ValueError(f"`{name}` contains NaN or inf.")
        for name, value in (
            ("bandwidth_scale", bandwidth_scale),
            ("zeta", zeta),
            ("min_variance", min_variance),
        ):
            if not value > 0:
                raise ValueError(f"`{name}` must be positive, got {value}.")
        if num_steps < 0:
            raise ValueError(f"`num_steps` must be non-negative, got {num_steps}.")

        clusters = kmeans(latents, num_centers, key=key)
        centers = np.asarray(clusters.centers)
        assignments = np.asarray(clusters.assignments)
        distances = np.linalg.norm(np.asarray(latents) - centers[assignments], axis=-1)
        sums = np.bincount(assignments, distances, minlength=num_centers)
        counts = np.bincount(assignments, minlength=num_centers)
        valid = (counts >= 2) & (sums > 0)
        if not valid.any():
            raise ValueError(
                "No cluster has two distinct points, so no bandwidth can be set; "
                "use fewer `num_centers`."
            )
        spreads = sums / np.maximum(counts, 1)
        spreads = np.where(valid, spreads, spreads[valid].mean())
        bandwidths = jnp.asarray(0.5 / (bandwidth_scale * spreads) ** 2, latents.dtype)
        weights = _fit_weights(
            mean_decoder,
            latents,
            data.reshape(latents.shape[0], -1),
            clusters.centers,
            bandwidths,
            zeta,
            min_variance,
            num_steps,
            optax.adam(0.05) if optimiser is None else optimiser,
        )
        return cls(mean_decoder, clusters.centers, bandwidths, weights, zeta=zeta)


@eqx.filter_jit
def _fit_weights(
    mean_decoder: Callable[[Array], Array],
    latents: Float[Array, "N d"],
    data: Float[Array, "N D"],
    centers: Float[Array, "C d"],
    bandwidths: Float[Array, " C"],
    zeta: float,
    min_variance: float,
    num_steps: int,
    optimiser: optax.GradientTransformation,
) -> Float[Array, "D C"]:
    r"""Maximum-likelihood $W = \exp(U)$, by `num_steps` full-batch steps of
    `optimiser` on $U$ in one `jax.lax.scan`."""
    predictions = jax.vmap(mean_decoder)(latents).reshape(data.shape)
    squared = jnp.maximum((data - predictions) ** 2, min_variance)
    features = jax.vmap(_rbf_features, in_axes=(0, None, None))(
        latents, centers, bandwidths
    )

    def negative_log_likelihood(log_weights):
        precision = jnp.matmul(features, jnp.exp(log_weights).T, precision=HIGHEST)
        precision = precision + zeta
        return 0.5 * jnp.mean(precision * squared - jnp.log(precision))

    def step(carry, _):
        log_weights, state = carry
        grads = jax.grad(negative_log_likelihood)(log_weights)
        # optax mixes its int32 step count with floats (Adam's bias correction).
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimiser.update(grads, state, log_weights)
        return (optax.apply_updates(log_weights, updates), state), None

    # Start where beta is about 1 / (mean squared residual) of each output.
    scale = jnp.mean(squared, axis=0) * jnp.mean(jnp.sum(features, axis=1))
    log_weights = jnp.broadcast_to(
        -jnp.log(scale)[:, None], (data.shape[1], centers.shape[0])
    )
    (log_weights, _), _ = jax.lax.scan(
        step, (log_weights, optimiser.init(log_weights)), length=num_steps
    )
    return jnp.exp(log_weights)
