"""optimistix's solvers on the library's spline problem, against the library's.

The problem is exactly `lg.geodesic`'s default one: the deviation parameters
`(n + 1, d)` of a 10-segment `lg.CubicSpline` from a straight start, the
expected energy on 64 uniform points, `T * sum_i ||e(z_{i+1}) - e(z_i)||^2`.
optimistix sees it either as least squares, residuals
`sqrt(T) * (e(z_{i+1}) - e(z_i))` flattened (`optx.least_squares` with
`LevenbergMarquardt`, `GaussNewton`, `Dogleg`), or as a minimisation of the
energy (`optx.minimise` with `BFGS`). The methods are registered in
`score.METHODS` as `optx-lm`, `optx-gn`, `optx-dogleg`, `optx-bfgs`, so they are
timed and scored like every other method; this script runs them next to the
library's solvers and then breaks their cost down: the time of one residual
evaluation, of one materialised Jacobian (`jax.jacfwd`, one JVP per parameter,
which is what optimistix's least-squares solvers build each step through
lineax), of the library's structured Gauss-Newton inputs (`d` JVPs per point),
and of one value-and-gradient (what BFGS and L-BFGS use).

Run (about 30 minutes per model on a loaded 2-core CPU):

    PYTHONPATH=src:benchmarks python benchmarks/optimistix_solvers.py elu --pairs 30
    PYTHONPATH=src:benchmarks python benchmarks/optimistix_solvers.py relu --pairs 30
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import models
import numpy as np
import optimistix as optx
import score
from jaxtyping import Array

import latentgeo as lg

NUM_POINTS = 64
NUM_SEGMENTS = 10
RTOL, ATOL = 1e-5, 1e-6
# Least-squares steps cost about 20 forward passes each here: cap them lower.
MAX_STEPS = {"least_squares": 200, "minimise": 1000}


class OptxResult(eqx.Module):
    """The fields of `lg.GeodesicResult` that the harness reads."""

    curve: lg.CubicSpline
    num_steps: Array
    converged: Array


def residual_function(metric, z0, z1):
    """`params (n + 1, d) -> (63 * D,)`: the scaled finite differences."""
    times = jnp.linspace(0.0, 1.0, NUM_POINTS, dtype=z0.dtype)
    scale = jnp.sqrt(jnp.asarray(NUM_POINTS - 1, z0.dtype))

    def residuals(params, args=None):
        points = lg.CubicSpline(z0, z1, params)(times)
        embedded = jax.vmap(metric.embed)(points)
        return scale * jnp.ravel(jnp.diff(embedded, axis=0))

    return residuals


def _solve(kind, solver):
    def solve(metric, z0, z1, init):
        del init
        residuals = residual_function(metric, z0, z1)
        params = jnp.zeros((NUM_SEGMENTS + 1, z0.shape[0]), z0.dtype)
        with jax.default_matmul_precision("highest"):
            if kind == "least_squares":
                sol = optx.least_squares(
                    residuals, solver, params, max_steps=MAX_STEPS[kind], throw=False
                )
            else:
                energy = lambda p, args: jnp.sum(residuals(p) ** 2)  # noqa: E731
                sol = optx.minimise(
                    energy, solver, params, max_steps=MAX_STEPS[kind], throw=False
                )
        return OptxResult(
            curve=lg.CubicSpline(z0, z1, sol.value),
            num_steps=sol.stats["num_steps"],
            converged=sol.result == optx.RESULTS.successful,
        )

    return solve


OPTX_METHODS = {
    "optx-lm": score.Method(
        _solve("least_squares", optx.LevenbergMarquardt(RTOL, ATOL))
    ),
    "optx-gn": score.Method(_solve("least_squares", optx.GaussNewton(RTOL, ATOL))),
    "optx-dogleg": score.Method(_solve("least_squares", optx.Dogleg(RTOL, ATOL))),
    "optx-bfgs": score.Method(_solve("minimise", optx.BFGS(RTOL, ATOL))),
    # The same with the normal equations (Cholesky of the 22 x 22 J^T J + damping)
    # instead of the default QR of the tall materialised Jacobian.
    "optx-lm-normal": score.Method(
        _solve(
            "least_squares",
            optx.LevenbergMarquardt(RTOL, ATOL, linear_solver=lx.Normal(lx.Cholesky())),
        )
    ),
    "optx-gn-normal": score.Method(
        _solve(
            "least_squares",
            optx.GaussNewton(RTOL, ATOL, linear_solver=lx.Normal(lx.Cholesky())),
        )
    ),
}
score.METHODS |= OPTX_METHODS


def _damped_qr_step(residuals, params):
    """What `optx.LevenbergMarquardt` does per step with its default `lx.QR()`:
    linearise the residuals, materialise the damped operator column by column
    (one linearised JVP per parameter), and solve by QR."""
    value, linear = jax.linearize(residuals, params)
    basis = jnp.eye(params.size, dtype=params.dtype).reshape(-1, *params.shape)
    columns = jax.vmap(linear)(basis)  # (p, m)
    damped = jnp.concatenate([columns.T, 0.1 * jnp.eye(params.size)])
    q, r = jnp.linalg.qr(damped)
    rhs = jnp.concatenate([value, jnp.zeros(params.size, value.dtype)])
    return jax.scipy.linalg.solve_triangular(r, q.T @ rhs)


def _median_time(fn, *args, repeats=20):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cost_breakdown(model):
    """Milliseconds of the building blocks, on one pair near the middle."""
    metric, _, query = models.load(model)
    z0, z1 = jnp.asarray(query[0]), jnp.asarray(query[1])
    residuals = residual_function(metric, z0, z1)
    params = 0.01 * jnp.ones((NUM_SEGMENTS + 1, z0.shape[0]), z0.dtype)
    points = lg.CubicSpline(z0, z1, params)(jnp.linspace(0.0, 1.0, NUM_POINTS))
    energy = lambda p: jnp.sum(residuals(p) ** 2)  # noqa: E731
    blocks = {
        "residuals (one forward pass on the curve)": jax.jit(residuals),
        "materialised Jacobian, jacfwd (one JVP per parameter)": jax.jit(
            jax.jacfwd(residuals)
        ),
        "structured Gauss-Newton inputs (d JVPs per point)": jax.jit(
            lambda p: jax.vmap(metric.jacobian_transpose)(
                lg.CubicSpline(z0, z1, p)(jnp.linspace(0.0, 1.0, NUM_POINTS))
            )
        ),
        "value and gradient of the energy": jax.jit(jax.value_and_grad(energy)),
        "one optimistix LM step: linearise, materialise [J; sqrt(lambda) I], QR "
        "solve": jax.jit(lambda p: _damped_qr_step(residuals, p)),
    }
    print(
        f"\n{model}: cost of one call, one pair, {NUM_POINTS} points, "
        f"{params.size} spline parameters, D = {residuals(params).size // 63}:"
    )
    base = None
    for name, fn in blocks.items():
        ms = 1e3 * _median_time(fn, params)
        base = ms if base is None else base
        print(f"- {name}: {ms:.2f} ms ({ms / base:.1f}x a forward pass)")
    del points


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    parser.add_argument("--pairs", default="30")
    parser.add_argument(
        "--methods", nargs="*", default=[*OPTX_METHODS, "default", "lm", "lbfgs"]
    )
    args = parser.parse_args()
    for name in args.methods:
        row = score.measure(args.model, name, args.pairs)
        print(f"{name}: {row['seconds_per_geodesic']:.3f} s/geodesic", flush=True)
    score.table(args.model)
    cost_breakdown(args.model)
