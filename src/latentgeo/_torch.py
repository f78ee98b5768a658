"""Convert PyTorch `nn.Sequential` decoders into plain equinox members.

Imported lazily by `EnsembleDecoder.from_torch`, which stacks the members, so
PyTorch stays optional; this module knows nothing about ensembles.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

try:
    import torch
except ImportError as error:
    raise ImportError(
        "`EnsembleDecoder.from_torch` needs PyTorch: `pip install 'latentgeo[torch]'`."
    ) from error


def _unbatched_axis(dim: int, ndim: int, layer: str) -> int:
    """The axis of an unbatched input (rank `ndim`) that torch's `dim`, counted on
    the batched input (rank `ndim + 1`, batch axis 0), refers to."""
    axis = dim % (ndim + 1)
    if axis == 0:
        raise ValueError(
            f"{layer} with dim {dim} acts on the batch axis of a rank-{ndim + 1} "
            "batched input; latentgeo decoders map one latent point and have no "
            "batch axis."
        )
    return axis - 1


class _Flatten(eqx.Module):
    """`torch.nn.Flatten(start_dim, end_dim)` on one unbatched input."""

    start_dim: int = eqx.field(static=True)
    end_dim: int = eqx.field(static=True)

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        """`key` is ignored; it is there for `eqx.nn.Sequential`."""
        start = _unbatched_axis(self.start_dim, x.ndim, "Flatten")
        end = _unbatched_axis(self.end_dim, x.ndim, "Flatten")
        size = math.prod(x.shape[start : end + 1])
        return jnp.reshape(x, (*x.shape[:start], size, *x.shape[end + 1 :]))


class _Unflatten(eqx.Module):
    """`torch.nn.Unflatten(dim, sizes)` on one unbatched input."""

    dim: int = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        """`key` is ignored; it is there for `eqx.nn.Sequential`."""
        axis = _unbatched_axis(self.dim, x.ndim, "Unflatten")
        return jnp.reshape(x, (*x.shape[:axis], *self.sizes, *x.shape[axis + 1 :]))


class _ELU(eqx.Module):
    alpha: float = eqx.field(static=True)

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        """`key` is ignored; it is there for `eqx.nn.Sequential`."""
        return jax.nn.elu(x, self.alpha)


class _LeakyReLU(eqx.Module):
    negative_slope: float = eqx.field(static=True)

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        """`key` is ignored; it is there for `eqx.nn.Sequential`."""
        return jax.nn.leaky_relu(x, self.negative_slope)


class _Softplus(eqx.Module):
    r"""torch's $\log(1 + e^{\beta x}) / \beta$, linear where $\beta x >$ threshold."""

    beta: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        """`key` is ignored; it is there for `eqx.nn.Sequential`."""
        scaled = self.beta * x
        return jnp.where(
            scaled > self.threshold, x, jax.nn.softplus(scaled) / self.beta
        )


def _numpy(tensor: "torch.Tensor | None") -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().numpy()


def _filled(
    make: Callable[..., eqx.Module],
    weight: np.ndarray,
    bias: np.ndarray | None,
    **options,
) -> eqx.Module:
    """An equinox layer holding `weight` and `bias`, built abstractly (no random
    initialisation)."""
    layer = eqx.filter_eval_shape(
        make,
        **options,
        use_bias=bias is not None,
        dtype=jnp.dtype(weight.dtype),
        key=jax.random.key(0),
    )
    layer = eqx.tree_at(lambda m: m.weight, layer, jnp.asarray(weight))
    if bias is not None:
        bias = jnp.asarray(bias).reshape(layer.bias.shape)
        layer = eqx.tree_at(lambda m: m.bias, layer, bias)
    return layer


def _linear(layer: "torch.nn.Linear") -> eqx.nn.Linear:
    return _filled(
        eqx.nn.Linear,
        _numpy(layer.weight),
        _numpy(layer.bias),
        in_features=layer.in_features,
        out_features=layer.out_features,
    )


def _conv2d(layer: "torch.nn.Conv2d") -> eqx.nn.Conv2d:
    padding = layer.padding
    return _filled(
        eqx.nn.Conv2d,
        _numpy(layer.weight),
        _numpy(layer.bias),
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=padding.upper() if isinstance(padding, str) else padding,
        dilation=layer.dilation,
        groups=layer.groups,
        padding_mode=layer.padding_mode.upper(),
    )


