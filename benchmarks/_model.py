"""The fixed benchmark model: 10 MLP decoders on the 8x8 digits 0-2.

Latent codes are the images' 2-D PCA coordinates (fitted on the training split,
scaled to unit variance per axis); each member `2 -> 64 -> 128 -> 256 -> 64`
(ReLU) is fitted to `(code, image)` pairs by `lg.train_decoders`. 100 images
are held out; their codes are the benchmark's query points. The trained model is
cached in `benchmarks/.cache/` so every script measures the same decoders.
"""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg

CACHE = Path(__file__).parent / ".cache"
NUM_MEMBERS = 10
NUM_HELD_OUT = 100
SEED = 0


class Decoder(eqx.Module):
    """`2 -> 64 -> 128 -> 256 -> 64` with ReLU between layers."""

    layers: tuple

    def __init__(self, key):
        sizes = (2, 64, 128, 256, 64)
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k, dtype=jnp.float32)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )

    def __call__(self, z):
        for layer in self.layers[:-1]:
            z = jax.nn.relu(layer(z))
        return self.layers[-1](z)


def codes_and_images():
    """PCA codes of the training and held-out digits 0-2, and the images."""
    images, _ = lg.datasets.load_digits(classes=(0, 1, 2))
    flat = images.reshape(len(images), -1)
    order = np.random.default_rng(SEED).permutation(len(flat))
    held, train = order[:NUM_HELD_OUT], order[NUM_HELD_OUT:]
    mean = flat[train].mean(axis=0)
    _, _, vt = np.linalg.svd(flat[train] - mean, full_matrices=False)
    codes = (flat - mean) @ vt[:2].T
    codes = (codes / codes[train].std(axis=0)).astype(np.float32)
    return codes[train], flat[train], codes[held], flat[held]


def load(num_steps: int = 5000):
    """`(metric, train_codes, query_codes)`; trains and caches on first use."""
    train_codes, train_images, query, _ = codes_and_images()
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"decoders_{num_steps}.eqx"
    key_init, key_train = jax.random.split(jax.random.key(SEED))
    ensemble = lg.EnsembleDecoder.init(Decoder, NUM_MEMBERS, key=key_init)
    if path.exists():
        ensemble = eqx.tree_deserialise_leaves(path, ensemble)
    else:
        ensemble, losses = lg.train_decoders(
            ensemble,
            jnp.asarray(train_codes),
            jnp.asarray(train_images),
            key=key_train,
            num_steps=num_steps,
        )
        print(f"trained: final mean squared error {float(losses[-1]):.4f}")
        eqx.tree_serialise_leaves(path, ensemble)
    return lg.ExpectedMetric(ensemble), train_codes, query
