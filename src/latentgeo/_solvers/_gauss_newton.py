r"""The Gauss–Newton system of a least-squares curve objective, built from point
Jacobians (METHOD §8).

The residuals depend on the spline parameters only through the curve points,
which are a fixed linear map $M$ (the design matrix) of the parameters. So the
Gauss–Newton matrix is $H = M^\top H_z M$ with $H_z$ block tridiagonal over the
points, built from the features' Jacobians at each point: $d$ JVPs per point
(one forward pass each), whatever the number of spline parameters.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import HIGHEST
from .._objective import AbstractLeastSquaresObjective


class GaussNewtonSystem(eqx.Module):
    """The objective, its half-gradient and its Gauss–Newton matrix at some
    parameters `(n + 1, d)`.

    **Attributes:**

    - `value`: the energy, a scalar.
    - `gradient`: half the gradient, shape `(n + 1, d)`.
    - `hessian`: half the Gauss–Newton matrix, `((n + 1) d, (n + 1) d)`, over the
      flattened parameters.
    """

    value: Float[Array, ""]
    gradient: Float[Array, "num_params d"]
    hessian: Float[Array, "size size"]


def _dot(spec: str, *arrays: Array) -> Array:
    return jnp.einsum(spec, *arrays, precision=HIGHEST)


def gauss_newton_system(
    objective: AbstractLeastSquaresObjective, params: Float[Array, "num_params d"]
) -> GaussNewtonSystem:
    r"""The [`GaussNewtonSystem`][latentgeo._solvers._gauss_newton.GaussNewtonSystem]
    of `objective` at `params`.

    With $a_i, b_i$ the features at point $i$ and $A_i = J_a(z_i)$,
    $B_i = J_b(z_i)$, the matrix over the points is block tridiagonal: diagonal
    $T (c_i A_i^\top A_i + w_i B_i^\top B_i)$ with $c_i = w_i$ the number of
    segments touching point $i$, off-diagonal $-T A_i^\top A_{i+1}$.
    """
    num_segments = params.shape[0] - 1
    points = objective.points(params)  # (T + 1, d)
    num_points, dim = points.shape
    scale = num_points - 1
    basis = jnp.eye(dim, dtype=points.dtype)

    def linearise(z):
        tangent = lambda v: jax.jvp(objective.features, (z,), (v,))  # noqa: E731
        return jax.vmap(tangent, out_axes=(None, 0))(basis)

    features, jac_t = jax.vmap(linearise)(points)  # (T+1, F), (T+1, d, F)
    split = objective.num_step_features
    a, b = features[:, :split], features[:, split:]
    a_jac, b_jac = jac_t[:, :, :split], jac_t[:, :, split:]
    weights = objective.weights()
    steps = jnp.diff(a, axis=0)
    value = scale * (jnp.sum(steps**2) + jnp.sum(weights * jnp.sum(b**2, axis=-1)))
    padded = jnp.pad(steps, ((1, 1), (0, 0)))
    grad_z = scale * (
        _dot("idf,if->id", a_jac, padded[:-1] - padded[1:])
        + weights[:, None] * _dot("idf,if->id", b_jac, b)
    )
    diagonal = (
        scale
        * weights[:, None, None]
        * (_dot("iaf,ibf->iab", a_jac, a_jac) + _dot("iaf,ibf->iab", b_jac, b_jac))
    )
    off_diagonal = -scale * _dot("iaf,ibf->iab", a_jac[:-1], a_jac[1:])
    design = objective.design(num_segments)  # (T + 1, n + 1)
    gradient = _dot("ip,id->pd", design, grad_z)
    hessian = _dot("ip,iq,iab->paqb", design, design, diagonal)
    upper = _dot("ip,iq,iab->paqb", design[:-1], design[1:], off_diagonal)
    hessian = hessian + upper + jnp.transpose(upper, (2, 3, 0, 1))
    size = (num_segments + 1) * dim
    return GaussNewtonSystem(value, gradient, hessian.reshape(size, size))
