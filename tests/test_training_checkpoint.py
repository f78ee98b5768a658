"""Resumable training: a run resumed from its checkpoint ends exactly where an
uninterrupted run ends, also after a real `kill -9`; a checkpoint of another run is
refused."""

import functools
import os
import signal
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import latentgeo as lg
from latentgeo.training import _vae

ADAM = optax.adam(1e-2)
# Gradient descent for 5 epochs of 6 steps, then ascent: the best epoch is early,
# so a resumed run must bring back the best state from the checkpoint.
UP_AND_DOWN = optax.sgd(lambda count: jnp.where(count < 30, 0.01, -0.01))


def circle_data(num_points=100, scale=5.0):
    _, observations = lg.datasets.make_circle(num_points, obs_dim=8, seed=0)
    return scale * observations


def train_vae(data=None, seed=0, init_seed=0, **kwargs):
    data = circle_data() if data is None else data
    encoder, ensemble = lg.init_vae(
        (8,), 2, 3, hidden_sizes=(16,), key=jr.key(init_seed)
    )
    kwargs = {"optimiser": ADAM, "batch_size": 16, "progress": False, **kwargs}
    return lg.train_ensemble_vae(encoder, ensemble, data, key=jr.key(seed), **kwargs)


def assert_same_result(result, reference):
    """Bit-identical models and loss histories (NaN where the reference has NaN:
    the ascent below may diverge)."""
    assert eqx.tree_equal(
        (result.encoder, result.ensemble, result.validation_indices),
        (reference.encoder, reference.ensemble, reference.validation_indices),
    )
    np.testing.assert_array_equal(result.train_loss, reference.train_loss)
    np.testing.assert_array_equal(result.validation_loss, reference.validation_loss)
    assert (result.best_epoch, result.interrupted) == (reference.best_epoch, False)


def test_resumed_vae_equals_uninterrupted(tmp_path, monkeypatch):
    path = tmp_path / "vae.npz"
    settings = dict(optimiser=UP_AND_DOWN, patience=3, max_epochs=100)
    reference = train_vae(**settings)
    assert 0 < reference.best_epoch < 5 < reference.num_epochs < 100
    # Stopped after 6 epochs (as if killed then), resumed with the full setting.
    partial = train_vae(**{**settings, "max_epochs": 6}, checkpoint=path)
    assert partial.num_epochs == 6
    resumed = train_vae(**settings, checkpoint=path)
    assert_same_result(resumed, reference)
    # A finished run's checkpoint gives the result again without training.
    monkeypatch.setattr(_vae, "jitted_epoch", None)
    assert_same_result(train_vae(**settings, checkpoint=path), reference)


def test_resumed_vae_with_adam_equals_uninterrupted(tmp_path):
    path = tmp_path / "vae.npz"
    reference = train_vae(max_epochs=8)
    train_vae(max_epochs=3, checkpoint=path)
    assert_same_result(train_vae(max_epochs=8, checkpoint=path), reference)
    with pytest.raises(ValueError, match="holds 8 epochs, more than `max_epochs=5`"):
        train_vae(max_epochs=5, checkpoint=path)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "vae.npz"
    train_vae(max_epochs=1, checkpoint=path)
    changes = [
        ({"data": circle_data(scale=4.0)}, "data"),
        ({"seed": 1}, "key"),
        ({"init_seed": 1}, "model"),
        ({"optimiser": optax.adam(1e-3)}, "optimiser"),
        ({"kl_weight": 1.0}, "kl_weight"),
        ({"batch_size": 8}, "batch_size"),
        ({"likelihood": "bernoulli", "data": jax.nn.sigmoid(circle_data())}, "data"),
    ]
    for change, name in changes:
        with pytest.raises(ValueError, match=f"other .*{name}"):
            train_vae(max_epochs=2, checkpoint=path, **change)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        train_vae(max_epochs=2, checkpoint=path)
    with pytest.raises(ValueError, match="does not exist"):
        train_vae(checkpoint=tmp_path / "missing" / "vae.npz")


def test_diverged_run_with_checkpoint_raises(tmp_path):
    # Data so large that every loss overflows to inf: no epoch has a finite
    # validation loss, and the error says so (the checkpoint keeps the initial
    # parameters as the best so far).
    with pytest.raises(FloatingPointError, match="diverged"):
        train_vae(
            data=circle_data(scale=1e30),
            patience=2,
            max_epochs=10,
            checkpoint=tmp_path / "vae.npz",
        )


# `python tests/test_training_checkpoint.py PATH` trains with a checkpoint until it
# is killed; the test below kills it.
NEVER_STOPS = {"max_epochs": 100_000, "patience": 100_000}


def _killable_run(path: str) -> None:
    train_vae(data=circle_data(2000), checkpoint=path, **NEVER_STOPS)


def test_vae_survives_kill_9(tmp_path):
    path = tmp_path / "vae.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, __file__, str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    epochs, deadline = 0, time.monotonic() + 300
    try:
        while epochs < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
            if path.exists():
                with np.load(path) as file:
                    epochs = file["history"].shape[0]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    with np.load(path) as file:
        killed_at = file["history"].shape[0]
    assert killed_at >= 3
    # Rerun with the same settings (here: until two epochs after the kill).
    settings = {**NEVER_STOPS, "max_epochs": killed_at + 2}
    resumed = train_vae(data=circle_data(2000), checkpoint=path, **settings)
    reference = train_vae(data=circle_data(2000), **settings)
    assert resumed.num_epochs == killed_at + 2
    assert_same_result(resumed, reference)


@functools.cache
def decoders_setup():
    rng = np.random.default_rng(0)
    latents = rng.uniform(-1, 1, size=(64, 2)).astype(np.float32)
    data = np.sin(latents @ rng.normal(size=(2, 5))).astype(np.float32)
    members = [eqx.nn.MLP(2, 5, 8, 1, key=k) for k in jr.split(jr.key(3), 2)]
    return lg.EnsembleDecoder.from_members(members), latents, data


def train_decoders(num_steps, seed=0, **kwargs):
    ensemble, latents, data = decoders_setup()
    return lg.train_decoders(
        ensemble,
        latents,
        data,
        key=jr.key(seed),
        num_steps=num_steps,
        batch_size=16,
        progress=False,
        **kwargs,
    )


def test_resumed_decoders_equal_uninterrupted(tmp_path):
    path = tmp_path / "decoders.npz"
    reference, reference_losses = train_decoders(250)
    _, partial_losses = train_decoders(130, checkpoint=path)
    np.testing.assert_array_equal(partial_losses, reference_losses[:130])
    resumed, resumed_losses = train_decoders(250, checkpoint=path)
    assert eqx.tree_equal(resumed, reference)
    np.testing.assert_array_equal(resumed_losses, reference_losses)
    with pytest.raises(ValueError, match="other key"):
        train_decoders(300, seed=1, checkpoint=path)
    with pytest.raises(ValueError, match="holds 250 steps"):
        train_decoders(200, checkpoint=path)


if __name__ == "__main__":
    _killable_run(sys.argv[1])
