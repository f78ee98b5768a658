"""Can a cheap per-pair test tell where the all-pairs default's straight start
pays? The straight line's metric length (its chord, on 257 points) over the
pair's lattice distance (`lg.lattice_paths`, 512 cells), for the pairs of a
`route_probe.py` run, against which of them the straight start shortened by
more than 0.1% (its `straight` against its `two_routes` lengths).

Reported, for chord / lattice ratios up to 1.0, 1.02, 1.05, 1.1, 1.2 and 1.5:
the share of all pairs that such a screen would solve from the straight line,
and how many of the pairs where it pays it keeps. Reads
`benchmarks/results/route_probe_<model>_<pairs>.json`; writes
`benchmarks/results/straight_screen_<model>_<pairs>.json`.

    PYTHONPATH=src:benchmarks python benchmarks/straight_screen.py relu --pairs 600
"""

import argparse
import json

import jax
import jax.numpy as jnp
import models
import numpy as np
import reference
import score

import latentgeo as lg

THRESHOLDS = (1.0, 1.02, 1.05, 1.1, 1.2, 1.5)


def measure(model: str, num_pairs: int) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    rows, cols = rows[picks], cols[picks]
    probe = json.loads(
        (score.RESULTS / f"route_probe_{model}_{num_pairs}.json").read_text()
    )
    routes = np.asarray(probe["two_routes"]["lengths"])
    straight = np.asarray(probe["straight"]["lengths"])
    pays = straight < routes * (1 - 1e-3)
    lattice = lg.lattice_paths(metric, np.asarray(query), progress=False)
    times = jnp.linspace(0.0, 1.0, 257)[:, None]

    @jax.jit
    def chords(z0s, z1s):
        return jax.vmap(lambda a, b: metric.curve_length(a + times * (b - a)))(z0s, z1s)

    ratio = np.asarray(chords(jnp.asarray(query[rows]), jnp.asarray(query[cols])))
    ratio = ratio / lattice.distances[rows, cols]
    return {
        "model": model,
        "pairs": int(num_pairs),
        "straight_pays": int(pays.sum()),
        "ratio_where_it_pays": np.sort(ratio[pays]).tolist(),
        "screens": [
            {
                "max_ratio": t,
                "share_solved": float(np.mean(ratio <= t)),
                "pays_kept": int(np.sum(pays & (ratio <= t))),
            }
            for t in THRESHOLDS
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    report = measure(args.model, args.pairs)
    print(json.dumps(report["screens"], indent=1), flush=True)
    path = score.RESULTS / f"straight_screen_{args.model}_{args.pairs}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
