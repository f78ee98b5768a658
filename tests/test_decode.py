import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import small_mlp


@pytest.fixture
def ensemble(getkey):
    return lg.EnsembleDecoder.init(lambda k: small_mlp(k, out_size=6), 3, key=getkey())


def member_statistics(ensemble, points):
    """Mean and population std over members, one member call at a time."""
    outputs = np.stack(
        [
            np.stack([np.asarray(ensemble.member(k)(z)) for z in points])
            for k in range(ensemble.num_members)
        ]
    )  # (K, n, 6)
    return outputs.mean(axis=0), np.sqrt(
        ((outputs - outputs.mean(axis=0)) ** 2).mean(0)
    )


def test_decoding_a_curve_at_uniform_times(ensemble, getkey):
    curve = lg.CubicSpline(
        jnp.array([-1.0, 0.5]),
        jnp.array([1.0, 0.0]),
        jax.random.normal(getkey(), (5, 2)),
    )
    decoded = lg.decode_along(ensemble, curve, num_points=7)
    np.testing.assert_allclose(decoded.points, curve(jnp.linspace(0, 1, 7)), atol=0)
    mean, std = member_statistics(ensemble, decoded.points)
    assert decoded.mean.shape == (7, 6) and decoded.std.shape == (7, 6)
    np.testing.assert_allclose(decoded.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(decoded.std, std, rtol=1e-4, atol=1e-6)


def test_decoding_given_points(ensemble):
    points = jnp.array([[0.0, 0.0], [0.5, -0.5], [2.0, 1.0]])
    decoded = lg.decode_along(ensemble, points)
    mean, _ = member_statistics(ensemble, points)
    np.testing.assert_allclose(decoded.mean, mean, rtol=1e-5, atol=1e-6)


def test_bad_input(ensemble):
    with pytest.raises(TypeError, match="EnsembleDecoder"):
        lg.decode_along(ensemble.member(0), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        lg.decode_along(ensemble, jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        lg.decode_along(ensemble, jnp.array([[0.0, jnp.nan]]))
    batch = lg.CubicSpline(jnp.zeros((2, 2)), jnp.ones((2, 2)), jnp.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="batch of curves"):
        lg.decode_along(ensemble, batch)
    with pytest.raises(ValueError, match="num_points"):
        lg.decode_along(
            ensemble, lg.CubicSpline.straight(jnp.zeros(2), jnp.ones(2)), num_points=1
        )
