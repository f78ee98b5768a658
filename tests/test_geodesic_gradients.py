"""Gradients of geodesic lengths (envelope theorem) against closed forms and
finite differences; compilation caching of `geodesic`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, float64, small_mlp, sphere_pair

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)


def great_circle(z0, z1):
    p, q = InverseStereographic()(z0), InverseStereographic()(z1)
    return jnp.arccos(jnp.clip(jnp.dot(p, q), -1.0, 1.0))


def test_gradient_of_the_sphere_distance_is_that_of_the_great_circle():
    with float64():
        z0, z1, _ = sphere_pair(100.0, azimuth=0.6)
        z0, z1 = z0.astype(jnp.float64), z1.astype(jnp.float64)
        solver = lg.LevenbergMarquardt(rtol=1e-12)

        def distance(a, b):
            fine = lg.Discretisation(num_points=129)
            return lg.geodesic(SPHERE, a, b, solver=solver, discretisation=fine).length

        grads = jax.grad(distance, argnums=(0, 1))(z0, z1)
        expected = jax.grad(great_circle, argnums=(0, 1))(z0, z1)
        for found, truth in zip(grads, expected):
            np.testing.assert_allclose(found, truth, rtol=1e-4, atol=1e-6)


def test_gradient_for_a_linear_decoder_is_the_closed_form(getkey):
    matrix = jax.random.normal(getkey(), (4, 2))
    z0, z1 = jnp.array([0.3, -0.2]), jnp.array([-0.5, 0.8])

    def distance(matrix, a, b):
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        return lg.geodesic(metric, a, b).length

    d_matrix, d_z0, d_z1 = jax.grad(distance, argnums=(0, 1, 2))(matrix, z0, z1)
    delta = z1 - z0
    length = jnp.linalg.norm(matrix @ delta)
    np.testing.assert_allclose(d_z1, matrix.T @ matrix @ delta / length, rtol=1e-4)
    np.testing.assert_allclose(d_z0, -d_z1, rtol=1e-4)
    np.testing.assert_allclose(
        d_matrix, jnp.outer(matrix @ delta, delta) / length, rtol=1e-4, atol=1e-6
    )


def test_gradient_matches_finite_differences_on_a_trained_ensemble(getkey):
    with float64():
        angles = jnp.linspace(0, 2 * jnp.pi, 64, endpoint=False)
        latents = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
        data = jnp.stack([jnp.cos(2 * angles), jnp.sin(3 * angles)], axis=1)
        ensemble = lg.EnsembleDecoder.init(
            lambda k: small_mlp(k, out_size=2), 3, key=getkey()
        )
        ensemble = jax.tree.map(
            lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x,
            ensemble,
        )
        ensemble, _ = lg.train_decoders(
            ensemble,
            latents.astype(jnp.float64),
            data.astype(jnp.float64),
            key=getkey(),
            num_steps=300,
            progress=False,
        )
        z0, z1 = jnp.array([0.9, 0.3]), jnp.array([-0.7, 0.6])
        solver = lg.LevenbergMarquardt(rtol=1e-14)

        def distance(ensemble, a):
            metric = lg.ExpectedMetric(ensemble)
            fine = lg.Discretisation(num_points=128)
            return lg.geodesic(metric, a, z1, solver=solver, discretisation=fine).length

        d_ensemble, d_z0 = eqx.filter_grad(lambda args: distance(*args))((ensemble, z0))
        # One random direction in weight space and the two latent directions.
        params = eqx.filter(ensemble, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(getkey(), len(leaves))
        direction = jax.tree.unflatten(
            treedef,
            [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)],
        )
        step = 1e-5

        def moved(sign):
            shifted = jax.tree.map(lambda p, v: p + sign * step * v, params, direction)
            return eqx.combine(shifted, ensemble)

        numeric = (distance(moved(1), z0) - distance(moved(-1), z0)) / (2 * step)
        analytic = sum(
            jnp.sum(g * v)
            for g, v in zip(
                jax.tree.leaves(eqx.filter(d_ensemble, eqx.is_inexact_array)),
                jax.tree.leaves(direction),
            )
        )
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5)
        for axis in range(2):
            shift = step * jnp.eye(2)[axis]
            numeric = (
                distance(ensemble, z0 + shift) - distance(ensemble, z0 - shift)
            ) / (2 * step)
            np.testing.assert_allclose(d_z0[axis], numeric, rtol=1e-5, atol=1e-8)


# gradients (finite differences, closed forms) and vmapped geodesics
# (test_geodesic.py) stay in the default run.
@pytest.mark.slow
def test_gradient_under_vmap_equals_single_gradients():
    pairs = [sphere_pair(a, azimuth=b) for a, b in [(50, 0.2), (90, 0.7)]]
    z0 = jnp.stack([p[0] for p in pairs])
    z1 = jnp.stack([p[1] for p in pairs])

    def distance(a, b):
        return lg.geodesic(SPHERE, a, b, throw=False).length

    batched = jax.vmap(jax.grad(distance))(z0, z1)
    for i in range(len(pairs)):
        np.testing.assert_allclose(
            batched[i], jax.grad(distance)(z0[i], z1[i]), rtol=1e-5
        )
        expected = jax.grad(great_circle)(z0[i], z1[i])
        np.testing.assert_allclose(batched[i], expected, rtol=1e-2, atol=1e-4)


def test_zero_length_has_a_finite_zero_gradient():
    z = jnp.array([0.2, -0.1])
    grad = jax.grad(lambda a: lg.geodesic(SPHERE, a, z).length)(z)
    np.testing.assert_array_equal(grad, jnp.zeros(2))


class CountingChart(eqx.Module):
    """The sphere chart, counting how often it is traced."""

    traces: list = eqx.field(static=True)

    def __call__(self, z):
        self.traces.append(None)
        return InverseStereographic()(z)


def test_fresh_default_solvers_do_not_recompile():
    traces = []
    metric = lg.PullbackMetric(CountingChart(traces), latent_dim=2)
    z0, z1, _ = sphere_pair(60.0)
    lg.geodesic(metric, z0, z1)
    first = len(traces)
    lg.geodesic(metric, z0 + 0.01, z1, solver=lg.AutoSolver())
    lg.geodesic(metric, z0, z1 - 0.01, energy=lg.ExpectedEnergy())
    fresh = lg.Discretisation(num_segments=10, num_points=64, max_steps=1000)
    lg.geodesic(metric, z0 + 0.02, z1, discretisation=fresh)
    assert first > 0 and len(traces) == first
