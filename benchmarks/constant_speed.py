"""Constant-speed restarts: each way of solving a pair, with and without
`lg.ConstantSpeedRestarts` around its local solver, on the same pairs.

For a model and a seeded sample of its pairs (`reference.pair_sample`), one pair
at a time (a jitted `jax.lax.map`, CPU time after compilation), scored by
`metric.curve_length` on 1,025 points:

- `local`: `AutoSolver(least_squares=Escalating())` from the straight line
  (above 2-D: `AutoSolver()`, whose `Preconditioned` is wrapped instead);
- `geodesic` (2-D): a single `lg.geodesic` call's default, `AutoSolver()`
  (`LatticeSearch(Escalating())`), from the straight line; wrapped:
  `LatticeSearch(ConstantSpeedRestarts(Escalating()))`;
- `pairwise`: `lg.pairwise_geodesics`' default for the pairs (in 2-D
  `TwoRoutes` on 32-segment curves; above, the shorter of the straight and
  the graph start), timed as a whole run over the pairs.

(`pairwise` counts solver steps where the others count evaluations.) Each
method runs as it is (`plain`) and with the restarts (`restarts`).
Scored against the float64 reference where `reference.py` has one for the pair
(`vs_reference`) and against the shortest curve any method found
(`vs_best`). Also: evaluations (median), the share of pairs the restarts
shorten by more than 0.1% and 1%, converged shares. `--rbf` scores the
RBF-variance metric fitted to the model's first member (as in
`global_search.py`). Results go to
`benchmarks/results/constant_speed_<model>[-rbf]_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/constant_speed.py relu --pairs 175
    PYTHONPATH=src:benchmarks python benchmarks/constant_speed.py elu --pairs 175
    PYTHONPATH=src:benchmarks python benchmarks/constant_speed.py relu --rbf

`--placement` compares where the restarts go, in 2-D: inside the lattice
check (every local solve restarted, `inside`), or after it, restarting only
the curve it chose (`after-<restart solver>[-1]`: `Escalating` or plain
Levenberg–Marquardt, at most 3 restarts or 1), for a single `geodesic` and
for `pairwise_geodesics` (`pairwise-*`; `--pairwise-only` runs just these).
Results: `constant_speed_placement_<model>_<pairs>.json`.

`--evenness` asks whether a pair's speed tells where a restart pays: after
the local solve from the straight line, the speed's evenness on 257 points
(the largest step over the mean, which `evenness` tests, and the steps'
coefficient of variation) beside what restarts forced on every pair gain.
Results: `constant_speed_evenness_<model>_<pairs>.json`.
"""

import argparse
import json
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from global_search import RESULTS, _excess, _metric, _picked_pairs, _solve_all, _truth

import latentgeo as lg


def _solvers(two_d: bool) -> dict:
    """`{method: (plain solver, with restarts)}` of the per-pair methods."""
    if not two_d:
        restarted = lg.ConstantSpeedRestarts(lg.Preconditioned())
        return {"local": (lg.AutoSolver(), lg.AutoSolver(preconditioned=restarted))}
    local = lg.ConstantSpeedRestarts(lg.Escalating())
    return {
        "local": (
            lg.AutoSolver(least_squares=lg.Escalating()),
            lg.AutoSolver(least_squares=local),
        ),
        "geodesic": (
            lg.AutoSolver(),
            lg.AutoSolver(least_squares=lg.LatticeSearch(local)),
        ),
    }


def _pairwise(metric, query, rows, cols, solver):
    """`pairwise_geodesics`' default start on the pairs, with `solver` (None:
    the default's): lengths, solver steps, converged, CPU seconds per pair (the
    second of two identical runs, so without compilation)."""
    pairs = np.stack([rows, cols], axis=1)
    for _ in range(2):
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unconverged pairs are counted below
            result = lg.pairwise_geodesics(
                metric, jnp.asarray(query), pairs=pairs, solver=solver, progress=False
            )
        seconds = (time.process_time() - start) / len(rows)
    return (
        np.asarray(result.lengths, np.float64),
        np.asarray(result.num_steps),
        np.asarray(result.pair_converged),
        seconds,
    )


