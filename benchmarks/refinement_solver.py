"""The refinement's solver: `Escalating` (the run's solver, the refinement's
until 2026-12-08) against plain Levenberg–Marquardt (`lg.Refined`'s default
since) and `Escalating` escalating after 10 fast steps rather than 30, on
the same starting curves.

On every pair the float64 reference has (`reference.py`), runs the search of
the default of 2026-12-07 (both routes, the screened straight line and the
constant-speed restart, on 32 segments) once, re-expresses each pair's curve
on 64 segments (`latentgeo._refined.upsampled`, exact), and solves those
curves on `Discretisation(64, 128)` with each solver (`lg.GivenCurves`,
every pair refined, no probe). Reported per solver: CPU ms per pair of the
refinement alone (the second of two identical runs), its median and p90
steps, and the excess over the reference (`versus_reference.excess`) of
the refined curves and of the shorter of refined and coarse (what
`Refined` keeps), all scored by `score.fine_lengths`. Results go to
`benchmarks/results/refinement_solver_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/refinement_solver.py relu
"""

import argparse
import json

import jax.numpy as jnp
import models
import numpy as np
import reference
import score
from versus_reference import excess, timed_run

import latentgeo as lg
from latentgeo._refined import upsampled

SOLVERS = {
    "escalating": lg.AutoSolver(least_squares=lg.Escalating()),
    "levenberg-marquardt": lg.AutoSolver(least_squares=lg.LevenbergMarquardt()),
    "escalating-fast-10": lg.AutoSolver(least_squares=lg.Escalating(fast_steps=10)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    args = parser.parse_args()
    stored = reference.load(args.model)
    if stored is None:
        raise SystemExit(f"run `reference.py {args.model}` first")
    metric, _, query = models.load(args.model)
    pairs = np.stack([stored["rows"], stored["cols"]], axis=1)
    truth = stored["length"]
    z0, z1 = query[pairs[:, 0]], query[pairs[:, 1]]
    search = lg.ShortestOf(
        lg.TwoRoutes(),
        lg.Probed(lg.Screened(lg.StraightStart())),
        lg.Probed(lg.ConstantSpeedStart()),
    )
    coarse, search_seconds = timed_run(metric, query, pairs, init=search)
    coarse_lengths = score.fine_lengths(
        metric, z0, z1, np.asarray(coarse.curves.params)
    )
    starts = lg.CubicSpline(
        jnp.asarray(z0),
        jnp.asarray(z1),
        upsampled(jnp.asarray(z0), jnp.asarray(z1), coarse.curves.params, 64),
    )
    report = {
        "model": args.model,
        "pairs": len(pairs),
        "search": {
            "cpu_seconds_per_pair": search_seconds,
            "vs_reference": excess(coarse_lengths, truth),
        },
    }
    for name, solver in SOLVERS.items():
        refined, seconds = timed_run(
            metric,
            query,
            pairs,
            init=lg.GivenCurves(starts),
            solver=solver,
            discretisation=lg.Discretisation(64, 128),
        )
        lengths = score.fine_lengths(metric, z0, z1, np.asarray(refined.curves.params))
        steps = np.asarray(refined.num_steps)
        report[name] = {
            "cpu_seconds_per_pair": seconds,
            "steps_median": float(np.median(steps)),
            "steps_p90": float(np.quantile(steps, 0.9)),
            "unconverged": int(np.sum(~np.asarray(refined.pair_converged))),
            "refined_vs_reference": excess(lengths, truth),
            "kept_vs_reference": excess(np.minimum(lengths, coarse_lengths), truth),
        }
        print(name, json.dumps(report[name]), flush=True)
    path = score.RESULTS / f"refinement_solver_{args.model}_{len(pairs)}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
