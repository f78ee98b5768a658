r"""The length of a solved geodesic as a differentiable function of the end points
and the metric, by the implicit function theorem.

The solver returns spline parameters $p^*(\theta)$ that minimise the energy
$E(p; \theta)$, with $\theta = (\text{metric arrays}, z_0, z_1)$; the reported
length is $L(p^*(\theta); \theta)$ on a fine grid. Its derivative is

$$\frac{dL}{d\theta} = \partial_\theta L - \partial_\theta \big(\nabla_p E \cdot
\lambda\big), \qquad H \lambda = \nabla_p L,$$

with $H = \nabla_p^2 E$ at $p^*$ ($\nabla_p E = 0$ there, so differentiating it
in $\theta$ gives $dp^*/d\theta = -H^{-1} \partial_\theta \nabla_p E$). The
solver's loop is never differentiated: the backward pass costs one Hessian of the
energy over the $(n + 1) d$ parameters and two gradients. When the curve is a
geodesic the correction is small (the length is stationary in the curve, the
envelope theorem); it makes the gradient that of the reported number itself.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ._curve import CubicSpline
from ._energy import AbstractEnergy
from ._linalg import solve
from ._metric import AbstractMetric
from ._objective import AbstractStochasticObjective


def _curve_length(
    differentiable: tuple[AbstractMetric, Array, Array],
    params: Array,
    fine_times: Array,
) -> Float[Array, ""]:
    metric, z0, z1 = differentiable
    return metric.curve_length(CubicSpline(z0, z1, params)(fine_times))


@eqx.filter_custom_vjp
def solved_length(
    differentiable: tuple[AbstractMetric, Array, Array],
    params: Float[Array, "num_params d"],
    energy: AbstractEnergy,
    times: Float[Array, " num_points"],
    fine_times: Float[Array, " num_fine"],
) -> Float[Array, ""]:
    """The metric length on `fine_times` of the spline with `params`, the energy
    minimiser for `(metric, z0, z1) = differentiable` on `times`; differentiable in
    `differentiable` only."""
    return _curve_length(differentiable, params, fine_times)


@solved_length.def_fwd
def _solved_length_fwd(perturbed, differentiable, params, energy, times, fine_times):
    del perturbed
    return _curve_length(differentiable, params, fine_times), None


def _hessian(energy_of_params, params: Array) -> Array:
    """The dense Hessian of a scalar function of `params`, `(size, size)`, from
    Hessian-vector products in chunks (bounded memory for large `d`)."""
    size = params.size
    gradient = jax.grad(energy_of_params)

    def product(direction):
        tangent = direction.reshape(params.shape)
        return jax.jvp(gradient, (params,), (tangent,))[1].reshape(-1)

    basis = jnp.eye(size, dtype=params.dtype)
    return jax.lax.map(product, basis, batch_size=min(size, 64))


@solved_length.def_bwd
def _solved_length_bwd(
    residuals, cotangent, perturbed, differentiable, params, energy, times, fine_times
) -> PyTree:
    del residuals, perturbed
    with jax.default_matmul_precision("highest"):
        return _backward(cotangent, differentiable, params, energy, times, fine_times)


def _backward(cotangent, differentiable, params, energy, times, fine_times) -> PyTree:
    length_grad, length_params = eqx.filter_grad(
        lambda args: _curve_length(args[0], args[1], fine_times)
    )((differentiable, params))

    def energy_of(args, p):
        metric, z0, z1 = args
        return energy.objective(metric, z0, z1, times)(p, jnp.array(0))

    objective = energy.objective(*differentiable, times)
    if isinstance(objective, AbstractStochasticObjective):
        # A Monte Carlo energy has no deterministic minimiser to differentiate:
        # keep the envelope term alone.
        total = length_grad
    else:
        hessian = _hessian(lambda p: energy_of(differentiable, p), params)
        size = hessian.shape[0]
        ridge = 1e-10 * jnp.trace(hessian) / size + jnp.finfo(hessian.dtype).tiny
        regular = hessian + ridge * jnp.eye(size, dtype=hessian.dtype)
        adjoint = solve(regular, length_params.reshape(-1))
        adjoint = jnp.where(jnp.isfinite(adjoint), adjoint, 0.0)
        adjoint = adjoint.reshape(params.shape)

        def coupling(args):
            gradient = jax.grad(lambda p: energy_of(args, p))(params)
            return jnp.sum(gradient * adjoint)

        correction = eqx.filter_grad(coupling)(differentiable)
        total = jax.tree.map(lambda a, b: a - b, length_grad, correction)
    return jax.tree.map(lambda g: cotangent * g, total)
