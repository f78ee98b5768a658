"""Global geodesics by default: the default solver against the old local default,
a dense-graph pipeline and the float64 reference, on every benchmark model.

For each model and a seeded sample of its pairs (`reference.pair_sample`), every
method solves each pair one at a time inside one jitted `jax.lax.map` (timed
after compilation) and is scored by `metric.curve_length` on 1,025 points:

- `local`: the 0.1 default, `AutoSolver(least_squares=Escalating())` from the
  straight line (no lattice);
- `geodesic`: a single `lg.geodesic` call's default, `lg.AutoSolver()` (in
  2-D, `LatticeSearch(Escalating())`) from the straight line;
- `pairwise`: `lg.pairwise_geodesics`' default in more than two
  dimensions, the default solver from the shorter of the straight start and
  the path through the query points' neighbour graph; in 2-D its 0.2 default,
  the default solver from the path on one 256-cell lattice over the query
  points (the default since then, `lg.TwoRoutes`, is measured by `--routes`);
- `pairwise-s32`: the same with `Discretisation(num_segments=32,
  num_points=128)`;
- `dense` (2-D): the dense-graph pipeline a user would write: Dijkstra on a
  256-cell lattice over the query points' box, then the local solver from
  each path;
- `geodesic-lbfgs` (more than 2-D): `geodesic` with the gradient path
  before `Preconditioned` (30 chord-scaled Adam steps, then L-BFGS);
- `pairwise-data` (more than 2-D): `pairwise`'s start with the model's
  training codes as extra graph nodes
  (`ShortestOf(StraightStart(), GraphStart(extra_points=train_codes))`), the
  documented way to make the search follow the data.

Above 2-D, where no fine reference or dense lattice exists, every method is
also scored against the shortest curve any of them found for the pair
(`vs_best`).

In 2-D the lattice of `pairwise` and `dense` has `--cells` cells (256, the 0.2
default; the results before `--cells` existed all used 256, except
`global_relu-rbf_175.json`, run with the 512 cells that `lattice_paths` then
defaulted to, as `--cells 512` gives).

Start dependence: the share of pairs whose `geodesic` answer (from the straight
line) and `pairwise` answer (from the graph path) differ by more than 0.1%.

Reported: time per pair, evaluations, and length excess (median, p90, max)
against the float64 reference where `reference.py` has one for the pair and
against the dense pipeline; the share of pairs more than 1% and 3% longer than
the dense pipeline; the share whose answer changes by more than 0.1% with the
start. `--rbf` scores the RBF metric fitted to the model's first member and its
training codes instead of the model's own metric. Results go to
`benchmarks/results/global_<model>[-rbf]_<pairs>.json`.

`--routes` (2-D) instead compares one route with two (`lg.TwoRoutes`: the
shortest lattice path and the best route away from it, with `--separation`
and `--slack`; the all-pairs default is 512 cells, 32 segments, slack 0.01)
and with the 0.2 default (the lattice check) from each lattice and curve
resolution of `ROUTES`, to
`benchmarks/results/global_<model>_<pairs>_routes_<separation>_<slack>.json`.

`--rough-steps` (2-D) asks which pairs a single `geodesic` call's check
(`lg.LatticeSearch`) should send to its fine lattice: it solves each pair with
the local solver, with the default check, and with `rough_steps=0` (every
pair to the fine lattice and a second solve), and the dense pipeline; a
threshold `r` gives the default check's answer where the local solve took at
most `r` iterations and `rough_steps=0`'s elsewhere, scored against the dense
pipeline for each `r` of `ROUGH_STEPS`, to
`benchmarks/results/global_<model>_<pairs>_rough_steps.json`.

`--single` (2-D) measures a single `geodesic` call's default (its lattice
check, tiered by the local solve's iterations) against the local solve alone
(the default when issue 15 was filed) and the dense pipeline, one pair at a
time; `--held-out` takes the next `--pairs` pairs instead of the first, pairs
the check's thresholds were not chosen on. To
`benchmarks/results/global_<model>_<pairs>[_held_out]_single.json`.

`--versus-default` (2-D) scores today's `pairwise_geodesics` default (one
run over the pairs) against the dense pipeline, both by
`score.fine_lengths`, to
`benchmarks/results/global_<model>_<pairs>_versus_default.json`; with
`--candidate with-straight`, the default until 2026-12-07 with its probed
straight line (`pipelines.with_straight_line`), to
`..._versus_default_with-straight.json` (the runs of that day with
`--candidate no-straight`, `..._versus_default_no-straight.json`, measured
today's default as the candidate).

`--resolution` (2-D, against the reference) instead solves the pairs from
their lattice paths with the local solver at several curve resolutions and
lattice sizes (`RESOLUTIONS`), to
`benchmarks/results/global_<model>_<pairs>_resolution.json`.

    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu --pairs 200
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py vae-relu --pairs 200
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu --rbf
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu \\
        --pairs 175 --resolution
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu \\
        --pairs 175 --routes --slack 0.01
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py relu \\
        --pairs 175 --rough-steps
    PYTHONPATH=src:benchmarks python benchmarks/global_search.py softplus \\
        --pairs 175 --single --held-out
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import models
import numpy as np
import reference
import score
from pipelines import CANDIDATES

import latentgeo as lg
from latentgeo._solvers._optax import chord_adam

RESULTS = Path(__file__).parent / "results"
# (lattice cells, spline segments, energy points) of `--resolution`
RESOLUTIONS = ((256, 10, 64), (256, 20, 96), (256, 32, 128), (256, 48, 192))
RESOLUTIONS += ((512, 10, 64), (512, 32, 128))
# (lattice cells, spline segments, energy points) of `--routes`
ROUTES = ((256, 10, 64), (512, 10, 64), (512, 32, 128))
# thresholds of `--rough-steps`
ROUGH_STEPS = (0, 5, 10, 15, 20, 25, 30)


def _solve_all(metric, solver, z0s, z1s, inits, discretisation):
    """Lengths, evaluations, converged, CPU seconds per pair, the solved spline
    parameters and solver steps, one pair at a time (`inits` `(P, n + 1, d)`
    spline parameters, or None for the solver's straight start). Compiled
    ahead of time, so that the seconds are the solve's alone."""

    @jax.jit
    def solve(a, b, p):
        def one(args):
            z0, z1, params = args
            init = None if params is None else lg.CubicSpline(z0, z1, params)
            result = lg.geodesic(
                metric,
                z0,
                z1,
                init=init,
                solver=solver,
                discretisation=discretisation,
                throw=False,
            )
            fine = result.curve(jnp.linspace(0.0, 1.0, reference.FINE))
            length = metric.curve_length(fine)
            return (
                length,
                result.num_evaluations,
                result.converged,
                result.curve.params,
                result.num_steps,
            )

        return jax.lax.map(one, (a, b, p))

    compiled = solve.lower(z0s, z1s, inits).compile()
    start = time.process_time()  # the CPU's work: the machine is shared
    out = jax.block_until_ready(compiled(z0s, z1s, inits))
    seconds = (time.process_time() - start) / len(z0s)
    lengths, evaluations, converged, params, steps = out
    return (
        np.asarray(lengths, np.float64),
        np.asarray(evaluations),
        np.asarray(converged),
        seconds,
        np.asarray(params),
        np.asarray(steps),
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


def _truth(model: str, picks) -> np.ndarray:
    """The float64 reference length of each picked pair (NaN where none)."""
    truth = np.full(len(picks), np.nan)
    done = reference.load(model) if model in models.MODELS else None
    if done is not None:
        where = dict(zip(done["pairs"].tolist(), done["length"].tolist()))
        truth = np.array([where.get(int(p), np.nan) for p in picks])
    return truth


def _picked_pairs(query, pairs: str):
    """`(rows, cols, picks, z0s, z1s)` of the seeded sample of `pairs` ("all" or
    a count) of the query points."""
    rows, cols = models.pairs()
    picks = reference.pair_sample(None if pairs == "all" else int(pairs))
    z0s, z1s = jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]])
    return rows, cols, picks, z0s, z1s


