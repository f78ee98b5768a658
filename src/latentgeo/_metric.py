r"""Riemannian metrics on a latent space $\mathbb{R}^d$.

Three layers:

- [`AbstractMetric`][latentgeo.AbstractMetric]: the interface the solvers use
  (`tensor`, `curve_energy`, `curve_length`; `inner` and `norm` are derived).
- [`AbstractTensorMetric`][latentgeo.AbstractTensorMetric]: implement `tensor(z)`
  only; energies and lengths come from quadrature of $\gamma'^\top G \gamma'$.
- [`AbstractPullbackMetric`][latentgeo.AbstractPullbackMetric]: implement an
  embedding $e: \mathbb{R}^d \to \mathbb{R}^D$; $G = J_e^\top J_e$ from $d$ JVPs and
  finite-difference energies $\|e(z_{i+1}) - e(z_i)\|^2$. The expected metric of
  an ensemble is the pull-back of $e(z) = (f_1(z), \dots, f_K(z)) / \sqrt{K}$.
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._checks import HIGHEST, check_point_shape
from ._ensemble import EnsembleDecoder, call_module, infer_latent_dim


def _safe_sqrt(squared: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """Square root of a non-negative quantity with a finite (zero) gradient at
    zero (the double-`where` trick); NaN stays NaN and inf stays inf, so a length
    through a non-finite decoder output is never a plausible number."""
    positive = squared > 0
    root = jnp.sqrt(jnp.where(positive, squared, 1.0))
    return jnp.where(positive, root, jnp.where(squared == 0, 0.0, jnp.nan))


def safe_norm(x: Float[Array, "*shape"], axis: int = -1) -> Float[Array, "..."]:
    """Euclidean norm with a finite (zero) gradient at zero."""
    return _safe_sqrt(jnp.sum(x * x, axis=axis))


# Edges measured per step of `AbstractPullbackMetric.edge_lengths`. XLA's CPU
# backend runs one gather of many long embedded rows about ten times slower
# than the same rows gathered a few hundred at a time (a 129 x 129 lattice of
# a 784-pixel decoder: 720 against 70 ms), so large edge sets go in chunks.
_EDGE_CHUNK = 256


def _in_chunks(fn: Callable[[Array], Array], rows: Array, size: int) -> Array:
    """`fn(rows)` for a row-wise `fn`, computed `size` rows at a time in a
    `lax.map` (the last chunk padded with copies of the first row)."""
    count = rows.shape[0]
    if count <= size:
        return fn(rows)
    padding = jnp.broadcast_to(rows[:1], (-count % size, *rows.shape[1:]))
    chunks = jnp.concatenate([rows, padding]).reshape(-1, size, *rows.shape[1:])
    out = jax.lax.map(fn, chunks)
    return out.reshape(-1, *out.shape[2:])[:count]


def _check_points(points: Array, latent_dim: int) -> None:
    shape = jnp.shape(points)
    if len(shape) != 2 or shape[1] != latent_dim or shape[0] < 2:
        raise ValueError(
            f"`points` has shape {shape}, expected (T + 1, {latent_dim}) with T >= 1."
        )


class AbstractMetric(eqx.Module):
    r"""A Riemannian metric $G(z)$ on $\mathbb{R}^d$.

    Every metric in latentgeo (and any user metric) derives from this class, so
    [`geodesic`][latentgeo.geodesic] and
    [`pairwise_distances`][latentgeo.pairwise_distances] accept all of them.
    Subclass [`AbstractTensorMetric`][latentgeo.AbstractTensorMetric] or
    [`AbstractPullbackMetric`][latentgeo.AbstractPullbackMetric] rather than this.
    """

    latent_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def tensor(self, z: Float[Array, " d"]) -> Float[Array, "d d"]:
        """The metric tensor $G(z)$, symmetric positive semi-definite, `(d, d)`."""

    @abc.abstractmethod
    def curve_energy(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        r"""Discrete energy $\approx \int_0^1 \gamma'^\top G \gamma' \,dt$ of the
        curve through `points` $z_0, \dots, z_T$ at uniform times $t_i = i / T$."""

    @abc.abstractmethod
    def curve_length(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        r"""Discrete length $\approx \int_0^1 \sqrt{\gamma'^\top G \gamma'}\,dt$ of the
        polygon through `points`, shape `(T + 1, d)`."""

    @abc.abstractmethod
    def edge_lengths(
        self, points: Float[Array, "V d"], edges: Int[Array, "E 2"]
    ) -> Float[Array, " E"]:
        r"""Lengths of the straight segments `points[i] -> points[j]` for the
        rows `(i, j)` of `edges`, each measured as `curve_length` measures a
        one-segment polygon, sharing the work at shared points (a graph's
        edges)."""

    def check_point(self, z: Array, name: str = "z") -> None:
        """Raise `ValueError` (at trace time) unless `z` has shape `(latent_dim,)`."""
        check_point_shape(z, self.latent_dim, name)

    def inner(
        self, z: Float[Array, " d"], u: Float[Array, " d"], v: Float[Array, " d"]
    ) -> Float[Array, ""]:
        r"""Inner product $u^\top G(z) v$ of tangent vectors at `z`."""
        for name, x in (("z", z), ("u", u), ("v", v)):
            self.check_point(x, name)
        return jnp.dot(u, jnp.dot(self.tensor(z), v, precision=HIGHEST))

    def norm(self, z: Float[Array, " d"], v: Float[Array, " d"]) -> Float[Array, ""]:
        r"""Length $\sqrt{v^\top G(z) v}$ of tangent vector `v` at `z` (finite
        gradient at `v = 0`)."""
        return _safe_sqrt(jnp.maximum(self.inner(z, v, v), 0.0))


def check_metric(metric: object, name: str = "metric") -> None:
    """Raise `TypeError` unless `metric` is an `AbstractMetric`."""
    if not isinstance(metric, AbstractMetric):
        raise TypeError(
            f"`{name}` must be an AbstractMetric, got {type(metric).__name__}."
        )


class AbstractTensorMetric(AbstractMetric):
    r"""A metric given by its tensor alone: implement `tensor(z)` and `latent_dim`.

    Energy and length of a polygon $z_0, \dots, z_T$ use the midpoint rule with
    $\Delta_i = z_{i+1} - z_i$ and $m_i = (z_i + z_{i+1}) / 2$:
    $E = T \sum_i \Delta_i^\top G(m_i) \Delta_i$, $L = \sum_i \sqrt{\Delta_i^\top
    G(m_i) \Delta_i}$, both second-order accurate in $1/T$.

    **Example:**

    ```python
    class Conformal(lg.AbstractTensorMetric):
        latent_dim: int = 2

        def tensor(self, z):
            return (1 + jnp.sum(z**2)) * jnp.eye(2)
    ```
    """

    def _segment_squares(self, points: Array) -> Array:
        _check_points(points, self.latent_dim)
        steps = jnp.diff(points, axis=0)
        midpoints = 0.5 * (points[1:] + points[:-1])
        tensors = jax.vmap(self.tensor)(midpoints)
        return jnp.einsum("ti,tij,tj->t", steps, tensors, steps, precision=HIGHEST)

    def curve_energy(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        return (points.shape[0] - 1) * jnp.sum(self._segment_squares(points))

    def curve_length(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        return jnp.sum(_safe_sqrt(jnp.maximum(self._segment_squares(points), 0.0)))

    def edge_lengths(
        self, points: Float[Array, "V d"], edges: Int[Array, "E 2"]
    ) -> Float[Array, " E"]:
        starts, ends = points[edges[:, 0]], points[edges[:, 1]]
        squares = jax.vmap(lambda a, b: self._segment_squares(jnp.stack([a, b]))[0])(
            starts, ends
        )
        return _safe_sqrt(jnp.maximum(squares, 0.0))


class AbstractPullbackMetric(AbstractMetric):
    r"""The pull-back $G = J_e^\top J_e$ of the Euclidean metric through an
    embedding $e: \mathbb{R}^d \to \mathbb{R}^D$: implement `embed(z)`.

    - `tensor` uses $d$ forward-mode JVPs (`jax.jvp` under `jax.vmap`), cheap
      because $d \ll D$.
    - The energy of $z_0, \dots, z_T$ is $T \sum_i \|e(z_{i+1}) - e(z_i)\|^2$ and
      the length $\sum_i \|e(z_{i+1}) - e(z_i)\|$: finite differences, exact for
      the image polygon and converging to the integrals as $T$ grows.
    """

    @abc.abstractmethod
    def embed(self, z: Float[Array, " d"]) -> Float[Array, " D"]:
        """The embedding $e(z)$, flattened to shape `(D,)`."""

    def jacobian_transpose(self, z: Float[Array, " d"]) -> Float[Array, "d D"]:
        r"""$J_e(z)^\top$, row $j$ the JVP of $e$ along basis vector $j$."""
        self.check_point(z)
        basis = jnp.eye(self.latent_dim, dtype=jnp.result_type(z))
        return jax.vmap(lambda v: jax.jvp(self.embed, (z,), (v,))[1])(basis)

    def tensor(self, z: Float[Array, " d"]) -> Float[Array, "d d"]:
        jac_t = self.jacobian_transpose(z)
        return jnp.matmul(jac_t, jac_t.T, precision=HIGHEST)

    def _steps(self, points: Array) -> Array:
        _check_points(points, self.latent_dim)
        embedded = jax.vmap(self.embed)(points)
        return jnp.diff(embedded, axis=0)

    def curve_energy(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        return (points.shape[0] - 1) * jnp.sum(self._steps(points) ** 2)

    def curve_length(self, points: Float[Array, "num_points d"]) -> Float[Array, ""]:
        return jnp.sum(safe_norm(self._steps(points)))

    def edge_lengths(
        self, points: Float[Array, "V d"], edges: Int[Array, "E 2"]
    ) -> Float[Array, " E"]:
        _check_points(points, self.latent_dim)
        embedded = jax.vmap(self.embed)(points)  # each point once

        def lengths(chunk: Int[Array, "c 2"]) -> Float[Array, " c"]:
            return safe_norm(embedded[chunk[:, 1]] - embedded[chunk[:, 0]])

        return _in_chunks(lengths, edges, _EDGE_CHUNK)


class PullbackMetric(AbstractPullbackMetric):
    r"""Pull-back metric $G(z) = J(z)^\top J(z)$ of one deterministic decoder.

    **Arguments:**

    - `decoder`: a callable `z -> output` (e.g. an `eqx.Module`), `z` of shape
      `(d,)`, output of any shape (flattened for the geometry).
    - `latent_dim`: $d$; inferred from the decoder when omitted.

    **Example:**

    ```python
    metric = lg.PullbackMetric(eqx.nn.MLP(2, 784, 64, 2, key=key))
    metric.tensor(jnp.zeros(2))  # (2, 2)
    ```
    """

    decoder: Callable[[Array], Array]
    latent_dim: int = eqx.field(static=True)

    def __init__(self, decoder: Callable[[Array], Array], *, latent_dim=None):
        if isinstance(decoder, EnsembleDecoder):
            raise TypeError(
                "`decoder` is an EnsembleDecoder: use `lg.ExpectedMetric` for "
                "ensembles, or `ensemble.member(k)` for one member."
            )
        self.decoder = decoder
        self.latent_dim = (
            infer_latent_dim(call_module, decoder) if latent_dim is None else latent_dim
        )

    def embed(self, z: Float[Array, " d"]) -> Float[Array, " D"]:
        self.check_point(z)
        return jnp.ravel(self.decoder(z))


class ExpectedMetric(AbstractPullbackMetric):
    r"""Expected pull-back metric of a decoder ensemble (Syrota et al. 2024):
    $G(z) = \frac1K \sum_k J_k(z)^\top J_k(z)$.

    It is the pull-back of $e(z) = (f_1(z), \dots, f_K(z)) / \sqrt K$, so its
    curve energy is the expected (correlated) energy
    $T \sum_i \frac1K \sum_k \|f_k(z_{i+1}) - f_k(z_i)\|^2$. Note that
    $\mathbb{E}[J^\top J] \ne \mathbb{E}[J]^\top \mathbb{E}[J]$: where members
    disagree (off the data) the metric grows, and geodesics prefer the data.

    **Arguments:**

    - `ensemble`: an [`EnsembleDecoder`][latentgeo.EnsembleDecoder].

    **Example:**

    ```python
    metric = lg.ExpectedMetric(ens)
    metric.tensor(z)                  # (d, d)
    lg.geodesic(metric, z0, z1).length
    ```
    """

    ensemble: EnsembleDecoder

    def __check_init__(self):
        if not isinstance(self.ensemble, EnsembleDecoder):
            raise TypeError(
                f"`ensemble` must be an EnsembleDecoder, got {type(self.ensemble)}; "
                "build one with `EnsembleDecoder.from_members`."
            )

    @property
    def latent_dim(self) -> int:
        return self.ensemble.latent_dim

    def embed(self, z: Float[Array, " d"]) -> Float[Array, " D"]:
        self.check_point(z)
        outputs = self.ensemble(z)
        return jnp.ravel(outputs) / jnp.sqrt(self.ensemble.num_members)

    def decorrelated_energy(
        self, points: Float[Array, "num_points d"], key: PRNGKeyArray | None = None
    ) -> Float[Array, ""]:
        r"""The paper's decorrelated energy (sec. 4), for *finding* curves.

        Members at neighbouring points are independent:
        $E_\text{dec} = T \sum_i \mathbb{E}_{k,k'} \|f_k(z_{i+1}) - f_{k'}(z_i)\|^2
        = T \sum_i \|\mu(z_{i+1}) - \mu(z_i)\|^2 + v(z_{i+1}) + v(z_i)$,
        with $\mu$ the member mean and $v(z) = \frac1K\sum_k \|f_k(z) - \mu(z)\|^2$.
        The variance terms do not vanish as $T$ grows: this is an objective, not
        a length.

        **Arguments:**

        - `points`: the curve's points, shape `(T + 1, d)`.
        - `key`: if given, a one-sample Monte Carlo estimate (one random member
          per point, as in the paper's code); if `None`, the exact expectation.

        **Returns:** a scalar.
        """
        _check_points(points, self.latent_dim)
        num_segments = points.shape[0] - 1
        if key is None:
            mean, centred = jax.vmap(self.decorrelated_features)(points)
            variance = jnp.sum(centred**2, axis=-1)
            steps = jnp.sum(jnp.diff(mean, axis=0) ** 2)
            return num_segments * (steps + jnp.sum(variance[1:] + variance[:-1]))
        outputs = jax.vmap(self.ensemble)(points)  # (T + 1, K, *out)
        outputs = outputs.reshape(points.shape[0], self.ensemble.num_members, -1)
        members = jax.random.randint(
            key, (points.shape[0],), 0, self.ensemble.num_members
        )
        sampled = outputs[jnp.arange(points.shape[0]), members]
        return num_segments * jnp.sum(jnp.diff(sampled, axis=0) ** 2)

    def decorrelated_features(
        self, z: Float[Array, " d"]
    ) -> tuple[Float[Array, " D"], Float[Array, " KD"]]:
        r"""Member mean $\mu(z)$ and deviations $(f_k(z) - \mu(z)) / \sqrt K$,
        flattened; the squared norm of the second is the variance $v(z)$."""
        self.check_point(z)
        outputs = self.ensemble(z).reshape(self.ensemble.num_members, -1)
        mean = jnp.mean(outputs, axis=0)
        centred = (outputs - mean[None]) / jnp.sqrt(self.ensemble.num_members)
        return mean, jnp.ravel(centred)
