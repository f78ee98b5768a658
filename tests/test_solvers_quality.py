"""The default solver (`AutoSolver`) and its parts, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import ROUNDING, ConformalSphere, InverseStereographic, Linear, small_mlp

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)


def linear_metric(key, latent_dim=2):
    matrix = jax.random.normal(key, (4 * latent_dim, latent_dim))
    return lg.PullbackMetric(Linear(matrix), latent_dim=latent_dim), matrix


def objective_of(metric, energy, latent_dim=2):
    z = jnp.zeros(latent_dim)
    return energy.objective(metric, z, z + 1.0, jnp.linspace(0.0, 1.0, 8))


def test_auto_solver_chooses_by_the_objective(getkey):
    auto = lg.AutoSolver()
    metric, _ = linear_metric(getkey())
    ensemble = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 2, key=getkey()))
    wide, _ = linear_metric(getkey(), latent_dim=3)
    choices = {
        "sum of squares": (
            objective_of(metric, lg.ExpectedEnergy()),
            auto.least_squares,
        ),
        "tensor only": (
            objective_of(ConformalSphere(), lg.ExpectedEnergy()),
            auto.gradient_solver,
        ),
        "Monte Carlo": (
            objective_of(ensemble, lg.DecorrelatedEnergy(key=getkey())),
            auto.stochastic,
        ),
        "sum of squares in many dimensions": (
            objective_of(wide, lg.ExpectedEnergy(), latent_dim=3),
            auto.preconditioned,
        ),
    }
    for name, (objective, expected) in choices.items():
        assert auto.choose(objective) is expected, name


def test_default_finds_the_straight_geodesic_from_a_bent_start(getkey):
    metric, matrix = linear_metric(getkey())
    z0, z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
    bent = lg.CubicSpline(z0, z1, 0.3 * jnp.ones((11, 2)))
    result = lg.geodesic(metric, z0, z1, init=bent)
    np.testing.assert_allclose(
        result.length, jnp.linalg.norm(matrix @ (z1 - z0)), rtol=1e-5
    )
    same = lg.geodesic(metric, z0, z1, init=bent, solver=lg.AutoSolver())
    np.testing.assert_array_equal(result.length, same.length)


def test_escalating_keeps_a_fast_success_and_escalates_otherwise():
    z0, z1 = jnp.array([0.6, -0.3]), jnp.array([-0.5, 0.7])
    # A start from which the continued run converges in a dozen steps: from
    # bent ones it takes dozens, and its step count then follows the rounding.
    bent = lg.CubicSpline(z0, z1, 0.2 * jnp.ones((11, 2)))
    fast = lg.LevenbergMarquardt()
    alone = lg.geodesic(SPHERE, z0, z1, init=bent, solver=fast)
    quick = lg.Escalating(fast=fast, fast_steps=int(alone.num_steps))
    kept = lg.geodesic(SPHERE, z0, z1, init=bent, solver=quick)
    assert int(kept.num_steps) == int(alone.num_steps)
    # The same steps (two compiled programs, so equal to their rounding).
    np.testing.assert_allclose(kept.length, alone.length, rtol=ROUNDING)
    # A budget of one step cannot converge: the robust solver runs from the same
    # start and the fast one is continued; the lower energy of the two is kept.
    robust = lg.WarmStart(lg.OptaxSolver(optax.adam(1e-2)), fast, warmup_steps=5)
    once = lg.Escalating(fast=fast, robust=robust, fast_steps=1)
    escalated = lg.geodesic(SPHERE, z0, z1, init=bent, solver=once)
    restarted = lg.geodesic(SPHERE, z0, z1, init=bent, solver=robust)
    partial = lg.geodesic(
        SPHERE,
        z0,
        z1,
        init=bent,
        solver=fast,
        discretisation=lg.Discretisation(max_steps=1),
        throw=False,
    )
    continued = lg.geodesic(SPHERE, z0, z1, init=partial.curve, solver=fast)
    # One fast step, the continued run and the restart, less the warm-up's first
    # step: it starts from the starting curve, whose energy and gradient the
    # escalation already has.
    assert int(escalated.num_steps) == (
        1 + int(continued.num_steps) + int(restarted.num_steps) - 1
    )
    better = min(float(continued.energy), float(restarted.energy))
    np.testing.assert_allclose(escalated.energy, better, rtol=1e-6)
    with pytest.raises(ValueError, match="fast_steps"):
        lg.Escalating(fast_steps=0)


def test_warm_start_phases_compose(getkey):
    metric, _ = linear_metric(getkey())
    z0, z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
    bent = lg.CubicSpline(z0, z1, 0.3 * jnp.ones((11, 2)))
    adam = lg.OptaxSolver(optax.adam(1e-2), rtol=0.0, patience=100)
    seven = lg.Discretisation(max_steps=7)
    warm = lg.geodesic(
        metric, z0, z1, init=bent, solver=adam, discretisation=seven, throw=False
    )
    then = lg.geodesic(metric, z0, z1, init=warm.curve, solver=lg.OptaxSolver())
    both = lg.geodesic(
        metric, z0, z1, init=bent, solver=lg.WarmStart(adam, lg.OptaxSolver(), 7)
    )
    np.testing.assert_allclose(both.length, then.length, rtol=1e-6)
    assert int(both.num_steps) == 7 + int(then.num_steps)
    none = lg.WarmStart(warmup_steps=0)
    plain = lg.geodesic(metric, z0, z1, init=bent, solver=lg.OptaxSolver())
    zero = lg.geodesic(metric, z0, z1, init=bent, solver=none)
    np.testing.assert_array_equal(zero.length, plain.length)
    with pytest.raises(ValueError, match="warmup_steps"):
        lg.WarmStart(warmup_steps=-1)


def test_chord_units_make_adam_scale_invariant(getkey):
    metric, _ = linear_metric(getkey())
    z0, z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
    adam = lg.OptaxSolver(optax.adam(1e-2), rtol=0.0, patience=100, chord_units=True)
    lengths = []
    for scale in (1.0, 100.0):
        # The same geometry in latent coordinates scaled by `scale`.
        scaled = lg.PullbackMetric(Linear(metric.decoder.matrix / scale), latent_dim=2)
        bent = lg.CubicSpline(scale * z0, scale * z1, 0.3 * scale * jnp.ones((11, 2)))
        result = lg.geodesic(
            scaled,
            scale * z0,
            scale * z1,
            init=bent,
            solver=adam,
            discretisation=lg.Discretisation(max_steps=20),
            throw=False,
        )
        lengths.append(result.length)
    np.testing.assert_allclose(lengths[0], lengths[1], rtol=1e-4)
