"""Keep only the examples of some classes."""

from collections.abc import Sequence

import numpy as np
from jaxtyping import Int, Shaped


def select_classes(
    images: Shaped[np.ndarray, " n *shape"],
    labels: Int[np.ndarray, " n"],
    classes: Sequence[int] | None,
    source: str,
) -> tuple[Shaped[np.ndarray, " m *shape"], Int[np.ndarray, " m"]]:
    """Return the examples whose label is in `classes` (all when `None`), in their
    original order and with their original labels.

    Raises `ValueError` naming `source` if `classes` is empty or names a label that
    `source` does not contain.
    """
    if classes is None:
        return images, labels
    wanted = np.asarray(classes)
    if wanted.size == 0:
        raise ValueError(f"`classes` for {source} is empty; pass None for all.")
    available = np.unique(labels)
    unknown = np.setdiff1d(wanted, available)
    if unknown.size:
        raise ValueError(
            f"`classes` names {unknown.tolist()}, which {source} does not contain; "
            f"its labels are {available.tolist()}."
        )
    keep = np.isin(labels, wanted)
    return images[keep], labels[keep]