def resolution(model: str, pairs: str) -> dict:
    """The local solver from the lattice paths at each of `RESOLUTIONS`."""
    metric, _, query = models.load(model)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, pairs)
    truth = _truth(model, picks)
    local = lg.AutoSolver(least_squares=lg.Escalating())
    report, graphs = {}, {}
    for cells, segments, points in RESOLUTIONS:
        if cells not in graphs:
            graphs[cells] = lg.lattice_paths(metric, query, cells=cells)
        inits = graphs[cells].init_curves(rows[picks], cols[picks], segments).params
        lengths, evaluations, _, seconds, *_ = _solve_all(
            metric, local, z0s, z1s, inits, lg.Discretisation(segments, points)
        )
        label = f"cells{cells}-s{segments}-p{points}"
        report[label] = {
            "cpu_seconds_per_pair": seconds,
            "evaluations_median": float(np.median(evaluations)),
            "vs_reference": _excess(lengths, truth),
        }
        print(label, json.dumps(report[label]), flush=True)
    return report


def routes(model: str, pairs: str, separation: float, slack: float) -> dict:
    """One route against two (`lg.TwoRoutes`) from each lattice of `ROUTES`,
    at each curve resolution: the local solver from the shortest lattice path,
    then from the second route where a pair has one; the shorter kept. Beside
    them, the default solver (its per-pair lattice check) from the shortest
    path."""
    metric, _, query = models.load(model)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, pairs)
    truth = _truth(model, picks)
    local = lg.AutoSolver(least_squares=lg.Escalating())
    report, graphs = {}, {}
    for cells, segments, points in ROUTES:
        if cells not in graphs:
            start = time.process_time()
            graphs[cells] = lg.lattice_paths(metric, query, cells=cells)
            report[f"cells{cells}-lattice_cpu_seconds"] = time.process_time() - start
        graph, discretisation = graphs[cells], lg.Discretisation(segments, points)
        first_inits = graph.init_curves(rows[picks], cols[picks], segments).params
        start = time.process_time()
        second_inits, found = graph.alternative_curves(
            rows[picks], cols[picks], segments, separation=separation, slack=slack
        )
        second_seconds = (time.process_time() - start) / len(picks)
        lengths, evaluations, _, seconds, *_ = _solve_all(
            metric, local, z0s, z1s, first_inits, discretisation
        )
        # Pairs without a second route are not solved again (as one pair at a
        # time in `pairwise_geodesics`).
        other, more, other_seconds = np.full_like(lengths, np.inf), 0 * evaluations, 0.0
        if found.any():
            solved = _solve_all(
                metric,
                local,
                z0s[found],
                z1s[found],
                jnp.asarray(second_inits.params)[found],
                discretisation,
            )
            other[found], more[found] = solved[0], solved[1]
            other_seconds = solved[3] * np.mean(found)
        both = np.fmin(lengths, other)
        checked = _solve_all(
            metric, lg.AutoSolver(), z0s, z1s, first_inits, discretisation
        )
        label = f"cells{cells}-s{segments}-p{points}"
        report[label] = {
            "lattice_check": {  # `pairwise_geodesics`' default solver
                "cpu_seconds_per_pair": checked[3],
                "evaluations_median": float(np.median(checked[1])),
                "vs_reference": _excess(checked[0], truth),
                "above_two_routes": _excess(checked[0], both),
            },
            "one_route": {
                "cpu_seconds_per_pair": seconds,
                "evaluations_median": float(np.median(evaluations)),
                "vs_reference": _excess(lengths, truth),
            },
            "two_routes": {
                "cpu_seconds_per_pair": seconds + other_seconds + second_seconds,
                "second_route_cpu_seconds_per_pair": second_seconds,
                "evaluations_median": float(np.median(evaluations + more)),
                "share_with_a_second_route": float(np.mean(found)),
                "share_second_route_shorter_by_0.1_percent": float(
                    np.mean(other < lengths * (1 - 1e-3))
                ),
                "one_route_above_two": _excess(lengths, both),
                "vs_reference": _excess(both, truth),
            },
        }
        print(label, json.dumps(report[label]), flush=True)
    return report


