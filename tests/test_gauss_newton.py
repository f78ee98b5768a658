"""The Gauss–Newton system of least-squares curve objectives
(`_solvers/_gauss_newton.py`, and `newton_decrement`), against autodiff of the
residuals written out independently, the exact Hessian of a quadratic energy and
closed forms for a linear decoder."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import Linear, default_float, float64, small_mlp
from latentgeo._solvers._gauss_newton import gauss_newton_system
from latentgeo._solvers._levenberg_marquardt import newton_decrement

NUM_POINTS = 16  # T + 1
NUM_SEGMENTS = 4  # n + 1 = 5 parameters per latent coordinate


def to_float64(tree):
    return jax.tree.map(
        lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree
    )


def setting(metric, energy, key, scale=0.3):
    z0, z1 = jnp.array([-0.6, 0.3]), jnp.array([0.8, -0.5])
    times = jnp.linspace(0.0, 1.0, NUM_POINTS)
    objective = energy.objective(metric, z0, z1, times)
    params = scale * jax.random.normal(key, (NUM_SEGMENTS + 1, 2))
    return objective, params


def touching_segments(num_points):
    """How many of the polygon's segments touch each point: 1 at the ends, else 2."""
    counts = np.full(num_points, 2.0)
    counts[[0, -1]] = 1.0
    return jnp.asarray(counts)


def pullback_residuals(objective, params):
    """$r$ with $E = |r|^2$ for the pull-back energy: $\\sqrt{T}$ times the steps
    of the embedded polygon, written from the metric's `embed`."""
    points = objective.points(params)
    embedded = jax.vmap(objective.metric.embed)(points)
    scale = points.shape[0] - 1
    return jnp.sqrt(scale) * jnp.diff(embedded, axis=0).reshape(-1)


def decorrelated_residuals(objective, params):
    """$r$ with $E = |r|^2$ for the exact decorrelated energy: $\\sqrt{T}$ times
    the steps of the member mean, and $\\sqrt{T c_i}$ times each member's
    deviation from the mean over $\\sqrt K$ ($c_i$ segments touch point $i$)."""
    points = objective.points(params)
    ensemble = objective.metric.ensemble
    outputs = jax.vmap(ensemble)(points).reshape(
        points.shape[0], ensemble.num_members, -1
    )
    mean = jnp.mean(outputs, axis=1)
    deviations = (outputs - mean[:, None]) / jnp.sqrt(ensemble.num_members)
    scale = points.shape[0] - 1
    counts = touching_segments(points.shape[0])
    steps = jnp.sqrt(scale) * jnp.diff(mean, axis=0).reshape(-1)
    spread = jnp.sqrt(scale * counts)[:, None, None] * deviations
    return jnp.concatenate([steps, spread.reshape(-1)])


@eqx.filter_jit
def system_and_truth(objective, params, residuals):
    """The system, and what it should equal by a second method: the residuals
    $r$, their Jacobian by `jax.jacfwd` and `jax.grad` of the objective."""
    r = residuals(objective, params)
    jac = jax.jacfwd(lambda p: residuals(objective, p))(params).reshape(r.size, -1)
    full_gradient = jax.grad(objective)(params, jnp.array(0))
    value = objective(params, jnp.array(0))
    return gauss_newton_system(objective, params), r, jac, full_gradient, value


def check_system_against(objective, params, residuals, rtol):
    """The system's value, half-gradient and half Gauss–Newton matrix equal
    $|r|^2$, $J^\\top r$ and $J^\\top J$ of the residuals $r$, and its
    half-gradient is half of `jax.grad` of the objective."""
    system, r, jac, full_gradient, value = system_and_truth(
        objective, params, residuals
    )
    np.testing.assert_allclose(system.value, jnp.sum(r**2), rtol=rtol)
    np.testing.assert_allclose(system.value, value, rtol=rtol)
    atol = rtol * float(jnp.max(jnp.abs(system.gradient)))
    np.testing.assert_allclose(
        system.gradient.reshape(-1), jac.T @ r, rtol=rtol, atol=atol
    )
    np.testing.assert_allclose(
        2 * system.gradient, full_gradient, rtol=rtol, atol=2 * atol
    )
    atol = rtol * float(jnp.max(jnp.abs(system.hessian)))
    np.testing.assert_allclose(system.hessian, jac.T @ jac, rtol=rtol, atol=atol)
    np.testing.assert_allclose(system.hessian, system.hessian.T, rtol=0, atol=atol)
    return system


def test_pullback_system_is_that_of_the_embedded_steps(getkey):
    with float64():
        decoder = to_float64(small_mlp(getkey()))
        metric = lg.PullbackMetric(decoder, latent_dim=2)
        objective, params = setting(metric, lg.ExpectedEnergy(), getkey())
        objective, params = to_float64((objective, params))
        system = check_system_against(objective, params, pullback_residuals, rtol=1e-10)
        # The value is the metric's own curve energy of the points.
        points = objective.points(params)
        energy = metric.curve_energy(points)
        np.testing.assert_allclose(system.value, energy, rtol=1e-12)


