import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy.stats as stats
import jaxtyping
import numpy as np
import optax
import pytest

import latentgeo as lg
from latentgeo.training import _elbo, _epoch, _step, _vae
from latentgeo.training._encoder import param_dtype

# One optimiser object for every run, so runs with equal shapes share compilations.
ADAM = optax.adam(1e-2)


def circle_data(num_points=100, obs_dim=8):
    """Observations of noisy circle points, scaled to variance ~4 per dimension."""
    _, observations = lg.datasets.make_circle(num_points, obs_dim=obs_dim, seed=0)
    return 5 * observations


def tiny_vae(num_members=3, data_shape=(8,), latent_dim=2, seed=0):
    return lg.init_vae(
        data_shape, latent_dim, num_members, hidden_sizes=(16,), key=jr.key(seed)
    )


def train(data, num_members=3, seed=0, **kwargs):
    encoder, ensemble = tiny_vae(num_members, data.shape[1:])
    kwargs = {
        "optimiser": ADAM,
        "batch_size": 16,
        "max_epochs": 3,
        "progress": False,
        **kwargs,
    }
    return lg.train_ensemble_vae(encoder, ensemble, data, key=jr.key(seed), **kwargs)


def changed_members(before, after):
    """Indices of the members whose parameters differ."""
    leaves = zip(
        jax.tree.leaves(eqx.filter(before.params, eqx.is_array)),
        jax.tree.leaves(eqx.filter(after.params, eqx.is_array)),
    )
    differs = np.zeros(before.num_members, bool)
    for a, b in leaves:
        differs |= np.any(np.asarray(a != b).reshape(a.shape[0], -1), axis=1)
    return set(np.flatnonzero(differs).tolist())


def test_kl_matches_monte_carlo():
    mean = jnp.array([0.5, -1.0, 2.0])
    log_var = jnp.array([0.3, -0.7, -2.0])
    std = jnp.exp(0.5 * log_var)
    z = mean[None] + std[None] * jr.normal(jr.key(0), (400_000, 3))
    log_q = jnp.sum(stats.norm.logpdf(z, mean[None], std[None]), axis=1)
    log_p = jnp.sum(stats.norm.logpdf(z), axis=1)
    samples = np.asarray(log_q - log_p, np.float64)
    standard_error = samples.std() / math.sqrt(samples.size)
    closed_form = float(_elbo.kl_to_standard_normal(mean, log_var))
    assert abs(closed_form - samples.mean()) < 4 * standard_error
    # Zero exactly at the prior.
    assert float(_elbo.kl_to_standard_normal(jnp.zeros(3), jnp.zeros(3))) == 0.0


def test_log_likelihoods_match_densities():
    x = jr.uniform(jr.key(0), (10,))
    output = jr.normal(jr.key(1), (10,))
    gaussian = _elbo.log_likelihood(x, output, "gaussian")
    constant = 5 * math.log(2 * math.pi)  # (D / 2) log(2 pi), left out
    np.testing.assert_allclose(
        gaussian - constant, jnp.sum(stats.norm.logpdf(x, output)), rtol=1e-6
    )
    probability = jax.nn.sigmoid(output)
    binary = (x > 0.5).astype(x.dtype)
    np.testing.assert_allclose(
        _elbo.log_likelihood(binary, output, "bernoulli"),
        jnp.sum(stats.bernoulli.logpmf(binary, probability)),
        rtol=1e-5,
    )
    grey = x * jnp.log(probability) + (1 - x) * jnp.log1p(-probability)
    np.testing.assert_allclose(
        _elbo.log_likelihood(x, output, "bernoulli"), jnp.sum(grey), rtol=1e-5
    )


def test_init_vae_builds_the_papers_architecture():
    # Shapes only: `filter_eval_shape` builds no weights.
    encoder, ensemble = eqx.filter_eval_shape(
        lambda key: lg.init_vae((28, 28), 2, 10, key=key), jr.key(0)
    )
    decoder_weights = [layer.weight.shape for layer in ensemble.params.layers[::2]]
    assert decoder_weights == [
        (10, 64, 2),
        (10, 128, 64),
        (10, 256, 128),
        (10, 512, 256),
        (10, 784, 512),
    ]
    encoder_weights = [layer.weight.shape for layer in encoder.net.layers[::2]]
    assert encoder_weights == [(512, 784), (256, 512), (128, 256), (64, 128), (4, 64)]
    assert encoder.in_shape == (28, 28) and encoder.latent_dim == 2


