import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    ConformalSphere,
    InverseStereographic,
    Linear,
    float64,
    small_mlp,
    stereographic,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
METRICS = [SPHERE, ConformalSphere()]
IDS = ["pullback", "tensor"]


def sphere_exp(z0, v):
    """Closed form: exp_p(w) = cos|w| p + sin|w| w / |w| on the unit sphere."""
    chart = InverseStereographic()
    z0 = jnp.asarray(z0, jnp.float64) if jax.config.jax_enable_x64 else z0
    p = np.asarray(chart(z0), np.float64)
    w = np.asarray(jax.jvp(chart, (z0,), (jnp.asarray(v, z0.dtype),))[1], np.float64)
    angle = np.linalg.norm(w)
    return stereographic(np.cos(angle) * p + np.sin(angle) * w / angle)


def christoffel_acceleration(metric, z, v):
    r"""Independent truth: $-\Gamma^k_{ij} v^i v^j$ from the textbook formula
    with the full derivative tensor $\partial_l G_{ij}$ (`jax.jacfwd`)."""
    tensor = metric.tensor(z)
    dg = jax.jacfwd(metric.tensor)(z)  # dg[i, j, l] = d G_ij / d z_l
    lowered = 0.5 * (
        jnp.einsum("kil,i,l->k", dg, v, v)
        + jnp.einsum("kli,i,l->k", dg, v, v)
        - jnp.einsum("ilk,i,l->k", dg, v, v)
    )
    return -jnp.linalg.solve(tensor, lowered)


class TensorOf(lg.AbstractTensorMetric):
    """Only the tensor of another metric: forces the Christoffel route."""

    metric: lg.AbstractMetric
    latent_dim: int = 2

    def tensor(self, z):
        return self.metric.tensor(z)


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
def test_exp_on_the_sphere_is_the_great_circle(metric):
    z0 = jnp.array([0.3, -0.2])
    for v in (jnp.array([0.8, 0.5]), jnp.array([-1.5, 0.2])):
        z1 = lg.exp_map(metric, z0, v)
        np.testing.assert_allclose(z1, sphere_exp(z0, v), atol=5e-6)


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
def test_path_keeps_constant_speed_and_ends_at_exp(metric):
    z0, v = jnp.array([0.1, 0.4]), jnp.array([1.0, -0.7])
    path = lg.exp_path(metric, z0, v, num_points=9)
    np.testing.assert_allclose(path.times, np.linspace(0, 1, 9), atol=1e-7)
    np.testing.assert_allclose(path.points[0], z0, atol=0)
    np.testing.assert_allclose(path.velocities[0], v, atol=0)
    speeds = jax.vmap(metric.norm)(path.points, path.velocities)
    np.testing.assert_allclose(speeds, metric.norm(z0, v), rtol=1e-5)
    for t, point in zip(np.asarray(path.times)[1:], np.asarray(path.points)[1:]):
        np.testing.assert_allclose(point, sphere_exp(z0, t * v), atol=5e-6)
    assert bool(path.converged) and int(path.num_steps) > 1


def test_linear_decoder_exp_is_the_straight_line(getkey):
    matrix = jax.random.normal(getkey(), (5, 2))
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    z0, v = jnp.array([0.5, -1.0]), jnp.array([2.0, 3.0])
    path = lg.exp_path(metric, z0, v, num_points=5)
    line = z0[None] + path.times[:, None] * v[None]
    np.testing.assert_allclose(path.points, line, atol=1e-6)
    np.testing.assert_allclose(lg.exp_map(metric, z0, v), z0 + v, atol=1e-6)


def test_acceleration_routes_agree_with_the_christoffel_symbols(getkey):
    metric = lg.PullbackMetric(small_mlp(getkey(), out_size=7), latent_dim=2)
    for _ in range(3):
        z, v = jax.random.normal(getkey(), (2,)), jax.random.normal(getkey(), (2,))
        truth = christoffel_acceleration(metric, z, v)
        scale = float(jnp.max(jnp.abs(truth)))
        by_jvps = lg.geodesic_acceleration(metric, z, v)
        by_tensor = lg.geodesic_acceleration(TensorOf(metric), z, v)
        np.testing.assert_allclose(by_jvps, truth, atol=2e-4 * scale)
        np.testing.assert_allclose(by_tensor, truth, atol=2e-4 * scale)


