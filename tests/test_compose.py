"""Composite solvers (`_solvers/_compose.py`): `then` and `WarmStart`, checked
with stand-in solvers whose results are known exactly and against running the
two stages by hand."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, sphere_pair
from latentgeo._solvers._compose import then

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
Z0, Z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
BENT = 0.3 * jnp.ones((11, 2))


class Shift(lg.AbstractCurveSolver):
    """A stand-in stage: adds `shift` to the parameters, reports as many steps
    as the budget it was given, `evaluations` evaluations, and `result`."""

    shift: float
    evaluations: int
    result: lg.RESULTS = eqx.field(default_factory=lambda: lg.RESULTS.successful)

    def minimise(self, objective, params, max_steps):
        moved = params + self.shift
        value = objective(moved, jnp.array(0))
        return lg.Minimisation(moved, value, max_steps, self.evaluations, self.result)


def sphere_objective(num_points=32):
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    times = jnp.linspace(0.0, 1.0, num_points)
    return lg.ExpectedEnergy().objective(SPHERE, z0, z1, times)


@eqx.filter_jit
def minimise(solver, objective, params, max_steps):
    return solver.minimise(objective, params, max_steps)


def test_then_keeps_the_second_result_and_adds_the_costs():
    first = lg.Minimisation(
        jnp.ones(3), jnp.array(5.0), 3, 4, lg.RESULTS.max_steps_reached
    )
    second = lg.Minimisation(jnp.zeros(3), jnp.array(2.0), 7, 9, lg.RESULTS.successful)
    both = then(first, second)
    np.testing.assert_array_equal(both.params, jnp.zeros(3))
    assert float(both.value) == 2.0
    assert int(both.num_steps) == 10 and int(both.num_evaluations) == 13
    assert both.num_steps.dtype == both.num_evaluations.dtype == jnp.int32
    assert both.result == lg.RESULTS.successful
    failed = then(second, first)
    assert failed.result == lg.RESULTS.max_steps_reached
    np.testing.assert_array_equal(failed.params, jnp.ones(3))


def test_stages_chain_with_their_own_budgets():
    """The warm-up gets `warmup_steps`, the second stage `max_steps` and the
    warm-up's parameters; nesting adds every stage's costs."""
    objective = sphere_objective()
    inner = lg.WarmStart(Shift(0.1, 2), Shift(0.01, 3), warmup_steps=5)
    outer = lg.WarmStart(inner, Shift(0.001, 7), warmup_steps=11)
    found = minimise(outer, objective, BENT, 40)
    # inner: 5 + 11 steps (its warm-up, then its second stage on budget 11).
    assert int(found.num_steps) == 5 + 11 + 40
    assert int(found.num_evaluations) == 2 + 3 + 7
    np.testing.assert_allclose(found.params, BENT + 0.111, rtol=1e-6)
    np.testing.assert_allclose(
        found.value, objective(BENT + 0.111, jnp.array(0)), rtol=1e-6
    )


def test_the_result_is_that_of_the_second_stage():
    objective = sphere_objective()
    failing_warmup = Shift(0.0, 1, lg.RESULTS.nonfinite)
    rescued = lg.WarmStart(failing_warmup, lg.LevenbergMarquardt(), warmup_steps=2)
    found = minimise(rescued, objective, BENT, 100)
    assert found.result == lg.RESULTS.successful
    failing = lg.WarmStart(Shift(0.0, 1), Shift(0.0, 1, lg.RESULTS.stagnated))
    assert minimise(failing, objective, BENT, 5).result == lg.RESULTS.stagnated


def test_warm_start_is_its_stages_run_by_hand():
    objective = sphere_objective()
    adam = lg.OptaxSolver(optax.adam(1e-2), rtol=0.0, patience=1000)
    second = lg.LevenbergMarquardt()
    both = minimise(lg.WarmStart(adam, second, warmup_steps=7), objective, BENT, 100)
    first = minimise(adam, objective, BENT, 7)
    assert int(first.num_steps) == 7  # no tolerance, endless patience
    rest = minimise(second, objective, first.params, 100)
    np.testing.assert_allclose(both.params, rest.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.value, rest.value, rtol=1e-6)
    assert int(both.num_steps) == 7 + int(rest.num_steps)
    assert int(both.num_evaluations) == int(first.num_evaluations) + int(
        rest.num_evaluations
    )
    assert both.result == rest.result == lg.RESULTS.successful
    # The second stage's budget is `max_steps`, whatever the warm-up took.
    short = minimise(lg.WarmStart(adam, second, warmup_steps=7), objective, BENT, 1)
    assert int(short.num_steps) == 7 + 1
    assert short.result == lg.RESULTS.max_steps_reached


def test_no_warmup_is_the_second_solver_alone(getkey):
    """`warmup_steps=0` with the default (Adam) warm-up, on a linear decoder:
    exactly the default L-BFGS run, which finds the straight line."""
    matrix = jax.random.normal(getkey(), (6, 2))
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    times = jnp.linspace(0.0, 1.0, 16)
    objective = lg.ExpectedEnergy().objective(metric, Z0, Z1, times)
    none = minimise(lg.WarmStart(warmup_steps=0), objective, BENT, 200)
    alone = minimise(lg.OptaxSolver(), objective, BENT, 200)
    assert bool(eqx.tree_equal(none, alone))
    straight = jnp.sum((matrix @ (Z1 - Z0)) ** 2)
    np.testing.assert_allclose(none.value, straight, rtol=1e-5)


def test_default_warm_start_finds_the_great_circle():
    z0, z1, distance = sphere_pair(120.0, azimuth=0.5)
    objective = sphere_objective(num_points=64)
    found = minimise(lg.WarmStart(), objective, BENT, 1000)
    assert found.result == lg.RESULTS.successful
    assert int(found.num_steps) > 0
    curve = lg.CubicSpline(z0, z1, found.params)
    length = SPHERE.curve_length(curve(jnp.linspace(0.0, 1.0, 1025)))
    np.testing.assert_allclose(length, distance, rtol=1e-4)
    with pytest.raises(ValueError, match="warmup_steps"):
        lg.WarmStart(warmup_steps=-1)
