"""The all-pairs default's cost against the default when issue 15 was filed,
over a whole run: every pair of a 2-D model's 100 query points (4,950), or a
seeded sample of them (`--pairs`, `reference.pair_sample`).

Two `lg.pairwise_geodesics` runs, one after the other, each timed in CPU
seconds including its lattice, its probe and its compilation:

- `issue`: the path on a 256-cell lattice, then `AutoSolver()` with the
  lattice check of that time (`ISSUE_CHECK`: 32 cells up to 30 iterations,
  128 beyond) on `Discretisation()` (the 0.2 default);
- `default`: today's default (no `init`), or with `--candidate no-straight`
  the default without its probed (screened) straight line
  (`pipelines.without_straight_line`), the candidate default measured against the
  issue's targets; its entries are under `default` either way, and
  `candidate` names it.

Reported: CPU seconds per pair and their ratio (the issue's target: at most
2.5), median solver steps per pair, the default probe's decisions (first
route, second route, screened straight line, restart, refinement; read from its
checkpoint), the share of pairs each run left unconverged, and the default's
lengths against `issue`'s (median, min, max of default / issue - 1). Results
go to `benchmarks/results/default_cost_<model>_<pairs>.json`
(`..._<pairs>_no-straight.json` for the candidate).

    PYTHONPATH=src:benchmarks python benchmarks/default_cost.py vae-relu
    PYTHONPATH=src:benchmarks python benchmarks/default_cost.py relu \
        --pairs 600 --candidate no-straight
"""

import argparse
import json
import tempfile
from pathlib import Path

import models
import numpy as np
import reference
from pipelines import CANDIDATES, issue_pipeline
from route_probe import _run

RESULTS = Path(__file__).parent / "results"


def measure(model: str, num_pairs: int | None, candidate: str = "default") -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    report = {"model": model, "pairs": len(pairs), "candidate": candidate}
    lengths = {}
    candidate_init, sources = CANDIDATES[candidate]
    runs = (("issue", *issue_pipeline()), ("default", candidate_init, {}))
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
            "kept_sources": None if kept is None else dict(zip(sources, kept)),
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
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), default="default")
    args = parser.parse_args()
    report = measure(args.model, args.pairs, args.candidate)
    print(json.dumps(report, indent=1), flush=True)
    suffix = "" if args.candidate == "default" else f"_{args.candidate}"
    path = RESULTS / f"default_cost_{args.model}_{report['pairs']}{suffix}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
