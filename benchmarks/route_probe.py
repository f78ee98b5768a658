"""The all-pairs probe: does deciding per run whether a start pays (the
second route of `TwoRoutes`, the straight line, the constant-speed restart)
keep the answers of solving every start on every pair, at the cost of fewer
solves where they do not pay?

For a 2-D model and a seeded sample of its pairs (`reference.pair_sample`,
whose first 175 carry the float64 reference on `relu`), five whole
`lg.pairwise_geodesics` runs, each timed in CPU seconds including its lattice
and compilation:

- `issue`: the default when issue 15 was filed (0.2): the path on a 256-cell
  lattice, then `AutoSolver()` (its lattice check) on `Discretisation()`;
- `two_routes`: `TwoRoutes(probe_pairs=None)`, both routes wherever a pair
  has a second one;
- `straight`: `StraightStart()`;
- `everything`: `ShortestOf(TwoRoutes(probe_pairs=None), StraightStart(),
  ConstantSpeedStart())`, every start on every pair;
- `default`: the default, `ShortestOf(TwoRoutes(),
  Probed(Screened(StraightStart())), Probed(ConstantSpeedStart()))`.

All but `issue` use `TwoRoutes`' solver and discretisation. Reported: CPU
seconds per pair; median solver steps per pair (every solve counted); the
share of pairs on which the straight line gave a geodesic more than 0.1%
shorter than both routes, and on which the restart (`everything` against
the better of `two_routes` and `straight`) did; the default's probe
decisions (read from its checkpoint); the chance that a probe of 128 random
pairs of this sample keeps each; how much longer the default's answers are
than `everything`'s (median, p90, max; share over 1%); each run's excess over
the float64 reference where one exists (whatever pairs it has; the runs'
own lengths); and every run's per-pair lengths. Results go to
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


def _simulated_keep(shorter: np.ndarray, probe: lg.Probed) -> float:
    """The chance that a probe of `probe.probe_pairs` random pairs holds at
    least `probe.min_shorter` on which the probed start is the shorter."""
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
    routes = lg.TwoRoutes(probe_pairs=None)
    local = dict(
        solver=routes.default_solver(),
        discretisation=routes.default_discretisation(),
    )
    everything = lg.ShortestOf(routes, lg.StraightStart(), lg.ConstantSpeedStart())
    runs, seconds = {}, {}
    for name, init, options in (
        ("issue", lg.LatticeStart(cells=256), {}),
        ("two_routes", routes, local),
        ("straight", lg.StraightStart(), local),
        ("everything", everything, local),
    ):
        runs[name], seconds[name] = _run(metric, query, pairs, init, **options)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "run.npz"
        runs["default"], seconds["default"] = _run(
            metric, query, pairs, None, checkpoint=checkpoint
        )
        with np.load(checkpoint) as data:
            kept = data["kept_sources"].tolist()
    lengths = {name: np.asarray(run.lengths) for name, run in runs.items()}
    straight_shorter = lengths["straight"] < lengths["two_routes"] * (1 - 1e-3)
    before = np.fmin(lengths["two_routes"], lengths["straight"])
    restart_shorter = lengths["everything"] < before * (1 - 1e-3)
    probe = lg.Probed(lg.StraightStart())
    names = ["first_route", "second_route", "straight", "restart"]
    report = {
        "model": model,
        "pairs": len(pairs),
        "probe": {"probe_pairs": probe.probe_pairs, "min_shorter": probe.min_shorter},
        "kept_sources": dict(zip(names, kept)),
        "share_straight_shorter_by_0.1_percent": float(np.mean(straight_shorter)),
        "share_restart_shorter_by_0.1_percent": float(np.mean(restart_shorter)),
        "chance_probe_keeps_straight": _simulated_keep(straight_shorter, probe),
        "chance_probe_keeps_restart": _simulated_keep(restart_shorter, probe),
        "default_above_everything": _excess(lengths["default"], lengths["everything"]),
    }
    for name, run in runs.items():
        report[name] = {
            "cpu_seconds_per_pair": seconds[name],
            "steps_median": float(np.median(np.asarray(run.num_steps))),
            "converged": float(np.mean(np.asarray(run.pair_converged))),
            "vs_reference": _excess(lengths[name], truth),
            "lengths": lengths[name].tolist(),
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
