"""The benchmark model zoo: decoder ensembles with fixed query points, cached.

Every model is `(metric, train_codes, query_codes)`: an `lg.ExpectedMetric`, the
training codes (graph nodes for data-following starts) and 100 query codes
(4,950 pairs). A model is trained once and kept in `benchmarks/weights/`
(`<name>.eqx`, with its final training loss in `<name>.json`). Training is not
bit-reproducible across machines (a `relu` model retrained on another machine
gave straight-start geodesics up to 9% apart on the same pairs), so the weights
behind committed per-pair results (the float64 reference above all) are
committed there too.

- `relu`: 8x8 digits 0-2 (`lg.datasets.load_digits`), 2-D PCA codes fitted on
  the training split and scaled to unit variance per axis, 100 held-out images
  as queries; 10 members `2 -> 64 -> 128 -> 256 -> 64` (ReLU) trained by
  `lg.train_decoders` for 5,000 steps (the keys of the former
  `benchmarks/_model.py`).
- `elu`, `tanh`, `softplus`: the same data and architecture with those
  activations, initialised with `key(0)` and trained with `key(1)` as the former
  0.1's ELU comparison did (so `elu` is its model, bit for bit).
- `circle`: the model of `examples/circle.py` (8 tanh members
  `2 -> 128 -> 128 -> 16` with weights 6x the default scale, 3,000 steps on 500
  noisy circle points); queries: 100 points at random angles, radius
  `1 + N(0, 0.05^2)` (on and near the circle).
- `vae-relu`: a single-decoder Gaussian VAE trained by the library's VAE
  trainer (`lg.train_ensemble_vae`, K = 1, 150 epochs at most) on the bundled
  MNIST subset, all ten digits; decoder `2 -> 128 -> 128 -> 784` (ReLU), the
  shape of a decoder another project trained (a scRNA-seq VAE, `2 -> 128 ->
  128 -> 50`); the metric is the pull-back of its mean (`lg.PullbackMetric`).
  Its latent space is the encoder's, not PCA's. Queries: the posterior means
  of 100 held-out images; training codes: those of the rest.
- `relu-d8`, `relu-d16`, `relu-d50`, `elu-d50`: the bundled MNIST subset
  (`lg.datasets.load_mnist_subset`, 5,000 images, 784 pixels), d-dimensional PCA
  codes (unit variance per axis), 100 held-out images as queries; 10 members
  `d -> 256 -> 256 -> 256 -> 784` trained for 3,000 steps.

Build every model and print the training losses (the first build takes about
half an hour on a 2-core CPU, mostly the MNIST models):

    PYTHONPATH=src:benchmarks python benchmarks/models.py [names...]
"""

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from latentgeo._atomic import atomic_write

CACHE = Path(__file__).parent / ".cache"
WEIGHTS = Path(__file__).parent / "weights"
NUM_HELD_OUT = 100
SEED = 0


class Mlp(eqx.Module):
    """Dense layers of the given sizes with `activation` between them."""

    layers: tuple
    activation: Callable = eqx.field(static=True)

    def __init__(self, sizes, activation, key):
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k, dtype=jnp.float32)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.activation = activation

    def __call__(self, z):
        for layer in self.layers[:-1]:
            z = self.activation(layer(z))
        return self.layers[-1](z)


def _pca_split(flat: np.ndarray, dim: int):
    """Held-out split and PCA codes (unit variance per axis on the training
    split): `(train_codes, train_data, query_codes, query_data)`."""
    order = np.random.default_rng(SEED).permutation(len(flat))
    held, train = order[:NUM_HELD_OUT], order[NUM_HELD_OUT:]
    mean = flat[train].mean(axis=0)
    _, _, vt = np.linalg.svd(flat[train] - mean, full_matrices=False)
    codes = (flat - mean) @ vt[:dim].T
    codes = (codes / codes[train].std(axis=0)).astype(np.float32)
    return codes[train], flat[train], codes[held], flat[held]


def digits_codes():
    """The 8x8 digits 0-2 and their 2-D PCA codes (see `_pca_split`)."""
    images, _ = lg.datasets.load_digits(classes=(0, 1, 2))
    return _pca_split(images.reshape(len(images), -1), 2)


def mnist_codes(dim: int):
    """The bundled MNIST subset and its `dim`-D PCA codes (see `_pca_split`)."""
    images, _ = lg.datasets.load_mnist_subset()
    return _pca_split(images.reshape(len(images), -1).astype(np.float32), dim)


def circle_codes():
    """`examples/circle.py`'s data, and 100 query points on and near the circle."""
    latents, observations = lg.datasets.make_circle(500, noise=0.05, seed=SEED)
    rng = np.random.default_rng(1)
    angles = rng.uniform(0.0, 2 * np.pi, NUM_HELD_OUT)
    radii = 1.0 + 0.05 * rng.standard_normal(NUM_HELD_OUT)
    query = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return latents, observations, query.astype(np.float32), None


def _circle_member(key):
    mlp = eqx.nn.MLP(2, 16, 128, 2, activation=jnp.tanh, key=key)
    return jax.tree.map(lambda w: 6.0 * w if eqx.is_array(w) else w, mlp)


@dataclasses.dataclass(frozen=True)
class Spec:
    """How to build one model: data, members, keys and training steps."""

    data: Callable[[], tuple]
    make_member: Callable
    num_members: int
    keys: Callable[[], tuple]  # () -> (init key, training key)
    num_steps: int


