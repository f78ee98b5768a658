"""The resumable store of an all-pairs run: per-pair results in one `.npz` file,
rewritten atomically (`latentgeo._atomic.atomic_write`) after every chunk."""

import hashlib
from pathlib import Path

import numpy as np

from ._atomic import atomic_write


def fingerprint(points: np.ndarray, options: tuple, extra: np.ndarray | None) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(points).tobytes())
    if extra is not None:
        digest.update(np.ascontiguousarray(extra).tobytes())
    digest.update(repr(options).encode())
    return digest.hexdigest()


def empty_state(num_pairs: int, params_shape: tuple[int, int]) -> dict:
    return {
        "done": np.zeros(num_pairs, bool),
        "lengths": np.zeros(num_pairs),
        "converged": np.zeros(num_pairs, bool),
        "num_steps": np.zeros(num_pairs, np.int32),
        "params": np.zeros((num_pairs, *params_shape)),
    }


def load_state(path: Path, fingerprint: str, empty: dict) -> dict:
    try:
        with np.load(path) as data:
            stored = {k: data[k] for k in (*empty, "fingerprint")}
    except Exception as error:
        raise ValueError(
            f"Cannot read the checkpoint {path}: {error}. Delete it to start afresh."
        ) from error
    if str(stored.pop("fingerprint")) != fingerprint:
        raise ValueError(
            f"The checkpoint {path} was written for other points or options; "
            "delete it or pass another `checkpoint` path."
        )
    return stored


def save_state(path: Path, fingerprint: str, state: dict) -> None:
    atomic_write(path, lambda file: np.savez(file, fingerprint=fingerprint, **state))
