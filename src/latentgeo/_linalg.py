"""Dense solves that call LAPACK one matrix at a time on CPUs.

jaxlib's CPU LAPACK kernels (0.10) split a batch of matrices (a `vmap`-ed
solve) over XLA's intra-op thread pool and block until every piece is done.
When each thread of the pool is itself inside such a kernel, none is left to
run the pieces and the program hangs: two CPU devices on a two-core machine
each solving lockstep pairs, or two independent batched solves in one program.
Under `vmap` on a CPU, `loops_on_cpu` solves the batch in a loop of single
matrices instead (`jax.custom_batching.sequential_vmap`), which never waits on
the pool; on other platforms (GPUs) the batched kernel runs as usual.
`positive_definite_solve` wraps such a loop in `jax.lax.custom_linear_solve`,
so that it is differentiable in both modes as well.
"""

import functools
from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

from ._checks import HIGHEST

_F = TypeVar("_F", bound=Callable)


def loops_on_cpu(function: _F) -> _F:
    """`function` (of arrays, returning a pytree of arrays), batched under
    `jax.vmap` as a loop over single calls when it runs on a CPU.

    Not reverse-differentiable: for solves inside solver loops
    (`lax.while_loop`) and inside custom VJPs, which are not differentiated."""
    looped = jax.custom_batching.sequential_vmap(function)

    @functools.wraps(function)
    def dispatched(*args):
        return jax.lax.platform_dependent(*args, cpu=looped, default=function)

    return dispatched  # type: ignore[return-value]


@loops_on_cpu
def solve(
    matrix: Float[Array, "n n"], vector: Float[Array, " n"]
) -> Float[Array, " n"]:
    """`jnp.linalg.solve(matrix, vector)`, looped over a batch on CPUs."""
    return jnp.linalg.solve(matrix, vector)


@loops_on_cpu
def _cholesky_solve(
    matrix: Float[Array, "n n"], vector: Float[Array, " n"]
) -> Float[Array, " n"]:
    return jsl.cho_solve(jsl.cho_factor(matrix), vector)


def positive_definite_solve(
    matrix: Float[Array, "n n"], vector: Float[Array, " n"]
) -> Float[Array, " n"]:
    """`matrix⁻¹ vector` for a symmetric positive definite `matrix`, by Cholesky
    (NaN where it is not positive definite), looped over a batch on CPUs.

    Differentiable in forward and reverse mode, with respect to both arguments:
    `jax.lax.custom_linear_solve` differentiates implicitly, through the
    matrix-vector product, and its derivatives solve with the same loop."""

    def product(x: Array) -> Array:
        return jnp.matmul(matrix, x, precision=HIGHEST)

    return jax.lax.custom_linear_solve(
        product,
        vector,
        solve=lambda _, rhs: _cholesky_solve(jax.lax.stop_gradient(matrix), rhs),
        symmetric=True,
    )