def _split_keys():
    return tuple(jax.random.split(jax.random.key(SEED)))


def _separate_keys():
    return jax.random.key(0), jax.random.key(1)


def _circle_keys():
    keys = jax.random.split(jax.random.key(SEED), 5)
    return keys[0], keys[1]


def _digits(activation, keys):
    sizes = (2, 64, 128, 256, 64)
    member = lambda k: Mlp(sizes, activation, k)  # noqa: E731
    return Spec(digits_codes, member, 10, keys, 5000)


def _mnist(dim, activation):
    sizes = (dim, 256, 256, 256, 784)
    member = lambda k: Mlp(sizes, activation, k)  # noqa: E731
    return Spec(lambda: mnist_codes(dim), member, 10, _split_keys, 3000)


MODELS = {
    "relu": _digits(jax.nn.relu, _split_keys),
    "elu": _digits(jax.nn.elu, _separate_keys),
    "tanh": _digits(jnp.tanh, _separate_keys),
    "softplus": _digits(jax.nn.softplus, _separate_keys),
    "circle": Spec(circle_codes, _circle_member, 8, _circle_keys, 3000),
    "relu-d8": _mnist(8, jax.nn.relu),
    "relu-d16": _mnist(16, jax.nn.relu),
    "relu-d50": _mnist(50, jax.nn.relu),
    "elu-d50": _mnist(50, jax.nn.elu),
}


def _load_vae(name: str):
    """The `vae-relu` model (see the module docstring), trained once, cached."""
    images, _ = lg.datasets.load_mnist_subset()
    flat = images.reshape(len(images), -1).astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(flat))
    held, train = order[:NUM_HELD_OUT], order[NUM_HELD_OUT:]
    init_key, train_key = jax.random.split(jax.random.key(SEED))
    encoder, ensemble = lg.init_vae((784,), 2, 1, hidden_sizes=(128, 128), key=init_key)
    path = WEIGHTS / f"{name}.eqx"
    if path.exists():
        encoder, ensemble = eqx.tree_deserialise_leaves(path, (encoder, ensemble))
    else:
        WEIGHTS.mkdir(exist_ok=True)
        start = time.perf_counter()
        vae = lg.train_ensemble_vae(
            encoder,
            ensemble,
            flat[train],
            key=train_key,
            max_epochs=150,
            progress=False,
        )
        encoder, ensemble = vae.encoder, vae.ensemble
        info = dict(
            name=name,
            num_steps=vae.num_epochs,
            final_mse=float(vae.validation_loss[vae.best_epoch]),
            mse_last_100=float(vae.validation_loss[vae.best_epoch]),
            seconds=time.perf_counter() - start,
        )
        atomic_write(path, lambda f: eqx.tree_serialise_leaves(f, (encoder, ensemble)))
        atomic_write(
            WEIGHTS / f"{name}.json", lambda f: f.write(json.dumps(info).encode())
        )
    codes = np.asarray(lg.encode(encoder, flat), np.float32)
    return (
        lg.PullbackMetric(ensemble.member(0), latent_dim=2),
        codes[train],
        codes[held],
    )


def load(name: str):
    """`(metric, train_codes, query_codes)` of model `name`; trains and caches
    on first use. The codes are float32 numpy arrays."""
    if name == "vae-relu":
        return _load_vae(name)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    spec = MODELS[name]
    train_codes, train_data, query, _ = spec.data()
    key_init, key_train = spec.keys()
    ensemble = lg.EnsembleDecoder.init(spec.make_member, spec.num_members, key=key_init)
    path = WEIGHTS / f"{name}.eqx"
    if path.exists():
        ensemble = eqx.tree_deserialise_leaves(path, ensemble)
    else:
        WEIGHTS.mkdir(exist_ok=True)
        start = time.perf_counter()
        ensemble, losses = lg.train_decoders(
            ensemble,
            jnp.asarray(train_codes),
            jnp.asarray(train_data),
            key=key_train,
            num_steps=spec.num_steps,
            progress=False,
        )
        info = dict(
            name=name,
            num_steps=spec.num_steps,
            final_mse=float(losses[-1]),
            mse_last_100=float(jnp.mean(losses[-100:])),
            seconds=time.perf_counter() - start,
        )
        atomic_write(path, lambda f: eqx.tree_serialise_leaves(f, ensemble))
        atomic_write(
            WEIGHTS / f"{name}.json", lambda f: f.write(json.dumps(info).encode())
        )
    return lg.ExpectedMetric(ensemble), train_codes, query


def training_info(name: str) -> dict:
    """The cached model's training record (final loss, steps, seconds)."""
    return json.loads((WEIGHTS / f"{name}.json").read_text())


def pairs():
    """`(rows, cols)`: the 4,950 index pairs `i < j` of the 100 query codes."""
    return np.triu_indices(NUM_HELD_OUT, 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build (train, cache) the models.")
    parser.add_argument("names", nargs="*", default=[*MODELS, "vae-relu"])
    for name in parser.parse_args().names:
        metric, train, query = load(name)
        info = training_info(name)
        print(
            f"{name:>9}: d = {metric.latent_dim}, {len(train)} training codes, "
            f"{len(query)} queries; {info['num_steps']} steps, final MSE "
            f"{info['final_mse']:.5f} (mean of last 100 {info['mse_last_100']:.5f}), "
            f"trained in {info['seconds']:.0f} s",
            flush=True,
        )