def test_encoder_flattens_and_splits_with_relu_between_layers():
    encoder, ensemble = lg.init_vae((2, 4), 3, 2, hidden_sizes=(16, 8), key=jr.key(0))
    x = jr.normal(jr.key(1), (8,))
    first, second, last = encoder.net.layers[::2]
    expected = last(jax.nn.relu(second(jax.nn.relu(first(x)))))
    mean, log_var = encoder(x.reshape(2, 4))
    np.testing.assert_allclose(jnp.concatenate([mean, log_var]), expected, rtol=1e-6)
    assert mean.shape == log_var.shape == (3,)
    z = jr.normal(jr.key(2), (3,))
    first, second, last = ensemble.member(1).args[0].layers[::2]
    expected = last(jax.nn.relu(second(jax.nn.relu(first(z)))))
    np.testing.assert_allclose(ensemble(z)[1], expected, rtol=1e-6)
    assert ensemble.out_shape == (8,) and ensemble.num_members == 2


def entropy(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_decreases_below_the_best_latent_free_model(likelihood):
    data = circle_data()
    if likelihood == "bernoulli":
        data = np.asarray(jax.nn.sigmoid(0.8 * data))  # grey values in (0, 1)
    result = train(data, likelihood=likelihood, max_epochs=40)
    assert result.num_epochs == 40
    assert result.train_loss[-1] < result.train_loss[0]
    best = float(result.validation_loss[result.best_epoch])
    assert best == float(jnp.min(result.validation_loss))
    # A decoder that ignores z can at best predict the mean example; its loss is
    # at least that prediction's (the KL term is >= 0). Beating it by far means
    # the latents carry the data.
    held_out = data[np.asarray(result.validation_indices)]
    mean = held_out.mean(axis=0)
    if likelihood == "gaussian":
        baseline = 0.5 * np.sum((held_out - mean) ** 2, axis=1).mean()
        assert best < 0.25 * baseline
    else:
        # Grey values: no model gets below the data's own entropy.
        floor = entropy(held_out).sum(axis=1).mean()
        baseline = entropy(mean).sum()
        assert best - floor < 0.25 * (baseline - floor)


def test_single_decoder_vae_on_image_shaped_data():
    images = circle_data().reshape(100, 2, 4)
    result = train(images, num_members=1, max_epochs=10)
    assert result.ensemble.num_members == 1 and result.ensemble.out_shape == (8,)
    assert result.validation_loss[result.best_epoch] < 0.5 * result.validation_loss[0]
    latents = lg.encode(result.encoder, images)
    expected = jax.vmap(lambda x: result.encoder(x)[0])(
        jnp.asarray(images, latents.dtype)
    )
    assert latents.shape == (100, 2)
    # Chunked and whole-batch encodings round alike only on some CPUs.
    np.testing.assert_allclose(latents, expected, rtol=1e-5, atol=1e-6)


def test_each_step_updates_one_member_and_the_encoder():
    data = circle_data()
    encoder, ensemble = tiny_vae()
    # Batch size >= 90 training examples: one step per epoch.
    result = train(data, batch_size=128, max_epochs=1)
    assert len(changed_members(ensemble, result.ensemble)) == 1
    assert not eqx.tree_equal(encoder, result.encoder)
    # Over many steps every member gets its turn.
    result = train(data, batch_size=128, max_epochs=20, patience=20)
    assert changed_members(ensemble, result.ensemble) == {0, 1, 2}


def test_members_keep_their_own_optimiser_state():
    # With one Adam state for the whole stack, member 0's momentum would keep
    # moving it while member 1 trains.
    encoder, ensemble = tiny_vae()
    schedule = lg.training.OneDecoderPerBatch()
    step, state = _epoch.init_step(encoder, ensemble, ADAM, "gaussian", 1.0, schedule)
    one_step = eqx.filter_jit(schedule)
    batch = jnp.asarray(circle_data(16), param_dtype(ensemble.params))
    after_first, _ = one_step(step, state, jnp.array(0), batch, jr.key(0))
    after_second, _ = one_step(step, after_first, jnp.array(1), batch, jr.key(1))

    def member(state, index):
        return jax.tree.map(lambda x: x[index], state.decoders)

    assert eqx.tree_equal(member(after_second, 0), member(after_first, 0))
    assert not eqx.tree_equal(member(after_first, 0), member(state, 0))
    assert not eqx.tree_equal(member(after_second, 1), member(after_first, 1))
    assert eqx.tree_equal(member(after_second, 2), member(state, 2))
    encoder_opt, decoders_opt = after_second.opt_state
    (member_adam,) = jax.tree.leaves(decoders_opt, is_leaf=_is_adam)
    np.testing.assert_array_equal(member_adam.count, [1, 1, 0])
    (encoder_adam,) = jax.tree.leaves(encoder_opt, is_leaf=_is_adam)
    assert int(encoder_adam.count) == 2


def test_epoch_equals_its_steps_one_by_one():
    # The epoch keeps the member being trained out of the stacks between steps;
    # the same batches, members and keys, stepped one at a time through the
    # stacks, must give the same state and losses.
    encoder, ensemble = tiny_vae()
    schedule = lg.training.OneDecoderPerBatch()
    step, state = _epoch.init_step(encoder, ensemble, ADAM, "bernoulli", 0.05, schedule)
    data = jnp.asarray(jax.nn.sigmoid(circle_data()), param_dtype(ensemble.params))
    train, validation = data[:90], data[90:]
    epoch_key, noise_key = jr.key(5), jr.key(6)
    after, train_loss = eqx.filter_jit(_epoch.run_epoch)(
        step, schedule, state, train, epoch_key, 16
    )
    validation_loss = step.validation_loss(after, validation, noise_key)
    # The epoch's draws, spelled out: 6 batches of 16 (the last filled up from
    # the start of the pass), a member and a key each.
    order_key, schedule_key = jr.split(epoch_key)
    member_key, step_key = jr.split(schedule_key)
    order = np.asarray(jr.permutation(order_key, 90))
    order = np.concatenate([order, order[:6]]).reshape(6, 16)
    members = jr.randint(member_key, (6,), 0, 3)
    assert len(set(np.asarray(members).tolist())) > 1
    one_step = eqx.filter_jit(schedule)
    losses = []
    for member, batch, key in zip(members, order, jr.split(step_key, 6)):
        state, loss = one_step(step, state, member, train[batch], key)
        losses.append(loss)
    assert eqx.tree_equal(after, state, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(train_loss, np.mean(losses), rtol=1e-6)
    # The validation loss: each member's loss on the same noise, averaged.
    per_member = [
        step.loss(
            state.encoder,
            jax.tree.map(lambda x: x[k], state.decoders),
            jnp.array(k),
            validation,
            noise_key,
        )
        for k in range(3)
    ]
    np.testing.assert_allclose(validation_loss, np.mean(per_member), rtol=1e-6)


def test_training_compiles_once_across_calls(monkeypatch):
    # The robustness experiment trains two models with 30 seeds each: the epoch
    # must be traced once per architecture, not once per call or seed. The
    # validation loss runs inside a traced function only, so its calls count
    # traces.
    traces = []
    validation_loss = _step.VAEStep.validation_loss

    def counting(self, *args):
        traces.append(None)
        return validation_loss(self, *args)

    monkeypatch.setattr(_step.VAEStep, "validation_loss", counting)
    data = circle_data()
    other = data[::-1] * 0.5  # other data of the same shape
    for seed, x in ((0, data), (1, other), (2, data)):
        # An architecture no other test uses, with the default optimiser.
        encoder, ensemble = lg.init_vae(
            (8,), 2, 3, hidden_sizes=(13,), key=jr.key(seed)
        )
        lg.train_ensemble_vae(
            encoder, ensemble, x, key=jr.key(seed), max_epochs=2, progress=False
        )
    assert len(traces) == 1


def _is_adam(x):
    return isinstance(x, optax.ScaleByAdamState)


def test_same_key_gives_identical_models():
    data = circle_data()
    first, second = train(data, seed=3), train(data, seed=3)
    assert eqx.tree_equal(first, second)
    other = train(data, seed=4)
    assert not eqx.tree_equal(first.ensemble, other.ensemble)


def test_early_stopping_returns_the_best_epoch():
    # Gradient descent for 5 epochs of 6 steps, then ascent: the validation loss
    # falls, then rises (possibly to NaN), and never again reaches its minimum.
    def learning_rate(count):
        return jnp.where(count < 30, 0.01, -0.01)

    data = circle_data()
    kwargs = dict(optimiser=optax.sgd(learning_rate), patience=3)
    result = train(data, max_epochs=100, **kwargs)
    losses = np.asarray(result.validation_loss)
    assert 0 < result.best_epoch < 5
    assert result.best_epoch == np.nanargmin(losses)
    # Stopped after `patience` epochs without improvement.
    assert result.num_epochs == result.best_epoch + 4
    # The returned parameters are those after the best epoch.
    until_best = train(data, max_epochs=result.best_epoch + 1, **kwargs)
    assert until_best.best_epoch == result.best_epoch
    assert eqx.tree_equal(result.encoder, until_best.encoder)
    assert eqx.tree_equal(result.ensemble, until_best.ensemble)


def test_keyboard_interrupt_returns_finished_epochs(monkeypatch):
    data = circle_data()
    reference = train(data, max_epochs=2)
    run_epoch = _vae.jitted_epoch

    def interrupt_at(call):
        calls = []

        def patched(*args):
            calls.append(None)
            if len(calls) == call:
                raise KeyboardInterrupt
            return run_epoch(*args)

        return patched

    monkeypatch.setattr(_vae, "jitted_epoch", interrupt_at(3))
    result = train(data, max_epochs=10)
    assert result.interrupted and not reference.interrupted
    assert result.num_epochs == 2
    assert eqx.tree_equal(result.ensemble, reference.ensemble)
    monkeypatch.setattr(_vae, "jitted_epoch", interrupt_at(1))
    with pytest.raises(KeyboardInterrupt):
        train(data)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d, kw: (d.at[3, 1].set(jnp.nan), kw), "NaN or inf"),
        (lambda d, kw: (d.at[0, 0].set(jnp.inf), kw), "NaN or inf"),
        (lambda d, kw: (d, {**kw, "likelihood": "bernoulli"}), r"in \[0, 1\]"),
        (lambda d, kw: (d[:, :7], kw), "cannot take one example of shape"),
        (lambda d, kw: (d[:, 0], kw), r"expected \(N, \*example_shape\)"),
        (lambda d, kw: (d[:1], kw), "too few"),
        (lambda d, kw: (d, {**kw, "kl_weight": -1.0}), "kl_weight"),
        (lambda d, kw: (d, {**kw, "batch_size": 0}), "batch_size"),
        (lambda d, kw: (d, {**kw, "validation_fraction": 0.0}), "validation"),
        (lambda d, kw: (d, {**kw, "validation_fraction": 1.0}), "validation"),
    ],
)
def test_bad_inputs_raise(change, message):
    encoder, ensemble = tiny_vae()
    data, kwargs = change(jnp.asarray(circle_data(20)), {"key": jr.key(0)})
    if kwargs.get("likelihood") == "bernoulli":
        data = data + 0.5 * jnp.abs(data)  # mostly > 1
    with pytest.raises(ValueError, match=message):
        lg.train_ensemble_vae(encoder, ensemble, data, **kwargs)


