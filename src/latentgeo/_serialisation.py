"""Checkpoints: one file per equinox module, a JSON header line and then its arrays.

The header describes every stored array (path, shape, dtype), so a load checks
the skeleton against it before reading a single weight, and the payload's length
and SHA-256 digest, so a truncated or damaged file is refused rather than read as
garbage. The payload is exactly `eqx.tree_serialise_leaves` of the module.
"""

import hashlib
import inspect
import io
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import PyTree

from ._atomic import atomic_write
from ._ensemble import EnsembleDecoder, call_module

_FORMAT = "latentgeo-checkpoint"
_FORMAT_VERSION = 1
# `json.dumps` keeps key order, so every checkpoint starts with these bytes.
_MAGIC = b'{"format": "latentgeo-checkpoint"'
_MAX_HEADER_BYTES = 1 << 26
_HEADER_KEYS = {
    "kind",
    "architecture",
    "leaves",
    "payload_bytes",
    "payload_sha256",
}
_METADATA = ("latent_dim", "num_members", "out_shape")
_MLP = "equinox.nn.MLP"
_MLP_DEFAULTS = inspect.signature(eqx.nn.MLP.__init__).parameters
# Activations an `eqx.nn.MLP` ensemble may use and still be rebuilt from the header.
_ACTIVATIONS = {
    "identity": _MLP_DEFAULTS["final_activation"].default,
    **{
        f"jax.nn.{name}": getattr(jax.nn, name)
        for name in (
            "relu",
            "relu6",
            "sigmoid",
            "softplus",
            "soft_sign",
            "silu",
            "log_sigmoid",
            "elu",
            "leaky_relu",
            "hard_tanh",
            "celu",
            "selu",
            "gelu",
            "tanh",
        )
    },
}


def _is_abstract(x: Any) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def _describe(tree: Any) -> list[dict]:
    """Path, shape and dtype of every leaf that `eqx.tree_serialise_leaves` stores
    (arrays and Python/NumPy scalars), in storage order; `jax.ShapeDtypeStruct`
    leaves of a skeleton count as the arrays they stand for."""
    leaves = []
    for path, leaf in jtu.tree_flatten_with_path(tree)[0]:
        if _is_abstract(leaf) or isinstance(leaf, jax.Array | np.ndarray):
            shape, dtype = leaf.shape, leaf.dtype
        elif eqx.is_array_like(leaf):
            shape, dtype = np.shape(leaf), np.asarray(leaf).dtype
        else:
            continue
        leaves.append(
            {"path": jtu.keystr(path), "shape": list(shape), "dtype": str(dtype)}
        )
    return leaves


def _metadata(obj: Any) -> dict:
    values = {name: getattr(obj, name, None) for name in _METADATA}
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in values.items()
        if isinstance(value, int | tuple)
    }


def _mlp_architecture(obj: PyTree) -> dict | None:
    """The header's description of an ensemble of `eqx.nn.MLP` members, or `None`
    for anything `load_checkpoint` cannot rebuild by itself."""
    if not (
        isinstance(obj, EnsembleDecoder)
        and obj.apply is call_module
        and isinstance(obj.params, eqx.nn.MLP)
    ):
        return None
    mlp = obj.params
    names = {
        field: next((n for n, f in _ACTIVATIONS.items() if f is fn), None)
        for field, fn in (
            ("activation", mlp.activation),
            ("final_activation", mlp.final_activation),
        )
    }
    if None in names.values():
        return None
    return {
        "member": _MLP,
        "in_size": mlp.in_size,
        "out_size": mlp.out_size,
        "width_size": mlp.width_size,
        "depth": mlp.depth,
        **names,
        "use_bias": mlp.use_bias,
        "use_final_bias": mlp.use_final_bias,
        "scan": getattr(mlp, "scan", False),
    }