def test_decorrelated_system_counts_each_variance_once_per_segment(getkey):
    with float64():
        ensemble = to_float64(lg.EnsembleDecoder.init(small_mlp, 3, key=getkey()))
        metric = lg.ExpectedMetric(ensemble)
        objective, params = setting(metric, lg.DecorrelatedEnergy(), getkey())
        objective, params = to_float64((objective, params))
        system = check_system_against(
            objective, params, decorrelated_residuals, rtol=1e-10
        )
        points = objective.points(params)
        energy = metric.decorrelated_energy(points)
        np.testing.assert_allclose(system.value, energy, rtol=1e-12)


def test_float32_system_agrees_with_autodiff(getkey):
    """The default precision: the same identities within float32 tolerances
    (float64 in the x64 pass)."""
    metric = lg.PullbackMetric(small_mlp(getkey()), latent_dim=2)
    objective, params = setting(metric, lg.ExpectedEnergy(), getkey())
    system = check_system_against(objective, params, pullback_residuals, rtol=2e-4)
    assert system.value.dtype == system.hessian.dtype == default_float()
    assert system.gradient.shape == params.shape
    assert system.hessian.shape == (params.size, params.size)


def test_linear_decoder_matrix_is_the_exact_hessian(getkey):
    """For $f(z) = Az$ the energy is quadratic in the parameters: the
    Gauss–Newton matrix is (half) its Hessian, and the energy above the straight
    line's $|A(z_1 - z_0)|^2$ is exactly the Newton decrement $g^\\top H^{-1} g$;
    one Newton step from anywhere lands on the straight line (zero parameters)."""
    with float64():
        matrix = jax.random.normal(getkey(), (5, 2), jnp.float64)
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        objective, params = setting(metric, lg.ExpectedEnergy(), getkey(), scale=0.5)
        objective, params = to_float64((objective, params))
        system = eqx.filter_jit(gauss_newton_system)(objective, params)
        size = params.size
        hessian_of = eqx.filter_jit(lambda o, p: jax.hessian(o)(p, jnp.array(0)))
        hessian = hessian_of(objective, params)
        hessian = hessian.reshape(size, size)
        np.testing.assert_allclose(2 * system.hessian, hessian, rtol=1e-10, atol=1e-9)
        straight = jnp.sum((matrix @ (objective.z1 - objective.z0)) ** 2)
        excess = system.value - straight
        assert float(excess) > 1.0  # a real bend, not a rounding error
        np.testing.assert_allclose(newton_decrement(system), excess, rtol=1e-9)
        step = jnp.linalg.solve(system.hessian, system.gradient.reshape(-1))
        np.testing.assert_allclose(step, params.reshape(-1), rtol=1e-9, atol=1e-12)
        at_line = eqx.filter_jit(gauss_newton_system)(objective, 0 * params)
        np.testing.assert_allclose(at_line.value, straight, rtol=1e-12)
        np.testing.assert_allclose(at_line.gradient, 0.0, atol=1e-12)
        assert float(newton_decrement(at_line)) < 1e-20


def test_newton_decrement_is_the_quadratic_form_of_the_inverse(getkey):
    """On a nonlinear decoder: $g^\\top H^{-1} g$ by a dense solve in NumPy."""
    with float64():
        metric = lg.PullbackMetric(to_float64(small_mlp(getkey())), latent_dim=2)
        objective, params = setting(metric, lg.ExpectedEnergy(), getkey())
        objective, params = to_float64((objective, params))
        system = eqx.filter_jit(gauss_newton_system)(objective, params)
        g = np.asarray(system.gradient).reshape(-1)
        expected = g @ np.linalg.solve(np.asarray(system.hessian), g)
        assert expected > 0
        np.testing.assert_allclose(newton_decrement(system), expected, rtol=1e-6)


def test_system_under_vmap_equals_single_systems(getkey):
    metric = lg.PullbackMetric(small_mlp(getkey()), latent_dim=2)
    objective, _ = setting(metric, lg.ExpectedEnergy(), getkey())
    batch = 0.3 * jax.random.normal(getkey(), (3, NUM_SEGMENTS + 1, 2))
    system_of = eqx.filter_jit(gauss_newton_system)
    batched = eqx.filter_jit(jax.vmap(lambda p: gauss_newton_system(objective, p)))(
        batch
    )
    for i in range(3):
        single = system_of(objective, batch[i])
        np.testing.assert_allclose(batched.value[i], single.value, rtol=1e-5)
        np.testing.assert_allclose(
            batched.hessian[i], single.hessian, rtol=1e-4, atol=1e-5
        )