def _scores(found: dict, truth: np.ndarray) -> dict:
    """`{label: record}` of each method in `found` (`{label: (lengths,
    evaluations, converged, seconds)}`): its cost, converged share and excess
    against `truth` and against the shortest curve any method (or `truth`)
    has for the pair."""
    best = np.fmin(np.min(np.stack([f[0] for f in found.values()]), axis=0), truth)
    return {
        label: {
            "cpu_seconds_per_pair": seconds,
            "evaluations_median": float(np.median(evaluations)),
            "converged": float(np.mean(converged)),
            "vs_reference": _excess(lengths, truth),
            "vs_best": _excess(lengths, best),
        }
        for label, (lengths, evaluations, converged, seconds) in found.items()
    }


def _pairwise_solver(two_d: bool):
    """The all-pairs default's local solver with restarts."""
    if two_d:
        return lg.AutoSolver(least_squares=lg.ConstantSpeedRestarts(lg.Escalating()))
    return lg.AutoSolver(preconditioned=lg.ConstantSpeedRestarts(lg.Preconditioned()))


def _placements() -> tuple[dict, dict]:
    """`({label: solver} for single geodesics, {label: solver or None} for
    pairwise_geodesics)`: the restarts inside or after the lattice check."""
    lattice, restarts = lg.LatticeSearch, lg.ConstantSpeedRestarts
    escalating, marquardt = lg.Escalating(), lg.LevenbergMarquardt()

    def after(restart_solver, max_restarts):
        return restarts(
            lattice(escalating),
            restart_solver=restart_solver,
            max_restarts=max_restarts,
        )

    single = {
        "default": lg.AutoSolver(),
        "inside": lg.AutoSolver(least_squares=lattice(restarts(escalating))),
        "after-escalating": lg.AutoSolver(least_squares=after(escalating, 3)),
        "after-lm": lg.AutoSolver(least_squares=after(marquardt, 3)),
        "after-escalating-1": lg.AutoSolver(least_squares=after(escalating, 1)),
        "after-lm-1": lg.AutoSolver(least_squares=after(marquardt, 1)),
    }
    local = lambda restart_solver, most: lg.AutoSolver(  # noqa: E731
        least_squares=restarts(
            escalating, restart_solver=restart_solver, max_restarts=most
        )
    )
    pairwise = {
        "pairwise-default": None,
        "pairwise-escalating": local(escalating, 3),
        "pairwise-lm": local(marquardt, 3),
        "pairwise-lm-1": local(marquardt, 1),
    }
    return single, pairwise


def placement(model: str, pairs: str, rbf: bool, pairwise_only: bool):
    """Run `--placement` (2-D models only; only its `pairwise-*` methods if
    `pairwise_only`) and write its results."""
    metric, _, query = _metric(model, rbf)
    if metric.latent_dim != 2:
        raise SystemExit("--placement compares lattice checks: 2-D models only")
    rows, cols, picks, z0s, z1s = _picked_pairs(query, pairs)
    truth = np.full(len(picks), np.nan) if rbf else _truth(model, picks)
    straight = jnp.zeros((len(picks), 11, 2), z0s.dtype)
    single, pairwise = _placements()
    found = {}
    for label, solver in {} if pairwise_only else single.items():
        lengths, evaluations, converged, seconds, *_ = _solve_all(
            metric, solver, z0s, z1s, straight, lg.Discretisation()
        )
        found[label] = (lengths, evaluations, converged, seconds)
        print(label, f"{seconds:.3f} s/pair", flush=True)
    for label, solver in pairwise.items():
        found[label] = _pairwise(metric, query, rows[picks], cols[picks], solver)
        print(label, f"{found[label][3]:.3f} s/pair", flush=True)
    report = {"model": model + ("-rbf" if rbf else ""), "pairs": len(picks)}
    report |= _scores(found, truth)
    for label in found:
        print(label, json.dumps(report[label]), flush=True)
    path = RESULTS / f"constant_speed_placement_{report['model']}_{pairs}.json"
    path.write_text(json.dumps(report, indent=1))


