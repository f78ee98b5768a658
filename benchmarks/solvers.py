"""Per-geodesic benchmark: wall time, decoder passes and length excess per solver.

Run (about 40 minutes on a 2-core CPU, mostly the Adam rows and the float64
reference):

    PYTHONPATH=src:benchmarks python benchmarks/solvers.py --pairs 48 --adam-pairs 16

Results accumulate in `benchmarks/solvers.json`: a rerun measures only the
methods missing there, or those whose name contains `--only`.

Every curve is scored by its expected-metric length on 1025 points, computed in
float64, against the shortest curve any method found for that pair (the methods
include a long, tight float64 run). Wall times are after compilation: each
jitted call runs once to compile and is then timed. "Curve evaluations" count
the calls of the decoder ensemble on a whole curve (counted with a
`jax.debug.callback` on one pair at a time); member passes per geodesic are
that times `num_points * K`.
"""

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import models  # noqa: E402
import numpy as np  # noqa: E402

import latentgeo as lg  # noqa: E402

F32 = np.float32


class Counted(lg.AbstractPullbackMetric):
    """The expected metric, counting its curve evaluations."""

    inner: lg.ExpectedMetric

    @property
    def latent_dim(self):
        return self.inner.latent_dim

    def embed(self, z):
        jax.debug.callback(_bump, jnp.ones(()))
        return self.inner.embed(z)


_COUNT = [0]


def _bump(_):
    _COUNT[0] += 1


def methods(key):
    """name -> (geodesic keyword arguments, how pairs are run: `"map"` one after
    the other inside one jitted call (what `pairwise_geodesics` does on CPU),
    `"vmap"` in lockstep, `"loop"` one jitted call per pair, as the paper)."""
    paper = dict(num_points=256, max_steps=4096, solver=lg.OptaxSolver.paper_adam())
    own = dict(paper, energy="decorrelated", key=key)
    lbfgs = dict(solver=lg.OptaxSolver())
    warm50 = dict(solver=lg.WarmStart(warmup_steps=50))
    return {
        "default (WarmStart: 100 Adam + L-BFGS)": (dict(), "map"),
        "WarmStart, 50 Adam steps": (warm50, "map"),
        "WarmStart, 50 Adam steps, graph init": (warm50, "map"),
        "L-BFGS alone": (lbfgs, "map"),
        "L-BFGS alone, graph init": (lbfgs, "map"),
        "L-BFGS alone, 128 pts": (dict(lbfgs, num_points=128), "map"),
        "Levenberg-Marquardt": (dict(solver=lg.LevenbergMarquardt()), "map"),
        "L-BFGS alone, vmapped batch": (lbfgs, "vmap"),
        "paper Adam, own energy, one at a time": (own, "loop"),
        "paper Adam, expected energy, one at a time": (paper, "loop"),
        "paper Adam, own energy, batched": (own, "vmap"),
    }


def solve(metric, z0, z1, init, options, mode):
    """Results for all pairs, and the wall time after compilation."""

    def one(a, b, p):
        curve = None if p is None else lg.CubicSpline(a, b, p)
        return lg.geodesic(metric, a, b, init=curve, throw=False, **options)

    if mode != "loop":
        if mode == "map":
            run = eqx.filter_jit(lambda *xs: jax.lax.map(lambda x: one(*x), xs))
        else:
            in_axes = (0, 0, None if init is None else 0)
            run = eqx.filter_jit(jax.vmap(one, in_axes=in_axes))
        jax.block_until_ready(run(z0, z1, init))
        start = time.perf_counter()
        out = jax.block_until_ready(run(z0, z1, init))
        return out, time.perf_counter() - start
    run = eqx.filter_jit(one)
    pick = lambda i: None if init is None else init[i]  # noqa: E731
    jax.block_until_ready(run(z0[0], z1[0], pick(0)))
    outs, start = [], time.perf_counter()
    for i in range(len(z0)):
        outs.append(jax.block_until_ready(run(z0[i], z1[i], pick(i))))
    elapsed = time.perf_counter() - start
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs), elapsed


def count_evaluations(metric, z0, z1, init, options, pairs):
    counted = Counted(metric)
    counts = []
    for i in range(pairs):
        curve = None if init is None else lg.CubicSpline(z0[i], z1[i], init[i])
        _COUNT[0] = 0
        lg.geodesic(counted, z0[i], z1[i], init=curve, throw=False, **options)
        jax.effects_barrier()
        counts.append(_COUNT[0] - 1)  # the final length is not the solver's
    return np.array(counts)


