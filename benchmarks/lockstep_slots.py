"""`pairwise_geodesics` in refilled lockstep slots against one pair at a time.

For each model, a seeded sample of its pairs (`reference.pair_sample`) is
solved by `lg.pairwise_geodesics` in one chunk from straight lines with the
local solver that `lg.TwoRoutes` runs (`AutoSolver(least_squares=Escalating())`,
one loop), once per `vmap_size`: `1` (one pair at a time, `jax.lax.map`), a
number of lockstep slots refilled as their pairs stop, and `None` (every pair
in its own slot at once: a plain lockstep batch, no refill). Each setting runs
`--repeats` times after a first, compiling, run; the median process CPU time
per pair is reported, with its ratio to one pair at a time, the mean solver
steps, and how far the lengths and step counts differ from one pair at a
time. Results go to `benchmarks/results/lockstep_slots_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/lockstep_slots.py elu relu tanh
"""

import argparse
import json
import time
from pathlib import Path

import models
import numpy as np
import reference

import latentgeo as lg

RESULTS = Path(__file__).parent / "results"
SLOTS = (1, 4, 8, 16, None)


def measure(model: str, num_pairs: int, repeats: int) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    options = dict(
        pairs=pairs,
        init=lg.StraightStart(),
        solver=lg.AutoSolver(least_squares=lg.Escalating()),
        batch_size=num_pairs,
        progress=False,
    )
    runs = {}
    for slots in SLOTS:
        lg.pairwise_geodesics(metric, query, vmap_size=slots, **options)  # compile
        seconds = []
        for _ in range(repeats):
            start = time.process_time()
            result = lg.pairwise_geodesics(metric, query, vmap_size=slots, **options)
            seconds.append(time.process_time() - start)
        runs[slots] = (result, float(np.median(seconds)) / num_pairs)
    alone, alone_seconds = runs[1]
    report = {"model": model, "pairs": num_pairs, "repeats": repeats}
    for slots, (result, seconds) in runs.items():
        lengths, steps = np.asarray(result.lengths), np.asarray(result.num_steps)
        report[f"vmap_size={slots}"] = {
            "cpu_seconds_per_pair": seconds,
            "ratio_to_one_at_a_time": seconds / alone_seconds,
            "steps_mean": float(steps.mean()),
            "max_relative_length_difference": float(
                np.max(np.abs(lengths / np.asarray(alone.lengths) - 1))
            ),
            "share_same_steps": float(np.mean(steps == np.asarray(alone.num_steps))),
            "converged": float(np.mean(np.asarray(result.pair_converged))),
        }
        print(model, slots, json.dumps(report[f"vmap_size={slots}"]), flush=True)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for model in args.models:
        report = measure(model, args.pairs, args.repeats)
        path = RESULTS / f"lockstep_slots_{model}_{args.pairs}.json"
        path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
