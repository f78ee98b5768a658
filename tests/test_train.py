import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import small_mlp
from latentgeo.training import _decoders


def test_members_fit_a_linear_map_and_disagree_off_data(getkey):
    rng = np.random.default_rng(0)
    latents = rng.uniform(-1, 1, size=(256, 2)).astype(np.float32)
    matrix = rng.normal(size=(5, 2)).astype(np.float32)
    data = latents @ matrix.T
    ensemble = lg.EnsembleDecoder.init(small_mlp, 3, key=getkey())
    trained, losses = lg.train_decoders(
        ensemble, latents, data, key=getkey(), num_steps=1500, progress=False
    )
    assert losses.shape == (1500,)
    assert float(losses[-1]) < 0.02 * float(losses[0])
    z = jnp.array([0.3, -0.4])
    np.testing.assert_allclose(trained.mean(z), matrix @ np.asarray(z), atol=0.1)
    far = jnp.array([6.0, 6.0])
    assert float(trained.uncertainty(far)) > 3 * float(trained.uncertainty(z))


def test_training_is_deterministic(getkey):
    latents = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
    data = np.sin(latents @ np.ones((2, 5), np.float32))
    ensemble = lg.EnsembleDecoder.init(small_mlp, 2, key=jax.random.key(3))
    runs = [
        lg.train_decoders(
            ensemble, latents, data, key=jax.random.key(4), num_steps=20, progress=False
        )[0]
        for _ in range(2)
    ]
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        np.testing.assert_array_equal(a, b)


def test_bad_input(getkey):
    ensemble = lg.EnsembleDecoder.init(small_mlp, 2, key=getkey())
    latents = np.zeros((10, 2), np.float32)
    with pytest.raises(ValueError, match=r"`latents` has shape \(10, 3\)"):
        lg.train_decoders(ensemble, np.zeros((10, 3)), np.zeros((10, 5)), key=getkey())
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's hook may fire first
        lg.train_decoders(ensemble, latents, np.zeros((9, 5)), key=getkey())
    bad = np.zeros((10, 5), np.float32)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"`data` rows \[3\] contain NaN"):
        lg.train_decoders(ensemble, latents, bad, key=getkey())
    bad_latents = np.zeros((10, 2), np.float32)
    bad_latents[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"`latents` rows \[7\] contain NaN"):
        lg.train_decoders(ensemble, bad_latents, np.zeros((10, 5)), key=getkey())
    with pytest.raises(ValueError, match="num_steps"):
        lg.train_decoders(
            ensemble, latents, np.zeros((10, 5)), key=getkey(), num_steps=0
        )


def test_steps_compile_once_per_architecture(monkeypatch):
    # Two calls with the same architecture, the default optimiser (a fresh
    # default each call), other data of the same shape and other keys, and other
    # step counts: one trace. The loss runs inside the traced chunk only.
    traces = []
    loss = _decoders._Fit.loss

    def counting(self, *args):
        traces.append(None)
        return loss(self, *args)

    monkeypatch.setattr(_decoders._Fit, "loss", counting)
    rng = np.random.default_rng(1)
    for seed, num_steps in ((0, 150), (1, 30)):
        latents = rng.normal(size=(40, 2)).astype(np.float32)
        data = np.tanh(latents @ rng.normal(size=(2, 7))).astype(np.float32)
        # An output size no other test uses.
        ensemble = lg.EnsembleDecoder.init(
            lambda k: small_mlp(k, out_size=7), 2, key=jax.random.key(seed)
        )
        _, losses = lg.train_decoders(
            ensemble,
            latents,
            data,
            key=jax.random.key(seed),
            num_steps=num_steps,
            batch_size=16,
            progress=False,
        )
        assert losses.shape == (num_steps,) and np.all(np.isfinite(losses))
    assert len(traces) == 1