def _solve_methods(metric, methods, z0s, z1s) -> dict:
    """Each `label: (solver, inits)` of `methods` over the pairs on
    `Discretisation()` (`_solve_all`): its lengths, steps, evaluations,
    converged flags and CPU seconds per pair, by label."""
    found = {}
    for label, (solver, inits) in methods.items():
        lengths, evaluations, converged, seconds, _, steps = _solve_all(
            metric, solver, z0s, z1s, inits, lg.Discretisation()
        )
        found[label] = dict(
            lengths=lengths,
            steps=steps,
            seconds=seconds,
            evaluations=evaluations,
            converged=converged,
        )
        print(f"{label:14s} {1e3 * seconds:8.1f} ms/pair", flush=True)
    return found


def rough_steps(model: str, pairs: str) -> dict:
    """The single-geodesic check's threshold: each pair's local iterations, the
    default check's and `rough_steps=0`'s answers, and what each threshold of
    `ROUGH_STEPS` would give, against the dense pipeline."""
    metric, _, query = models.load(model)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, pairs)
    graph = lg.lattice_paths(metric, query, cells=256)
    dense_inits = graph.init_curves(rows[picks], cols[picks]).params
    local = lg.AutoSolver(least_squares=lg.Escalating())
    always_fine = lg.LatticeSearch(lg.Escalating(), quick_steps=0, rough_steps=0)
    methods = {
        "local": (local, None),
        "default": (lg.AutoSolver(), None),
        "rough_steps_0": (lg.AutoSolver(least_squares=always_fine), None),
        "dense": (local, dense_inits),
    }
    found = _solve_methods(metric, methods, z0s, z1s)
    dense = found["dense"]["lengths"]
    local_steps = found["local"]["steps"]
    report = {
        "model": model,
        "pairs": len(picks),
        "local_steps_percentiles_50_75_90_95": np.percentile(
            local_steps, [50, 75, 90, 95]
        ).tolist(),
    }
    for label, record in found.items():
        report[label] = {
            "cpu_seconds_per_pair": record["seconds"],
            "vs_dense": _excess(record["lengths"], dense),
        }
    for threshold in ROUGH_STEPS:
        fine = local_steps > threshold
        lengths = np.where(
            fine, found["rough_steps_0"]["lengths"], found["default"]["lengths"]
        )
        report[f"threshold_{threshold}"] = {
            "share_sent_to_the_fine_lattice": float(np.mean(fine)),
            "vs_dense": _excess(lengths, dense),
        }
    return report