def save_checkpoint(
    path: str | os.PathLike, obj: PyTree, *, architecture: dict | None = None
) -> None:
    """Save an equinox module (an ensemble, an encoder, a metric, ...) to one file.

    The file is a one-line JSON header followed by
    `eqx.tree_serialise_leaves(obj)`. The header records the class name, the
    latentgeo version, `latent_dim`, `num_members` and `out_shape` where `obj`
    has them, the path, shape and dtype of every stored array, the payload's
    length and SHA-256 digest, and `architecture`. The file is written to a
    temporary file in the same directory and then renamed over `path`, so an
    interrupted save never leaves a half-written checkpoint.

    **Arguments:**

    - `path`: the file to write (replaced if it exists).
    - `obj`: any `eqx.Module` (or other pytree) with concrete arrays; non-array
      fields (functions, static configuration) are not stored and come from the
      skeleton on load.
    - `architecture`: JSON-able description of how to rebuild `obj`'s skeleton,
      read back with
      [`read_checkpoint_header`][latentgeo.read_checkpoint_header]. Defaults to
      an automatic description for an [`EnsembleDecoder`][latentgeo.EnsembleDecoder]
      of `eqx.nn.MLP` members (with `jax.nn` activations), which lets
      [`load_checkpoint`][latentgeo.load_checkpoint] run without a skeleton;
      `None` otherwise.

    **Raises:**

    - `TypeError` if `architecture` is not JSON-able.
    - `ValueError` if `obj` holds abstract arrays (`jax.ShapeDtypeStruct`).

    **Example:**

    ```python
    lg.save_checkpoint("decoders.ckpt", ensemble)
    ensemble = lg.load_checkpoint("decoders.ckpt")  # eqx.nn.MLP members
    ```
    """
    path = Path(path)
    abstract = [
        jtu.keystr(p) for p, x in jtu.tree_flatten_with_path(obj)[0] if _is_abstract(x)
    ]
    if abstract:
        raise ValueError(
            f"`obj{abstract[0]}` is a jax.ShapeDtypeStruct; only a module with "
            "concrete arrays can be saved."
        )
    if architecture is None:
        architecture = _mlp_architecture(obj)
    else:
        try:
            json.dumps(architecture, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(f"`architecture` is not JSON-able: {error}.") from error
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, obj)
    payload = buffer.getvalue()
    from . import __version__

    header = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "kind": type(obj).__qualname__,
        "module": type(obj).__module__,
        "latentgeo_version": __version__,
        **_metadata(obj),
        "architecture": architecture,
        "leaves": _describe(obj),
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    line = json.dumps(header, allow_nan=False).encode() + b"\n"
    atomic_write(path, lambda file: file.write(line + payload))


def _read_header(file: io.BufferedIOBase, path: Path) -> dict:
    line = file.readline(_MAX_HEADER_BYTES)
    if not line.startswith(_MAGIC):
        raise ValueError(
            f"{path} is not a latentgeo checkpoint: it does not start with a "
            "latentgeo header (a file from `eqx.tree_serialise_leaves` loads with "
            "`eqx.tree_deserialise_leaves`)."
        )
    try:
        header = json.loads(line) if line.endswith(b"\n") else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise ValueError(f"{path} has a truncated or corrupted header line.")
    if header.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {header.get('format_version')} "
            f"(written by latentgeo {header.get('latentgeo_version')}); this "
            f"latentgeo reads version {_FORMAT_VERSION}."
        )
    if not _HEADER_KEYS <= header.keys():
        missing = sorted(_HEADER_KEYS - header.keys())
        raise ValueError(f"{path} has a corrupted header: it lacks {missing}.")
    return header


def read_checkpoint_header(path: str | os.PathLike) -> dict:
    """The JSON header of a checkpoint, without reading its arrays.

    **Arguments:**

    - `path`: a file written by [`save_checkpoint`][latentgeo.save_checkpoint].

    **Returns:** a `dict` with keys `format`, `format_version`, `kind` (class
    name), `module`, `latentgeo_version`, `latent_dim`/`num_members`/`out_shape`
    (where the saved object had them), `architecture`, `leaves` (a list of
    `{"path", "shape", "dtype"}`), `payload_bytes` and `payload_sha256`.

    **Raises:** `ValueError` naming the file if it is not a latentgeo checkpoint,
    its header is damaged, or it is from an unsupported format version.
    """
    path = Path(path)
    with open(path, "rb") as file:
        return _read_header(file, path)


def _rebuild(header: dict, path: Path) -> EnsembleDecoder:
    """An abstract skeleton (`jax.ShapeDtypeStruct` leaves) from the header."""
    architecture = header["architecture"]
    if not (
        header["kind"] == EnsembleDecoder.__qualname__
        and isinstance(architecture, dict)
        and architecture.get("member") == _MLP
    ):
        raise ValueError(
            f"{path} holds a checkpoint of class `{header['kind']}`, which cannot be "
            "rebuilt from its header (only an EnsembleDecoder of eqx.nn.MLP members "
            "with jax.nn activations can); pass `like=`, a module of the same "
            "structure, e.g. `eqx.filter_eval_shape(make_module, key)`."
        )
    unknown = {
        architecture[field]
        for field in ("activation", "final_activation")
        if architecture[field] not in _ACTIVATIONS
    }
    if unknown:
        raise ValueError(
            f"{path} uses the activation(s) {sorted(unknown)}, which this latentgeo "
            "does not know; pass `like=`."
        )
    options = {
        "activation": _ACTIVATIONS[architecture["activation"]],
        "final_activation": _ACTIVATIONS[architecture["final_activation"]],
        "use_bias": architecture["use_bias"],
        "use_final_bias": architecture["use_final_bias"],
        "dtype": jnp.dtype(header["leaves"][0]["dtype"]),
        **({"scan": True} if architecture["scan"] else {}),
    }

    def make_member(key):
        return eqx.nn.MLP(
            architecture["in_size"],
            architecture["out_size"],
            architecture["width_size"],
            architecture["depth"],
            **options,
            key=key,
        )

    return eqx.filter_eval_shape(
        lambda key: EnsembleDecoder.init(
            make_member,
            header["num_members"],
            key=key,
            latent_dim=header["latent_dim"],
        ),
        jax.random.key(0),
    )


