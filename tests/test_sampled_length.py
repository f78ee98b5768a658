import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import Linear


def _offset_ensemble(matrix, offsets):
    """Members f_k(z) = A z + c_k."""

    def apply(params, z):
        return params["matrix"] @ z + params["offset"]

    params = {
        "matrix": jnp.stack([matrix] * len(offsets)),
        "offset": jnp.asarray(offsets),
    }
    return lg.EnsembleDecoder.from_apply(apply, params, latent_dim=matrix.shape[1])


def test_identical_members_give_the_decoded_length(getkey):
    # A linear decoder maps the straight line to a straight line: its polyline
    # length is |A (z1 - z0)| exactly, whatever member each point draws.
    matrix = jax.random.normal(getkey(), (5, 2))
    ensemble = lg.EnsembleDecoder.from_members([Linear(matrix)] * 3)
    z0, z1 = jnp.array([-1.0, 0.5]), jnp.array([2.0, 1.0])
    curve = lg.CubicSpline.straight(z0, z1, 4)
    length = lg.sampled_member_length(ensemble, curve, 257, key=getkey())
    np.testing.assert_allclose(length, jnp.linalg.norm(matrix @ (z1 - z0)), rtol=1e-5)


def test_a_curved_path_tends_to_its_data_space_length(getkey):
    # f(z) = (cos z_1, sin z_1) on the straight line from (0, 0) to (pi, 0): a
    # half circle of length pi, approached by the polyline from below.
    ensemble = lg.EnsembleDecoder.from_apply(
        lambda p, z: p * jnp.stack([jnp.cos(z[0]), jnp.sin(z[0])]),
        jnp.ones(2),
        latent_dim=2,
    )
    curve = lg.CubicSpline.straight(jnp.zeros(2), jnp.array([jnp.pi, 0.0]), 3)
    length = lg.sampled_member_length(ensemble, curve, 4096, key=getkey())
    chord = 4095 * 2 * np.sin(np.pi / 2 / 4095)  # exact polyline length
    np.testing.assert_allclose(length, chord, rtol=1e-5)


def test_two_offset_members_add_their_gap_at_every_switch(getkey):
    # A constant curve: every step that switches member adds |c1 - c2|; switches
    # are Binomial(n - 1, 1/2), mean (n - 1)/2 and std sqrt(n - 1)/2.
    gap = np.array([0.3, -0.4, 1.2])
    ensemble = _offset_ensemble(jnp.zeros((3, 2)), np.stack([np.zeros(3), gap]))
    z = jnp.array([0.2, -0.1])
    curve = lg.CubicSpline.straight(z, z, 4)
    n = 4096
    keys = jax.random.split(getkey(), 8)
    lengths = jax.vmap(lambda k: lg.sampled_member_length(ensemble, curve, n, key=k))(
        keys
    )
    switches = np.asarray(lengths) / np.linalg.norm(gap)
    np.testing.assert_allclose(switches, np.round(switches), atol=1e-2)
    mean_sd = np.sqrt(n - 1) / 2 / np.sqrt(len(keys))
    assert abs(switches.mean() - 0.5 * (n - 1)) < 4 * mean_sd
    # It grows with the number of points; the curve did not change.
    fewer = lg.sampled_member_length(ensemble, curve, 512, key=keys[0])
    assert float(fewer) < 0.2 * float(lengths[0])


def test_members_are_drawn_uniformly(getkey):
    # Four members at constant outputs 0, 1, 2, 3 (one dimension) on a constant
    # curve: each step adds |k_i - k_{i-1}|, whose mean under independent
    # uniform draws is 5/4.
    ensemble = _offset_ensemble(jnp.zeros((1, 2)), np.arange(4.0)[:, None])
    z = jnp.zeros(2)
    length = lg.sampled_member_length(
        ensemble, lg.CubicSpline.straight(z, z, 2), 20001, key=getkey()
    )
    np.testing.assert_allclose(length / 20000, 1.25, rtol=0.03)


def test_bad_input(getkey):
    ensemble = lg.EnsembleDecoder.from_members([Linear(jnp.eye(2))] * 2)
    curve = lg.CubicSpline.straight(jnp.zeros(2), jnp.ones(2), 3)
    with pytest.raises(TypeError, match="EnsembleDecoder"):
        lg.sampled_member_length(Linear(jnp.eye(2)), curve, key=getkey())
    with pytest.raises(ValueError, match="num_points"):
        lg.sampled_member_length(ensemble, curve, 1, key=getkey())
    other = lg.CubicSpline.straight(jnp.zeros(3), jnp.ones(3), 3)
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        lg.sampled_member_length(ensemble, other, key=getkey())
