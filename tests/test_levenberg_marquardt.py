"""`LevenbergMarquardt` (`_solvers/_levenberg_marquardt.py`), run directly on
objectives: closed forms for linear decoders (straight lines, quadratic
energies), the sphere chart (great circles), a linear least-squares solve for the
decorrelated energy of an affine ensemble, evaluation counts from the decoder
itself, and its outcomes."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg
from helpers import (
    ROUNDING,
    ConformalSphere,
    InverseStereographic,
    Linear,
    float64,
    small_mlp,
    sphere_pair,
)

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
Z0, Z1 = jnp.array([-0.5, 0.2]), jnp.array([0.7, -0.4])
BENT = 0.3 * jnp.ones((11, 2))


def objective_of(metric, z0, z1, num_points=64, energy=lg.ExpectedEnergy()):
    times = jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype)
    return energy.objective(metric, z0, z1, times)


@eqx.filter_jit
def minimise(solver, objective, params, max_steps):
    return solver.minimise(objective, params, max_steps)


@eqx.filter_jit
def evaluate(objective, params):
    return objective(params, jnp.array(0))


def linear_metric(key, dtype=float):
    matrix = jax.random.normal(key, (6, 2), dtype)
    return lg.PullbackMetric(Linear(matrix), latent_dim=2), matrix


def discrete_great_circle_energy(distance, num_points):
    """The least energy of a polygon on the unit sphere over an arc `distance`:
    equal steps (the chord energy $4 \\sin^2(\\alpha / 2)$ is convex in the step
    angle), $T \\cdot T (2 \\sin(d / 2T))^2$."""
    scale = num_points - 1
    return (2 * scale * np.sin(distance / (2 * scale))) ** 2


@pytest.mark.parametrize("secant", [True, False])
def test_linear_decoder_converges_at_once_to_the_straight_line(secant, getkey):
    """A linear decoder makes the energy quadratic and Gauss–Newton exact: from
    a bent start the first step lands on the straight line, whose energy on
    uniform points is $|A(z_1 - z_0)|^2$."""
    metric, matrix = linear_metric(getkey())
    objective = objective_of(metric, Z0, Z1)
    found = minimise(lg.LevenbergMarquardt(secant=secant), objective, BENT, 100)
    assert found.result == lg.RESULTS.successful
    assert int(found.num_steps) <= 3
    assert int(found.num_evaluations) == int(found.num_steps) + 1
    np.testing.assert_allclose(found.params, 0.0, atol=1e-4)
    straight = jnp.sum((matrix @ (Z1 - Z0)) ** 2)
    np.testing.assert_allclose(found.value, straight, rtol=1e-5)
    np.testing.assert_allclose(
        found.value, evaluate(objective, found.params), rtol=ROUNDING
    )


def test_float64_reaches_the_closed_form_to_rounding(getkey):
    with float64():
        metric, matrix = linear_metric(getkey(), jnp.float64)
        z0, z1 = Z0.astype(jnp.float64), Z1.astype(jnp.float64)
        objective = objective_of(metric, z0, z1)
        solver = lg.LevenbergMarquardt(rtol=1e-12)
        found = minimise(solver, objective, BENT.astype(jnp.float64), 100)
        assert found.value.dtype == found.params.dtype == jnp.float64
        assert found.result == lg.RESULTS.successful
        straight = jnp.sum((matrix @ (z1 - z0)) ** 2)
        np.testing.assert_allclose(found.value, straight, rtol=1e-10)
        np.testing.assert_allclose(found.params, 0.0, atol=1e-7)


def test_sphere_geodesics_are_great_circles_faster_with_the_secant():
    """With and without the secant correction: the discrete optimum of equal
    steps along the great circle, and its length. The curve energy is a
    large-residual problem; the structured secant estimate of its second-order
    term is there to restore fast convergence: from the straight line over long
    arcs it takes fewer steps (measured: 4 against 10 at 150 degrees, 5 against
    15 at 170)."""
    for angle in (150.0, 170.0):
        z0, z1, distance = sphere_pair(angle, azimuth=0.5)
        objective = objective_of(SPHERE, z0, z1)
        steps = {}
        for secant in (True, False):
            solver = lg.LevenbergMarquardt(secant=secant)
            found = minimise(solver, objective, jnp.zeros((11, 2)), 100)
            assert found.result == lg.RESULTS.successful
            steps[secant] = int(found.num_steps)
            np.testing.assert_allclose(
                found.value, discrete_great_circle_energy(distance, 64), rtol=2e-5
            )
            curve = lg.CubicSpline(z0, z1, found.params)
            length = SPHERE.curve_length(curve(jnp.linspace(0.0, 1.0, 1025)))
            np.testing.assert_allclose(length, distance, rtol=2e-5)
            value = evaluate(objective, found.params)
            np.testing.assert_allclose(found.value, value, rtol=ROUNDING)
        assert steps[True] < steps[False], (angle, steps)


def test_decorrelated_energy_of_an_affine_pair_is_a_linear_least_squares(getkey):
    """Affine members make every residual of the exact decorrelated energy
    affine in the parameters: its minimiser is the linear least-squares solution
    (NumPy `lstsq` on residuals written from the members and differentiated by
    `jax.jacfwd`), which the solver reaches."""
    with float64():
        keys = jax.random.split(getkey(), 4)
        matrices = [jax.random.normal(k, (3, 2), jnp.float64) for k in keys[:2]]
        offsets = [jax.random.normal(k, (3,), jnp.float64) for k in keys[2:]]
        members = [lambda z, a=a, c=c: a @ z + c for a, c in zip(matrices, offsets)]
        ensemble = lg.EnsembleDecoder.from_apply(
            lambda p, z: p[0] @ z + p[1],
            (jnp.stack(matrices), jnp.stack(offsets)),
            latent_dim=2,
        )
        metric = lg.ExpectedMetric(ensemble)
        z0, z1 = Z0.astype(jnp.float64), Z1.astype(jnp.float64)
        objective = objective_of(metric, z0, z1, 17, lg.DecorrelatedEnergy())
        scale = 16
        counts = jnp.asarray([1.0] + [2.0] * 15 + [1.0])

        def residuals(params):
            points = objective.points(params)
            outputs = jnp.stack([jax.vmap(f)(points) for f in members], axis=1)
            mean = jnp.mean(outputs, axis=1)
            spread = (outputs - mean[:, None]) / jnp.sqrt(2.0)
            steps = jnp.sqrt(scale) * jnp.diff(mean, axis=0)
            spread = jnp.sqrt(scale * counts)[:, None, None] * spread
            return jnp.concatenate([steps.reshape(-1), spread.reshape(-1)])

        start = jnp.zeros((11, 2))
        r0 = np.asarray(jax.jit(residuals)(start))
        jac = np.asarray(jax.jit(jax.jacfwd(residuals))(start)).reshape(r0.size, -1)
        best, *_ = np.linalg.lstsq(jac, -r0, rcond=None)
        solver = lg.LevenbergMarquardt(rtol=1e-12)
        found = minimise(solver, objective, start, 100)
        assert found.result == lg.RESULTS.successful
        assert int(found.num_steps) <= 3
        np.testing.assert_allclose(found.params.reshape(-1), best, atol=1e-8)
        minimum = np.sum((r0 + jac @ best) ** 2)
        np.testing.assert_allclose(found.value, minimum, rtol=1e-10)
        assert float(found.value) < 0.9 * float(evaluate(objective, start))


def test_evaluations_count_the_decoder_passes():
    """A decoder that records the latent points it decodes: one pass over the
    curve's points per evaluation of the Gauss–Newton system, at the start and
    at each trial step."""
    decoded = []  # rows decoded per callback (one or a batch)

    def record(z):
        decoded.append(np.asarray(z).reshape(-1, 2).shape[0])

    class Counting(eqx.Module):
        def __call__(self, z):
            jax.debug.callback(record, z)
            return InverseStereographic()(z)

    metric = lg.PullbackMetric(Counting(), latent_dim=2)
    z0, z1, _ = sphere_pair(120.0, azimuth=0.5)
    objective = objective_of(metric, z0, z1, num_points=16)
    for max_steps in (2, 100):
        decoded.clear()
        found = minimise(lg.LevenbergMarquardt(), objective, BENT, max_steps)
        jax.effects_barrier()
        assert sum(decoded) == 16 * int(found.num_evaluations)
        assert int(found.num_evaluations) == int(found.num_steps) + 1
        if max_steps < 100:
            assert int(found.num_steps) == max_steps
            assert found.result == lg.RESULTS.max_steps_reached
            assert float(found.value) < float(evaluate(objective, BENT))
    assert found.result == lg.RESULTS.successful
    assert int(found.num_steps) > 3


def test_a_nan_decoder_is_reported_as_nonfinite():
    nan = lg.PullbackMetric(lambda z: z * jnp.nan, latent_dim=2)
    found = minimise(lg.LevenbergMarquardt(), objective_of(nan, Z0, Z1), BENT, 100)
    assert found.result == lg.RESULTS.nonfinite
    assert int(found.num_steps) == 0
    assert bool(jnp.isnan(found.value))


def test_trial_steps_into_nan_are_rejected(getkey):
    """A linear decoder that is NaN on a disc around the chord's midpoint: the
    straight line, where every full step goes, is not finite; those steps are
    refused (damping grows) and the solver ends on a finite curve, never NaN."""
    matrix = jax.random.normal(getkey(), (6, 2))
    middle = (Z0 + Z1) / 2

    def holed(z):
        return jnp.where(jnp.linalg.norm(z - middle) < 0.15, jnp.nan, matrix @ z)

    metric = lg.PullbackMetric(holed, latent_dim=2)
    objective = objective_of(metric, Z0, Z1)
    # Start on an arc bowing 0.5 away from the hole.
    t = jnp.linspace(0.0, 1.0, 33)[:, None]
    normal = jnp.array([0.6, 1.2]) / jnp.linalg.norm(jnp.array([0.6, 1.2]))
    arc = Z0[None] + t * (Z1 - Z0)[None] + 0.5 * jnp.sin(jnp.pi * t) * normal[None]
    bowed = lg.CubicSpline.fit(arc, num_segments=10).params
    start = evaluate(objective, bowed)
    assert bool(jnp.isfinite(start))
    found = minimise(lg.LevenbergMarquardt(), objective, bowed, 100)
    assert found.result != lg.RESULTS.nonfinite
    assert bool(jnp.isfinite(found.value))
    assert float(found.value) < float(start)
    np.testing.assert_allclose(
        found.value, evaluate(objective, found.params), rtol=ROUNDING
    )
    straight = jnp.sum((matrix @ (Z1 - Z0)) ** 2)
    assert float(found.value) > float(straight)  # it cannot cross the hole


def test_giving_up_on_damping_is_stagnation_unless_close(getkey):
    """`max_damping` below the starting damping stops at once: stagnated from
    a bent start (large Newton decrement), successful from the solution."""
    metric, _ = linear_metric(getkey())
    objective = objective_of(metric, Z0, Z1)
    impatient = lg.LevenbergMarquardt(initial_damping=1e-3, max_damping=1e-4)
    bent = minimise(impatient, objective, BENT, 100)
    assert bent.result == lg.RESULTS.stagnated
    assert int(bent.num_steps) == 0
    np.testing.assert_allclose(bent.params, BENT)
    solved = minimise(impatient, objective, jnp.zeros_like(BENT), 100)
    assert solved.result == lg.RESULTS.successful


def test_other_objectives_and_settings_are_refused(getkey):
    metric = lg.ExpectedMetric(lg.EnsembleDecoder.init(small_mlp, 2, key=getkey()))
    solver = lg.LevenbergMarquardt()
    refused = [
        objective_of(ConformalSphere(), Z0, Z1),
        objective_of(metric, Z0, Z1, energy=lg.DecorrelatedEnergy(key=getkey())),
    ]
    for objective in refused:
        with pytest.raises(ValueError, match="sum-of-squares"):
            minimise(solver, objective, BENT, 10)
    for settings in (
        dict(rtol=0.0),
        dict(initial_damping=-1.0),
        dict(max_damping=0.0),
    ):
        with pytest.raises(ValueError, match="must be positive"):
            lg.LevenbergMarquardt(**settings)