def _check_like(header: dict, like: PyTree, path: Path) -> None:
    """Raise unless `like` has the checkpoint's class, metadata and arrays."""
    if type(like).__qualname__ != header["kind"]:
        raise ValueError(
            f"{path} holds a checkpoint of class `{header['kind']}`, but `like` is "
            f"of class `{type(like).__qualname__}`."
        )
    expected = _metadata(like)
    for name in _METADATA:
        if name in header and name in expected and header[name] != expected[name]:
            raise ValueError(
                f"{path} has {name} {header[name]}, but `like` has {expected[name]}."
            )
    stored, skeleton = header["leaves"], _describe(like)
    for saved, wanted in zip(stored, skeleton):
        if saved["path"] != wanted["path"]:
            raise ValueError(
                f"{path} does not match the structure of `like`: the checkpoint "
                f"stores `{saved['path']}` where `like` has `{wanted['path']}`."
            )
        if (saved["shape"], saved["dtype"]) != (wanted["shape"], wanted["dtype"]):
            hint = (
                " (64-bit arrays need `jax.config.update('jax_enable_x64', True)`)"
                if jax.dtypes.canonicalize_dtype(jnp.dtype(saved["dtype"]))
                != jnp.dtype(saved["dtype"])
                else ""
            )
            raise ValueError(
                f"{path} stores `{saved['path']}` with shape {tuple(saved['shape'])} "
                f"and dtype {saved['dtype']}, but `like{wanted['path']}` has shape "
                f"{tuple(wanted['shape'])} and dtype {wanted['dtype']}{hint}."
            )
    if len(stored) != len(skeleton):
        longer, extra = (
            ("the checkpoint", stored)
            if len(stored) > len(skeleton)
            else ("`like`", skeleton)
        )
        raise ValueError(
            f"{path} does not match the structure of `like`: the checkpoint stores "
            f"{len(stored)} arrays and `like` has {len(skeleton)}; {longer} also has "
            f"`{extra[min(len(stored), len(skeleton))]['path']}`."
        )


def load_checkpoint(path: str | os.PathLike, like: PyTree | None = None) -> PyTree:
    """Load a module saved by [`save_checkpoint`][latentgeo.save_checkpoint].

    Arrays are read into the skeleton `like` (the equinox way: build a module of
    the same architecture, e.g. with fresh random weights, or abstractly with
    `eqx.filter_eval_shape`, and its arrays are replaced). Every check happens
    before any weight is read: the class, `latent_dim`/`num_members`/`out_shape`,
    each array's path, shape and dtype against the header, and the payload's
    length and SHA-256 digest.

    **Arguments:**

    - `path`: the checkpoint file.
    - `like`: a module of the saved structure; its non-array fields (functions,
      static configuration such as an ensemble's `apply`) are kept. May be
      omitted for an [`EnsembleDecoder`][latentgeo.EnsembleDecoder] of
      `eqx.nn.MLP` members with `jax.nn` activations (or the identity), which is
      rebuilt from the header's `architecture`.

    **Returns:** the module with the stored arrays, bitwise equal to those saved.

    **Raises:**

    - `FileNotFoundError` if `path` does not exist.
    - `ValueError` naming the file if it is not a latentgeo checkpoint, holds
      another class or structure than `like` (naming the first differing array),
      is truncated or corrupted, or `like` is omitted for a module that cannot be
      rebuilt from its header.

    **Example:**

    ```python
    like = eqx.filter_eval_shape(
        lg.EnsembleDecoder.init, make_member, 10, key=jr.key(0)
    )
    ensemble = lg.load_checkpoint("decoders.ckpt", like)
    ```
    """
    path = Path(path)
    with open(path, "rb") as file:
        header = _read_header(file, path)
        if like is None:
            like = _rebuild(header, path)
        _check_like(header, like, path)
        payload = file.read(header["payload_bytes"] + 1)
    if len(payload) != header["payload_bytes"]:
        problem = (
            "is truncated"
            if len(payload) < header["payload_bytes"]
            else ("has trailing bytes")
        )
        raise ValueError(
            f"{path} {problem}: the header announces {header['payload_bytes']} "
            "bytes of arrays."
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise ValueError(
            f"{path} is corrupted: its arrays do not match the header's SHA-256 digest."
        )
    return eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
