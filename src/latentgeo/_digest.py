"""A digest of any Python value that is the same in every process: arrays by
dtype, shape and bytes; equinox modules and dataclasses by class and fields;
functions by module, qualified name and the values they close over.

`repr` is never used where it could hold a memory address (functions, plain
objects), so a digest computed today matches the one a fresh process computes
tomorrow for the same metric and options, and differs when any weight,
hyperparameter or static field differs. A function's body is identified by its
name, not its code: edit a function in place and keep its name, and the digest
does not change.
"""

import dataclasses
import enum
import functools
import hashlib
import inspect
import re
import types
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def tree_digest(value: Any) -> str:
    """SHA-256 hex digest of `value` (any pytree, module, function or scalar)."""
    hasher = hashlib.sha256()
    _feed(hasher, value, set())
    return hasher.hexdigest()


def _put(hasher, tag: str, payload: bytes = b"") -> None:
    hasher.update(f"{tag}:{len(payload)}:".encode() + payload)


def _name(value: Any) -> str:
    return f"{getattr(value, '__module__', None)}.{value.__qualname__}"


def _feed(hasher, value: Any, active: set[int]) -> None:
    """Write `value` into `hasher`; `active` holds the ids of the containers being
    walked, so a function that closes over itself ends the walk."""
    if value is None or isinstance(value, bool | int | float | complex | str):
        _put(hasher, type(value).__name__, repr(value).encode())
    elif isinstance(value, bytes):
        _put(hasher, "bytes", value)
    elif isinstance(value, jax.Array | np.ndarray | np.generic):
        _feed_array(hasher, value)
    elif isinstance(value, jax.ShapeDtypeStruct):
        _put(hasher, "abstract", f"{value.shape}{value.dtype}".encode())
    elif isinstance(value, type):
        _put(hasher, "class", _name(value).encode())
    elif isinstance(value, types.ModuleType):
        _put(hasher, "module", value.__name__.encode())
    elif isinstance(value, enum.Enum):
        _put(hasher, "enum", f"{_name(type(value))}.{value.name}".encode())
    elif id(value) in active:
        _put(hasher, "cycle")
    else:
        active.add(id(value))
        try:
            _feed_container(hasher, value, active)
        finally:
            active.discard(id(value))


def _feed_array(hasher, value) -> None:
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(
        value.dtype, jax.dtypes.prng_key
    ):
        _put(hasher, "key", str(jax.random.key_impl(value)).encode())
        value = jax.random.key_data(value)
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        value = multihost_utils.process_allgather(value, tiled=True)
    array = np.ascontiguousarray(np.asarray(value))
    _put(hasher, "array", f"{array.dtype.str}{array.shape}".encode())
    hasher.update(array.tobytes())


def _feed_container(hasher, value: Any, active: set[int]) -> None:
    walk = lambda item: _feed(hasher, item, active)  # noqa: E731
    if dataclasses.is_dataclass(value):  # equinox modules among them
        _put(hasher, "dataclass", _name(type(value)).encode())
        for field in dataclasses.fields(value):
            _put(hasher, "field", field.name.encode())
            walk(getattr(value, field.name, None))
    elif isinstance(value, tuple | list):  # named tuples too
        _put(hasher, "sequence", f"{_name(type(value))}/{len(value)}".encode())
        for item in value:
            walk(item)
    elif isinstance(value, dict | set | frozenset):
        items = value.items() if isinstance(value, dict) else ((v, None) for v in value)
        entries = sorted(((tree_digest(k), v) for k, v in items), key=_first)
        _put(hasher, type(value).__name__, str(len(entries)).encode())
        for key_digest, item in entries:
            _put(hasher, "key", key_digest.encode())
            walk(item)
    elif isinstance(value, functools.partial):  # `jax.tree_util.Partial` too
        _put(hasher, "partial", _name(type(value)).encode())
        walk(value.func)
        walk(value.args)
        walk(value.keywords)
    elif isinstance(value, types.MethodType):
        _put(hasher, "method")
        walk(value.__func__)
        walk(value.__self__)
    elif isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__"):
        # A decorator's wrapper (`functools.wraps`): its closure holds the
        # decorator's machinery, the function it wraps holds the meaning.
        walk(inspect.unwrap(value))
    elif isinstance(value, types.FunctionType):
        _put(hasher, "function", _name(value).encode())
        walk(value.__defaults__)
        walk(value.__kwdefaults__)
        walk([_contents(cell) for cell in value.__closure__ or ()])
    elif isinstance(getattr(value, "__qualname__", None), str):
        # Wrapped callables: jitted functions, `jax.custom_jvp`, NumPy ufuncs.
        _put(hasher, "callable", _name(value).encode())
    elif hasattr(value, "__dict__") or hasattr(type(value), "__slots__"):
        _put(hasher, "object", _name(type(value)).encode())
        slots = getattr(type(value), "__slots__", ())
        slots = (slots,) if isinstance(slots, str) else slots
        state = {name: getattr(value, name) for name in slots if hasattr(value, name)}
        walk({**getattr(value, "__dict__", {}), **state})
    else:
        text = _ADDRESS.sub("", repr(value))
        _put(hasher, "repr", f"{_name(type(value))}:{text}".encode())


def _first(entry: tuple) -> Any:
    return entry[0]


def _contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return _EMPTY


class _Empty:
    pass


_EMPTY = _Empty()
