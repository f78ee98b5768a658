"""`OptaxSolver` (`_solvers/_optax.py`), run directly on objectives: great circles
on the sphere chart (pull-back and tensor-only), closed forms for a linear
decoder, its stopping rule, the best-iterate record and evaluation counts checked
against an objective that records every call."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import (
    ROUNDING,
    ConformalSphere,
    InverseStereographic,
    Linear,
    float64,
    sphere_pair,
)
from latentgeo._solvers._optax import shared_adam

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
Z0, Z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
BENT = 0.3 * jnp.ones((11, 2))
CALLS = []  # (value, step) of every evaluation of a `Recorded` objective


class Recorded(lg.AbstractCurveObjective):
    """An objective that appends `(value, step)` to `CALLS` whenever it is
    evaluated (line-search trials included), through a debug callback."""

    inner: lg.AbstractCurveObjective
    metric: lg.AbstractMetric
    z0: jax.Array
    z1: jax.Array
    times: jax.Array

    def __init__(self, inner):
        self.inner = inner
        self.metric, self.z0, self.z1 = inner.metric, inner.z0, inner.z1
        self.times = inner.times

    def __call__(self, params, step):
        value = self.inner(params, step)
        jax.debug.callback(lambda v, s: CALLS.append((float(v), int(s))), value, step)
        return value


def objective_of(metric, z0, z1, num_points=64):
    times = jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype)
    return lg.ExpectedEnergy().objective(metric, z0, z1, times)


def recorded_run(solver, objective, params, max_steps):
    """Minimise, and return the result with the calls it made."""
    CALLS.clear()
    found = minimise(solver, Recorded(objective), params, max_steps)
    jax.effects_barrier()
    return found, list(CALLS)


@eqx.filter_jit
def minimise(solver, objective, params, max_steps):
    return solver.minimise(objective, params, max_steps)


@eqx.filter_jit
def evaluate(objective, params):
    return objective(params, jnp.array(0))


def chord_adam():
    return lg.OptaxSolver(shared_adam(1e-2), rtol=1e-4, patience=100, chord_units=True)


def discrete_great_circle_energy(distance, num_points):
    """The least energy of a polygon on the unit sphere over an arc `distance`:
    equal steps, $T \\cdot T (2 \\sin(d / 2T))^2$."""
    scale = num_points - 1
    return (2 * scale * np.sin(distance / (2 * scale))) ** 2


def fine_length(metric, z0, z1, params):
    return metric.curve_length(
        lg.CubicSpline(z0, z1, params)(jnp.linspace(0.0, 1.0, 1025))
    )


@pytest.mark.parametrize(
    "solver", [lg.OptaxSolver(), chord_adam()], ids=["lbfgs", "adam"]
)
def test_sphere_geodesic_is_the_great_circle(solver):
    """L-BFGS (the default) and Adam in chord units, on the chart's pull-back
    energy and on the tensor-only metric's quadrature energy (which
    Gauss–Newton solvers cannot take)."""
    z0, z1, distance = sphere_pair(90.0, azimuth=0.5)
    pullback = objective_of(SPHERE, z0, z1)
    found = minimise(solver, pullback, jnp.zeros((11, 2)), 3000)
    assert found.result == lg.RESULTS.successful
    np.testing.assert_allclose(
        found.value, discrete_great_circle_energy(distance, 64), rtol=2e-5
    )
    np.testing.assert_allclose(
        found.value, evaluate(pullback, found.params), rtol=ROUNDING
    )
    np.testing.assert_allclose(
        fine_length(SPHERE, z0, z1, found.params), distance, rtol=2e-5
    )
    tensor_only = objective_of(ConformalSphere(), z0, z1)
    found = minimise(solver, tensor_only, jnp.zeros((11, 2)), 3000)
    assert found.result == lg.RESULTS.successful
    np.testing.assert_allclose(
        fine_length(SPHERE, z0, z1, found.params), distance, rtol=2e-5
    )


def test_float64_lbfgs_reaches_the_closed_form(getkey):
    with float64():
        matrix = jax.random.normal(getkey(), (6, 2), jnp.float64)
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        z0, z1 = Z0.astype(jnp.float64), Z1.astype(jnp.float64)
        objective = objective_of(metric, z0, z1)
        solver = lg.OptaxSolver(rtol=1e-12)
        found = minimise(solver, objective, BENT.astype(jnp.float64), 300)
        assert found.value.dtype == jnp.float64
        assert found.result == lg.RESULTS.successful
        straight = jnp.sum((matrix @ (z1 - z0)) ** 2)
        np.testing.assert_allclose(found.value, straight, rtol=1e-10)
        np.testing.assert_allclose(found.params, 0.0, atol=1e-5)


def test_patience_and_tolerances_stop_it(getkey):
    metric = lg.PullbackMetric(
        Linear(jax.random.normal(getkey(), (6, 2))), latent_dim=2
    )
    objective = objective_of(metric, Z0, Z1, num_points=16)
    start = float(evaluate(objective, BENT))
    # No step can improve by |best|: it stops once patience runs out.
    for patience in (2, 5):
        solver = lg.OptaxSolver(rtol=1.0, patience=patience)
        found = minimise(solver, objective, BENT, 100)
        assert found.result == lg.RESULTS.successful
        assert patience <= int(found.num_steps) <= patience + 1
        assert float(found.value) < start
    # With no tolerance and endless patience it runs to the cap.
    adam = lg.OptaxSolver(shared_adam(1e-2), rtol=0.0, patience=1000)
    found = minimise(adam, objective, BENT, 50)
    assert int(found.num_steps) == 50
    assert found.result == lg.RESULTS.max_steps_reached
    # A looser tolerance stops no later than a tighter one.
    loose = minimise(lg.OptaxSolver(rtol=1e-2), objective, BENT, 500)
    tight = minimise(lg.OptaxSolver(rtol=1e-7), objective, BENT, 500)
    assert int(loose.num_steps) <= int(tight.num_steps)
    assert float(tight.value) <= float(loose.value)
    straight = jnp.sum((metric.decoder.matrix @ (Z1 - Z0)) ** 2)
    np.testing.assert_allclose(tight.value, straight, rtol=1e-5)


def test_patience_one_still_follows_improving_steps(getkey):
    metric = lg.PullbackMetric(
        Linear(jax.random.normal(getkey(), (6, 2))), latent_dim=2
    )
    objective = objective_of(metric, Z0, Z1, num_points=16)
    found = minimise(lg.OptaxSolver(patience=1), objective, BENT, 100)
    # L-BFGS lowers this quadratic at every step; one step without improvement
    # cannot have happened after a single step.
    assert int(found.num_steps) > 1
    assert float(found.value) < 0.5 * float(evaluate(objective, BENT))


def test_adam_returns_the_best_point_it_evaluated():
    """A large learning rate makes Adam oscillate: the result is the lowest of
    every value the objective returned, at parameters that give that value, and
    each iteration evaluates with its own step index (fresh noise for stochastic
    objectives)."""
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    objective = objective_of(SPHERE, z0, z1, num_points=32)
    adam = lg.OptaxSolver(shared_adam(0.3), rtol=0.0, patience=30)
    found, calls = recorded_run(adam, objective, BENT, 300)
    values = [v for v, _ in calls]
    assert values.index(min(values)) < len(values) - 1  # it went up again
    assert float(found.value) == min(values)
    np.testing.assert_allclose(
        evaluate(objective, found.params), found.value, rtol=ROUNDING
    )
    assert [s for _, s in calls] == list(range(int(found.num_steps)))
    # Adam evaluates once per step, and says so.
    assert int(found.num_evaluations) == int(found.num_steps) == len(calls)


def test_lbfgs_counts_line_search_trials():
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    objective = objective_of(SPHERE, z0, z1, num_points=32)
    found, calls = recorded_run(lg.OptaxSolver(), objective, BENT, 100)
    assert int(found.num_evaluations) >= int(found.num_steps)
    # All evaluations of one iteration (line-search trials) share its step.
    steps = [s for _, s in calls]
    assert steps == sorted(steps) and steps[-1] == int(found.num_steps) - 1
    assert abs(len(calls) - int(found.num_evaluations)) <= 1


@pytest.mark.parametrize("store_grad", [None, False, True], ids=["zoom", "bt", "bt-g"])
def test_lbfgs_evaluation_count_is_exact(store_grad):
    """The first value and gradient, every line-search trial, and the gradient
    a backtracking search that stores none leaves to the next iteration."""
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    objective = objective_of(SPHERE, z0, z1, num_points=32)
    solver = lg.OptaxSolver()
    if store_grad is not None:
        backtracking = optax.scale_by_backtracking_linesearch(
            max_backtracking_steps=20, store_grad=store_grad
        )
        solver = lg.OptaxSolver(optax.lbfgs(linesearch=backtracking))
    found, calls = recorded_run(solver, objective, BENT, 100)
    assert int(found.num_evaluations) == len(calls)
    assert float(found.value) == min(v for v, _ in calls)


def test_lbfgs_returns_the_best_point_it_evaluated():
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    objective = objective_of(SPHERE, z0, z1, num_points=32)
    found, calls = recorded_run(lg.OptaxSolver(), objective, BENT, 3)
    assert found.result == lg.RESULTS.max_steps_reached
    assert float(found.value) == min(v for v, _ in calls)
    np.testing.assert_allclose(
        evaluate(objective, found.params), found.value, rtol=1e-6
    )


def test_a_nan_decoder_is_reported_as_nonfinite():
    nan = lg.PullbackMetric(lambda z: z * jnp.nan, latent_dim=2)
    for solver in (lg.OptaxSolver(), chord_adam()):
        found = minimise(solver, objective_of(nan, Z0, Z1, 16), BENT, 100)
        assert found.result == lg.RESULTS.nonfinite
        assert int(found.num_steps) == 1
        assert bool(jnp.isnan(found.value))


def linear_problem(key):
    matrix = jax.random.normal(key, (6, 2))
    metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
    objective = objective_of(metric, Z0, Z1, num_points=16)
    return objective, jnp.sum((matrix @ (Z1 - Z0)) ** 2)


def test_any_optax_optimiser_plugs_in(getkey):
    """Optimisers built by the user, which need the objective through optax's
    extra arguments (a short-memory L-BFGS; one with a backtracking line
    search that stores its gradient), on the quadratic energy of a linear
    decoder: the straight line, with the closed-form energy."""
    objective, straight = linear_problem(getkey())
    backtracking = optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=20, store_grad=True
    )
    for optimiser in (
        optax.lbfgs(memory_size=3),
        optax.lbfgs(linesearch=backtracking),
    ):
        solver = lg.OptaxSolver(optimiser, rtol=1e-7)
        found = minimise(solver, objective, BENT, 1000)
        assert found.result == lg.RESULTS.successful
        np.testing.assert_allclose(found.value, straight, rtol=1e-5)


def test_a_backtracking_line_search_with_default_settings_plugs_in(getkey):
    objective, straight = linear_problem(getkey())
    backtracking = optax.scale_by_backtracking_linesearch(max_backtracking_steps=20)
    solver = lg.OptaxSolver(optax.lbfgs(linesearch=backtracking), rtol=1e-7)
    found = minimise(solver, objective, BENT, 1000)
    assert found.result == lg.RESULTS.successful
    np.testing.assert_allclose(found.value, straight, rtol=1e-5)


def test_bad_settings_are_refused():
    for settings, message in (
        (dict(patience=0), "patience"),
        (dict(rtol=-1e-3), "non-negative"),
        (dict(atol=-1.0), "non-negative"),
    ):
        with pytest.raises(ValueError, match=message):
            lg.OptaxSolver(**settings)
    # Chord units would move the step away from where a line search evaluated.
    solver = lg.OptaxSolver(chord_units=True)
    with pytest.raises(ValueError, match="chord_units"):
        minimise(solver, objective_of(SPHERE, Z0, Z1, 16), BENT, 10)
