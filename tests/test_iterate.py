"""The iterative-solver protocol and its one loop, `iterative_solve`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import InverseStereographic

SPHERE = lg.PullbackMetric(InverseStereographic(), latent_dim=2)


class LastIterate(lg.AbstractIterativeSolver):
    """Gradient descent reporting its last iterate through `postprocess`, not the
    lowest value the loop recorded."""

    learning_rate: float

    def init(self, objective, params):
        return params, lg.Evaluation(params, objective(params, jnp.array(0)), 1)

    def step(self, objective, params, state):
        value, grad = jax.value_and_grad(objective)(params, jnp.array(0))
        new = params - self.learning_rate * grad
        return new, new, lg.Evaluation(params, value, 1)

    def terminate(self, objective, params, state):
        return jnp.array(False), lg.RESULTS.successful

    def postprocess(self, objective, minimisation, state):
        value = objective(state, jnp.array(0))
        return eqx.tree_at(lambda m: (m.params, m.value), minimisation, (state, value))


def test_postprocess_sees_the_final_state_and_revises_the_record():
    z0, z1 = jnp.array([0.6, -0.3]), jnp.array([-0.5, 0.7])
    times = jnp.linspace(0.0, 1.0, 16)
    objective = lg.ExpectedEnergy().objective(SPHERE, z0, z1, times)
    start = 0.4 * jnp.ones((11, 2))
    solver = LastIterate(learning_rate=0.005)
    result = jax.jit(solver.minimise, static_argnums=2)(objective, start, 6)
    iterate, values = start, []
    for _ in range(6):
        values.append(float(objective(iterate, jnp.array(0))))
        iterate = iterate - 0.005 * jax.grad(objective)(iterate, jnp.array(0))
    # The loop evaluated (and recorded) the iterates before each step; the last
    # one, lower still, only `postprocess` reports.
    assert float(objective(iterate, jnp.array(0))) < min(values)
    np.testing.assert_allclose(result.params, iterate, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        result.value, objective(iterate, jnp.array(0)), rtol=1e-5
    )
    assert int(result.num_steps) == 6
    assert int(result.num_evaluations) == 7