def test_unknown_likelihood_raises():
    encoder, ensemble = tiny_vae()
    # The jaxtyping hook of the test suite rejects it first, by its `Literal` type.
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match="likelihood"):
        lg.train_ensemble_vae(
            encoder, ensemble, circle_data(20), key=jr.key(0), likelihood="poisson"
        )


def test_mismatched_encoder_and_decoders_raise():
    data = circle_data(20)
    encoder, _ = tiny_vae(latent_dim=3)
    _, ensemble = tiny_vae(latent_dim=2)
    with pytest.raises(ValueError, match=r"latents of shape \(3,\)"):
        lg.train_ensemble_vae(encoder, ensemble, data, key=jr.key(0))
    encoder, _ = tiny_vae(data_shape=(8,))
    _, ensemble = tiny_vae(data_shape=(9,))
    with pytest.raises(ValueError, match="as many entries"):
        lg.train_ensemble_vae(encoder, ensemble, data, key=jr.key(0))
    with pytest.raises(ValueError, match=r"has shape \(3,\), expected \(8,\)"):
        encoder(jnp.zeros(3))
    with pytest.raises(ValueError, match="cannot take one example"):
        lg.encode(encoder, data[:, :3])


def test_float64():
    with jax.enable_x64(True):
        encoder, ensemble = tiny_vae()
        result = lg.train_ensemble_vae(
            encoder,
            ensemble,
            circle_data(),
            key=jr.key(0),
            max_epochs=2,
            progress=False,
        )
        leaves = jax.tree.leaves(eqx.filter(result, eqx.is_inexact_array))
        assert {leaf.dtype for leaf in leaves} == {jnp.dtype(jnp.float64)}
        assert lg.encode(result.encoder, circle_data()).dtype == jnp.float64


