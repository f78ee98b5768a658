"""The gradient path above 2-D with and without `Preconditioned`, on a decoder
ensemble the benchmark zoo was not tuned on: the 50-D VAE ensemble of the
robustness run at d = 50 (`examples/robustness.py`, paper protocol, all ten
digits of the bundled MNIST subset, seed 0; ten ReLU `50 -> 64 -> 128 -> 256 ->
512 -> 784` decoders, Gaussian likelihood), trained once and cached with its
test codes in `benchmarks/.cache/vae-d50-paper.{eqx,npy}` (about 7-10 minutes
on this CPU).

Its pairs are `--pairs` of the run's 100 (evenly spaced), solved from the
straight line with the run's discretisation (10 segments, 64 points, at most
1,000 steps) one at a time inside one jitted `jax.lax.map` (`global_search`'s,
compiled ahead of time); process CPU time per pair. Methods:

- `warm-lbfgs`: the gradient path before `Preconditioned` (30 chord-scaled Adam
  steps, then L-BFGS on the raw spline parameters);
- `preconditioned`: `lg.Preconditioned()` (the default's choice for sums of
  squares above 2-D since it was added);
- `warm-preconditioned`: the Adam warm-up, then `lg.Preconditioned()`.

Each is scored by the curve's length on 1,025 points against the shortest any
method found for the pair. Results go to
`benchmarks/results/preconditioning_vae-d50_<pairs>.json`.

    PYTHONPATH=src:benchmarks:examples python benchmarks/preconditioning.py --pairs 8
"""

import argparse
import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import robustness
from global_search import _solve_all

import latentgeo as lg
from latentgeo._solvers._optax import chord_adam

CACHE = Path(__file__).parent / ".cache"
RESULTS = Path(__file__).parent / "results"
CONFIG = dataclasses.replace(
    robustness.preset("paper", "full"), classes=tuple(range(10)), latent_dim=50
)


def _model():
    """The seed-0 ensemble's metric, its test codes (sampled from q(z|x), as
    the run's) and the run's pairs."""
    data = robustness.load_data(CONFIG)
    pairs = robustness.choose_pairs(
        data.test_labels, CONFIG.num_pairs, CONFIG.pair_seed, CONFIG.pair_mix
    )
    path, codes_path = CACHE / "vae-d50-paper.eqx", CACHE / "vae-d50-paper.npy"
    _, template = lg.init_vae(
        data.train.shape[1:],
        CONFIG.latent_dim,
        CONFIG.num_members,
        hidden_sizes=CONFIG.hidden_sizes,
        key=jax.random.key(0),
    )
    if path.exists() and codes_path.exists():
        ensemble = eqx.tree_deserialise_leaves(path, template)
        codes = np.load(codes_path)
    else:
        model = robustness.train_method(CONFIG, data, 0, "ensemble")
        ensemble, codes = model.vae.ensemble, np.asarray(model.test_codes)
        CACHE.mkdir(exist_ok=True)
        eqx.tree_serialise_leaves(path, ensemble)
        np.save(codes_path, codes)
    decoders = lg.EnsembleDecoder.from_apply(
        robustness._DATA_SPACE[CONFIG.likelihood],
        ensemble.params,
        latent_dim=CONFIG.latent_dim,
    )
    return lg.ExpectedMetric(decoders), jnp.asarray(codes), pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    metric, codes, pairs = _model()
    picks = pairs[np.linspace(0, len(pairs) - 1, args.pairs).astype(int)]
    z0s, z1s = codes[picks[:, 0]], codes[picks[:, 1]]
    warm_lbfgs = lg.WarmStart(chord_adam(), lg.OptaxSolver(), warmup_steps=30)
    methods = {
        "warm-lbfgs": warm_lbfgs,
        "preconditioned": lg.Preconditioned(),
        "warm-preconditioned": lg.WarmStart(
            chord_adam(), lg.Preconditioned(), warmup_steps=30
        ),
    }
    discretisation = lg.Discretisation(
        CONFIG.num_segments, CONFIG.num_points, CONFIG.max_steps
    )
    found = {}
    for label, solver in methods.items():
        lengths, evaluations, converged, seconds, _, steps = _solve_all(
            metric, solver, z0s, z1s, None, discretisation
        )
        found[label] = dict(
            lengths=lengths.astype(np.float64),
            cpu_seconds_per_pair=seconds,
            steps_median=float(np.median(steps)),
            steps_max=int(np.max(steps)),
            evaluations_median=float(np.median(evaluations)),
            converged=float(np.mean(converged)),
        )
        print(
            f"{label:20s} {seconds:6.2f} s/pair, steps median {np.median(steps):.0f}",
            flush=True,
        )
    best = np.min([r["lengths"] for r in found.values()], axis=0)
    report = {"model": "vae-d50-paper", "pairs": len(picks)}
    for label, record in found.items():
        excess = record.pop("lengths") / best - 1
        record["vs_best"] = {
            "median": float(np.median(excess)),
            "p90": float(np.quantile(excess, 0.9)),
            "max": float(np.max(excess)),
        }
        report[label] = record
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"preconditioning_vae-d50_{len(picks)}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
