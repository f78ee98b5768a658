"""`TwoRoutes`' probe: does deciding per run whether the second route pays keep
the answers of solving it on every pair, at the cost of one route where it
does not pay?

For a 2-D model and a seeded sample of its pairs (`reference.pair_sample`,
whose first 175 carry the float64 reference on `relu`), three whole
`lg.pairwise_geodesics` runs, each timed in CPU seconds including its lattice
and compilation:

- `one_route`: `LatticeStart()` with `TwoRoutes`' solver and discretisation,
  the first route alone;
- `always`: `TwoRoutes(probe_pairs=None)`, the second route on every pair
  that has one (the default before the probe);
- `default`: `TwoRoutes()`, the probe's decision.

Reported: CPU seconds per pair; median solver steps per pair (every solve
counted); the share of pairs whose second route gave a geodesic more than 0.1%
shorter than the first; the probe's decision (read from the run's
checkpoint); the chance that a probe of 128 random pairs of this sample keeps
the second route (2,000 draws); how much longer the default's answers are than
`always`' (median, p90, max; share over 1%); and, where a reference exists,
each run's excess over it. Results go to
`benchmarks/results/route_probe_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/route_probe.py elu --pairs 600
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import models
import numpy as np
import reference
from global_search import _excess, _truth

import latentgeo as lg

RESULTS = Path(__file__).parent / "results"


def _run(metric, query, pairs, init, **options) -> tuple[lg.PairwiseResult, float]:
    start = time.process_time()
    result = lg.pairwise_geodesics(
        metric, query, pairs=pairs, init=init, progress=False, **options
    )
    return result, (time.process_time() - start) / len(pairs)


def _simulated_keep(shorter: np.ndarray, probe: lg.TwoRoutes) -> float:
    """The chance that a probe of `probe.probe_pairs` random pairs holds at
    least `probe.min_shorter` on which the second route is the shorter."""
    rng = np.random.default_rng(0)
    size = min(probe.probe_pairs, shorter.size)
    draws = [
        np.count_nonzero(shorter[rng.choice(shorter.size, size, replace=False)])
        for _ in range(2000)
    ]
    return float(np.mean(np.asarray(draws) >= probe.min_shorter))


def measure(model: str, num_pairs: int) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    truth = _truth(model, picks)
    default = lg.TwoRoutes()
    local = dict(
        solver=default.default_solver(),
        discretisation=default.default_discretisation(),
    )
    one, one_seconds = _run(metric, query, pairs, lg.LatticeStart(), **local)
    always, always_seconds = _run(metric, query, pairs, lg.TwoRoutes(probe_pairs=None))
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "run.npz"
        probed, probed_seconds = _run(
            metric, query, pairs, default, checkpoint=checkpoint
        )
        with np.load(checkpoint) as data:
            kept = data["kept_sources"].tolist()
    shorter = np.asarray(one.lengths > always.lengths * (1 + 1e-3))
    report = {
        "model": model,
        "pairs": len(pairs),
        "probe": {
            "probe_pairs": default.probe_pairs,
            "min_shorter": default.min_shorter,
        },
        "second_route_kept": bool(kept[1]),
        "share_second_route_shorter_by_0.1_percent": float(np.mean(shorter)),
        "chance_probe_keeps_second_route": _simulated_keep(shorter, default),
        "default_above_always": _excess(
            np.asarray(probed.lengths), np.asarray(always.lengths)
        ),
    }
    for name, result, seconds in (
        ("one_route", one, one_seconds),
        ("always", always, always_seconds),
        ("default", probed, probed_seconds),
    ):
        report[name] = {
            "cpu_seconds_per_pair": seconds,
            "steps_median": float(np.median(np.asarray(result.num_steps))),
            "converged": float(np.mean(np.asarray(result.pair_converged))),
            "vs_reference": _excess(np.asarray(result.lengths), truth),
        }
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    report = measure(args.model, args.pairs)
    print(json.dumps(report, indent=1), flush=True)
    path = RESULTS / f"route_probe_{args.model}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
