"""The all-pairs default's cost against the default when issue 15 was filed,
over a whole run: every pair of a 2-D model's 100 query points (4,950), or a
seeded sample of them (`--pairs`, `reference.pair_sample`).

`lg.pairwise_geodesics` runs, one after the other, each timed in CPU
seconds including its lattice, its probe and its compilation:

- `issue`: the path on a 256-cell lattice, then `AutoSolver()` with the
  lattice check of that time (`ISSUE_CHECK`: 32 cells up to 30 iterations,
  128 beyond) on `Discretisation()` (the 0.2 default);
- `default`: today's default (no `init`);
- with `--candidate with-straight`, also the default until 2026-12-07,
  with the probed (screened) straight line
  (`pipelines.with_straight_line`); the runs of that day with
  `--candidate no-straight` measured today's default as the candidate,
  beside that one as `default` (`..._no-straight.json`).

Reported for each run: CPU seconds per pair, median solver steps per pair,
the probe's decisions (one per source, named in `pipelines.CANDIDATES`;
read from the run's checkpoint) and
the share of pairs it left unconverged. Then the candidate's (`candidate`:
the default unless one is named) cost over `issue`'s (`ratio`; the issue's
target: at most 2.5) and its lengths against `issue`'s (median, min, max of
candidate / issue - 1); for a named candidate, also its cost and lengths
against the default's (`ratio_to_default`; `candidate_against_default`:
median, p99, max, and the shares of pairs more than 0.1% and 1% longer).
Results go to `benchmarks/results/default_cost_<model>_<pairs>.json`
(`..._<pairs>_<candidate>.json` with a candidate).

    PYTHONPATH=src:benchmarks python benchmarks/default_cost.py vae-relu
    PYTHONPATH=src:benchmarks python benchmarks/default_cost.py relu \
        --pairs 600 --candidate with-straight
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
    runs = [("issue", *issue_pipeline()), ("default", None, {})]
    if candidate != "default":
        runs.append((candidate, CANDIDATES[candidate][0], {}))
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
            "kept_sources": (
                dict(zip(CANDIDATES[name][1], kept)) if name in CANDIDATES else kept
            ),
        }
        print(name, json.dumps(report[name]), flush=True)
    seconds = {name: report[name]["cpu_seconds_per_pair"] for name in lengths}
    ratio = lengths[candidate] / lengths["issue"] - 1
    report["ratio"] = seconds[candidate] / seconds["issue"]
    report[f"{candidate}_against_issue"] = {
        "median": float(np.median(ratio)),
        "min": float(ratio.min()),
        "max": float(ratio.max()),
    }
    if candidate != "default":
        excess = 100 * (lengths[candidate] / lengths["default"] - 1)
        report["ratio_to_default"] = seconds[candidate] / seconds["default"]
        report["candidate_against_default"] = {
            "median_percent": float(np.median(excess)),
            "p99_percent": float(np.quantile(excess, 0.99)),
            "max_percent": float(excess.max()),
            "share_over_0.1_percent": float(np.mean(excess > 0.1)),
            "share_over_1_percent": float(np.mean(excess > 1)),
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
