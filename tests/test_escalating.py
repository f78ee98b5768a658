"""`Escalating`: the fast solver, and where it has not converged the fast solver
continued and a robust restart, in one loop with one phase per pair."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from helpers import InverseStereographic, Linear, float64, sphere_pair

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)


def bent(z0, z1, amount, num_segments=10):
    """A start bent away from the straight line by `amount` in every parameter."""
    return lg.CubicSpline(z0, z1, amount * jnp.ones((num_segments + 1, 2), z0.dtype))


@pytest.mark.parametrize("angle", [30.0, 90.0, 150.0])
def test_default_solver_finds_the_great_circle(angle):
    z0, z1, distance = sphere_pair(angle, azimuth=0.6)
    result = lg.geodesic(SPHERE, z0, z1)
    assert bool(result.converged)
    np.testing.assert_allclose(result.length, distance, rtol=1e-5)


def test_a_fast_failure_escalates_and_reaches_the_closed_form():
    z0, z1, distance = sphere_pair(120.0, azimuth=0.8)
    start = bent(z0, z1, 0.4)
    once = lg.Escalating(fast_steps=1)
    result = lg.geodesic(SPHERE, z0, z1, init=start, solver=once)
    # One fast step cannot converge from this start: the continued run, the
    # warm-up and the robust run all took steps after it.
    warmup_steps = once.robust.warmup_steps
    assert int(result.num_steps) > 1 + warmup_steps
    # One evaluation per iteration plus the start's: the escalation re-evaluates
    # nothing where a phase begins.
    assert int(result.num_evaluations) == int(result.num_steps) + 1
    assert bool(result.converged)
    np.testing.assert_allclose(result.length, distance, rtol=1e-5)


# A Levenberg–Marquardt run whose damping starts above its cap stops where it
# starts, stagnated: either run of the escalation can be made the poor one,
# and the phases it skips hand over without an iteration.
STUCK = lg.LevenbergMarquardt(initial_damping=1.0, max_damping=0.5)
ADAM = lg.OptaxSolver(optax.adam(1e-2), rtol=0.0, patience=10, chord_units=True)


@pytest.mark.parametrize(
    "fast, robust, winner",
    [
        (STUCK, lg.WarmStart(ADAM, lg.LevenbergMarquardt(), 30), "restarted"),
        (lg.LevenbergMarquardt(), lg.WarmStart(ADAM, STUCK, 30), "continued"),
    ],
)
def test_the_escalation_keeps_the_lower_energy_of_its_two_runs(fast, robust, winner):
    z0, z1, distance = sphere_pair(120.0, azimuth=0.8)
    start = bent(z0, z1, 0.4)
    budget = lg.Discretisation(max_steps=30)
    once = lg.Escalating(fast=fast, robust=robust, fast_steps=1)
    escalated = lg.geodesic(
        SPHERE, z0, z1, init=start, solver=once, discretisation=budget, throw=False
    )
    first = lg.geodesic(
        SPHERE,
        z0,
        z1,
        init=start,
        solver=fast,
        discretisation=lg.Discretisation(max_steps=1),
        throw=False,
    )
    runs = {
        "continued": lg.geodesic(
            SPHERE,
            z0,
            z1,
            init=first.curve,
            solver=fast,
            discretisation=budget,
            throw=False,
        ),
        "restarted": lg.geodesic(
            SPHERE,
            z0,
            z1,
            init=start,
            solver=robust,
            discretisation=budget,
            throw=False,
        ),
    }
    chosen = runs.pop(winner)
    (other,) = runs.values()
    assert float(chosen.energy) < 0.99 * float(other.energy)
    assert chosen.result == lg.RESULTS.successful
    assert other.result == lg.RESULTS.stagnated
    np.testing.assert_allclose(escalated.energy, chosen.energy, rtol=1e-6)
    np.testing.assert_allclose(escalated.length, distance, rtol=1e-4)
    assert escalated.result == chosen.result
    # Every part's steps, less the warm-up's first: it starts from the starting
    # curve, whose energy and gradient the loop already has. One evaluation per
    # iteration, plus the start's.
    steps = [int(r.num_steps) for r in (first, chosen, other)]
    assert int(escalated.num_steps) == sum(steps) - 1
    assert int(escalated.num_evaluations) == sum(steps)


def test_lockstep_equals_one_pair_at_a_time():
    # Pairs that converge fast and pairs that escalate, solved together.
    angles = [(40.0, 0.1, 0.0), (90.0, 0.5, 0.4), (120.0, 1.0, 0.0), (150.0, 0.3, 0.6)]
    starts = []
    for angle, azimuth, amount in angles:
        z0, z1, _ = sphere_pair(angle, azimuth)
        starts.append(bent(z0, z1, amount))
    z0 = jnp.stack([s.z0 for s in starts])
    z1 = jnp.stack([s.z1 for s in starts])
    params = jnp.stack([s.params for s in starts])
    solver = lg.Escalating(fast_steps=3)

    def solve(a, b, p):
        return lg.geodesic(
            SPHERE, a, b, init=lg.CubicSpline(a, b, p), solver=solver, throw=False
        )

    lockstep = jax.vmap(solve)(z0, z1, params)
    one_by_one = jax.lax.map(lambda x: solve(*x), (z0, z1, params))
    escalated = np.asarray(one_by_one.num_steps) > solver.fast_steps
    assert escalated.any() and not escalated.all()
    np.testing.assert_allclose(lockstep.length, one_by_one.length, rtol=1e-6)
    # Each pair pays for its own phases: the pairs that converge fast take
    # exactly their steps; an escalated pair's long robust phase may stop a
    # step or two apart, since batched kernels round differently (seen on
    # some CPUs), but never pays for the other pairs' steps.
    fast = ~escalated
    for counts in ("num_steps", "num_evaluations"):
        batched = np.asarray(getattr(lockstep, counts))
        alone = np.asarray(getattr(one_by_one, counts))
        np.testing.assert_array_equal(batched[fast], alone[fast])
        np.testing.assert_allclose(batched[escalated], alone[escalated], rtol=0.05)
    assert bool(jnp.all(lockstep.result == one_by_one.result))
    for i, (a, b, p) in enumerate(zip(z0, z1, params)):
        single = solve(a, b, p)
        np.testing.assert_allclose(lockstep.length[i], single.length, rtol=1e-6)
        np.testing.assert_allclose(
            lockstep.num_evaluations[i], single.num_evaluations, rtol=0.05
        )


# fast_steps=30 (the default) is test_float64.py's linear closed form, in the
# default run; 1 escalates at once.
@pytest.mark.parametrize("fast_steps", [pytest.param(30, marks=pytest.mark.slow), 1])
def test_float64_linear_decoder_gives_the_closed_form(getkey, fast_steps):
    with float64():
        matrix = jax.random.normal(getkey(), (8, 2), jnp.float64)
        metric = lg.PullbackMetric(Linear(matrix), latent_dim=2)
        z0 = jnp.array([-0.5, 0.2], jnp.float64)
        z1 = jnp.array([0.7, -0.4], jnp.float64)
        solver = lg.AutoSolver(lg.Escalating(fast_steps=fast_steps))
        result = lg.geodesic(metric, z0, z1, init=bent(z0, z1, 0.3), solver=solver)
        assert result.length.dtype == jnp.float64
        assert result.num_steps.dtype == jnp.int32
        np.testing.assert_allclose(
            result.length, jnp.linalg.norm(matrix @ (z1 - z0)), rtol=1e-8
        )
        default = lg.geodesic(metric, z0, z1, init=bent(z0, z1, 0.3))
        np.testing.assert_allclose(
            default.length, jnp.linalg.norm(matrix @ (z1 - z0)), rtol=1e-8
        )


def test_only_what_one_loop_can_run_is_accepted():
    with pytest.raises(TypeError, match="`fast` must be a `LevenbergMarquardt`"):
        lg.Escalating(fast=lg.OptaxSolver())
    with pytest.raises(TypeError, match="`robust` must be a `WarmStart"):
        lg.Escalating(robust=lg.LevenbergMarquardt())
    with pytest.raises(TypeError, match="WarmStart\\(OptaxSolver, OptaxSolver\\)"):
        lg.Escalating(robust=lg.WarmStart())
    with pytest.raises(ValueError, match="fast_steps"):
        lg.Escalating(fast_steps=0)
    line_search = lg.WarmStart(lg.OptaxSolver(), lg.LevenbergMarquardt())
    z0, z1, _ = sphere_pair(90.0)
    with pytest.raises(ValueError, match="line search"):
        lg.geodesic(SPHERE, z0, z1, solver=lg.Escalating(robust=line_search))
