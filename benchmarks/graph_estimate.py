"""The graph estimate at scale and its error: all pairs of 5,000 codes of an MNIST
ensemble VAE, and the estimate against solved geodesics on the benchmark models.

`mnist` (the default): an ensemble VAE (K = 10, d = 2, the library's recipe:
`lg.train_ensemble_vae`, Bernoulli likelihood, decoders in pixel space) trained
once on the bundled 5,000-image MNIST subset and cached; its 5,000 codes; the
full graph-estimate matrix (`lg.pairwise_graph_estimate(..., curves=False)`,
the default lattice graph in 2-D), timed; then 200 random pairs solved with the
default solver, for the estimate's error on them.

`error MODEL`: the estimate's error on a benchmark model (`models.load`) over
the 200-pair sample (`reference.pair_sample(200)`), against the default
solver's lengths, for the default graph and the neighbour graph through the
training codes.

    PYTHONPATH=src:benchmarks python benchmarks/graph_estimate.py mnist
    PYTHONPATH=src:benchmarks python benchmarks/graph_estimate.py error relu

Results go to `benchmarks/results/graph_estimate_<name>.json`.
"""

import argparse
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
import reference

import latentgeo as lg

RESULTS = Path(__file__).parent / "results"


def _pixels(params, z):
    return jax.nn.sigmoid(params(z))


def mnist_ensemble():
    """`(metric, codes)`: the cached ensemble VAE of the MNIST subset in pixel
    space and the posterior means of its 5,000 images."""
    images, _ = lg.datasets.load_mnist_subset()
    init_key, train_key = jax.random.split(jax.random.key(models.SEED))
    encoder, ensemble = lg.init_vae((28, 28), 2, 10, key=init_key)
    path = models.CACHE / "mnist-vae.eqx"
    if path.exists():
        encoder, ensemble = eqx.tree_deserialise_leaves(path, (encoder, ensemble))
    else:
        models.CACHE.mkdir(exist_ok=True)
        vae = lg.train_ensemble_vae(
            encoder,
            ensemble,
            images,
            key=train_key,
            likelihood="bernoulli",
            max_epochs=200,
            progress=False,
        )
        encoder, ensemble = vae.encoder, vae.ensemble
        eqx.tree_serialise_leaves(path, (encoder, ensemble))
    pixels = lg.EnsembleDecoder.from_apply(_pixels, ensemble.params, latent_dim=2)
    codes = np.asarray(lg.encode(encoder, images))
    return lg.ExpectedMetric(pixels), codes


def _error(estimate: np.ndarray, solved: np.ndarray) -> dict:
    excess = 100 * (estimate / solved - 1)
    return {
        "pairs": int(len(excess)),
        "median_percent": float(np.median(excess)),
        "p90_percent": float(np.percentile(excess, 90)),
        "max_percent": float(np.max(excess)),
        "min_percent": float(np.min(excess)),
    }


def _solve(metric, z0s, z1s) -> np.ndarray:
    @jax.jit
    def solve(a, b):
        return jax.lax.map(
            lambda ab: lg.geodesic(metric, ab[0], ab[1], throw=False).length, (a, b)
        )

    return np.asarray(solve(jnp.asarray(z0s), jnp.asarray(z1s)), np.float64)


def run_mnist() -> dict:
    metric, codes = mnist_ensemble()
    start = time.perf_counter()
    estimate = lg.pairwise_graph_estimate(metric, codes, curves=False, progress=False)
    seconds = time.perf_counter() - start
    distances = np.asarray(estimate.distances, np.float64)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(codes), 200)
    cols = (rows + 1 + rng.choice(len(codes) - 1, 200)) % len(codes)
    solved = _solve(metric, codes[rows], codes[cols])
    return {
        "points": len(codes),
        "pairs": len(codes) * (len(codes) - 1) // 2,
        "seconds": seconds,
        "finite_share": float(np.mean(np.isfinite(estimate.lengths))),
        "error_vs_default_on_200_pairs": _error(distances[rows, cols], solved),
    }


def run_error(name: str) -> dict:
    metric, train, query = models.load(name)
    rows, cols = models.pairs()
    picks = reference.pair_sample(200)
    solved = _solve(metric, query[rows[picks]], query[cols[picks]])
    report = {}
    graphs = {"default": None, "neighbours+train": lg.GraphStart(extra_points=train)}
    for label, graph in graphs.items():
        start = time.perf_counter()
        estimate = lg.pairwise_graph_estimate(
            metric, query, graph, curves=False, progress=False
        )
        seconds = time.perf_counter() - start
        found = np.asarray(estimate.distances, np.float64)[rows[picks], cols[picks]]
        report[label] = _error(found, solved) | {"seconds_all_4950_pairs": seconds}
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("mnist", "error"))
    parser.add_argument("model", nargs="?")
    args = parser.parse_args()
    report = run_mnist() if args.what == "mnist" else run_error(args.model)
    name = "mnist" if args.what == "mnist" else args.model
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"graph_estimate_{name}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
