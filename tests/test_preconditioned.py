"""`Preconditioned` (`_solvers/_preconditioned.py`): closed forms for linear
decoders of any conditioning (straight lines at constant speed), great circles
of a stretched sphere chart in five dimensions, the reparametrisation against
the Cholesky factor, the pass-through for objectives that are not sums of
squares, and composition with `vmap`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import ConformalSphere, Linear, default_float
from latentgeo._solvers._gauss_newton import gauss_newton_system
from latentgeo._solvers._preconditioned import _Reparametrised

DIM = 5
STRETCH = np.array([1.0, 30.0, 0.05, 5.0, 0.3])  # condition number 3.6e5 in G


class StretchedSphere(eqx.Module):
    r"""The unit 5-sphere's inverse stereographic chart after a diagonal stretch
    $S$: geodesics map to great circles, $d(z_0, z_1) = \arccos(p \cdot q)$."""

    stretch: jax.Array

    def __call__(self, z):
        u = self.stretch * z
        squared = jnp.sum(u**2)
        return jnp.concatenate([2 * u, (squared - 1)[None]]) / (squared + 1)


def chart(u):
    """Sphere point of chart coordinates `u` (numpy, float64)."""
    squared = np.sum(u**2)
    return np.concatenate([2 * u, [squared - 1]]) / (squared + 1)


@eqx.filter_jit
def solve(metric, z0, z1, solver, init=None):
    return lg.geodesic(metric, z0, z1, init=init, solver=solver, throw=False)


def test_linear_decoder_of_any_conditioning_is_solved_in_a_few_steps():
    """For $f(z) = A z$ the energy is quadratic and its Gauss–Newton matrix
    exact: in the preconditioned coordinates it is the identity up to the
    damping (which still shapes the weakest directions), so the solver reaches
    the straight line at constant speed in a few dozen steps with $G$'s
    eigenvalues 3.6e5 apart, where plain L-BFGS takes hundreds."""
    dtype = default_float()
    matrix = jnp.asarray(np.diag(STRETCH) @ np.eye(DIM)[::-1], dtype)
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=DIM)
    z0 = jnp.asarray(np.linspace(-1.0, 1.0, DIM), dtype)
    z1 = jnp.asarray(np.cos(np.arange(DIM)), dtype)
    bent = lg.CubicSpline(z0, z1, 0.2 * jnp.ones((11, DIM), dtype))
    result = solve(metric, z0, z1, lg.Preconditioned(), bent)
    plain = solve(metric, z0, z1, lg.OptaxSolver(), bent)
    times = jnp.linspace(0.0, 1.0, 33, dtype=dtype)
    straight = z0[None] + times[:, None] * (z1 - z0)[None]
    chord = np.linalg.norm(np.asarray(matrix, np.float64) @ np.asarray(z1 - z0))
    assert bool(result.converged)
    # In data space: the weakest direction (stretch 0.05) moves the energy by
    # little, so its latent coordinate is the least determined.
    np.testing.assert_allclose(
        result.curve(times) @ matrix.T, straight @ matrix.T, atol=1e-3 * chord
    )
    np.testing.assert_allclose(float(result.length), chord, rtol=1e-5)
    # (26 steps, where plain L-BFGS took 353.)
    assert 4 * int(result.num_steps) < int(plain.num_steps)
    assert int(result.num_steps) <= 40


@pytest.mark.parametrize("solver", [lg.Preconditioned(), lg.AutoSolver()])
def test_great_circles_of_a_stretched_five_sphere(solver):
    """Five-dimensional chart, metric eigenvalues 3.6e5 apart: the geodesic's
    length is the great-circle angle (the default solver takes the
    preconditioned path above two dimensions)."""
    dtype = default_float()
    metric = lg.PullbackMetric(
        StretchedSphere(jnp.asarray(STRETCH, dtype)), latent_dim=DIM
    )
    u0 = np.array([0.4, -0.3, 0.2, 0.5, -0.6])
    u1 = np.array([-0.5, 0.2, 0.7, -0.1, 0.3])
    angle = np.arccos(chart(u0) @ chart(u1))
    z0, z1 = (jnp.asarray(u / STRETCH, dtype) for u in (u0, u1))
    result = solve(metric, z0, z1, solver)
    assert bool(result.converged)
    # 10 segments and 64 points resolve the arc to ~1e-4 (the discretisation's
    # error, not the solver's).
    np.testing.assert_allclose(float(result.length), angle, rtol=5e-4)


def test_distance_gradient_matches_the_great_circle_gradient():
    r"""`jax.grad` of the default's length above 2-D (implicit, at the solved
    curve) against the gradient of the closed form $\arccos(p(z_0) \cdot
    q)$."""
    dtype = default_float()
    chart_map = StretchedSphere(jnp.asarray(STRETCH, dtype))
    metric = lg.PullbackMetric(chart_map, latent_dim=DIM)
    z0 = jnp.asarray(np.array([0.4, -0.3, 0.2, 0.5, -0.6]) / STRETCH, dtype)
    z1 = jnp.asarray(np.array([-0.5, 0.2, 0.7, -0.1, 0.3]) / STRETCH, dtype)
    gradient = eqx.filter_jit(
        jax.grad(lambda a: lg.geodesic(metric, a, z1, throw=False).length)
    )(z0)
    closed_form = jax.grad(lambda a: jnp.arccos(chart_map(a) @ chart_map(z1)))(z0)
    np.testing.assert_allclose(
        gradient, closed_form, atol=2e-3 * float(jnp.max(jnp.abs(closed_form)))
    )


def test_reparametrisation_maps_back_through_the_factor():
    r"""`params_of(q)` is `origin + L^{-T} q`, checked against a dense inverse;
    the damped Gauss-Newton matrix in `q`, $J^T (H + \lambda I) J$ with $J$
    the Jacobian of `params_of`, is the identity; the energy is the
    objective's at the mapped parameters."""
    rng = np.random.default_rng(0)
    dtype = default_float()
    stretch = jnp.asarray(STRETCH, dtype)
    metric = lg.PullbackMetric(StretchedSphere(stretch), latent_dim=DIM)
    z0, z1 = (jnp.asarray(rng.normal(size=DIM) / 3, dtype) for _ in range(2))
    times = jnp.linspace(0.0, 1.0, 16, dtype=dtype)
    objective = lg.ExpectedEnergy().objective(metric, z0, z1, times)
    origin = jnp.asarray(0.1 * rng.normal(size=(5, DIM)), dtype)
    hessian = gauss_newton_system(objective, origin).hessian
    factor = jnp.linalg.cholesky(
        hessian + 1e-3 * jnp.eye(hessian.shape[0], dtype=dtype)
    )
    reparametrised = _Reparametrised(objective, origin, factor)
    q = jnp.asarray(rng.normal(size=(5, DIM)), dtype)
    expected = np.asarray(origin).reshape(-1) + np.linalg.solve(
        np.asarray(factor, np.float64).T, np.asarray(q, np.float64).reshape(-1)
    )
    np.testing.assert_allclose(
        reparametrised.params_of(q).reshape(-1), expected, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        reparametrised(q, jnp.array(0)),
        objective(reparametrised.params_of(q), jnp.array(0)),
        rtol=1e-6,
    )
    size = hessian.shape[0]
    jacobian = np.asarray(
        jax.jacobian(reparametrised.params_of)(q).reshape(size, size), np.float64
    )
    damped = np.asarray(hessian, np.float64) + 1e-3 * np.eye(size)
    np.testing.assert_allclose(jacobian.T @ damped @ jacobian, np.eye(size), atol=2e-3)


