"""The same benchmark model with ELU instead of ReLU: are the solvers' rankings
specific to piecewise-linear decoders?

Run (about 3 minutes on a 2-core CPU):

    PYTHONPATH=src:benchmarks python benchmarks/smooth_decoders.py

Uses the `elu` model of `models.py` (trained once, cached), solves 24 random
pairs of the held-out codes one after the other inside one jitted call with
each solver, and scores the curves against the best found (expected-metric
length on 1025 points).
"""

import time

import jax
import jax.numpy as jnp
import models
import numpy as np

import latentgeo as lg


def main(num_pairs=24):
    metric, _, query = models.load("elu")
    print(f"trained: mean squared error {models.training_info('elu')['final_mse']:.4f}")
    rows, cols = np.triu_indices(len(query), 1)
    pick = np.random.default_rng(0).choice(rows.size, num_pairs, replace=False)
    z0, z1 = jnp.asarray(query[rows[pick]]), jnp.asarray(query[cols[pick]])
    fine = jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS)
    solvers = {
        "default (WarmStart, 100 Adam steps)": lg.WarmStart(),
        "WarmStart, 50 Adam steps": lg.WarmStart(warmup_steps=50),
        "L-BFGS alone": lg.OptaxSolver(),
        "Levenberg-Marquardt": lg.LevenbergMarquardt(),
    }
    lengths = {}
    for name, solver in solvers.items():

        def one(pair, solver=solver):
            return lg.geodesic(metric, pair[0], pair[1], throw=False, solver=solver)

        run = jax.jit(lambda a, b, one=one: jax.lax.map(one, (a, b)))
        jax.block_until_ready(run(z0[:2], z1[:2]))
        start = time.perf_counter()
        out = jax.block_until_ready(run(z0, z1))
        elapsed = time.perf_counter() - start
        lengths[name] = np.asarray(
            jax.vmap(lambda c: metric.curve_length(c(fine)))(out.curve)
        )
        print(
            f"{name}: {1e3 * elapsed / num_pairs:.0f} ms per geodesic, iterations "
            f"median {np.median(out.num_steps):.0f} max {int(out.num_steps.max())}, "
            f"converged {float(np.mean(out.converged)):.2f}",
            flush=True,
        )
    best = np.min(np.stack(list(lengths.values())), axis=0)
    for name, value in lengths.items():
        excess = value / best - 1
        print(
            f"{name}: excess median {100 * np.median(excess):.4f}% "
            f"p90 {100 * np.quantile(excess, 0.9):.4f}% max {100 * excess.max():.4f}%"
        )


if __name__ == "__main__":
    main()
