import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import small_mlp


def test_from_members_stacks_members(getkey):
    members = [small_mlp(getkey()) for _ in range(3)]
    ens = lg.EnsembleDecoder.from_members(members)
    z = jnp.array([0.3, -0.7])
    assert (ens.num_members, ens.latent_dim, ens.out_shape) == (3, 2, (5,))
    expected = jnp.stack([m(z) for m in members])
    np.testing.assert_allclose(ens(z), expected, rtol=1e-6)
    np.testing.assert_allclose(ens.member(1)(z), members[1](z), rtol=1e-6)


def test_init_gives_distinct_members(getkey):
    ens = lg.EnsembleDecoder.init(small_mlp, 4, key=getkey())
    outputs = ens(jnp.array([0.5, 0.5]))
    assert outputs.shape == (4, 5)
    assert float(jnp.min(jnp.std(outputs, axis=0))) > 0


def test_init_compiles_once_per_member_builder(getkey):
    # Initialising an architecture again (another seed) reuses the compilation:
    # the builder is traced once, however many ensembles it makes.
    traces = []

    def make_member(key):
        traces.append(None)
        return eqx.nn.MLP(2, 3, 5, 1, key=key)

    first = lg.EnsembleDecoder.init(make_member, 3, key=getkey())
    second = lg.EnsembleDecoder.init(make_member, 3, key=getkey())
    assert len(traces) == 1
    assert not eqx.tree_equal(first.params, second.params)


def test_statistics_match_numpy(getkey):
    ens = lg.EnsembleDecoder.init(small_mlp, 5, key=getkey())
    z = jnp.array([0.1, 0.9])
    outputs = np.asarray(ens(z), np.float64)
    np.testing.assert_allclose(ens.mean(z), outputs.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ens.variance(z), outputs.var(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ens.uncertainty(z), outputs.std(0).mean(), rtol=1e-4)


def test_from_apply_with_plain_function_and_inferred_dim():
    def apply(params, z):
        return jnp.tanh(params["w"] @ z + params["b"]).reshape(1, 2, 2)

    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 4, 3)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
    }
    ens = lg.EnsembleDecoder.from_apply(apply, params)
    assert (ens.latent_dim, ens.out_shape, ens.num_members) == (3, (1, 2, 2), 3)
    z = jnp.array([0.2, -0.1, 0.4])
    expected = jnp.tanh(jnp.einsum("kij,j->ki", params["w"], z) + params["b"])
    np.testing.assert_allclose(ens(z).reshape(3, 4), expected, rtol=1e-5)


def test_composes_with_jit_vmap_grad(getkey):
    ens = lg.EnsembleDecoder.init(small_mlp, 3, key=getkey())
    zs = jnp.linspace(-1, 1, 8).reshape(4, 2)
    batched = jax.jit(jax.vmap(ens.uncertainty))(zs)
    np.testing.assert_allclose(batched, [ens.uncertainty(z) for z in zs], rtol=1e-5)
    grad = jax.grad(lambda z: jnp.sum(ens.mean(z)))(zs[0])
    step = 1e-3
    numeric = [
        (jnp.sum(ens.mean(zs[0] + step * e)) - jnp.sum(ens.mean(zs[0] - step * e)))
        / (2 * step)
        for e in jnp.eye(2)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=1e-3)


def test_errors(getkey):
    with pytest.raises(ValueError, match="empty"):
        lg.EnsembleDecoder.from_members([])
    wide = eqx.nn.MLP(2, 5, 16, 2, key=getkey())
    with pytest.raises(ValueError, match=r"members\[1\]"):
        lg.EnsembleDecoder.from_members([small_mlp(getkey()), wide])
    relu = small_mlp(getkey(), activation=jax.nn.relu)
    with pytest.raises(ValueError, match="non-array field"):
        lg.EnsembleDecoder.from_members([small_mlp(getkey()), relu])
    ens = lg.EnsembleDecoder.init(small_mlp, 2, key=getkey())
    with pytest.raises(ValueError, match=r"`z` has shape \(3,\), expected \(2,\)"):
        ens(jnp.zeros(3))
    with pytest.raises(ValueError, match="leading member axis"):
        lg.EnsembleDecoder.from_apply(
            lambda p, z: p["a"] @ z, {"a": jnp.ones((2, 3, 2)), "b": jnp.ones(3)}
        )
    with pytest.raises(ValueError, match="latent_dim"):
        lg.EnsembleDecoder.from_apply(lambda p, z: p["a"] * z, {"a": jnp.ones((2, 1))})
