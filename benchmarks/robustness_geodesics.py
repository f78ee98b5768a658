"""The geodesics of one seed of the robustness experiment (examples/robustness.py)
under several starts and solvers: time per pair, and each length's excess over
the shortest any variant found for that pair.

The seed's ensemble is trained with the paper's protocol at full size (MNIST-3,
100 pairs); then the same pairs are solved with:

- `global + local`: one 256-cell lattice over the test codes, then the default
  solver without its per-pair lattice check (the experiment's default);
- `global + auto`: the same start, with the check (`lg.AutoSolver()`);
- `lattice64 + local`: a 64-cell lattice instead;
- `straight + local`: the straight line (the run's start before);
- `straight + auto`: the straight line with the default solver, on the first
  `--straight-auto-pairs` pairs only (it costs about 16 s a pair here).

    python benchmarks/robustness_geodesics.py --seed 0

Results go to `benchmarks/results/robustness_geodesics_seed<S>.json` and are
reported in docs/robustness.md ("Choices").
"""

import argparse
import importlib.util
import json
import time
import warnings
from pathlib import Path

import numpy as np

import latentgeo as lg

_PATH = Path(__file__).resolve().parents[1] / "examples" / "robustness.py"
_SPEC = importlib.util.spec_from_file_location("robustness", _PATH)
robustness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(robustness)

RESULTS = Path(__file__).parent / "results"


def variants(train_codes) -> dict:
    """`{name: (start, solver, all pairs?)}`."""
    local, auto = robustness._solver("local"), robustness._solver("auto")
    return {
        "global + local": (robustness._start("global", train_codes), local, True),
        "global + auto": (robustness._start("global", train_codes), auto, True),
        "lattice64 + local": (lg.LatticeStart(cells=64), local, True),
        "straight + local": (lg.StraightStart(), local, True),
        "straight + auto": (lg.StraightStart(), auto, False),
    }


def main(seed: int, straight_auto_pairs: int) -> dict:
    config = robustness.preset("paper", "full")
    data = robustness.load_data(config)
    pairs = robustness.choose_pairs(
        data.test_labels, config.num_pairs, config.pair_seed, config.pair_mix
    )
    model = robustness.train_method(config, data, seed, "ensemble")
    print(f"trained in {model.seconds['train']:.0f} s", flush=True)
    discretisation = lg.Discretisation(
        config.num_segments, config.num_points, config.max_steps
    )
    record = {"seed": seed, "pairs": len(pairs), "variants": {}}
    for name, (start, solver, every_pair) in variants(model.train_codes).items():
        chosen = pairs if every_pair else pairs[:straight_auto_pairs]
        with warnings.catch_warnings():  # convergence is recorded per pair
            warnings.simplefilter("ignore", RuntimeWarning)
            began = time.perf_counter()
            result = lg.pairwise_geodesics(
                model.metric,
                model.test_codes,
                pairs=chosen,
                init=start,
                solver=solver,
                discretisation=discretisation,
                batch_size=len(chosen),
                progress=False,
            )
            lengths = np.asarray(result.lengths, np.float64)
            seconds = time.perf_counter() - began
        record["variants"][name] = {
            "seconds": seconds,
            "seconds_per_pair": seconds / len(chosen),
            "converged": int(np.sum(result.pair_converged)),
            "lengths": lengths.tolist(),
        }
        print(f"{name}: {seconds / len(chosen):.2f} s per pair", flush=True)
    runs = record["variants"].values()
    shortest = np.min(
        [np.asarray(v["lengths"]) for v in runs if len(v["lengths"]) == len(pairs)],
        axis=0,
    )
    for name, run in record["variants"].items():
        lengths = np.asarray(run["lengths"])
        best = np.minimum(shortest[: len(lengths)], lengths)
        excess = 100 * (lengths / best - 1)
        run["excess_percent"] = dict(
            zip(("median", "p90", "max"), np.quantile(excess, [0.5, 0.9, 1.0]).tolist())
        )
        print(name, {k: round(v, 3) for k, v in run["excess_percent"].items()})
    return record


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--straight-auto-pairs", type=int, default=12)
    args = parser.parse_args()
    record = main(args.seed, args.straight_auto_pairs)
    path = RESULTS / f"robustness_geodesics_seed{args.seed}.json"
    path.write_text(json.dumps(record, indent=1))
    print(f"written {path}")
