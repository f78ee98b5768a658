"""The all-pairs default's cost against the default when issue 15 was filed,
over a whole run: every pair of a 2-D model's 100 query points (4,950), or a
seeded sample of them (`--pairs`, `reference.pair_sample`).

Two `lg.pairwise_geodesics` runs, one after the other, each timed in CPU
seconds including its lattice, its probe and its compilation:

- `issue`: the path on a 256-cell lattice, then `AutoSolver()` with the
  lattice check of that time (`ISSUE_CHECK`: 32 cells up to 30 iterations,
  128 beyond) on `Discretisation()` (the 0.2 default);
- `default`: today's default (no `init`).

Reported: CPU seconds per pair and their ratio (the issue's target: at most
2.5), median solver steps per pair, the default probe's decisions (first
route, second route, screened straight line, restart, refinement; read from its
checkpoint), the share of pairs each run left unconverged, and the default's
lengths against `issue`'s (median, min, max of default / issue - 1). Results
go to `benchmarks/results/default_cost_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/default_cost.py vae-relu
"""

import argparse
import json
import tempfile
from pathlib import Path

import models
import numpy as np
import reference
from route_probe import _run

import latentgeo as lg

RESULTS = Path(__file__).parent / "results"
# The single-geodesic lattice check when issue 15 was filed: no middle tier.
ISSUE_CHECK = lg.LatticeSearch(lg.Escalating(), quick_steps=30, rough_steps=30)


def issue_pipeline() -> tuple[lg.AbstractStart, dict]:
    """The default when issue 15 was filed: its start and the other
    `pairwise_geodesics` keyword arguments it needs."""
    return lg.LatticeStart(cells=256), {
        "solver": lg.AutoSolver(least_squares=ISSUE_CHECK)
    }


SOURCES = ["first_route", "second_route", "straight", "restart", "refinement"]


def measure(model: str, num_pairs: int | None) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    report = {"model": model, "pairs": len(pairs)}
    lengths = {}
    runs = (("issue", *issue_pipeline()), ("default", None, {}))
    for name, init, options in runs:
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = Path(folder) / "run.npz"
            result, seconds = _run(
                metric, query, pairs, init, checkpoint=checkpoint, **options
            )
            with np.load(checkpoint) as data:
                kept = data["kept_sources"].tolist() if "kept_sources" in data else None
        lengths[name] = np.asarray(result.lengths)
        report[name] = {
            "cpu_seconds_per_pair": seconds,
            "steps_median": float(np.median(np.asarray(result.num_steps))),
            "unconverged": float(np.mean(~np.asarray(result.pair_converged))),
            "kept_sources": None if kept is None else dict(zip(SOURCES, kept)),
        }
        print(name, json.dumps(report[name]), flush=True)
    ratio = lengths["default"] / lengths["issue"] - 1
    report["ratio"] = (
        report["default"]["cpu_seconds_per_pair"]
        / report["issue"]["cpu_seconds_per_pair"]
    )
    report["default_against_issue"] = {
        "median": float(np.median(ratio)),
        "min": float(ratio.min()),
        "max": float(ratio.max()),
    }
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=None, help="all 4,950 by default")
    args = parser.parse_args()
    report = measure(args.model, args.pairs)
    print(json.dumps(report, indent=1), flush=True)
    path = RESULTS / f"default_cost_{args.model}_{report['pairs']}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
