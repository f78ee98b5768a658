"""A Gaussian encoder, the paper's dense VAE architecture, and latent codes."""

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree, Real

from .._checks import host_points
from .._ensemble import EnsembleDecoder, call_module
from ._elbo import sample_latent

_PAPER_HIDDEN = (64, 128, 256, 512)


def _mlp(
    sizes: Sequence[int], activation: Callable, key: PRNGKeyArray
) -> eqx.nn.Sequential:
    """Dense layers `sizes[0] -> ... -> sizes[-1]`, `activation` between them."""
    keys = jr.split(key, len(sizes) - 1)
    layers = []
    for index, (size_in, size_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index:
            layers.append(eqx.nn.Lambda(activation))
        layers.append(eqx.nn.Linear(size_in, size_out, key=keys[index]))
    return eqx.nn.Sequential(layers)


class GaussianEncoder(eqx.Module):
    r"""A dense encoder for $q(z \mid x) = N(\mu(x), \operatorname{diag}\sigma^2(x))$.

    The input is flattened, passed through dense layers with `activation` between
    them, and the last layer's $2d$ outputs are split into the mean $\mu(x)$ and
    the log-variance $\log\sigma^2(x)$.

    **Attributes:**

    - `net`: the `eqx.nn.Sequential` from the flattened input to $2d$ outputs.
    - `in_shape`: the shape of one input, e.g. `(8, 8)`.
    - `latent_dim`: $d$.
    """

    net: eqx.nn.Sequential
    in_shape: tuple[int, ...] = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(
        self,
        in_shape: Sequence[int],
        latent_dim: int,
        *,
        hidden_sizes: Sequence[int] = _PAPER_HIDDEN[::-1],
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_shape`: the shape of one input, e.g. `(784,)` or `(28, 28)`.
        - `latent_dim`: $d \\ge 1$.
        - `hidden_sizes`: widths of the hidden layers, input side first; default
          `(512, 256, 128, 64)`, the paper's encoder.
        - `activation`: between the dense layers; default ReLU.
        - `key`: PRNG key for the initial weights (PyTorch's default uniform
          initialisation, as in `eqx.nn.Linear`).
        """
        in_shape = tuple(int(size) for size in in_shape)
        if latent_dim < 1 or any(size < 1 for size in (*in_shape, *hidden_sizes)):
            raise ValueError(
                f"Sizes must be positive: got in_shape={in_shape}, "
                f"latent_dim={latent_dim}, hidden_sizes={tuple(hidden_sizes)}."
            )
        sizes = (math.prod(in_shape), *hidden_sizes, 2 * latent_dim)
        self.net = _mlp(sizes, activation, key)
        self.in_shape = in_shape
        self.latent_dim = latent_dim

    def __call__(
        self, x: Real[Array, " *shape"]
    ) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
        """The mean and log-variance of $q(z \\mid x)$ for one input `x` of shape
        `in_shape`; batch with `jax.vmap`."""
        if x.shape != self.in_shape:
            raise ValueError(
                f"`x` has shape {x.shape}, expected {self.in_shape}; the encoder "
                "takes one example, batch with `jax.vmap`."
            )
        out = self.net(jnp.ravel(x))
        return out[: self.latent_dim], out[self.latent_dim :]


def init_vae(
    data_shape: Sequence[int],
    latent_dim: int,
    num_members: int,
    *,
    hidden_sizes: Sequence[int] = _PAPER_HIDDEN,
    activation: Callable[[Array], Array] = jax.nn.relu,
    key: PRNGKeyArray,
) -> tuple[GaussianEncoder, EnsembleDecoder]:
    """Build the paper's dense VAE: an encoder and an ensemble of $K$ decoders.

    Each decoder maps $d \\to$ `hidden_sizes` $\\to D$ with `activation` between
    the layers and a linear output of size $D = $ `prod(data_shape)` (the mean of
    a Gaussian likelihood, or the logits of a Bernoulli one). The encoder mirrors
    it: $D \\to$ `reversed(hidden_sizes)` $\\to 2d$. With the defaults and
    `data_shape=(784,)`, `latent_dim=2` this is the paper's
    2-64-128-256-512-784 ReLU decoder and its mirror image.

    **Arguments:**

    - `data_shape`: the shape of one example, e.g. `(28, 28)`.
    - `latent_dim`: $d$.
    - `num_members`: $K \\ge 1$; $K = 1$ gives an ordinary VAE.
    - `hidden_sizes`: decoder widths, latent side first; default `(64, 128, 256,
      512)`.
    - `activation`: default ReLU.
    - `key`: PRNG key; members get independent initialisations.

    **Returns:** `(encoder, ensemble)`: a
    [`GaussianEncoder`][latentgeo.training.GaussianEncoder] and an
    [`EnsembleDecoder`][latentgeo.EnsembleDecoder] whose members output flat
    vectors of shape `(D,)`.

    **Example:**

    ```python
    encoder, ensemble = lg.init_vae((8, 8), 2, 10, key=jax.random.key(0))
    ```
    """
    encoder_key, decoder_key = jr.split(key)
    encoder = GaussianEncoder(
        data_shape,
        latent_dim,
        hidden_sizes=tuple(hidden_sizes)[::-1],
        activation=activation,
        key=encoder_key,
    )
    if num_members < 1:
        raise ValueError(f"`num_members` must be at least 1, got {num_members}.")
    sizes = (latent_dim, *hidden_sizes, math.prod(encoder.in_shape))
    # As `EnsembleDecoder.init` does, but without `jit`: it would compile anew for
    # every call (a new function each time), a few seconds per model.
    members = eqx.filter_vmap(lambda k: _mlp(sizes, activation, k))(
        jr.split(decoder_key, num_members)
    )
    ensemble = EnsembleDecoder(call_module, members, latent_dim=latent_dim)
    return encoder, ensemble


def param_dtype(tree: PyTree) -> jnp.dtype:
    """The dtype of the first floating-point array in `tree`."""
    leaves = [x for x in jtu.tree_leaves(tree) if eqx.is_inexact_array(x)]
    if not leaves:
        raise ValueError("The model has no floating-point parameters.")
    return leaves[0].dtype


def host_examples(data: ArrayLike, name: str = "data") -> np.ndarray:
    """`data` as a NumPy array `(N, *example_shape)` with `N >= 1`, all finite;
    otherwise `ValueError` naming the argument (and the rows holding NaN/inf)."""
    array = np.asarray(data)
    if array.ndim < 2:
        raise ValueError(
            f"`{name}` has shape {array.shape}, expected (N, *example_shape)."
        )
    host_points(array.reshape(array.shape[0], math.prod(array.shape[1:])), None, name)
    return array


def check_encoder(encoder: eqx.Module, example: jax.ShapeDtypeStruct) -> int:
    """Probe `encoder` on one example; return the latent dimension it produces."""
    try:
        out = eqx.filter_eval_shape(encoder, example)
    except Exception as error:
        raise ValueError(
            f"`encoder` cannot take one example of shape {example.shape}: {error}"
        ) from error
    shapes = [getattr(x, "shape", None) for x in out] if isinstance(out, tuple) else []
    if len(shapes) != 2 or shapes[0] != shapes[1] or len(shapes[0] or ()) != 1:
        raise ValueError(
            "`encoder(x)` must return `(mean, log_var)`, two arrays of shape (d,); "
            f"got {jtu.tree_map(lambda x: getattr(x, 'shape', x), out)}."
        )
    return shapes[0][0]


@eqx.filter_jit
def _encode(encoder: eqx.Module, data: Array, key: PRNGKeyArray | None) -> Array:
    mean, log_var = jax.vmap(encoder)(data)
    if key is None:
        return mean
    return jax.vmap(sample_latent)(mean, log_var, jr.split(key, data.shape[0]))


def encode(
    encoder: eqx.Module,
    data: Real[ArrayLike, " N *shape"],
    *,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "N d"]:
    r"""The latent codes of a dataset: the posterior means $\mu(x_i)$, or with
    `key` one sample $z_i \sim q(z \mid x_i)$ each.

    **Arguments:**

    - `encoder`: `encoder(x) -> (mean, log_var)` for one example, e.g. a trained
      [`GaussianEncoder`][latentgeo.training.GaussianEncoder].
    - `data`: `(N, *shape)` examples.
    - `key`: optional PRNG key: draw one reparametrised sample per example
      instead of returning the means (the paper's official code measures
      distances between sampled codes).

    **Returns:** `(N, d)` codes, in one jitted, vmapped call.

    **Raises:** `ValueError` if `data` has NaN/inf or a shape the encoder does not
    take.
    """
    data = jnp.asarray(host_examples(data), param_dtype(encoder))
    check_encoder(encoder, jax.ShapeDtypeStruct(data.shape[1:], data.dtype))
    return _encode(encoder, data, key)
