"""All-pairs distance matrices: graph estimate and refined geodesics.

Run, for example:

    PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 100 --refine
    PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 1000
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        PYTHONPATH=src:benchmarks python benchmarks/allpairs.py --n 100 --refine

`--model` is a model of `models.py` (`relu` by default); `--n 100` uses its
100 query codes. Larger `N` (only for the digit models: there are only 537
digits 0-2) draws codes of random digits plus Gaussian jitter (std 0.05), a
fixed sample. The graph always includes the model's training codes as extra nodes.
`--init default` passes no `init` (the library's default); `--init issue` runs
the default when issue 15 was filed (a 256-cell lattice start and the lattice
check of that time, `pipelines.issue_pipeline`), to set beside it.
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
from pipelines import issue_pipeline

import latentgeo as lg


def query_points(n):
    train, _, held, _ = models.digits_codes()
    if n <= len(held):
        return held[:n]
    codes = np.concatenate([train, held])
    rng = np.random.default_rng(1)
    picks = codes[rng.integers(0, len(codes), n)]
    return (picks + 0.05 * rng.standard_normal(picks.shape)).astype(np.float32)


def main(model, n, refine, init, batch_size, neighbours):
    metric, train, query = models.load(model)
    points = query[:n] if n <= len(query) else query_points(n)
    graph = lg.GraphStart(neighbours=neighbours, extra_points=train)
    starts = {
        "graph": (graph, {}),
        "straight": (lg.StraightStart(), {}),
        "shortest": (lg.ShortestOf(lg.StraightStart(), graph), {}),
        "default": (None, {}),
        "issue": issue_pipeline(),
    }
    if refine:
        chosen_init, options = starts[init]

        def solve(points):
            return lg.pairwise_geodesics(
                metric,
                points,
                init=chosen_init,
                batch_size=batch_size,
                progress=False,
                **options,
            )
    else:

        def solve(points):
            return lg.pairwise_graph_estimate(metric, points, graph, progress=False)

    # Compile on a few points first (same batch size, so the same programs).
    solve(points[:12])
    start = time.perf_counter()
    result = solve(points)
    jax.block_until_ready(result.distances)
    elapsed = time.perf_counter() - start
    pairs = n * (n - 1) // 2
    record = dict(
        model=model,
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
        f"benchmarks/.cache/distances_{model}_{n}_{init}_{int(refine)}.npy",
        np.asarray(result.distances),
    )
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="relu", choices=sorted(models.MODELS))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--refine", action="store_true")
    parser.add_argument(
        "--init",
        default="graph",
        choices=["graph", "straight", "shortest", "default", "issue"],
        help="the start: `default` passes no `init` (the library's default); "
        "`issue` is the default when issue 15 was filed (`pipelines.issue_pipeline`)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--neighbours", type=int, default=10)
    args = parser.parse_args()
    if not args.refine and args.init != "graph":
        parser.error("without --refine the estimate is the graph's: use --init graph")
    main(args.model, args.n, args.refine, args.init, args.batch_size, args.neighbours)
