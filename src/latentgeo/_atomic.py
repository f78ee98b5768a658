"""Crash-safe file writes: a file is either absent, its old version, or whole.

Every writer of resumable state (checkpoints, all-pairs stores, training and
experiment records) goes through `atomic_write`: the bytes go to a temporary file
in the same folder, are flushed and `fsync`-ed, then renamed over the target
(`os.replace` is atomic on POSIX and Windows), and the folder is `fsync`-ed so the
rename itself survives a power cut. A `kill -9` at any moment leaves no partial
file under the target name.
"""

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically.

    **Arguments:**

    - `path`: the target file; its folder must exist.
    - `write`: called once with a binary file object open for writing (e.g.
      `lambda f: np.savez(f, **arrays)` or `lambda f: f.write(data)`).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - some file systems refuse it
        pass
    finally:
        os.close(descriptor)
