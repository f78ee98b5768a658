"""All-pairs runs against the float64 reference, on every pair it has so far.

For a model with a `reference.py` run (finished or not), runs
`lg.pairwise_geodesics` over the pairs the reference has, once per method,
and scores each curve by its length on 1,025 points in float64
(`score.fine_lengths`) against the reference. Methods:

- `default`: `pairwise_geodesics(metric, points, pairs=...)`;
- `unrefined`: the default's search without its last solve on finer curves
  (`lg.Refined`);
- `two-routes`: `init=lg.TwoRoutes()`, the default before the probed
  straight line;
- `refined-two-routes`: `init=lg.Refined(lg.TwoRoutes())`, the default
  without its probed restart;
- `with-straight`: the default until 2026-12-07, with the probed (screened)
  straight line (`pipelines.with_straight_line`); the file's entries
  `refined-no-restart` and `refined-no-straight` are that default without
  its restart or without its straight line (today's default), measured on
  2026-12-07;
- `issue`: the default when issue 15 was filed
  (`pipelines.issue_pipeline`: a 256-cell lattice start, that day's
  lattice check), the base of the issue's cost target;
- `refined-256`: the default refined on 64-segment curves with 256 energy
  points rather than 128.

Entries measured before 2026-12-08 refined with the run's solver
(`Escalating`); `Refined`'s own solver, plain Levenberg–Marquardt, came then.

CPU seconds per pair are process time of a whole run over the pairs (the
second of two identical runs), so each pair pays its share of one lattice.
Also reported: how often the reference's polishing of the default's curve
decided it, the refinement solves at their iteration cap, and which of the
independent solve's starts was the shortest at 32 segments. Results go to
`benchmarks/results/versus_reference_<model>_<pairs>.json`; `--methods`
runs only the methods named and updates their entries in that file.

    PYTHONPATH=src:benchmarks python benchmarks/versus_reference.py relu
    PYTHONPATH=src:benchmarks python benchmarks/versus_reference.py relu \
        --methods refined-two-routes
"""

import argparse
import json
import time
import warnings

import jax.numpy as jnp
import models
import numpy as np
import reference
import score
from pipelines import issue_pipeline, with_straight_line

import latentgeo as lg


def _methods() -> dict:
    """`{label: pairwise_geodesics keyword arguments}`."""
    search = lg.ShortestOf(lg.TwoRoutes(), lg.Probed(lg.ConstantSpeedStart()))
    issue_init, issue_options = issue_pipeline()
    return {
        "default": {},
        "unrefined": dict(init=search),
        "two-routes": dict(init=lg.TwoRoutes()),
        "refined-two-routes": dict(init=lg.Refined(lg.TwoRoutes())),
        "with-straight": dict(init=with_straight_line()),
        "issue": dict(init=issue_init, **issue_options),
        "refined-256": dict(init=lg.Refined(search, lg.Discretisation(64, 256))),
    }


def timed_run(metric, query, pairs, **options):
    """One `pairwise_geodesics` run over `pairs` and its CPU seconds per pair
    (the second of two identical runs, so compilation is not counted)."""
    for _ in range(2):
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unconverged pairs are scored too
            result = lg.pairwise_geodesics(
                metric, jnp.asarray(query), pairs=pairs, progress=False, **options
            )
        seconds = (time.process_time() - start) / len(pairs)
    return result, seconds


def _run(metric, query, pairs, options):
    """Fine lengths and CPU seconds per pair of one method (second run)."""
    result, seconds = timed_run(metric, query, pairs, **options)
    lengths = score.fine_lengths(
        metric,
        query[pairs[:, 0]],
        query[pairs[:, 1]],
        np.asarray(result.curves.params),
    )
    return lengths, seconds


def excess(lengths, truth) -> dict:
    """Excess in percent of `lengths` over `truth`: median, p90, max, min and
    the pairs over 1%."""
    percent = 100 * (lengths / truth - 1)
    return {
        "median_percent": float(np.median(percent)),
        "p90_percent": float(np.quantile(percent, 0.9)),
        "max_percent": float(np.max(percent)),
        "min_percent": float(np.min(percent)),
        "pairs_over_1_percent": int(np.sum(percent > 1)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    parser.add_argument("--methods", nargs="+", choices=sorted(_methods()))
    args = parser.parse_args()
    stored = reference.load(args.model)
    if stored is None:
        raise SystemExit(f"run `reference.py {args.model}` first")
    metric, _, query = models.load(args.model)
    pairs = np.stack([stored["rows"], stored["cols"]], axis=1)
    truth = stored["length"]
    independent = stored["independent_length"]
    names = reference.start_names(metric.latent_dim)
    wins = np.bincount(np.argmin(stored["start_lengths"], axis=1), minlength=len(names))
    refine = stored["steps"][:, len(reference.STANDARD.explore) :][:, :3]
    cap = reference.STANDARD.refine[-1].max_steps
    report = {
        "model": args.model,
        "pairs": len(pairs),
        "reference": {
            "polishing_decided": int(np.sum(truth < independent)),
            "independent_above_reference": excess(independent, truth),
            "refinement_solves_at_cap": [int(np.sum(refine >= cap)), int(refine.size)],
            "shortest_start_at_32_segments": dict(zip(names, wins.tolist())),
        },
    }
    path = score.RESULTS / f"versus_reference_{args.model}_{len(pairs)}.json"
    if args.methods is not None and path.exists():
        report = json.loads(path.read_text()) | report
    for label, options in _methods().items():
        if args.methods is not None and label not in args.methods:
            continue
        lengths, seconds = _run(metric, query, pairs, options)
        report[label] = {"cpu_seconds_per_pair": seconds} | excess(lengths, truth)
        print(label, json.dumps(report[label]), flush=True)
    print(json.dumps(report["reference"]), flush=True)
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
