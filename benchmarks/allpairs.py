"""All-pairs distance matrices: graph estimate and refined geodesics.

Run, for example:

    PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 100 --refine
    PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 1000
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 100 --refine

`--n 100` uses the 100 held-out digits' codes. Larger `N` (there are only 537
digits 0-2) draws codes of random digits plus Gaussian jitter (std 0.05), a
fixed sample. The graph always includes the 437 training codes as extra nodes.
Prints one JSON line: times (after a warm-up compilation on a few points), peak
resident memory of the process, and convergence.
"""

import argparse
import json
import os
import resource
import time

import jax
import models
import numpy as np

import latentgeo as lg


def query_points(n):
    train, _, held, _ = models.digits_codes()
    if n <= len(held):
        return held[:n]
    codes = np.concatenate([train, held])
    rng = np.random.default_rng(1)
    picks = codes[rng.integers(0, len(codes), n)]
    return (picks + 0.05 * rng.standard_normal(picks.shape)).astype(np.float32)


def main(n, refine, init, batch_size, neighbours):
    metric, train, _ = models.load("relu")
    points = query_points(n)
    options = dict(
        init=init,
        graph_points=train,
        graph_neighbours=neighbours,
        refine=refine,
        batch_size=batch_size,
        progress=False,
    )
    if init == "straight":
        del options["graph_points"], options["graph_neighbours"]
    # Compile on a few points first (same batch size, so the same programs).
    lg.pairwise_geodesics(metric, points[:12], **options)
    start = time.perf_counter()
    result = lg.pairwise_geodesics(metric, points, **options)
    jax.block_until_ready(result.distances)
    elapsed = time.perf_counter() - start
    pairs = n * (n - 1) // 2
    record = dict(
        n=n,
        pairs=pairs,
        init=init,
        refine=refine,
        devices=len(jax.devices()),
        batch_size=batch_size,
        seconds=elapsed,
        ms_per_pair=1e3 * elapsed / pairs,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        converged=float(np.mean(result.converged)),
        steps_median=float(np.median(result.num_steps)),
        steps_max=int(np.max(result.num_steps)),
        load_average=os.getloadavg()[0],
    )
    np.save(
        f"benchmarks/.cache/distances_{n}_{init}_{int(refine)}.npy",
        np.asarray(result.distances),
    )
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--refine", action="store_true")
    parser.add_argument("--init", default="graph", choices=["graph", "straight"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--neighbours", type=int, default=10)
    args = parser.parse_args()
    if not args.refine and args.init != "graph":
        parser.error("without --refine the estimate is the graph's: use --init graph")
    main(args.n, args.refine, args.init, args.batch_size, args.neighbours)
