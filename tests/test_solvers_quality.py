"""The default solver (`WarmStart`: Adam warm-up, then L-BFGS) against closed
forms and its parts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import Linear


def linear_metric(key):
    matrix = jax.random.normal(key, (4, 2))
    return lg.PullbackMetric(Linear(matrix)), matrix


def test_default_is_warm_start_and_finds_the_straight_geodesic(getkey):
    metric, matrix = linear_metric(getkey())
    z0, z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
    # Start from a bent curve, so that both phases have work to do.
    bent = lg.CubicSpline(z0, z1, 0.3 * jnp.ones((11, 2)))
    result = lg.geodesic(metric, z0, z1, init=bent)
    expected = jnp.linalg.norm(matrix @ (z1 - z0))
    np.testing.assert_allclose(result.length, expected, rtol=1e-4)
    same = lg.geodesic(metric, z0, z1, init=bent, solver=lg.WarmStart())
    np.testing.assert_array_equal(result.length, same.length)
    assert int(result.num_steps) == int(same.num_steps)


def test_phases_compose(getkey):
    metric, _ = linear_metric(getkey())
    z0, z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
    bent = lg.CubicSpline(z0, z1, 0.3 * jnp.ones((11, 2)))
    adam = lg.OptaxSolver(optax.adam(1e-2), rtol=0.0, patience=100)
    warm = lg.geodesic(metric, z0, z1, init=bent, solver=adam, max_steps=7, throw=False)
    then = lg.geodesic(metric, z0, z1, init=warm.curve, solver=lg.OptaxSolver())
    both = lg.geodesic(
        metric, z0, z1, init=bent, solver=lg.WarmStart(adam, lg.OptaxSolver(), 7)
    )
    np.testing.assert_allclose(both.length, then.length, rtol=1e-6)
    assert int(both.num_steps) == 7 + int(then.num_steps)
    # No warm-up: plain L-BFGS.
    none = lg.WarmStart(warmup_steps=0)
    plain = lg.geodesic(metric, z0, z1, init=bent, solver=lg.OptaxSolver())
    zero = lg.geodesic(metric, z0, z1, init=bent, solver=none)
    np.testing.assert_array_equal(zero.length, plain.length)


def test_bad_warmup_steps():
    with pytest.raises(ValueError, match="warmup_steps"):
        lg.WarmStart(warmup_steps=-1)