def _conv_transpose2d(layer: "torch.nn.ConvTranspose2d") -> eqx.nn.ConvTranspose2d:
    # torch stores (in, out / groups, kh, kw) and correlates with the flipped
    # kernel; equinox correlates with (out, in / groups, kh, kw) as given.
    groups = layer.groups
    weight = _numpy(layer.weight)
    in_channels, out_per_group, *kernel = weight.shape
    weight = weight.reshape(groups, in_channels // groups, out_per_group, *kernel)
    weight = weight.swapaxes(1, 2).reshape(groups * out_per_group, -1, *kernel)
    return _filled(
        eqx.nn.ConvTranspose2d,
        weight[:, :, ::-1, ::-1],
        _numpy(layer.bias),
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        dilation=layer.dilation,
        groups=groups,
    )


def _flatten(layer: "torch.nn.Flatten") -> _Flatten:
    if layer.start_dim == 0:
        raise ValueError("start_dim=0 would flatten the batch axis")
    return _Flatten(layer.start_dim, layer.end_dim)


_CONVERTERS: dict[type, Callable[[Any], eqx.Module]] = {
    torch.nn.Linear: _linear,
    torch.nn.Conv2d: _conv2d,
    torch.nn.ConvTranspose2d: _conv_transpose2d,
    torch.nn.Flatten: _flatten,
    torch.nn.Unflatten: lambda m: _Unflatten(m.dim, tuple(m.unflattened_size)),
    torch.nn.ReLU: lambda m: eqx.nn.Lambda(jax.nn.relu),
    torch.nn.ELU: lambda m: _ELU(float(m.alpha)),
    torch.nn.LeakyReLU: lambda m: _LeakyReLU(float(m.negative_slope)),
    torch.nn.Tanh: lambda m: eqx.nn.Lambda(jnp.tanh),
    torch.nn.Sigmoid: lambda m: eqx.nn.Lambda(jax.nn.sigmoid),
    torch.nn.Softplus: lambda m: _Softplus(float(m.beta), float(m.threshold)),
}


def _convert(layer: "torch.nn.Module", where: str) -> list[eqx.Module]:
    """Equinox layers for a torch layer; nested `Sequential`s are flattened."""
    if type(layer) is torch.nn.Sequential:
        return [
            converted
            for index, child in enumerate(layer)
            for converted in _convert(child, f"{where}[{index}]")
        ]
    name = f"torch.nn.{type(layer).__name__}"
    converter = _CONVERTERS.get(type(layer))
    if converter is None:
        supported = ", ".join(sorted(c.__name__ for c in _CONVERTERS))
        raise ValueError(
            f"{where} is {name}, which `from_torch` cannot convert; supported "
            f"layers: {supported} (and nested Sequential)."
        )
    try:
        return [converter(layer)]
    except (ValueError, NotImplementedError) as error:
        message = str(error).rstrip(".")
        raise ValueError(f"{where} ({name}) cannot be converted: {message}.") from error


def members_from_torch(members: Iterable[Any]) -> list[eqx.nn.Sequential]:
    """Equinox members equivalent to the torch decoders `members`, one each.

    **Arguments:**

    - `members`: `torch.nn.Sequential` decoders, each read as acting on a batch.

    **Returns:** one `eqx.nn.Sequential` per decoder, mapping one unbatched input
    as the decoder maps a batch; members are not checked against each other.

    **Raises:** `TypeError` if `members` is one torch module or holds a
    non-`Sequential`; `ValueError` naming the layer (e.g. `members[0][3]`) for an
    unsupported layer or setting.
    """
    if isinstance(members, torch.nn.Module):
        raise TypeError(
            "`members` is one torch module; pass a list of K `torch.nn.Sequential` "
            "decoders, e.g. `[decoder]` for K = 1."
        )
    converted = []
    for index, member in enumerate(members):
        if type(member) is not torch.nn.Sequential:
            raise TypeError(
                f"members[{index}] is a {type(member).__name__}, not a "
                "torch.nn.Sequential."
            )
        converted.append(eqx.nn.Sequential(_convert(member, f"members[{index}]")))
    return converted