def test_split_batch_gives_each_member_its_share():
    # Batch of 12 over 3 members: member k trains on examples k, k + 3, k + 6,
    # k + 9, and the loss is the mean over all 12, so member k's gradient is a
    # third of its own mean loss's.
    encoder, ensemble = tiny_vae()
    schedule = lg.training.SplitBatch()
    sgd = optax.sgd(0.1)
    step, state = _epoch.init_step(encoder, ensemble, sgd, "gaussian", 0.05, schedule)
    data = jnp.asarray(circle_data(12), param_dtype(ensemble.params))
    key = jr.key(3)
    after, losses = eqx.filter_jit(schedule.train_batches)(
        step, state, data, jnp.arange(12)[None], key
    )
    (batch_key,) = jr.split(key, 1)
    member_keys = jr.split(batch_key, 3)

    def member_loss(params, k):
        return step.loss(
            state.encoder, params, jnp.array(k), data[k::3], member_keys[k]
        )

    own = [
        member_loss(jax.tree.map(lambda x: x[k], state.decoders), k) for k in range(3)
    ]
    np.testing.assert_allclose(losses[0], np.mean(own), rtol=1e-6)
    for k in range(3):
        member = jax.tree.map(lambda x: x[k], state.decoders)
        grads = jax.grad(member_loss)(member, k)
        expected = jax.tree.map(lambda p, g: p - 0.1 * g / 3, member, grads)
        moved = jax.tree.map(lambda x: x[k], after.decoders)
        assert eqx.tree_equal(moved, expected, rtol=1e-5, atol=1e-7)


