"""Decoder ensembles stored as one pytree with a leading member axis."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._checks import check_point_shape


def call_module(module: Callable[[Array], Array], z: Array) -> Array:
    return module(z)


def infer_latent_dim(apply: Callable, member_params: PyTree) -> int:
    """The latent dimension `apply` accepts.

    Reads `in_size`/`in_features` from equinox modules first (an `eqx.nn.MLP`, a
    `eqx.nn.Linear`, or a module whose first layer is one); otherwise probes
    `apply` with `eqx.filter_eval_shape` (no FLOPs) for the smallest accepted size
    in 1..512, and checks that the next size is refused, so a decoder that takes
    any input size (elementwise only) is not silently given a wrong one.
    """
    for candidate in (member_params, *getattr(member_params, "layers", ())[:1]):
        size = getattr(candidate, "in_size", getattr(candidate, "in_features", None))
        if isinstance(size, int):
            return size
    # Probe in the weights' dtype: a float32 decoder refuses float64 input under
    # strict dtype promotion, which would read as "no size accepted" under x64.
    weights = jtu.tree_leaves(eqx.filter(member_params, eqx.is_inexact_array))
    dtype = weights[0].dtype if weights else jnp.result_type(float)

    def accepts(dim: int) -> bool:
        try:
            eqx.filter_eval_shape(
                apply, member_params, jax.ShapeDtypeStruct((dim,), dtype)
            )
        except Exception:  # noqa: BLE001 - any failure means "not this size"
            return False
        return True

    dim = next((d for d in range(1, 513) if accepts(d)), None)
    if dim is None or accepts(dim + 1):
        raise ValueError(
            "Could not infer the latent dimension of the decoder (it accepts "
            f"{'no input size in 1..512' if dim is None else 'several input sizes'})"
            "; pass `latent_dim=` explicitly."
        )
    return dim


def _first_member(params: PyTree) -> PyTree:
    return jtu.tree_map(lambda x: x[0] if eqx.is_array(x) else x, params)


@eqx.filter_jit
def _init_members(make_member: Callable[[PRNGKeyArray], eqx.Module], keys):
    """`make_member` vmapped over `keys`, compiled once per `make_member`."""
    return eqx.filter_vmap(make_member)(keys)


class EnsembleDecoder(eqx.Module):
    r"""An ensemble of $K$ decoders $f_1, \dots, f_K: \mathbb{R}^d \to \mathbb{R}^D$.

    The members share one structure; their parameters are stacked into a single
    pytree with a leading member axis, so `ens(z)` evaluates every member in one
    `jax.vmap`-ed call, with no Python loop over members.

    Build one with
    [`from_members`][latentgeo.EnsembleDecoder.from_members],
    [`init`][latentgeo.EnsembleDecoder.init],
    [`from_apply`][latentgeo.EnsembleDecoder.from_apply] or
    [`from_torch`][latentgeo.EnsembleDecoder.from_torch].

    **Attributes:**

    - `apply`: `apply(member_params, z) -> output` for one member.
    - `params`: the members' parameters, every array with a leading axis of size $K$.
    - `latent_dim`: $d$.
    - `out_shape`: the shape of one member's output, e.g. `(784,)` or `(1, 28, 28)`.
    - `num_members`: $K$.
    """

    apply: Callable[[PyTree, Array], Array] = eqx.field(static=True)
    params: PyTree
    latent_dim: int = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)
    num_members: int = eqx.field(static=True)

    def __init__(
        self,
        apply: Callable[[PyTree, Array], Array],
        params: PyTree,
        *,
        latent_dim: int | None = None,
    ):
        """**Arguments:**

        - `apply`: `apply(member_params, z)` for one member, `z` of shape `(d,)`.
        - `params`: stacked parameters; every array leaf has leading axis $K$.
        - `latent_dim`: $d$; inferred from the decoder when omitted.

        **Raises:**

        - `ValueError` if the parameters have no arrays, their leading axes differ,
          or the latent dimension cannot be inferred.
        """
        leaves = [x for x in jtu.tree_leaves(params) if eqx.is_array(x)]
        if not leaves:
            raise ValueError("`params` holds no arrays: an ensemble needs weights.")
        sizes = {x.shape[0] if x.ndim else None for x in leaves}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                "Every array in `params` needs the same leading member axis; "
                f"found leading sizes {sorted(s for s in sizes if s is not None)}"
                + (" and scalars" if None in sizes else "")
                + "."
            )
        member = _first_member(params)
        if latent_dim is None:
            latent_dim = infer_latent_dim(apply, member)
        out = eqx.filter_eval_shape(
            apply, member, jax.ShapeDtypeStruct((latent_dim,), leaves[0].dtype)
        )
        self.apply = apply
        self.params = params
        self.latent_dim = latent_dim
        self.out_shape = tuple(out.shape)
        self.num_members = sizes.pop()

    @classmethod
    def from_members(
        cls, members: Sequence[eqx.Module], *, latent_dim: int | None = None
    ) -> "EnsembleDecoder":
        """Stack equinox decoders of one structure into an ensemble.

        **Arguments:**

        - `members`: $K \\ge 1$ callables `member(z)`, `z` of shape `(d,)`, all with
          the same pytree structure and array shapes (e.g. trained copies of one
          architecture).
        - `latent_dim`: $d$; inferred when omitted.

        **Returns:** an `EnsembleDecoder` with `num_members == len(members)`.

        **Raises:** `ValueError` for an empty list, or members whose structure,
        static configuration or array shapes differ (the first offending member
        and leaf are named).

        **Example:**

        ```python
        members = [eqx.nn.MLP(2, 784, 64, 2, key=k) for k in jr.split(key, 10)]
        ens = lg.EnsembleDecoder.from_members(members)
        ens(jnp.zeros(2)).shape  # (10, 784)
        ```
        """
        members = list(members)
        if not members:
            raise ValueError("`members` is empty: an ensemble needs at least one.")
        arrays0, static0 = eqx.partition(members[0], eqx.is_array)
        paths0 = jtu.tree_flatten_with_path(arrays0)[0]
        for index, member in enumerate(members[1:], start=1):
            arrays, static = eqx.partition(member, eqx.is_array)
            if jtu.tree_structure(arrays) != jtu.tree_structure(arrays0) or (
                jtu.tree_structure(static) != jtu.tree_structure(static0)
            ):
                raise ValueError(
                    f"members[{index}] has a different structure from members[0]; "
                    "all members must be the same architecture."
                )
            if not eqx.tree_equal(static, static0):
                raise ValueError(
                    f"members[{index}] differs from members[0] in a non-array "
                    "field (e.g. activation or layer sizes)."
                )
            for (path, a0), a in zip(paths0, jtu.tree_leaves(arrays)):
                if a.shape != a0.shape or a.dtype != a0.dtype:
                    raise ValueError(
                        f"members[{index}]{jtu.keystr(path)} has shape "
                        f"{a.shape} {a.dtype}, expected {a0.shape} {a0.dtype} "
                        "as in members[0]."
                    )
        stacked = jtu.tree_map(
            lambda *xs: jnp.stack(xs), *[eqx.filter(m, eqx.is_array) for m in members]
        )
        params = eqx.combine(stacked, static0)
        return cls(call_module, params, latent_dim=latent_dim)

    @classmethod
    def init(
        cls,
        make_member: Callable[[PRNGKeyArray], eqx.Module],
        num_members: int,
        *,
        key: PRNGKeyArray,
        latent_dim: int | None = None,
    ) -> "EnsembleDecoder":
        """Initialise $K$ members with independent keys, in one vmapped call.

        **Arguments:**

        - `make_member`: `key -> eqx.Module`, e.g.
          `lambda k: eqx.nn.MLP(2, 784, 64, 2, key=k)`.
        - `num_members`: $K \\ge 1$.
        - `key`: a JAX PRNG key.
        - `latent_dim`: $d$; inferred when omitted.
        """
        if num_members < 1:
            raise ValueError(f"`num_members` must be at least 1, got {num_members}.")
        keys = jax.random.split(key, num_members)
        params = _init_members(make_member, keys)
        return cls(call_module, params, latent_dim=latent_dim)

    @classmethod
    def from_apply(
        cls,
        apply_fn: Callable[[Any, Array], Array],
        stacked_params: PyTree,
        *,
        latent_dim: int | None = None,
    ) -> "EnsembleDecoder":
        """Wrap any JAX `apply(params, z)` (flax, haiku, plain functions).

        **Arguments:**

        - `apply_fn`: `apply_fn(params, z)` for one member and one `z` of shape
          `(d,)`; e.g. a flax module's `model.apply`.
        - `stacked_params`: the members' parameters stacked on axis 0, e.g.
          `jax.tree.map(lambda *p: jnp.stack(p), *member_params)`.
        - `latent_dim`: $d$; inferred by probing `apply_fn` when omitted.
        """
        return cls(apply_fn, stacked_params, latent_dim=latent_dim)

    @classmethod
    def from_torch(
        cls, members: Iterable[Any], *, latent_dim: int | None = None
    ) -> "EnsembleDecoder":
        """Convert PyTorch `torch.nn.Sequential` decoders into an ensemble.

        Each layer becomes its equinox equivalent (`Linear`, `Conv2d`,
        `ConvTranspose2d` with stride, padding, output padding, dilation, groups
        and padding mode; `Flatten`, `Unflatten`; `ReLU`, `ELU`, `LeakyReLU`,
        `Tanh`, `Sigmoid`, `Softplus` with their parameters; nested `Sequential`s
        are flattened), then the members are stacked with
        [`EnsembleDecoder.from_members`][latentgeo.EnsembleDecoder.from_members].
        Each torch decoder is read as acting on a batch: `Flatten`/`Unflatten`
        dimensions count the batch axis, which the equinox members (taking one
        `z` of shape `(d,)`) do not have. Requires PyTorch
        (`pip install 'latentgeo[torch]'`).

        **Arguments:**

        - `members`: $K \\ge 1$ `torch.nn.Sequential` decoders of one architecture.
        - `latent_dim`: $d$; inferred when omitted.

        **Returns:** an `EnsembleDecoder` whose `member(k)` matches `members[k]`.

        **Raises:**

        - `ImportError` if PyTorch is not installed.
        - `TypeError` if a member is not a `torch.nn.Sequential`.
        - `ValueError` naming the layer and its index (e.g. `members[0][3]`) for
          an unsupported layer or setting, or as `from_members` for members of
          different architectures.

        **Example:**

        ```python
        decoders = [torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ELU(),
                                        torch.nn.Linear(64, 784)) for _ in range(8)]
        ens = lg.EnsembleDecoder.from_torch(decoders)
        ```
        """
        from ._torch import members_from_torch

        return cls.from_members(members_from_torch(members), latent_dim=latent_dim)

    def check_latent(self, z: Array, name: str = "z") -> None:
        """Raise `ValueError` (at trace time) unless `z` has shape `(latent_dim,)`."""
        check_point_shape(z, self.latent_dim, name)

    def __call__(self, z: Float[Array, " d"]) -> Float[Array, " K *out"]:
        """All members' outputs at `z`: shape `(K, *out_shape)`."""
        self.check_latent(z)
        return eqx.filter_vmap(self.apply, in_axes=(eqx.if_array(0), None))(
            self.params, z
        )

    def member(self, index: int) -> Callable[[Array], Array]:
        """Member `index` as a function `z -> output`."""
        params = jtu.tree_map(lambda x: x[index] if eqx.is_array(x) else x, self.params)
        return jtu.Partial(self.apply, params)

    def mean(self, z: Float[Array, " d"]) -> Float[Array, " *out"]:
        r"""Member mean $\mu(z) = \frac1K \sum_k f_k(z)$, shape `out_shape`."""
        return jnp.mean(self(z), axis=0)

    def variance(self, z: Float[Array, " d"]) -> Float[Array, " *out"]:
        r"""Per-output variance across members, $\frac1K\sum_k (f_k(z)-\mu(z))^2$."""
        return jnp.var(self(z), axis=0)

    def uncertainty(self, z: Float[Array, " d"]) -> Float[Array, ""]:
        r"""The paper's uncertainty map (eq. 13): mean over outputs of the
        standard deviation across members (population std, $1/K$)."""
        return jnp.mean(jnp.std(self(z), axis=0))
