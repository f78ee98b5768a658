"""`LatticeSearch` in lockstep: `jax.vmap` batches of a single `geodesic` with
the lattice check of the time issue 15 was filed (`pipelines.ISSUE_CHECK`),
as the issue-time all-pairs pipeline solved them.

Solves batches of 64 of the 4,950 pairs of a 2-D model's query points (the
first batch compiles and is not timed, then `--batches` batches) and reports
CPU seconds per pair and the sum of the lengths; `--save` writes the first
timed batch's lengths, to compare two versions of the code pair by pair.

    PYTHONPATH=src:benchmarks python benchmarks/lattice_search_vmap.py vae-relu
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
from pipelines import ISSUE_CHECK

import latentgeo as lg

BATCH = 64


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--save", default=None, help="a .npy path")
    args = parser.parse_args()
    metric, _, query = models.load(args.model)
    rows, cols = models.pairs()
    solver = lg.AutoSolver(least_squares=ISSUE_CHECK)

    @eqx.filter_jit
    def lengths(z0, z1):
        solve = lambda a, b: lg.geodesic(metric, a, b, solver=solver, throw=False)  # noqa: E731
        return jax.vmap(solve)(z0, z1).length

    def batch(index):
        picks = slice(BATCH * index, BATCH * (index + 1))
        ends = jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]])
        return np.asarray(jax.block_until_ready(lengths(*ends)))

    batch(0)
    start = time.process_time()
    found = [batch(index) for index in range(1, args.batches + 1)]
    seconds = (time.process_time() - start) / (BATCH * args.batches)
    print(
        f"{args.model}: {seconds:.3f} CPU s per pair, "
        f"sum of lengths {float(np.sum(found)):.4f}",
        flush=True,
    )
    if args.save:
        np.save(args.save, found[0])


if __name__ == "__main__":
    main()
