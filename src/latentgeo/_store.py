"""The resumable store of an all-pairs run: per-pair results in one `.npz` file,
rewritten atomically (`latentgeo._atomic.atomic_write`) after every chunk.

The store holds one row per pair (done, length, converged, steps, curve), so a
rerun solves exactly the pairs not yet done, whatever its `batch_size`, and,
once the run's probe is done (`latentgeo._probe`), which of the starts'
sources of curves solve the other pairs. Next to
them it keeps one digest per component of the run (`latentgeo._digest`): a rerun
whose metric, solver, energy, starting curves, discretisation, points or pairs
differ is refused with an error naming what changed, never resumed from stale
results.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from ._digest import tree_digest

_FORMAT = "latentgeo-pairwise/3"
_DESCRIPTIONS = {
    "points": "the points",
    "pairs": "the pairs asked (`pairs=`)",
    "metric": "the metric (its weights or structure)",
    "solver": "the solver",
    "energy": "the energy (`energy=`)",
    "starts": "the starting curves (`init=`)",
    "discretisation": "the discretisation (`discretisation=`)",
}
_FIELDS = ("done", "lengths", "converged", "num_steps", "params")


def fingerprint(**components: Any) -> dict[str, str]:
    """One digest per named component of a run; the names are those of
    `_DESCRIPTIONS`."""
    unknown = set(components) - set(_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"Unknown run components {sorted(unknown)}.")
    return {name: tree_digest(value) for name, value in components.items()}


def empty_state(num_pairs: int, params_shape: tuple[int, int]) -> dict:
    """Per-pair results of a run that has solved nothing yet."""
    return {
        "done": np.zeros(num_pairs, bool),
        "lengths": np.zeros(num_pairs),
        "converged": np.zeros(num_pairs, bool),
        "num_steps": np.zeros(num_pairs, np.int32),
        "params": np.zeros((num_pairs, *params_shape)),
    }


def load_state(path: str | os.PathLike, digests: dict[str, str], empty: dict) -> dict:
    """The per-pair results stored at `path`, after checking that they were
    written for the run described by `digests`.

    **Raises:** `ValueError` naming the components that differ, or saying why the
    file cannot be read.
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            stored_format = str(data["format"]) if "format" in data else None
            if stored_format != _FORMAT:
                raise ValueError(
                    f"it is not a {_FORMAT} store (format {stored_format!r}; "
                    "older latentgeo versions kept a single fingerprint)"
                )
            stored = {name: str(data[f"digest_{name}"]) for name in digests}
            state = {name: data[name] for name in _FIELDS}
            if "kept_sources" in data:
                state["kept_sources"] = data["kept_sources"].astype(bool)
    except Exception as error:
        raise ValueError(
            f"Cannot read the checkpoint {path}: {error}. Delete it to start afresh."
        ) from error
    changed = [name for name in digests if stored[name] != digests[name]]
    if changed:
        what = "; ".join(_DESCRIPTIONS[name] for name in changed)
        raise ValueError(
            f"The checkpoint {path} was written for another run: {what} differ "
            f"(changed: {', '.join(changed)}). Its results would be stale; delete "
            "it or pass another `checkpoint` path."
        )
    for name in _FIELDS:
        if state[name].shape != empty[name].shape:
            raise ValueError(
                f"Cannot read the checkpoint {path}: `{name}` has shape "
                f"{state[name].shape}, expected {empty[name].shape}. Delete it to "
                "start afresh."
            )
    for name in _FIELDS:
        state[name] = state[name].astype(empty[name].dtype)
    return state


def save_state(path: str | os.PathLike, digests: dict[str, str], state: dict) -> None:
    """Write `state` and the run's `digests` to `path`, atomically."""
    named = {f"digest_{name}": digest for name, digest in digests.items()}
    atomic_write(path, lambda file: np.savez(file, format=_FORMAT, **named, **state))