def test_split_batch_clips_the_whole_model_by_one_norm():
    encoder, ensemble = tiny_vae()
    schedule = lg.training.SplitBatch()
    clipped = optax.chain(optax.clip_by_global_norm(1e-3), optax.sgd(1.0))
    step, state = _epoch.init_step(
        encoder, ensemble, clipped, "gaussian", 0.05, schedule
    )
    data = jnp.asarray(circle_data(12), param_dtype(ensemble.params))
    after, _ = eqx.filter_jit(schedule.train_batches)(
        step, state, data, jnp.arange(12)[None], jr.key(0)
    )
    moved = jax.tree.map(
        lambda a, b: a - b,
        (after.encoder, after.decoders),
        (state.encoder, state.decoders),
    )
    norm = np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(moved)))
    np.testing.assert_allclose(norm, 1e-3, rtol=1e-4)
    assert changed_members(
        ensemble,
        eqx.tree_at(
            lambda e: e.params,
            ensemble,
            eqx.combine(after.decoders, step.decoder_static),
        ),
    ) == {0, 1, 2}


def test_split_batch_trains_and_checks_the_batch_size():
    data = circle_data()
    result = train(data, batch_size=15, schedule=lg.training.SplitBatch())
    assert np.all(np.isfinite(result.train_loss))
    with pytest.raises(ValueError, match="multiple of the number of members"):
        train(data, batch_size=16, schedule=lg.training.SplitBatch())


def test_validation_every_and_a_fixed_split():
    data = circle_data()
    result = train(data, max_epochs=7, patience=20, validation_every=3)
    validated = np.isfinite(np.asarray(result.validation_loss))
    np.testing.assert_array_equal(validated, [False, False, True] * 2 + [True])
    assert result.best_epoch in (2, 5, 6)
    split = jr.key(11)
    first = train(data, seed=1, max_epochs=1, split_key=split)
    second = train(data, seed=2, max_epochs=1, split_key=split)
    other = train(data, seed=1, max_epochs=1)
    np.testing.assert_array_equal(first.validation_indices, second.validation_indices)
    assert not np.array_equal(first.validation_indices, other.validation_indices)


def test_encode_samples_the_posterior():
    encoder, _ = tiny_vae()
    x = jnp.asarray(circle_data(3), param_dtype(encoder))
    mean, log_var = encoder(x[1])
    np.testing.assert_allclose(lg.encode(encoder, x)[1], mean, rtol=1e-6)
    samples = lg.encode(encoder, jnp.repeat(x[1:2], 20000, axis=0), key=jr.key(0))
    std = np.exp(0.5 * np.asarray(log_var))
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * std / np.sqrt(20000))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.03)
