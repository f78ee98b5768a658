"""What every curve solver shares: the strategy protocol, its outcome enumeration
and what it returns.

Iterative solvers (`init`, `step`, `terminate`, `postprocess`) and the one loop
that runs them live together in [`_iterate`][latentgeo._solvers._iterate], above
this module.
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from .._objective import AbstractCurveObjective


def counter(x) -> Int[Array, ""]:
    """`x` as an int32 counter: one dtype whether or not float64 is enabled, so
    that counters agree in both branches of every `lax.cond`."""
    return jnp.asarray(x, jnp.int32)


class RESULTS(eqx.Enumeration):
    """Outcome of a geodesic solve; `GeodesicResult.result` holds one."""

    successful = ""
    max_steps_reached = (
        "The solver reached `max_steps` before its convergence test passed. "
        "Raise `max_steps`, loosen the solver's `rtol`, or start from a better "
        "curve (`init=`)."
    )
    stagnated = (
        "No step lowered the energy any more, but the convergence test had not "
        "passed. On ReLU decoders this is usually a kink of the energy (a curve "
        "point on an activation boundary), where the gradient does not vanish "
        "at a minimum; float64 does not change it. Otherwise the energy is too "
        "flat or too noisy at this precision: try float64 "
        "(`jax.config.update('jax_enable_x64', True)`) or another solver."
    )
    nonfinite = (
        "The curve energy became NaN or infinite. Check that the decoder is "
        "finite near the end points and along the curve."
    )


class Minimisation(eqx.Module):
    """What a solver returns: the best parameters it saw and how it got there.

    **Attributes:**

    - `params`: the parameters with the lowest objective value seen.
    - `value`: the objective at `params`, a scalar (NaN if no finite value was
      seen).
    - `num_steps`: iterations taken, an int scalar.
    - `num_evaluations`: evaluations of the objective with its derivatives
      (value and gradient, or value and point Jacobians) on the whole curve.
    - `result`: a [`RESULTS`][latentgeo.RESULTS] item.
    """

    params: PyTree
    value: Float[Array, ""]
    num_steps: Int[Array, ""] = eqx.field(converter=counter)
    num_evaluations: Int[Array, ""] = eqx.field(converter=counter)
    result: RESULTS


class Evaluation(eqx.Module):
    """A point an iterative solver evaluated, for the loop's best-iterate record.

    **Attributes:**

    - `params`: the parameters evaluated.
    - `value`: the objective there (`inf` if nothing was evaluated).
    - `num_evaluations`: evaluations spent on it (line-search trials included).
    """

    params: PyTree
    value: Float[Array, ""]
    num_evaluations: Int[Array, ""] = eqx.field(converter=counter)


class AbstractCurveSolver(eqx.Module):
    """A strategy that minimises a curve objective over spline parameters; pass
    one as `geodesic(..., solver=)`."""

    @abc.abstractmethod
    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        """Minimise `objective` from `params` in at most `max_steps` iterations,
        with every loop inside JAX."""
