"""Datasets for latent-geometry experiments; nothing is downloaded.

Synthetic generators return `(latents, observations)`; image loaders return
`(images, labels)`. All data are numpy float32 arrays, labels int64.
"""

from ._bundled import load_digits as load_digits, load_mnist_subset as load_mnist_subset
from ._files import load_idx as load_idx, load_mnist as load_mnist, load_npz as load_npz
from ._synthetic import (
    make_circle as make_circle,
    make_gap_curve as make_gap_curve,
    make_two_moons as make_two_moons,
)
