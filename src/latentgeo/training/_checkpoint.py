"""Resumable training: the state after each unit of work in one crash-safe file.

A training checkpoint is an `.npz` archive written with `atomic_write` (so a
`kill -9` leaves the previous checkpoint whole) holding:

- `header`: JSON with the format and a *fingerprint*: one SHA-256 digest per
  thing the result depends on (data, initial model, key, optimiser, settings);
- `leaf_0000`, ...: the array leaves of the state, in `jax.tree_util` order;
- `history`: the per-unit losses so far (its length is the number of units done).

A checkpoint whose fingerprint differs from the run's is refused with an error
naming what differs, never silently reused.
"""

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
from jaxtyping import PyTree

from .._atomic import atomic_write
from .._digest import tree_digest

_FORMAT = "latentgeo-training/1"


@eqx.filter_jit
def _probe_updates(
    optimiser: optax.GradientTransformation, params: PyTree, num_probes: int
) -> list[PyTree]:
    leaves, treedef = jtu.tree_flatten(params)
    keys = jr.split(jr.key(0), (num_probes, len(leaves)))
    opt_state = optimiser.init(params)
    updates = []
    for probe in range(num_probes):
        grads = treedef.unflatten(
            [jr.normal(k, x.shape, x.dtype) for k, x in zip(keys[probe], leaves)]
        )
        # optax mixes its int32 step count with floats (Adam's bias correction).
        with jax.numpy_dtype_promotion("standard"):
            update, opt_state = optimiser.update(grads, opt_state, params)
        updates.append(update)
    return updates


def optimiser_digest(
    optimiser: optax.GradientTransformation, params: PyTree, num_probes: int = 3
) -> str:
    """A digest of what `optimiser` does to `params`: its updates in `num_probes`
    steps with fixed pseudo-random gradients. Transformations are functions and
    cannot be compared; this tells apart learning rates, moments, schedules and
    weight decays, which is what matters for resuming."""
    return tree_digest(_probe_updates(optimiser, params, num_probes))


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Where and for what a training run saves its state; see the module doc.

    **Attributes:**

    - `path`: the checkpoint file.
    - `fingerprint`: `name -> digest` of everything the run's result depends on.
    """

    path: Path
    fingerprint: dict[str, str | int | float]

    def load(self, like: PyTree) -> tuple[PyTree, np.ndarray] | None:
        """The saved `(state, history)`, or `None` if there is no file.

        **Arguments:**

        - `like`: a state of the run's structure; the saved arrays must have its
          shapes and dtypes.

        **Raises:** `ValueError` for a file that is not a training checkpoint of
        this run (another fingerprint, another structure), naming what differs.
        """
        if not self.path.exists():
            return None
        try:
            # numpy leaves the file open when it is not a zip archive.
            with open(self.path, "rb") as stream:
                with np.load(stream, allow_pickle=False) as file:
                    header = json.loads(str(file["header"]))
                    arrays = {name: file[name] for name in file.files}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{self.path} is not a readable training checkpoint ({error}); "
                "delete it or pass another `checkpoint` path."
            ) from error
        if header.get("format") != _FORMAT:
            raise ValueError(
                f"{self.path} is not a training checkpoint (format "
                f"{header.get('format')!r}, expected {_FORMAT!r})."
            )
        saved = header.get("fingerprint", {})
        differs = sorted(
            name
            for name in saved.keys() | self.fingerprint
            if saved.get(name) != self.fingerprint.get(name)
        )
        if differs:
            raise ValueError(
                f"{self.path} was written by a training run with other "
                f"{', '.join(differs)}; resuming it would mix two runs. Delete it "
                "or pass another `checkpoint` path."
            )
        like_leaves, treedef = jtu.tree_flatten(like)
        leaves = [arrays.get(f"leaf_{index:04d}") for index in range(len(like_leaves))]
        for index, (leaf, like_leaf) in enumerate(zip(leaves, like_leaves)):
            if (
                leaf is None
                or leaf.shape != like_leaf.shape
                or leaf.dtype != like_leaf.dtype
            ):
                raise ValueError(
                    f"{self.path}: array {index} does not match the run's state "
                    f"(expected {like_leaf.dtype}{list(like_leaf.shape)})."
                )
        return treedef.unflatten([jnp.asarray(x) for x in leaves]), arrays["history"]

    def save(self, state: PyTree, history: np.ndarray) -> None:
        """Write `state` (a pytree of arrays) and `history` atomically."""
        header = json.dumps({"format": _FORMAT, "fingerprint": self.fingerprint})
        arrays = {
            f"leaf_{index:04d}": np.asarray(leaf)
            for index, leaf in enumerate(jtu.tree_leaves(state))
        }
        atomic_write(
            self.path,
            lambda file: np.savez(
                file, header=np.asarray(header), history=history, **arrays
            ),
        )


def make_checkpoint(
    path: str | os.PathLike | None, **parts: PyTree
) -> Checkpoint | None:
    """A `Checkpoint` at `path` whose fingerprint holds each keyword argument:
    strings and numbers as they are, anything else by its `digest`; or `None`
    without a path."""
    if path is None:
        return None
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"The folder of `checkpoint`, {path.parent}, does not exist.")
    fingerprint = {
        name: value if isinstance(value, str | int | float) else tree_digest(value)
        for name, value in parts.items()
    }
    return Checkpoint(path, fingerprint)
