"""The differentiable length of a solved curve (`_length_gradient.py`,
`solved_length`), called directly: closed-form gradients for linear decoders and
the sphere, finite differences of re-solved lengths where the implicit-function
correction matters, and the envelope term alone for Monte Carlo energies."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    float64,
    small_mlp,
    sphere_pair,
)
from latentgeo._length_gradient import solved_length

FINE = 1025


class ScaledChart(eqx.Module):
    """The sphere of radius `radius`: lengths scale by it exactly."""

    radius: jax.Array

    def __call__(self, z):
        return self.radius * InverseStereographic()(z)


def fine_times(dtype=None):
    return jnp.linspace(0.0, 1.0, FINE, dtype=dtype)


def great_circle(z0, z1):
    p, q = InverseStereographic()(z0), InverseStereographic()(z1)
    return jnp.arccos(jnp.clip(jnp.dot(p, q), -1.0, 1.0))


def test_linear_decoder_gradients_are_the_closed_form(getkey):
    r"""The straight line (zero parameters) minimises the energy of $f(z) = Az$
    on any grid, and its length is $|A\Delta|$: $\partial/\partial A =
    (A\Delta)\Delta^\top / |A\Delta|$, $\partial/\partial z_1 = A^\top A \Delta /
    |A\Delta| = -\partial/\partial z_0$."""
    matrix = jax.random.normal(getkey(), (4, 2))
    z0, z1 = jnp.array([0.3, -0.2]), jnp.array([-0.5, 0.8])
    params = jnp.zeros((7, 2))
    times = jnp.linspace(0.0, 1.0, 16)
    energy = lg.ExpectedEnergy()

    @eqx.filter_jit
    @jax.value_and_grad
    def length(args):
        matrix, a, b = args
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        return solved_length((metric, a, b), params, energy, times, fine_times())

    value, (d_matrix, d_z0, d_z1) = length((matrix, z0, z1))
    delta = z1 - z0
    norm = jnp.linalg.norm(matrix @ delta)
    np.testing.assert_allclose(value, norm, rtol=1e-6)
    np.testing.assert_allclose(
        d_matrix, jnp.outer(matrix @ delta, delta) / norm, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(d_z1, matrix.T @ matrix @ delta / norm, rtol=1e-5)
    np.testing.assert_allclose(d_z0, -d_z1, rtol=1e-5)


def sphere_solve(metric, times, num_segments, solver):
    """`(a, b) -> (length, params)` with `params` the energy minimiser on `times`."""
    energy = lg.ExpectedEnergy()

    @eqx.filter_jit
    def solve(a, b):
        objective = energy.objective(metric, a, b, times)
        start = jnp.zeros((num_segments + 1, 2), a.dtype)
        found = solver.minimise(objective, start, 200)
        params = found.params
        fine = fine_times(a.dtype)
        return solved_length((metric, a, b), params, energy, times, fine), params

    return solve


def test_gradient_is_that_of_the_reported_length_on_a_coarse_grid():
    """On 5 energy points and 2 segments the energy minimiser is not the curve
    of least fine length, so the length still moves with the curve: the
    implicit-function correction is needed, and with it the gradient is the
    finite difference of the re-solved length; the envelope term alone is off
    by over 1e-5."""
    with float64():
        sphere = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
        z0, z1, _ = sphere_pair(140.0, azimuth=0.6)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        times = jnp.linspace(0.0, 1.0, 5)
        solve = sphere_solve(sphere, times, 2, lg.LevenbergMarquardt(rtol=1e-14))
        _, params = solve(z0, z1)
        energy = lg.ExpectedEnergy()

        def length(a, b, params):
            return solved_length((sphere, a, b), params, energy, times, fine_times())

        grads = eqx.filter_jit(jax.grad(length, argnums=(0, 1)))(z0, z1, params)

        def envelope_length(a, b, params):
            curve = lg.CubicSpline(a, b, params)(fine_times(jnp.float64))
            return sphere.curve_length(curve)

        envelope = jax.grad(envelope_length, argnums=(0, 1))(z0, z1, params)
        step = 1e-5
        for which, (grad, env) in enumerate(zip(grads, envelope)):
            numeric = []
            for axis in range(2):
                shift = step * jnp.eye(2, dtype=jnp.float64)[axis]
                ends = [[z0, z1], [z0, z1]]
                ends[0][which] = ends[0][which] + shift
                ends[1][which] = ends[1][which] - shift
                plus, minus = solve(*ends[0])[0], solve(*ends[1])[0]
                numeric.append((plus - minus) / (2 * step))
            numeric = np.asarray(numeric)
            np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-7)
            assert float(jnp.max(jnp.abs(env - numeric))) > 1e-5


def test_gradient_in_the_decoder_scale_is_length_over_radius():
    """The sphere of radius $r$: the minimiser does not depend on $r$ and the
    length is $r$ times the unit one, so $dL/dr = L / r$."""
    with float64():
        z0, z1, _ = sphere_pair(100.0, azimuth=0.3)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        radius = jnp.array(1.7, jnp.float64)
        times = jnp.linspace(0.0, 1.0, 5)
        metric = lg.PullbackMetric(ScaledChart(radius), latent_dim=2)
        solve = sphere_solve(metric, times, 2, lg.LevenbergMarquardt(rtol=1e-14))
        value, params = solve(z0, z1)
        energy = lg.ExpectedEnergy()

        @eqx.filter_jit
        def length(radius):
            metric = lg.PullbackMetric(ScaledChart(radius), latent_dim=2)
            return solved_length(
                (metric, z0, z1), params, energy, times, fine_times(jnp.float64)
            )

        np.testing.assert_allclose(jax.grad(length)(radius), value / radius, rtol=1e-9)


def test_tensor_only_sphere_gradient_is_that_of_the_great_circle():
    """Through the quadrature energy of a tensor-only metric (solved with
    L-BFGS): the gradients in both end points are those of the great-circle
    distance."""
    with float64():
        z0, z1, _ = sphere_pair(100.0, azimuth=0.6)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        times = jnp.linspace(0.0, 1.0, 64)
        solver = lg.OptaxSolver(rtol=1e-14, patience=10)
        solve = sphere_solve(ConformalSphere(), times, 10, solver)
        value, params = solve(z0, z1)
        np.testing.assert_allclose(value, great_circle(z0, z1), rtol=1e-6)
        energy = lg.ExpectedEnergy()

        @eqx.filter_jit
        def length(a, b):
            return solved_length(
                (ConformalSphere(), a, b), params, energy, times, fine_times()
            )

        grads = jax.grad(length, argnums=(0, 1))(z0, z1)
        expected = jax.grad(great_circle, argnums=(0, 1))(z0, z1)
        for found, truth in zip(grads, expected):
            np.testing.assert_allclose(found, truth, rtol=1e-5, atol=1e-7)


def test_monte_carlo_energy_keeps_the_envelope_term_alone(getkey):
    """A Monte Carlo energy has no deterministic minimiser: the gradient is
    that of the length with the curve held fixed. The exact decorrelated energy
    at the same (non-optimal) curve adds a correction."""
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 2, key=getkey()))
    z0, z1 = jnp.array([0.3, -0.2]), jnp.array([-0.5, 0.8])
    params = 0.2 * jax.random.normal(getkey(), (5, 2))
    times = jnp.linspace(0.0, 1.0, 16)

    @eqx.filter_jit
    def gradient(energy, args):
        def length(args):
            return solved_length(args, params, energy, times, fine_times())

        return eqx.filter_grad(length)(args)

    def envelope(args):
        metric, a, b = args
        return metric.curve_length(lg.CubicSpline(a, b, params)(fine_times()))

    args = (metric, z0, z1)
    # The value is the fine metric length of the spline, whatever the energy.
    value = eqx.filter_jit(solved_length)(
        args, params, lg.DecorrelatedEnergy(), times, fine_times()
    )
    np.testing.assert_allclose(value, eqx.filter_jit(envelope)(args), rtol=1e-6)
    sampled = gradient(lg.DecorrelatedEnergy(key=getkey()), args)
    fixed = eqx.filter_jit(eqx.filter_grad(envelope))(args)
    exact = gradient(lg.DecorrelatedEnergy(), args)
    leaves = [
        jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array))
        for g in (sampled, fixed, exact)
    ]
    for s, f in zip(leaves[0], leaves[1]):
        np.testing.assert_allclose(s, f, rtol=1e-6, atol=1e-7)
    difference = max(
        float(jnp.max(jnp.abs(e - f))) for e, f in zip(leaves[2], leaves[1])
    )
    assert difference > 1e-3