def _speed_and_gain(metric, z0s, z1s):
    """Per pair, after the local solve from the straight line
    (`AutoSolver(least_squares=Escalating())`): its length, the length after
    restarts forced on every pair (`evenness=0`), and its speed's evenness on
    257 points: the largest step over the mean (what `evenness` tests) and
    the steps' coefficient of variation."""
    plain = lg.AutoSolver(least_squares=lg.Escalating())
    forced = lg.AutoSolver(
        least_squares=lg.ConstantSpeedRestarts(lg.Escalating(), evenness=0.0)
    )

    @jax.jit
    def run(a, b):
        def one(ends):
            first = lg.geodesic(metric, *ends, solver=plain, throw=False)
            again = lg.geodesic(metric, *ends, solver=forced, throw=False)
            points = first.curve(jnp.linspace(0.0, 1.0, 257))
            consecutive = jnp.stack([jnp.arange(256), jnp.arange(1, 257)], 1)
            steps = metric.edge_lengths(points, consecutive)
            mean = jnp.mean(steps)
            return (
                first.length,
                again.length,
                jnp.max(steps) / mean,
                jnp.std(steps) / mean,
            )

        return jax.lax.map(one, (a, b))

    return [np.asarray(x, np.float64) for x in run(z0s, z1s)]


def evenness(model: str, pairs: str):
    """Run `--evenness` and write its results."""
    metric, _, query = _metric(model, False)
    _, _, _, z0s, z1s = _picked_pairs(query, pairs)
    plain, restarted, largest, variation = _speed_and_gain(metric, z0s, z1s)
    gain = 100 * (1 - restarted / plain)
    quantiles = [0.1, 0.5, 0.9, 1.0]
    report = {
        "model": model,
        "pairs": len(z0s),
        "largest_step_over_mean_q10_q50_q90_max": np.quantile(largest, quantiles),
        "speed_variation_q10_q50_q90_max": np.quantile(variation, quantiles),
        "pairs_shortened_over_0.1_percent": int(np.sum(gain > 0.1)),
        "gainers_percent_largest_variation": [
            [gain[k], largest[k], variation[k]]
            for k in np.argsort(-gain)
            if gain[k] > 0.1
        ],
    }
    report = json.loads(json.dumps(report, default=lambda x: np.asarray(x).tolist()))
    print(json.dumps(report), flush=True)
    path = RESULTS / f"constant_speed_evenness_{model}_{pairs}.json"
    path.write_text(json.dumps(report, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", default="175")
    parser.add_argument("--rbf", action="store_true")
    parser.add_argument("--placement", action="store_true")
    parser.add_argument("--pairwise-only", action="store_true")
    parser.add_argument("--evenness", action="store_true")
    args = parser.parse_args()
    if args.evenness:
        return evenness(args.model, args.pairs)
    if args.placement:
        return placement(args.model, args.pairs, args.rbf, args.pairwise_only)
    metric, _, query = _metric(args.model, args.rbf)
    rows, cols, picks, z0s, z1s = _picked_pairs(query, args.pairs)
    truth = np.full(len(picks), np.nan) if args.rbf else _truth(args.model, picks)
    two_d = metric.latent_dim == 2
    straight = jnp.zeros((len(picks), 11, metric.latent_dim), z0s.dtype)
    found = {}
    for method, pair in _solvers(two_d).items():
        for label, solver in zip(("plain", "restarts"), pair):
            lengths, evaluations, converged, seconds, *_ = _solve_all(
                metric, solver, z0s, z1s, straight, lg.Discretisation()
            )
            found[f"{method}-{label}"] = (lengths, evaluations, converged, seconds)
            print(method, label, f"{seconds:.3f} s/pair", flush=True)
    for label, solver in (("plain", None), ("restarts", _pairwise_solver(two_d))):
        found[f"pairwise-{label}"] = _pairwise(
            metric, query, rows[picks], cols[picks], solver
        )
        print("pairwise", label, f"{found[f'pairwise-{label}'][3]:.3f} s/pair")
    report = {"model": args.model + ("-rbf" if args.rbf else ""), "pairs": len(picks)}
    report |= _scores(found, truth)
    for name, (lengths, *_) in found.items():
        method = name.rsplit("-", 1)[0]
        if name.endswith("restarts"):
            change = 100 * (lengths / found[f"{method}-plain"][0] - 1)
            report[name]["shorter_than_plain"] = {
                "share_over_0.1_percent": float(np.mean(change < -0.1)),
                "share_over_1_percent": float(np.mean(change < -1)),
                "share_longer_over_0.1_percent": float(np.mean(change > 0.1)),
                "most_percent": float(-np.min(change)),
            }
        print(name, json.dumps(report[name]), flush=True)
    path = RESULTS / f"constant_speed_{report['model']}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