def single(model: str, pairs: str, held_out: bool) -> dict:
    """A single `geodesic` call's default (its tiered lattice check) against
    the local solve alone (the default when issue 15 was filed) and the dense
    pipeline, one pair at a time; `held_out` takes the next `pairs` pairs of
    `reference.pair_order()` instead, which the check was not tuned on."""
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    count = int(pairs)
    order = reference.pair_order()
    picks = np.sort(order[count : 2 * count] if held_out else order[:count])
    z0s, z1s = jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]])
    graph = lg.lattice_paths(metric, query, cells=256)
    dense_inits = graph.init_curves(rows[picks], cols[picks]).params
    local = lg.AutoSolver(least_squares=lg.Escalating())
    methods = {
        "local": (local, None),
        "default": (lg.AutoSolver(), None),
        "dense": (local, dense_inits),
    }
    found = _solve_methods(metric, methods, z0s, z1s)
    dense = found["dense"]["lengths"]
    local_steps = found["local"]["steps"]
    report = {
        "model": model,
        "pairs": len(picks),
        "held_out": held_out,
        "local_steps_percentiles_50_90": np.percentile(local_steps, [50, 90]).tolist(),
        "share_to_each_lattice_32_64_128": [
            float(np.mean(local_steps <= 8)),
            float(np.mean((local_steps > 8) & (local_steps <= 20))),
            float(np.mean(local_steps > 20)),
        ],
        "default_cost_over_local": found["default"]["seconds"]
        / found["local"]["seconds"],
    }
    for label, record in found.items():
        report[label] = {
            "cpu_seconds_per_pair": record["seconds"],
            "evaluations_median": float(np.median(record["evaluations"])),
            "unconverged": float(np.mean(~record["converged"])),
            "vs_dense": _excess(record["lengths"], dense),
        }
    return report