def main(num_pairs, adam_pairs, count_pairs, output, only):
    metric, train, query = models.load("relu")
    metric = jax.tree.map(
        lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x, metric
    )
    metric64 = jax.tree.map(
        lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, metric
    )
    rows, cols = np.triu_indices(len(query), 1)
    pick = np.random.default_rng(0).choice(rows.size, num_pairs, replace=False)
    z0, z1 = jnp.asarray(query[rows[pick]], F32), jnp.asarray(query[cols[pick]], F32)
    graph = lg.graph_paths(metric, query, neighbours=10, extra_points=train)
    graph_init = graph.init_curves(rows[pick], cols[pick]).params
    fine = jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS, dtype=jnp.float64)

    def score(curves):
        def length(c):
            c64 = jax.tree.map(lambda x: x.astype(jnp.float64), c)
            return metric64.curve_length(c64(fine))

        return np.asarray(jax.jit(jax.vmap(length))(curves))

    table = {}
    if os.path.exists(output):
        with open(output) as f:
            table = json.load(f)
    for name, (options, mode) in methods(jax.random.key(1)).items():
        if name in table if only is None else only not in name:
            continue  # kept from an earlier run, or not asked for
        adam = name.startswith("paper Adam")
        n = adam_pairs if adam or mode == "vmap" else num_pairs
        init = graph_init[:n] if "graph" in name else None
        out, elapsed = solve(metric, z0[:n], z1[:n], init, options, mode)
        counts = count_evaluations(
            metric, z0, z1, init, options, 0 if adam or mode == "vmap" else count_pairs
        )
        table[name] = dict(
            pairs=n,
            seconds_per_geodesic=elapsed / n,
            iterations_median=float(np.median(out.num_steps)),
            iterations_max=int(np.max(out.num_steps)),
            converged=float(np.mean(out.converged)),
            curve_evaluations_median=float(np.median(counts)) if len(counts) else None,
            num_points=options.get("num_points", 64),
            lengths=score(out.curve).tolist(),
        )
        print(
            name, {k: v for k, v in table[name].items() if k != "lengths"}, flush=True
        )

    reference_name = "reference (float64 L-BFGS, 256 pts, tight, best of 2 starts)"
    if reference_name not in table:
        table[reference_name] = reference(metric64, z0, z1, graph_init, score)
    report(table, num_pairs)
    with open(output, "w") as f:
        json.dump(table, f, indent=1)


def reference(metric64, z0, z1, graph_init, score):
    """Float64, fine grid, tight tolerance, from both starts."""
    ref_options = dict(
        num_points=256,
        max_steps=5000,
        solver=lg.OptaxSolver(rtol=1e-12, patience=30),
    )
    start = time.perf_counter()
    references = []
    for init in (None, graph_init):
        init64 = None if init is None else init.astype(jnp.float64)
        out, _ = solve(
            metric64,
            z0.astype(jnp.float64),
            z1.astype(jnp.float64),
            init64,
            ref_options,
            "map",
        )
        references.append(score(out.curve))
    return dict(
        pairs=len(z0),
        seconds_per_geodesic=(time.perf_counter() - start) / len(z0),
        lengths=np.minimum(*references).tolist(),
    )


def report(table, num_pairs):
    best = np.min(
        [
            np.pad(
                np.asarray(r["lengths"]),
                (0, num_pairs - r["pairs"]),
                constant_values=np.inf,
            )
            for r in table.values()
        ],
        axis=0,
    )
    print(f"\nload average {os.getloadavg()}; {num_pairs} pairs; best of all methods")
    print(
        "| method | pairs | s / geodesic | iterations (median, max) | curve evals "
        "| member passes | excess median | p90 | max | converged |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in table.items():
        excess = np.asarray(r["lengths"]) / best[: r["pairs"]] - 1
        r.update(
            excess_median=float(np.median(excess)),
            excess_p90=float(np.quantile(excess, 0.9)),
            excess_max=float(np.max(excess)),
        )
        evals = r.get("curve_evaluations_median")
        passes = "" if evals is None else f"{evals * r['num_points'] * 10:,.0f}"
        iters = (
            f"{r['iterations_median']:.0f}, {r['iterations_max']}"
            if "iterations_median" in r
            else ""
        )
        print(
            f"| {name} | {r['pairs']} | {r['seconds_per_geodesic']:.3f} | {iters} | "
            f"{'' if evals is None else f'{evals:.0f}'} | {passes} | "
            f"{100 * r['excess_median']:.3f}% | {100 * r['excess_p90']:.3f}% | "
            f"{100 * r['excess_max']:.2f}% | {r.get('converged', 1.0):.2f} |"
        )
    for solver in ("WarmStart, 50 Adam steps", "L-BFGS alone"):
        graph = np.asarray(table[f"{solver}, graph init"]["lengths"])
        straight = np.asarray(table[solver]["lengths"])
        both = np.minimum(graph, straight) / best - 1
        print(
            f"{solver}: graph start shorter by >0.1% than straight start in "
            f"{np.sum(graph < straight * 0.999)} of {num_pairs} pairs, longer in "
            f"{np.sum(straight < graph * 0.999)}; best of both: median excess "
            f"{100 * np.median(both):.3f}%, p90 {100 * np.quantile(both, 0.9):.3f}%"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--adam-pairs", type=int, default=10)
    parser.add_argument("--count-pairs", type=int, default=8)
    parser.add_argument("--output", default="benchmarks/solvers.json")
    parser.add_argument("--only", help="run only methods whose name contains this")
    args = parser.parse_args()
    main(args.pairs, args.adam_pairs, args.count_pairs, args.output, args.only)
