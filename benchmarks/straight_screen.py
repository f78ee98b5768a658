"""Can a cheap per-pair test tell where the all-pairs default's straight start
pays, before its full solve is paid for?

For a 2-D model and a seeded sample of its pairs (`reference.pair_sample`), the
straight start pays on a pair where its geodesic is more than 0.1% shorter
than the better of both lattice routes. Measured (CPU seconds per pair), with
`TwoRoutes`' solver and discretisation:

- `two_routes`: `TwoRoutes(probe_pairs=None)`, both routes on every pair;
- `straight`: `StraightStart()`, the full solve;
- `brief_<k>`: `k` iterations of plain Levenberg–Marquardt from the straight
  line (`lg.Screened`'s brief solve), for k = 10 and 20.

Two screens, each reported as the share of all pairs it would solve in full
and how many of the paying pairs it keeps:

- the chord: the straight line's metric length (257 points) over the pair's
  lattice distance (`lg.lattice_paths`, 512 cells), up to 1.0, 1.02, 1.05,
  1.1, 1.2 and 1.5;
- the brief solve (`lg.Screened`): its length over the two routes' at most
  1 + `within`, for `within` in 0, 0.005, 0.01 and 0.02. For these also how
  much longer the screened answer is than both routes and the full straight
  solve (median, p99, max, pairs over 0.1%), taking the full solve's length
  where the screen continues (the screen continues from the brief curve, not
  from the straight line, so this is an estimate; `route_probe.py` measures
  the default itself).

Writes `benchmarks/results/straight_screen_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/straight_screen.py relu --pairs 600
"""

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
import reference
import score

import latentgeo as lg

CHORD_RATIOS = (1.0, 1.02, 1.05, 1.1, 1.2, 1.5)
BRIEF_STEPS = (10, 20)
WITHIN = (0.0, 0.005, 0.01, 0.02)


def _whole_run(metric, query, pairs, init) -> dict:
    routes = lg.TwoRoutes()
    start = time.process_time()
    result = lg.pairwise_geodesics(
        metric,
        query,
        pairs=pairs,
        init=init,
        solver=routes.default_solver(),
        discretisation=routes.default_discretisation(),
        progress=False,
    )
    return {
        "cpu_seconds_per_pair": (time.process_time() - start) / len(pairs),
        "steps_median": float(np.median(np.asarray(result.num_steps))),
        "lengths": np.asarray(result.lengths).tolist(),
    }


def _brief_run(metric, query, pairs, steps) -> dict:
    discretisation = lg.TwoRoutes().default_discretisation()
    discretisation = lg.Discretisation(
        discretisation.num_segments, discretisation.num_points, max_steps=steps
    )

    @eqx.filter_jit
    def lengths(z0s, z1s):
        def one(ends):
            return lg.geodesic(
                metric,
                *ends,
                solver=lg.LevenbergMarquardt(),
                discretisation=discretisation,
                throw=False,
            ).length

        return jax.lax.map(one, (z0s, z1s))

    z0s, z1s = (jnp.asarray(query[pairs[:, i]]) for i in (0, 1))
    lengths(z0s[:1], z1s[:1])  # compile
    start = time.process_time()
    found = np.asarray(lengths(z0s, z1s))
    return {
        "cpu_seconds_per_pair": (time.process_time() - start) / len(pairs),
        "lengths": found.tolist(),
    }


def _percent_above(lengths, truth) -> dict:
    excess = (lengths - truth) / truth * 100
    return {
        "median_percent": float(np.median(excess)),
        "p99_percent": float(np.percentile(excess, 99)),
        "max_percent": float(np.max(excess)),
        "pairs_over_0.1_percent": int(np.sum(excess > 0.1)),
    }


def measure(model: str, num_pairs: int) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    runs = {
        "two_routes": _whole_run(metric, query, pairs, lg.TwoRoutes(probe_pairs=None)),
        "straight": _whole_run(metric, query, pairs, lg.StraightStart()),
    }
    for steps in BRIEF_STEPS:
        runs[f"brief_{steps}"] = _brief_run(metric, query, pairs, steps)
    routes = np.asarray(runs["two_routes"]["lengths"])
    straight = np.asarray(runs["straight"]["lengths"])
    both = np.fmin(routes, straight)
    pays = straight < routes * (1 - 1e-3)

    lattice = lg.lattice_paths(metric, np.asarray(query), progress=False)
    times = jnp.linspace(0.0, 1.0, 257)[:, None]

    @jax.jit
    def chords(z0s, z1s):
        return jax.vmap(lambda a, b: metric.curve_length(a + times * (b - a)))(z0s, z1s)

    ratio = np.asarray(
        chords(jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]]))
    )
    ratio = ratio / lattice.distances[rows[picks], cols[picks]]
    report = {
        "model": model,
        "pairs": int(num_pairs),
        "straight_pays": int(pays.sum()),
        "runs": runs,
        "chord_screens": [
            {
                "max_ratio": t,
                "share_solved": float(np.mean(ratio <= t)),
                "pays_kept": int(np.sum(pays & (ratio <= t))),
            }
            for t in CHORD_RATIOS
        ],
        "brief_screens": [],
    }
    for steps in BRIEF_STEPS:
        brief = np.asarray(runs[f"brief_{steps}"]["lengths"])
        for within in WITHIN:
            kept = brief <= routes * (1 + within)
            screened = np.fmin(routes, np.where(kept, np.fmin(straight, brief), brief))
            report["brief_screens"].append(
                {
                    "steps": steps,
                    "within": within,
                    "share_solved": float(np.mean(kept)),
                    "pays_kept": int(np.sum(pays & kept)),
                    "above_routes_and_straight": _percent_above(screened, both),
                }
            )
        report[f"brief_{steps}_alone_above_routes_and_straight"] = _percent_above(
            np.fmin(routes, brief), both
        )
    report["two_routes_alone_above_routes_and_straight"] = _percent_above(routes, both)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    report = measure(args.model, args.pairs)
    summary = {k: v for k, v in report.items() if k != "runs"}
    print(json.dumps(summary, indent=1), flush=True)
    path = score.RESULTS / f"straight_screen_{args.model}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