def versus_default(model: str, pairs: str, candidate: str = "default") -> dict:
    """Today's `pairwise_geodesics` default (or a candidate default of
    `pipelines.CANDIDATES`) over the pairs, one run, against the dense
    pipeline; both scored in float64 by `score.fine_lengths`."""
    init, _ = CANDIDATES[candidate]
    metric, _, query = models.load(model)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, pairs)
    graph = lg.lattice_paths(metric, query, cells=256)
    inits = graph.init_curves(rows[picks], cols[picks]).params
    local = lg.AutoSolver(least_squares=lg.Escalating())
    *_, dense_params, _ = _solve_all(
        metric, local, z0s, z1s, inits, lg.Discretisation()
    )
    ends = (np.asarray(z0s), np.asarray(z1s))
    dense = score.fine_lengths(metric, *ends, dense_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unconverged pairs are scored too
        result = lg.pairwise_geodesics(
            metric,
            jnp.asarray(query),
            pairs=np.stack([rows[picks], cols[picks]], axis=1),
            init=init,
            progress=False,
        )
    default = score.fine_lengths(metric, *ends, np.asarray(result.curves.params))
    excess = 100 * (default / dense - 1)
    return {
        "model": model,
        "pairs": len(picks),
        "candidate": candidate,
        "default_vs_dense": _excess(default, dense),
        "min_percent": float(np.min(excess)),
        "share_below_by_over_0.1_percent": float(np.mean(excess < -0.1)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", default="200")
    parser.add_argument("--rbf", action="store_true")
    parser.add_argument("--resolution", action="store_true")
    parser.add_argument("--routes", action="store_true")
    parser.add_argument("--rough-steps", action="store_true")
    parser.add_argument("--versus-default", action="store_true")
    parser.add_argument("--single", action="store_true")
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--separation", type=float, default=0.1)
    parser.add_argument("--slack", type=float, default=0.01)
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), default="default")
    args = parser.parse_args()
    if args.routes:
        report = routes(args.model, args.pairs, args.separation, args.slack)
        name = f"{args.model}_{args.pairs}_routes_{args.separation}_{args.slack}"
        path = RESULTS / f"global_{name}.json"
        path.write_text(json.dumps(report, indent=1))
        return
    if args.single:
        report = single(args.model, args.pairs, args.held_out)
        print(json.dumps(report, indent=1), flush=True)
        name = f"{args.model}_{args.pairs}{'_held_out' if args.held_out else ''}"
        path = RESULTS / f"global_{name}_single.json"
        path.write_text(json.dumps(report, indent=1))
        return
    if args.versus_default:
        report = versus_default(args.model, args.pairs, args.candidate)
        print(json.dumps(report), flush=True)
        suffix = "" if args.candidate == "default" else f"_{args.candidate}"
        name = f"global_{args.model}_{args.pairs}_versus_default{suffix}.json"
        path = RESULTS / name
        path.write_text(json.dumps(report, indent=1))
        return
    if args.rough_steps:
        report = rough_steps(args.model, args.pairs)
        path = RESULTS / f"global_{args.model}_{args.pairs}_rough_steps.json"
        path.write_text(json.dumps(report, indent=1))
        print(json.dumps(report, indent=1))
        return
    if args.resolution:
        report = resolution(args.model, args.pairs)
        path = RESULTS / f"global_{args.model}_{args.pairs}_resolution.json"
        path.write_text(json.dumps(report, indent=1))
        return
    metric, train, query = _metric(args.model, args.rbf)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, args.pairs)
    two_d = metric.latent_dim == 2
    start = time.process_time()
    graph = (
        lg.lattice_paths(metric, query, cells=args.cells)
        if two_d
        else lg.graph_paths(metric, query)
    )
    graph_seconds = time.process_time() - start
    graph_inits = graph.init_curves(rows[picks], cols[picks]).params
    fine = lg.Discretisation(num_segments=32, num_points=128)
    fine_inits = graph.init_curves(rows[picks], cols[picks], 32).params
    local = lg.AutoSolver(least_squares=lg.Escalating())
    default = lg.AutoSolver()
    # The gradient path before `Preconditioned` (30 chord-scaled Adam steps,
    # then L-BFGS on the raw spline parameters).
    unpreconditioned = lg.AutoSolver(
        preconditioned=lg.WarmStart(chord_adam(), lg.OptaxSolver(), warmup_steps=30)
    )
    plain = lg.Discretisation()
    methods = {
        "local": (local, None, plain),
        "geodesic": (default, None, plain),
        "pairwise": (default, graph_inits, plain),
        "pairwise-s32": (default, fine_inits, fine),
    }
    if two_d:
        methods["dense"] = (local, graph_inits, plain)
    else:
        data_graph = lg.graph_paths(metric, query, extra_points=train)
        data_inits = data_graph.init_curves(rows[picks], cols[picks]).params
        methods["pairwise-data"] = (default, data_inits, plain)
        methods["geodesic-lbfgs"] = (unpreconditioned, None, plain)
    found = {}
    for label, (solver, inits, discretisation) in methods.items():
        lengths, evaluations, converged, seconds, *_ = _solve_all(
            metric, solver, z0s, z1s, inits, discretisation
        )
        found[label] = dict(
            lengths=lengths,
            cpu_seconds_per_pair=seconds,
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
    if not two_d:  # the default start is the shorter of straight and graph
        # (`geodesic` is the straight start at the plain discretisation.)
        geodesic = found["geodesic"]
        plain_straight = (geodesic["lengths"], geodesic["cpu_seconds_per_pair"])
        fine_straight = _solve_all(metric, default, z0s, z1s, None, fine)
        for label in ("pairwise", "pairwise-s32", "pairwise-data"):
            lengths, seconds = (
                (fine_straight[0], fine_straight[3])
                if label == "pairwise-s32"
                else plain_straight
            )
            found[label]["lengths"] = np.fmin(found[label]["lengths"], lengths)
            found[label]["cpu_seconds_per_pair"] += seconds
    best = np.min([record["lengths"] for record in found.values()], axis=0)
    truth = np.full(len(picks), np.nan) if args.rbf else _truth(args.model, picks)
    report = {
        "model": args.model + ("-rbf" if args.rbf else ""),
        "pairs": len(picks),
        "lattice_cells": args.cells if two_d else None,
        "graph_cpu_seconds_all_pairs": graph_seconds,
        "graph_estimate_vs_pairwise": _excess(
            graph.distances[rows[picks], cols[picks]].astype(np.float64),
            found["pairwise"]["lengths"],
        ),
        "start_dependence_share_over_0.1_percent": float(
            np.mean(
                np.abs(found["pairwise"]["lengths"] / found["geodesic"]["lengths"] - 1)
                > 1e-3
            )
        ),
    }
    for label, record in found.items():
        entry = {k: v for k, v in record.items() if k != "lengths"}
        entry["vs_reference"] = _excess(record["lengths"], truth)
        if "dense" in found:
            entry["vs_dense"] = _excess(record["lengths"], found["dense"]["lengths"])
        else:
            entry["vs_best"] = _excess(record["lengths"], best)
        report[label] = entry
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"global_{report['model']}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