def test_objectives_that_are_not_sums_of_squares_go_to_the_solver_unchanged():
    """A tensor-only metric has no features to build a Gauss-Newton matrix from:
    the inner solver runs on the raw parameters, step for step."""
    metric = ConformalSphere()
    z0, z1 = jnp.array([0.3, -0.2]), jnp.array([-0.4, 0.5])
    times = jnp.linspace(0.0, 1.0, 64)
    objective = lg.ExpectedEnergy().objective(metric, z0, z1, times)
    params = jnp.zeros((11, 2), z0.dtype)
    wrapped = eqx.filter_jit(lg.Preconditioned().minimise)(objective, params, 500)
    alone = eqx.filter_jit(lg.OptaxSolver().minimise)(objective, params, 500)
    np.testing.assert_array_equal(wrapped.params, alone.params)
    assert int(wrapped.num_evaluations) == int(alone.num_evaluations)


def test_vmap_gives_the_pairs_one_at_a_time_answers():
    dtype = default_float()
    stretch = jnp.asarray(STRETCH, dtype)
    metric = lg.PullbackMetric(StretchedSphere(stretch), latent_dim=DIM)
    rng = np.random.default_rng(1)
    z0s = jnp.asarray(rng.normal(size=(3, DIM)) / (3 * STRETCH), dtype)
    z1s = jnp.asarray(rng.normal(size=(3, DIM)) / (3 * STRETCH), dtype)
    batched = eqx.filter_jit(
        jax.vmap(
            lambda a, b: (
                lg.geodesic(
                    metric, a, b, solver=lg.Preconditioned(), throw=False
                ).length
            )
        )
    )(z0s, z1s)
    # Batched kernels round differently, and L-BFGS's path follows the
    # rounding: equal to well within the solver's tolerance, not bit for bit.
    for i in range(3):
        alone = solve(metric, z0s[i], z1s[i], lg.Preconditioned())
        np.testing.assert_allclose(batched[i], alone.length, rtol=5e-5)


def test_a_metric_that_vanishes_at_the_start_leaves_the_parameters_as_they_are():
    """A constant decoder: the Gauss-Newton matrix is zero and has no factor;
    the solver keeps the raw parameters (zero gradient) instead of NaN."""
    dtype = default_float()
    metric = lg.PullbackMetric(lambda z: jnp.zeros(3, z.dtype) * z[0], latent_dim=DIM)
    z0, z1 = jnp.zeros(DIM, dtype), jnp.ones(DIM, dtype)
    times = jnp.linspace(0.0, 1.0, 16, dtype=dtype)
    objective = lg.ExpectedEnergy().objective(metric, z0, z1, times)
    params = jnp.full((11, DIM), 0.1, dtype)
    found = eqx.filter_jit(lg.Preconditioned().minimise)(objective, params, 50)
    np.testing.assert_array_equal(found.params, params)
    assert float(found.value) == 0.0


def test_damping_must_be_positive():
    with pytest.raises(ValueError, match="damping"):
        lg.Preconditioned(damping=0.0)