def test_expected_metric_acceleration_is_the_member_mean_formula(getkey):
    """$-G^{-1} \\frac1K \\sum_k J_k^T D^2 f_k[v, v]$, each term from `jacfwd`."""
    ensemble = lg.EnsembleDecoder.init(lambda k: small_mlp(k, 4), 3, key=getkey())
    metric = lg.ExpectedMetric(ensemble)
    z, v = jnp.array([0.2, -0.3]), jnp.array([0.7, 0.4])
    force = 0
    for k in range(3):
        member = ensemble.member(k)
        jac = jax.jacfwd(member)(z)  # (4, 2)
        hess = jax.jacfwd(jax.jacfwd(member))(z)  # (4, 2, 2)
        force = force + jac.T @ jnp.einsum("oij,i,j->o", hess, v, v) / 3
    truth = -jnp.linalg.solve(metric.tensor(z), force)
    np.testing.assert_allclose(
        lg.geodesic_acceleration(metric, z, v), truth, rtol=1e-4, atol=1e-6
    )


def test_float64_is_tighter():
    with float64():
        z0 = jnp.array([0.3, -0.2], jnp.float64)
        v = jnp.array([0.8, 0.5], jnp.float64)
        for metric in METRICS:
            z1 = lg.exp_map(metric, z0, v, rtol=1e-11, atol=1e-11)
            assert z1.dtype == jnp.float64
            np.testing.assert_allclose(z1, sphere_exp(z0, v), atol=1e-9)


def test_vmap_equals_single_calls():
    z0 = jnp.array([0.1, 0.2])
    velocities = jnp.array([[0.5, 0.0], [0.0, -1.0], [0.3, 0.3]])
    batched = jax.vmap(lambda v: lg.exp_map(SPHERE, z0, v, throw=False))(velocities)
    for v, z1 in zip(velocities, batched):
        np.testing.assert_allclose(z1, lg.exp_map(SPHERE, z0, v), atol=1e-6)
    paths = jax.vmap(lambda v: lg.exp_path(SPHERE, z0, v, throw=False))(velocities)
    assert paths.points.shape == (3, 65, 2) and bool(jnp.all(paths.converged))


def test_zero_velocity_stays_put():
    z0 = jnp.array([0.4, -0.1])
    np.testing.assert_array_equal(lg.exp_map(SPHERE, z0, jnp.zeros(2)), z0)


def test_failures_are_reported_or_raised():
    z0, v = jnp.array([0.3, -0.2]), jnp.array([3.0, 2.0])
    path = lg.exp_path(SPHERE, z0, v, max_steps=2, throw=False)
    assert not bool(path.converged)
    assert bool(path.result == lg.GEOMETRY_RESULTS.ode_max_steps)
    assert bool(jnp.all(jnp.isnan(lg.exp_map(SPHERE, z0, v, max_steps=2, throw=False))))
    with pytest.raises(Exception, match="max_steps"):
        lg.exp_map(SPHERE, z0, v, max_steps=2)


class Degenerate(lg.AbstractTensorMetric):
    """Singular where z_1 > 0."""

    latent_dim: int = 2

    def tensor(self, z):
        return jnp.where(z[0] > 0, 0.0, 1.0) * jnp.eye(2, dtype=z.dtype)


def test_singular_metric_is_an_error_not_a_number():
    with pytest.raises(Exception, match="singular"):
        lg.exp_map(Degenerate(), jnp.array([-0.5, 0.0]), jnp.array([1.0, 0.0]))


def test_bad_input():
    z = jnp.zeros(2)
    with pytest.raises(ValueError, match=r"`z0` has shape \(3,\), expected \(2,\)"):
        lg.exp_map(SPHERE, jnp.zeros(3), jnp.zeros(3))
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's hook may fire first
        lg.exp_path(SPHERE, z, jnp.zeros((2, 1)))
    with pytest.raises(Exception, match="`v` contains NaN or inf"):
        lg.exp_map(SPHERE, z, jnp.array([jnp.nan, 0.0]))
    with pytest.raises(Exception, match="`z0` contains NaN or inf"):
        lg.exp_map(SPHERE, jnp.array([jnp.inf, 0.0]), z)
    with pytest.raises(ValueError, match="num_points"):
        lg.exp_path(SPHERE, z, z, num_points=1)
    with pytest.raises(ValueError, match="rtol"):
        lg.exp_map(SPHERE, z, z, rtol=0.0)
    with pytest.raises(TypeError, match="AbstractMetric"):
        lg.exp_map(eqx.nn.Identity(), z, z)
