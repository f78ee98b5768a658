"""The graph estimate at scale and its error: all pairs of 5,000 codes of an MNIST
ensemble VAE, and the estimate against refined geodesics on the benchmark models.

The error is the relative difference `estimate / refined - 1` of each pair,
where "refined" is `lg.pairwise_geodesics` with its defaults on the same
pairs (the distances a user would otherwise compute), and, where
`benchmarks/reference.py` has one, also against the float64 reference. Reported:
the signed median, and the median, 90th percentile and maximum of its size.

`mnist`: an ensemble VAE (K = 10, d = 2, the library's recipe:
`lg.train_ensemble_vae`, Bernoulli likelihood, decoders in pixel space) trained
once on the bundled 5,000-image MNIST subset and cached; its 5,000 codes; the
full graph-estimate matrix (`lg.pairwise_graph_estimate(..., curves=False)`,
the default graph), timed; then 200 random pairs refined, for the estimate's
error on them.

`error MODEL`: the estimate's error on a benchmark model (`models.load`) over
the 175-pair sample (`reference.pair_sample(175)`), for the default graph (in
2-D the 512-cell lattice), the 0.2 default (256 cells) and the neighbour graph
through the training codes, each over all 100 query codes.

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


def _error(estimate: np.ndarray, truth: np.ndarray) -> dict:
    error = 100 * (np.asarray(estimate, np.float64) / truth - 1)
    size = np.abs(error)
    return {
        "pairs": int(len(error)),
        "signed_median_percent": float(np.median(error)),
        "median_percent": float(np.median(size)),
        "p90_percent": float(np.percentile(size, 90)),
        "max_percent": float(np.max(size)),
    }


def _refined(metric, points, rows, cols) -> tuple[np.ndarray, float]:
    """The default all-pairs lengths of the pairs `(rows, cols)`, and seconds."""
    start = time.perf_counter()
    result = lg.pairwise_geodesics(
        metric, points, pairs=np.stack([rows, cols], 1), progress=False
    )
    return np.asarray(result.lengths, np.float64), time.perf_counter() - start


def run_mnist() -> dict:
    metric, codes = mnist_ensemble()
    start = time.perf_counter()
    estimate = lg.pairwise_graph_estimate(metric, codes, curves=False, progress=False)
    seconds = time.perf_counter() - start
    distances = np.asarray(estimate.distances, np.float64)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(codes), 200)
    cols = (rows + 1 + rng.choice(len(codes) - 1, 200)) % len(codes)
    refined, refine_seconds = _refined(metric, codes, rows, cols)
    return {
        "points": len(codes),
        "pairs": len(codes) * (len(codes) - 1) // 2,
        "seconds": seconds,
        "finite_share": float(np.mean(np.isfinite(estimate.lengths))),
        "refined_seconds_200_pairs": refine_seconds,
        "error_vs_refined_on_200_pairs": _error(distances[rows, cols], refined),
    }


def run_error(name: str) -> dict:
    metric, train, query = models.load(name)
    rows, cols = models.pairs()
    picks = reference.pair_sample(175)
    rows, cols = rows[picks], cols[picks]
    refined, refine_seconds = _refined(metric, query, rows, cols)
    stored = reference.load(name)
    truth = None
    if stored is not None and np.all(np.isin(picks, stored["pairs"])):
        truth = stored["length"][np.searchsorted(stored["pairs"], picks)]
    report = {"refined_seconds": refine_seconds}
    graphs = {"default": None, "neighbours+train": lg.GraphStart(extra_points=train)}
    if query.shape[1] == 2:
        graphs["lattice-256"] = lg.LatticeStart(cells=256)
    for label, graph in graphs.items():
        start = time.perf_counter()
        estimate = lg.pairwise_graph_estimate(
            metric, query, graph, curves=False, progress=False
        )
        seconds = time.perf_counter() - start
        found = np.asarray(estimate.distances, np.float64)[rows, cols]
        report[label] = {
            "vs_refined": _error(found, refined),
            "seconds_all_4950_pairs": seconds,
        }
        if truth is not None:
            report[label]["vs_reference"] = _error(found, truth)
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
