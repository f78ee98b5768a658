import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg


@pytest.fixture
def spline(getkey):
    z0, z1 = jnp.array([0.0, 1.0]), jnp.array([2.0, -1.0])
    params = jax.random.normal(getkey(), (7, 2))
    return lg.CubicSpline(z0, z1, params)


def test_zero_parameters_give_the_straight_line():
    curve = lg.CubicSpline.straight(jnp.array([1.0, 2.0]), jnp.array([3.0, -2.0]), 5)
    t = jnp.linspace(0, 1, 11)
    line = np.array([1.0, 2.0]) + np.asarray(t)[:, None] * np.array([2.0, -4.0])
    np.testing.assert_allclose(curve(t), line, atol=1e-6)
    velocity = np.tile([2.0, -4.0], (11, 1))
    np.testing.assert_allclose(curve.derivative(t), velocity, atol=1e-5)


def test_end_points_are_exact_for_any_parameters(spline):
    ends = spline(jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(ends[0], spline.z0)
    np.testing.assert_allclose(ends[1], spline.z1, atol=1e-6)


def test_derivative_matches_autodiff(spline):
    t = jnp.array([0.05, 0.31, 0.5, 0.77, 0.99])
    autodiff = jax.vmap(jax.jacfwd(lambda s: spline(s[None])[0]))(t)
    np.testing.assert_allclose(spline.derivative(t), autodiff, rtol=1e-4, atol=1e-5)


def test_second_derivative_is_continuous_at_knots(spline):
    second = jax.vmap(jax.hessian(lambda s: spline(s[None])[0]))
    knots = jnp.linspace(0, 1, spline.num_segments + 1)[1:-1]
    eps = 1e-3
    left, right = second(knots - eps), second(knots + eps)
    scale = float(jnp.max(jnp.abs(left)))
    # C2: the jump in curvature across a knot vanishes (to O(eps) third-derivative).
    assert float(jnp.max(jnp.abs(left - right))) < 0.05 * scale


def test_deviation_basis_is_orthonormal_in_l2():
    z0, z1 = jnp.zeros(1), jnp.zeros(1)
    t = (jnp.arange(20000, dtype=jnp.float32) + 0.5) / 20000  # midpoint rule
    values = jnp.stack(
        [lg.CubicSpline(z0, z1, jnp.eye(9)[:, i : i + 1])(t)[:, 0] for i in range(9)]
    )
    gram = values @ values.T / t.shape[0]
    np.testing.assert_allclose(gram, jnp.eye(9), atol=1e-4)


def test_fit_recovers_a_spline_exactly(spline):
    t = jnp.linspace(0, 1, 40)
    fitted = lg.CubicSpline.fit(spline(t), spline.num_segments, times=t)
    np.testing.assert_allclose(fitted.params, spline.params, rtol=1e-3, atol=1e-4)


def test_fit_follows_a_polyline():
    path = jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    first, second = (
        jnp.linspace(path[0], path[1], 50),
        jnp.linspace(path[1], path[2], 50),
    )
    dense = jnp.concatenate([first, second[1:]])
    curve = lg.CubicSpline.fit(dense, 10)
    np.testing.assert_array_equal(curve.z0, path[0])
    np.testing.assert_array_equal(curve.z1, path[2])
    middle = curve(jnp.array([0.5]))[0]
    np.testing.assert_allclose(middle, path[1], atol=0.05)


def test_errors():
    # With jaxtyping's import hook (as in this suite) the annotation check fires
    # first for mismatched shapes; without it, __check_init__ raises ValueError.
    with pytest.raises((ValueError, TypeError)):
        lg.CubicSpline(jnp.zeros(2), jnp.ones(2), jnp.zeros((5, 3)))
    with pytest.raises((ValueError, TypeError)):
        lg.CubicSpline(jnp.zeros(2), jnp.ones(3), jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least one segment"):
        lg.CubicSpline(jnp.zeros(2), jnp.ones(2), jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="expected \\(m>=2, d\\)"):
        lg.CubicSpline.fit(jnp.zeros((1, 2)))
