"""Global geodesics by default: the default solver against the old local default,
a dense-graph pipeline and the float64 reference, on every benchmark model.

For each model and a seeded sample of its pairs (`reference.pair_sample`), every
method solves each pair one at a time inside one jitted `jax.lax.map` (timed
after compilation) and is scored by `metric.curve_length` on 1,025 points:

- `local`: the 0.1 default, `AutoSolver(least_squares=Escalating())` from the
  straight line (no lattice);
- `default`: `lg.AutoSolver()` (in 2-D, `LatticeSearch(Escalating())`) from the
  straight line;
- `default@graph`: the default from the pair's path in the library's default
  graph of the query points (`lattice_paths` in 2-D, `graph_paths` else): the
  answer's dependence on the start;
- `dense`: the dense-graph pipeline a user would write: Dijkstra on a
  256-cell lattice over the query points' box (2-D only), then the local
  solver from each path.

Reported: time per pair, evaluations, and length excess (median, p90, max)
against the float64 reference where `reference.py` has one for the pair and
against the dense pipeline; the share of pairs more than 1% and 3% longer than
the dense pipeline; the share whose answer changes by more than 0.1% with the
start. `--rbf` scores the RBF metric fitted to the model's first member and its
training codes instead of the model's own metric. Results go to
`benchmarks/results/global_<model>[-rbf]_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu --pairs 200
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py vae-relu --pairs 200
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu --rbf
"""

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import models
import numpy as np
import reference

import latentgeo as lg

RESULTS = Path(__file__).parent / "results"


def _solve_all(metric, solver, z0s, z1s, inits):
    """Lengths, evaluations, converged and seconds per pair, one pair at a time."""

    @jax.jit
    def solve(a, b, p):
        def one(args):
            z0, z1, params = args
            init = None if params is None else lg.CubicSpline(z0, z1, params)
            result = lg.geodesic(metric, z0, z1, init=init, solver=solver, throw=False)
            fine = result.curve(jnp.linspace(0.0, 1.0, reference.FINE))
            return metric.curve_length(fine), result.num_evaluations, result.converged

        return jax.lax.map(one, (a, b, p))

    jax.block_until_ready(solve(z0s, z1s, inits))
    start = time.perf_counter()
    lengths, evaluations, converged = jax.block_until_ready(solve(z0s, z1s, inits))
    seconds = (time.perf_counter() - start) / len(z0s)
    return (
        np.asarray(lengths, np.float64),
        np.asarray(evaluations),
        np.asarray(converged),
        seconds,
    )


def _excess(lengths, truth):
    keep = np.isfinite(truth) & np.isfinite(lengths)
    if not keep.any():
        return None
    excess = 100 * (lengths[keep] / truth[keep] - 1)
    return {
        "pairs": int(keep.sum()),
        "median_percent": float(np.median(excess)),
        "p90_percent": float(np.percentile(excess, 90)),
        "max_percent": float(np.max(excess)),
        "share_over_1_percent": float(np.mean(excess > 1)),
        "share_over_3_percent": float(np.mean(excess > 3)),
    }


def _metric(name: str, rbf: bool):
    metric, train, query = models.load(name)
    if rbf:
        member = metric.ensemble.member(0)
        spec = models.MODELS[name]
        _, train_data, _, _ = spec.data()
        metric = lg.RBFVarianceMetric.fit(
            member, train, train_data, key=jax.random.key(0)
        )
    return metric, train, query


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", default="200")
    parser.add_argument("--rbf", action="store_true")
    args = parser.parse_args()
    metric, _, query = _metric(args.model, args.rbf)
    rows, cols = models.pairs()
    picks = reference.pair_sample(None if args.pairs == "all" else int(args.pairs))
    z0s, z1s = jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]])
    two_d = metric.latent_dim == 2
    graph = (lg.lattice_paths if two_d else lg.graph_paths)(metric, query)
    graph_inits = graph.init_curves(rows[picks], cols[picks]).params
    local = lg.AutoSolver(least_squares=lg.Escalating())
    methods = {
        "local": (local, None),
        "default": (lg.AutoSolver(), None),
        "default@graph": (lg.AutoSolver(), graph_inits),
    }
    if two_d:
        dense = lg.lattice_paths(metric, query, cells=256)
        methods["dense"] = (local, dense.init_curves(rows[picks], cols[picks]).params)
    found = {}
    for label, (solver, inits) in methods.items():
        lengths, evaluations, converged, seconds = _solve_all(
            metric, solver, z0s, z1s, inits
        )
        found[label] = dict(
            lengths=lengths,
            seconds_per_pair=seconds,
            evaluations_median=float(np.median(evaluations)),
            evaluations_mean=float(np.mean(evaluations)),
            converged=float(np.mean(converged)),
        )
        print(
            f"{label:14s} {1e3 * seconds:8.1f} ms/pair, evaluations median "
            f"{np.median(evaluations):.0f} mean {np.mean(evaluations):.0f}, "
            f"converged {np.mean(converged):.3f}",
            flush=True,
        )
    truth = np.full(len(picks), np.nan)
    if not args.rbf and args.model in models.MODELS:
        done = reference.load(args.model)
        if done is not None:
            where = dict(zip(done["pairs"].tolist(), done["length"].tolist()))
            truth = np.array([where.get(int(p), np.nan) for p in picks])
    report = {
        "model": args.model + ("-rbf" if args.rbf else ""),
        "pairs": len(picks),
        "graph_distance_excess_vs_default": _excess(
            graph.distances[rows[picks], cols[picks]].astype(np.float64),
            found["default"]["lengths"],
        ),
        "start_dependence_share_over_0.1_percent": float(
            np.mean(
                np.abs(
                    found["default@graph"]["lengths"] / found["default"]["lengths"] - 1
                )
                > 1e-3
            )
        ),
    }
    for label, record in found.items():
        entry = {k: v for k, v in record.items() if k != "lengths"}
        entry["vs_reference"] = _excess(record["lengths"], truth)
        if "dense" in found:
            entry["vs_dense"] = _excess(record["lengths"], found["dense"]["lengths"])
        report[label] = entry
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"global_{report['model']}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
