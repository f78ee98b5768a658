"""Datasets read from files the user provides: IDX (MNIST-style) and `.npz`."""

import gzip
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from jaxtyping import Float, Int, Shaped

from ._classes import select_classes

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MNIST_PREFIXES = {"train": "train", "test": "t10k"}
_MNIST_SOURCES = {
    False: "the MNIST files from http://yann.lecun.com/exdb/mnist/",
    True: "the Fashion-MNIST files from https://github.com/zalandoresearch/fashion-mnist",
}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if they start with the gzip magic number."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(
            f"{path} starts like a gzip file but cannot be decompressed "
            f"(truncated or corrupt): {error}"
        ) from error


def load_idx(path: str | os.PathLike) -> Shaped[np.ndarray, "*shape"]:
    """Read an IDX file, the format of the MNIST and Fashion-MNIST files.

    An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
    dimensions), one big-endian uint32 per dimension, then the values in row-major
    order and big-endian. A gzipped file is recognised by its first bytes, whatever
    its name.

    **Arguments:**

    - `path`: the file, plain or gzipped.

    **Returns:**

    The values with the shape and type the header declares (uint8 for MNIST), in
    native byte order.

    **Raises:**

    - `FileNotFoundError` if `path` does not exist.
    - `ValueError` naming the file if its magic number is not an IDX one, or its
        data is shorter or longer than the header declares, or it is a corrupt gzip.

    !!! example

        ```python
        labels = load_idx("mnist/train-labels-idx1-ubyte.gz")  # (60000,) uint8
        ```
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist. latentgeo downloads nothing: obtain the IDX file "
            "(e.g. MNIST's or Fashion-MNIST's from their official pages) and pass "
            "its path."
        )
    content = _read_bytes(path)
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[3] == 0:
        start = content[:4].hex() or "nothing"
        raise ValueError(
            f"{path} is not an IDX file: it starts with {start}, expected two zero "
            "bytes, a type code and a number of dimensions."
        )
    type_code, num_dims = content[2], content[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path} has IDX type code {type_code:#04x}; known codes are "
            f"{', '.join(f'{code:#04x}' for code in _IDX_DTYPES)}."
        )
    header_size = 4 + 4 * num_dims
    if len(content) < header_size:
        raise ValueError(
            f"{path} is truncated: its header declares {num_dims} dimensions, which "
            f"need {header_size} header bytes, but the file has {len(content)}."
        )
    shape = tuple(int(size) for size in np.frombuffer(content[4:header_size], ">u4"))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(content) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "longer than declared"
        raise ValueError(
            f"{path} is {problem}: its header declares shape {shape} of "
            f"{dtype.newbyteorder('=')}, i.e. {expected} bytes of data, but it holds "
            f"{found}."
        )
    values = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _to_float_images(
    images: Shaped[np.ndarray, " n *shape"], normalize: bool, source: str
) -> Float[np.ndarray, " n *shape"]:
    if not normalize:
        return images.astype(np.float32)
    if images.dtype != np.uint8:
        raise ValueError(
            f"The images in {source} have dtype {images.dtype}; `normalize=True` "
            "expects uint8 pixels 0..255. Pass `normalize=False` to keep the values."
        )
    return images.astype(np.float32) / np.float32(255)


def _check_labels(
    images: Shaped[np.ndarray, "..."], labels: Shaped[np.ndarray, "..."], source: str
):
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"The labels in {source} have shape {labels.shape} and dtype "
            f"{labels.dtype}; expected one integer per image."
        )
    if images.ndim < 2 or len(images) != len(labels):
        raise ValueError(
            f"{source} has images of shape {images.shape} and {len(labels)} labels; "
            "expected one label per image."
        )


def _find_mnist_file(directory: Path, name: str, fashion: bool) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Neither {directory / name} nor {name}.gz in that directory exists. Download "
        f"{name}.gz from {_MNIST_SOURCES[fashion]} and place it in {directory} "
        "(gzipped or not)."
    )


def load_mnist(
    directory: str | os.PathLike,
    *,
    kind: Literal["train", "test"] = "train",
    classes: Sequence[int] | None = None,
    normalize: bool = True,
    fashion: bool = False,
) -> tuple[Float[np.ndarray, "n height width"], Int[np.ndarray, " n"]]:
    """Read MNIST or Fashion-MNIST from its IDX files in `directory`.

    The files keep their standard names, `train-images-idx3-ubyte`,
    `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    `t10k-labels-idx1-ubyte`, each optionally with a `.gz` suffix. Nothing is
    downloaded.

    **Arguments:**

    - `directory`: the folder holding the files.
    - `kind`: `"train"` (default; 60,000 images) or `"test"` (10,000 images).
    - `classes`: labels to keep, e.g. `(0, 1, 2)`; `None` (default) keeps all.
        Examples keep their order and their original labels.
    - `normalize`: scale the pixels from 0..255 to $[0, 1]$. Default `True`.
    - `fashion`: whether the files are Fashion-MNIST, which has the same names and
        format; it only changes where a missing-file error says to get them.

    **Returns:**

    A tuple `(images, labels)`: float32 images of shape `(n, 28, 28)` and int64
    labels of shape `(n,)`.

    **Raises:**

    - `FileNotFoundError` naming a missing file and where to obtain it.
    - `ValueError` if `kind` is unknown, a file is not a valid IDX file (see
        [`load_idx`][latentgeo.datasets.load_idx]), the images and labels do not
        match, or `classes` names a label that the files do not contain.

    !!! example

        ```python
        images, labels = load_mnist("~/data/mnist", kind="test", classes=(0, 1, 2))
        ```
    """
    if kind not in _MNIST_PREFIXES:
        raise ValueError(f"`kind` must be 'train' or 'test', got {kind!r}.")
    directory = Path(directory).expanduser()
    prefix = _MNIST_PREFIXES[kind]
    image_path = _find_mnist_file(directory, f"{prefix}-images-idx3-ubyte", fashion)
    label_path = _find_mnist_file(directory, f"{prefix}-labels-idx1-ubyte", fashion)
    images, labels = load_idx(image_path), load_idx(label_path)
    source = f"{image_path} and {label_path}"
    _check_labels(images, labels, source)
    images = _to_float_images(images, normalize, source)
    return select_classes(images, labels.astype(np.int64), classes, source)


_NPZ_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def _read_npz_pair(
    path: Path, image_key: str, label_key: str
) -> tuple[Shaped[np.ndarray, "..."], Shaped[np.ndarray, "..."]]:
    # Open the file here: np.load leaks its handle when the archive is corrupt.
    with path.open("rb") as file:
        try:
            archive = np.load(file, allow_pickle=False)
        except _NPZ_READ_ERRORS as error:
            raise ValueError(
                f"{path} is not a readable .npz archive: {error}"
            ) from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(
                f"{path} holds a single array, not a .npz archive of named arrays."
            )
        with archive:
            missing = [key for key in (image_key, label_key) if key not in archive]
            if missing:
                raise ValueError(
                    f"{path} lacks the keys {missing}; it has {sorted(archive.files)}."
                )
            try:
                return archive[image_key], archive[label_key]
            except _NPZ_READ_ERRORS as error:
                raise ValueError(f"{path} is corrupt: {error}") from error


def load_npz(
    path: str | os.PathLike,
    *,
    kind: Literal["train", "test"] = "train",
    classes: Sequence[int] | None = None,
    normalize: bool = True,
) -> tuple[Float[np.ndarray, " n *shape"], Int[np.ndarray, " n"]]:
    """Read images and labels from a `.npz` archive with the keys `x_train`,
    `y_train`, `x_test` and `y_test`.

    This is the layout of Keras' `mnist.npz`; write your own with
    `numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)`. Only the
    two keys of `kind` must be present. Nothing is downloaded and nothing is
    unpickled.

    **Arguments:**

    - `path`: the `.npz` file.
    - `kind`: `"train"` (default) reads `x_train`/`y_train`, `"test"` reads
        `x_test`/`y_test`.
    - `classes`: labels to keep; `None` (default) keeps all. Examples keep their
        order and their original labels.
    - `normalize`: scale uint8 pixels from 0..255 to $[0, 1]$. Default `True`;
        pass `False` for other dtypes, which are then only cast.

    **Returns:**

    A tuple `(images, labels)`: float32 images of shape `(n, ...)` as stored and
    int64 labels of shape `(n,)`.

    **Raises:**

    - `FileNotFoundError` if `path` does not exist.
    - `ValueError` if `kind` is unknown, the file is not a readable `.npz`, a key is
        missing, the labels are not one integer per image, `normalize=True` meets
        non-uint8 images, or `classes` names a label the file does not contain.
    """
    if kind not in _MNIST_PREFIXES:
        raise ValueError(f"`kind` must be 'train' or 'test', got {kind!r}.")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist. Provide a .npz with the keys x_{kind} and "
            f"y_{kind}, e.g. Keras' mnist.npz or one written with numpy.savez."
        )
    images, labels = _read_npz_pair(path, f"x_{kind}", f"y_{kind}")
    source = str(path)
    _check_labels(images, labels, source)
    images = _to_float_images(images, normalize, source)
    return select_classes(images, labels.astype(np.int64), classes, source)
