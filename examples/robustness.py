"""Robustness of geodesic distances under retraining: ensemble versus RBF baseline.

The experiment of Syrota, Moreno-Muñoz & Hauberg (2024, sec. 5): for each seed,

1. train an ensemble VAE (one encoder, K decoders) and a K = 1 VAE with the same
   recipe (`lg.train_ensemble_vae`, Bernoulli likelihood), and fit the RBF
   variance (`lg.RBFVarianceMetric.fit`, 10 centres) to the K = 1 model;
2. encode a fixed set of test-image pairs (the same images for every seed) with
   each model's encoder, and compute their geodesic distances under the
   ensemble's expected metric and under the RBF metric, both in pixel space
   (decoder logits passed through a sigmoid), with the library's default
   solver from the straight line, or (`--starts shortest`) also from the path
   through the model's training codes, keeping the shorter;
3. write the seed's table to `OUTPUT/seed_XXX.npz` at once, so an interrupted
   run resumes by skipping finished seeds.

Then each pair's coefficient of variation across seeds (CV = std / mean, sample
std) per method, a one-sided paired t-test of CV_ensemble < CV_rbf, a histogram
(`OUTPUT/cv_histogram.png`), `OUTPUT/summary.json` and a one-line summary.

Run (see docs/robustness.md for timings):

    python examples/robustness.py --quick            # 8x8 digits 0-2, 5 seeds
    python examples/robustness.py --full             # MNIST-3 subset, 30 seeds
    python examples/robustness.py --full --dataset mnist-idx --idx-path ~/mnist

Any option overrides the preset, e.g. `--full --seeds 10`. Running again with
more seeds adds them; other changes to the setup need a new `--output`.
"""

import argparse
import dataclasses
import functools
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import optax
from jaxtyping import Array

import latentgeo as lg
from latentgeo._atomic import atomic_write

METHODS = ("ensemble", "rbf")
OUTCOMES = ("converged", "not_converged", "nonfinite")
SOLVERS = ("auto", "lbfgs", "lm", "adam")
STARTS = ("straight", "shortest")
DATASETS = ("digits", "mnist-subset", "mnist-idx")


@dataclasses.dataclass(frozen=True)
class Config:
    """The experiment's settings; `--quick` and `--full` are two presets of it."""

    dataset: str = "digits"  # one of DATASETS
    idx_path: str | None = None  # folder with the MNIST / Fashion-MNIST IDX files
    classes: tuple[int, ...] = (0, 1, 2)
    test_fraction: float = 0.2  # held-out share when the dataset has no test split
    latent_dim: int = 2
    num_members: int = 10
    hidden_sizes: tuple[int, ...] = (64, 128, 256, 512)  # the paper's decoder
    num_seeds: int = 5  # seeds 0 .. num_seeds - 1
    num_pairs: int = 30
    pair_seed: int = 0  # fixes the split and the test pairs, the same every seed
    learning_rate: float = 1e-3
    kl_weight: float = 0.05
    batch_size: int = 128
    max_epochs: int = 500
    patience: int = 15
    num_centers: int = 10
    solver: str = "auto"  # one of SOLVERS
    starts: str = "straight"  # one of STARTS
    num_segments: int = 10
    num_points: int = 64
    max_steps: int = 1000


PRESETS = {
    "quick": Config(),
    "full": Config(dataset="mnist-subset", num_seeds=30, num_pairs=100),
}


class Data(NamedTuple):
    """Training and test images (float32, pixels in [0, 1]) and their labels."""

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray


def load_data(config: Config) -> Data:
    """The images of `config.dataset`, split into training and test sets.

    **Arguments:**

    - `config`: the experiment's settings.

    **Returns:** a `Data`. MNIST IDX files keep their own split; the other
    datasets are split at random with `pair_seed`, the same split every run.
    """
    classes = config.classes
    if config.dataset == "mnist-idx":
        if config.idx_path is None:
            raise ValueError("`--dataset mnist-idx` needs `--idx-path FOLDER`.")
        train = lg.datasets.load_mnist(config.idx_path, classes=classes)
        test = lg.datasets.load_mnist(config.idx_path, kind="test", classes=classes)
        return Data(*train, *test)
    if config.dataset == "digits":
        images, labels = lg.datasets.load_digits(classes)
    elif config.dataset == "mnist-subset":
        images, labels = lg.datasets.load_mnist_subset(classes)
    else:
        raise ValueError(f"`dataset` must be one of {DATASETS}, got {config.dataset}.")
    order = np.random.default_rng(config.pair_seed).permutation(len(images))
    test, train = np.split(order, [max(2, round(config.test_fraction * len(order)))])
    return Data(images[train], labels[train], images[test], labels[test])


def choose_pairs(num_points: int, num_pairs: int, seed: int) -> np.ndarray:
    """`num_pairs` distinct unordered pairs `(i, j)`, `i < j < num_points`.

    **Arguments:**

    - `num_points`: the number of test points.
    - `num_pairs`: pairs to draw.
    - `seed`: seed of the NumPy generator; the same seed gives the same pairs.

    **Returns:** an int64 array `(num_pairs, 2)`.
    """
    if num_pairs > num_points * (num_points - 1) // 2:
        raise ValueError(f"{num_points} test points have fewer than {num_pairs} pairs.")
    rng = np.random.default_rng(seed)
    pairs: dict[tuple[int, int], None] = {}  # an insertion-ordered set
    while len(pairs) < num_pairs:
        i, j = sorted(int(k) for k in rng.choice(num_points, 2, replace=False))
        pairs[(i, j)] = None
    return np.array(list(pairs), dtype=np.int64)


def _pixels(params, z: Array) -> Array:
    """A member's output as pixel probabilities (`init_vae` members give logits)."""
    return jax.nn.sigmoid(params(z))


# Optimisers and solvers are static (hashed) arguments of the compiled training
# epoch, RBF fit and geodesic loop: one instance per setting lets later seeds
# reuse the compilations of the first.
@functools.cache
def _adam(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


@functools.cache
def _solver(name: str) -> lg.AbstractCurveSolver:
    if name == "auto":
        return lg.AutoSolver()
    if name == "lbfgs":
        return lg.OptaxSolver()
    if name == "lm":
        return lg.LevenbergMarquardt()
    if name == "adam":
        return lg.OptaxSolver.paper_adam()
    raise ValueError(f"`solver` must be one of {SOLVERS}, got {name}.")


def _nearest_neighbour_accuracy(train_codes, train_labels, test_codes, test_labels):
    """Share of test codes whose nearest training code has the same label."""
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(1).fit(np.asarray(train_codes), train_labels)
    return np.asarray(classifier.score(np.asarray(test_codes), test_labels))


def train_model(
    config: Config, data: Data, num_members: int, key, progress: bool
) -> lg.training.TrainedVAE:
    """One VAE with `num_members` decoders (the ensemble, or K = 1 for the
    baseline), trained with the experiment's recipe.

    **Arguments:**

    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `num_members`: $K$.
    - `key`: PRNG key of the initialisation and the training.
    - `progress`: show the progress bar.

    **Returns:** the `TrainedVAE`.
    """
    init_key, train_key = jax.random.split(key)
    encoder, ensemble = lg.training.init_vae(
        data.train.shape[1:],
        config.latent_dim,
        num_members,
        hidden_sizes=config.hidden_sizes,
        key=init_key,
    )
    return lg.training.train_ensemble_vae(
        encoder,
        ensemble,
        data.train,
        key=train_key,
        likelihood="bernoulli",
        kl_weight=config.kl_weight,
        optimiser=_adam(config.learning_rate),
        batch_size=config.batch_size,
        max_epochs=config.max_epochs,
        patience=config.patience,
        progress=progress,
    )


def fit_metric(
    method: str, config: Config, data: Data, vae: lg.training.TrainedVAE, key
) -> lg.AbstractMetric:
    """The metric of `method` on the trained model, in pixel space.

    **Arguments:**

    - `method`: `"ensemble"` (the expected metric of the decoders) or `"rbf"`
      (the RBF-variance metric fitted to the single decoder's training codes).
    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `vae`: the trained model of that method.
    - `key`: PRNG key of the RBF fit (its k-means).

    **Returns:** the metric.
    """
    pixels = lg.EnsembleDecoder.from_apply(
        _pixels, vae.ensemble.params, latent_dim=config.latent_dim
    )
    if method == "ensemble":
        return lg.ExpectedMetric(pixels)
    return lg.RBFVarianceMetric.fit(
        pixels.member(0),
        lg.training.encode(vae.encoder, data.train),
        data.train.reshape(len(data.train), -1),
        num_centers=config.num_centers,
        key=key,
        optimiser=_adam(0.05),  # fit's default, one instance
    )


def _start(name: str, train_codes: Array) -> lg.AbstractStart:
    """The starting curves of `name` (one of `STARTS`)."""
    if name == "straight":
        return lg.StraightStart()
    if name == "shortest":
        # 30 neighbours: with 10, a VAE whose codes form separate clusters can
        # leave the graph in pieces (seen on the 8x8 digits), and it has no path.
        graph = lg.GraphStart(neighbours=30, extra_points=train_codes)
        return lg.ShortestOf(lg.StraightStart(), graph)
    raise ValueError(f"`starts` must be one of {STARTS}, got {name}.")


def measure_geodesics(
    config: Config,
    metric: lg.AbstractMetric,
    codes: Array,
    pairs: np.ndarray,
    train_codes: Array,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The geodesics between the codes of `pairs` under `metric`, as one chunk of
    `lg.pairwise_geodesics` (compiled once per metric and start, for all seeds).

    **Arguments:**

    - `config`: the experiment's settings (solver, starts, segments, points,
      steps).
    - `metric`: the method's metric.
    - `codes`: `(N, d)` the test codes.
    - `pairs`: `(P, 2)` indices into `codes`.
    - `train_codes`: `(M, d)` the training codes, nodes of the graph of the
      `"shortest"` starts.

    **Returns:** `(lengths, steps, outcomes)`, each `(P,)`: the shortest length
    over the starts, the solver iterations of all starts, and the outcome of
    the shortest (an index into `OUTCOMES`).
    """
    with warnings.catch_warnings():  # the table records every pair's outcome
        warnings.filterwarnings("ignore", r"\d+ of \d+ geodesics", RuntimeWarning)
        result = lg.pairwise_geodesics(
            metric,
            codes,
            pairs=pairs,
            init=_start(config.starts, train_codes),
            solver=_solver(config.solver),
            batch_size=len(pairs),
            progress=False,
            num_segments=config.num_segments,
            num_points=config.num_points,
            max_steps=config.max_steps,
        )
    lengths = np.asarray(result.lengths, np.float64)
    outcomes = np.where(result.pair_converged, 0, np.where(np.isnan(lengths), 2, 1))
    return lengths, np.asarray(result.num_steps), outcomes


def _timed(function, *args):
    """`function(*args)` once its arrays are ready, and the seconds it took."""
    start = time.perf_counter()
    result = jax.block_until_ready(function(*args))
    return result, time.perf_counter() - start


def run_seed(
    config: Config, data: Data, pairs: np.ndarray, seed: int, progress: bool = False
) -> dict[str, np.ndarray]:
    """Train both models with `seed` and measure the pairs' geodesic distances.

    **Arguments:**

    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `pairs`: `(P, 2)` indices into `data.test`.
    - `seed`: the seed of every random choice in training and fitting.
    - `progress`: show the training progress bars.

    **Returns:** the seed's table: for `m` in `METHODS`, `m_distance`,
    `m_steps`, `m_outcome` (indices into `OUTCOMES`) and `m_euclidean` (the
    latent straight-line distance), each `(P,)` as from `measure_geodesics`;
    and scalars `m_epochs`,
    `m_best_epoch`, `m_validation_loss`, `m_nn_accuracy` (1-nearest-neighbour
    label accuracy of the test codes against the training codes), `m_seconds`
    (in all) with its parts `m_train_seconds`, `m_fit_seconds` (the metric and
    the codes) and `m_geodesic_seconds`; and `m_code_variances`, `(d,)`
    eigenvalues of the covariance of the training codes, ascending (a VAE may
    leave latent directions unused).
    """
    keys = jax.random.split(jax.random.key(seed), 3)
    table = {}
    for method, num_members, key in zip(METHODS, (config.num_members, 1), keys[:2]):
        vae, train_seconds = _timed(
            train_model, config, data, num_members, key, progress
        )
        metric, fit_seconds = _timed(fit_metric, method, config, data, vae, keys[2])
        (train_codes, test_codes), encode_seconds = _timed(
            lambda: (
                lg.training.encode(vae.encoder, data.train),
                lg.training.encode(vae.encoder, data.test),
            )
        )
        z0, z1 = test_codes[pairs[:, 0]], test_codes[pairs[:, 1]]
        (lengths, steps, outcomes), geodesic_seconds = _timed(
            measure_geodesics, config, metric, test_codes, pairs, train_codes
        )
        seconds = {
            "train": train_seconds,
            "fit": fit_seconds + encode_seconds,
            "geodesic": geodesic_seconds,
        }
        table |= {
            f"{method}_distance": lengths,
            f"{method}_steps": steps,
            f"{method}_outcome": outcomes,
            f"{method}_euclidean": np.linalg.norm(np.asarray(z1 - z0), axis=1),
            f"{method}_epochs": np.asarray(vae.num_epochs),
            f"{method}_best_epoch": np.asarray(vae.best_epoch),
            f"{method}_validation_loss": np.asarray(
                vae.validation_loss[vae.best_epoch], np.float64
            ),
            f"{method}_code_variances": np.linalg.eigvalsh(
                np.atleast_2d(np.cov(np.asarray(train_codes).T))
            ),
            f"{method}_nn_accuracy": _nearest_neighbour_accuracy(
                train_codes, data.train_labels, test_codes, data.test_labels
            ),
            f"{method}_seconds": np.asarray(sum(seconds.values())),
        }
        table |= {
            f"{method}_{part}_seconds": np.asarray(value)
            for part, value in seconds.items()
        }
    return table


def coefficient_of_variation(distances: np.ndarray) -> np.ndarray:
    """CV = std / mean across seeds (axis 0), with the sample std (ddof = 1).

    **Arguments:**

    - `distances`: `(S, P)` distances of `P` pairs under `S >= 2` seeds.

    **Returns:** `(P,)` CVs. (The t-test below is unchanged by the choice of
    ddof, which scales every CV by the same factor.)
    """
    return np.std(distances, axis=0, ddof=1) / np.mean(distances, axis=0)


def _seed_path(output: Path, seed: int) -> Path:
    return output / f"seed_{seed:03d}.npz"


def load_tables(output: str | os.PathLike, num_seeds: int) -> dict[str, np.ndarray]:
    """The tables of seeds `0 .. num_seeds - 1`, each entry stacked over seeds.

    **Arguments:**

    - `output`: the run's folder.
    - `num_seeds`: seeds to read.

    **Returns:** a dict like `run_seed`'s, every array with a leading seed axis.
    """
    tables = []
    for seed in range(num_seeds):
        with np.load(_seed_path(Path(output), seed)) as file:
            tables.append(dict(file))
    # Tables of older versions may lack newer entries (the seconds per part).
    keys = set.intersection(*(set(table) for table in tables))
    return {key: np.stack([table[key] for table in tables]) for key in sorted(keys)}


def _t_test(cv: dict[str, np.ndarray], keep: np.ndarray) -> dict:
    from scipy.stats import ttest_rel

    if keep.sum() < 2:
        return {"pairs": int(keep.sum()), "t_statistic": None, "p_value": None}
    test = ttest_rel(cv["ensemble"][keep], cv["rbf"][keep], alternative="less")
    return {
        "pairs": int(keep.sum()),
        "t_statistic": float(test.statistic),
        "p_value": float(test.pvalue),
        "mean_cv": {m: float(np.mean(cv[m][keep])) for m in METHODS},
    }


def _active_dims(variances: np.ndarray) -> list[int]:
    """Per seed, the latent directions whose code variance is at least 1% of the
    largest; a collapsed direction carries (almost) no information."""
    return np.sum(variances >= 0.01 * variances[:, -1:], axis=1).tolist()


def analyse(output: str | os.PathLike, num_seeds: int) -> dict:
    """CVs, the one-sided paired t-test, the histogram and `summary.json`.

    The test is scipy's `ttest_rel(cv_ensemble, cv_rbf, alternative="less")`:
    paired, because both methods measure the same pairs, and one-sided, because
    the claim is that the ensemble's CV is lower. Pairs whose CV is not finite
    under either method are left out (`t_test.pairs` counts those used); a
    second test uses only pairs whose geodesics converged under every seed and
    both methods.

    **Arguments:**

    - `output`: the run's folder, holding `seed_XXX.npz` for every seed.
    - `num_seeds`: seeds to use, `>= 2`.

    **Returns:** the summary written to `OUTPUT/summary.json`; the CVs go to
    `OUTPUT/cv.npz` and the histogram to `OUTPUT/cv_histogram.png`.
    """
    if num_seeds < 2:
        raise ValueError(f"CVs need at least 2 seeds, got {num_seeds}.")
    output = Path(output)
    tables = load_tables(output, num_seeds)
    cv = {m: coefficient_of_variation(tables[f"{m}_distance"]) for m in METHODS}
    finite = np.isfinite(cv["ensemble"]) & np.isfinite(cv["rbf"])
    converged = np.all(
        [np.all(tables[f"{m}_outcome"] == 0, axis=0) for m in METHODS], axis=0
    )
    summary = {
        "seeds": num_seeds,
        "pairs": int(finite.size),
        "t_test": _t_test(cv, finite),
        "t_test_converged_pairs": _t_test(cv, finite & converged),
        "fraction_of_pairs_ensemble_cv_lower": float(
            np.mean(cv["ensemble"][finite] < cv["rbf"][finite])
        ),
    }
    for m in METHODS:
        outcomes = tables[f"{m}_outcome"]
        euclidean_cv = coefficient_of_variation(tables[f"{m}_euclidean"])
        summary[m] = {
            "mean_cv": float(np.mean(cv[m][finite])),
            "median_cv": float(np.median(cv[m][finite])),
            "mean_distance": float(np.mean(tables[f"{m}_distance"])),
            "mean_cv_of_latent_euclidean_distance": float(np.mean(euclidean_cv)),
            "outcomes": {
                name: int(np.sum(outcomes == index))
                for index, name in enumerate(OUTCOMES)
            },
            "mean_solver_steps": float(np.mean(tables[f"{m}_steps"])),
            "max_solver_steps": int(np.max(tables[f"{m}_steps"])),
            "active_latent_dims_per_seed": _active_dims(tables[f"{m}_code_variances"]),
            "training": {
                key: [float(np.mean(v)), float(np.std(v))]
                for key in (
                    "epochs",
                    "validation_loss",
                    "nn_accuracy",
                    "seconds",
                    "train_seconds",
                    "fit_seconds",
                    "geodesic_seconds",
                )
                if f"{m}_{key}" in tables
                for v in [tables[f"{m}_{key}"]]
            },
        }
    atomic_write(output / "cv.npz", lambda file: np.savez(file, **cv))
    text = json.dumps(summary, indent=1).encode()
    atomic_write(output / "summary.json", lambda file: file.write(text))
    _histogram(cv, finite, summary, output / "cv_histogram.png")
    return summary


def _histogram(cv, keep, summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    lg.plot.cv_histogram(cv["ensemble"][keep], cv["rbf"][keep], ax=ax)
    test = summary["t_test"]
    if test["t_statistic"] is not None:
        ax.set_title(
            f"{summary['seeds']} seeds, {test['pairs']} pairs: "
            f"t = {test['t_statistic']:.2f}, one-sided p = {test['p_value']:.2g}"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _setup_record(config: Config, pairs: np.ndarray) -> dict:
    """What a resumed run must share with the saved one: every setting but the
    number of seeds, and the pairs; as JSON would read it back."""
    record = dataclasses.asdict(config)
    del record["num_seeds"]
    return json.loads(json.dumps(record | {"pairs": pairs.tolist()}))


def run(
    config: Config, output: str | os.PathLike, *, progress: bool = True, log=print
) -> dict:
    """Run (or resume) the experiment in `output`, then analyse it.

    Seeds whose table `output/seed_XXX.npz` exists are skipped; a table is
    written (atomically) as soon as its seed finishes. `output/setup.json`
    records the settings and pairs; resuming with different ones raises.

    **Arguments:**

    - `config`: the experiment's settings.
    - `output`: the run's folder, created if missing.
    - `progress`: show training progress bars.
    - `log`: called with one line of text per seed and for the summary.

    **Returns:** the summary of `analyse`.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    data = load_data(config)
    pairs = choose_pairs(len(data.test), config.num_pairs, config.pair_seed)
    setup = _setup_record(config, pairs)
    setup_path = output / "setup.json"
    if setup_path.exists():
        saved = json.loads(setup_path.read_text())
        changed = sorted(
            k for k in setup.keys() | saved if setup.get(k) != saved.get(k)
        )
        if changed:
            raise ValueError(
                f"{output} holds a run with other settings ({', '.join(changed)}): "
                "pass another `--output`."
            )
    else:
        atomic_write(setup_path, lambda file: file.write(json.dumps(setup).encode()))
    for seed in range(config.num_seeds):
        path = _seed_path(output, seed)
        if path.exists():
            log(f"seed {seed}: done before, {path} kept")
            continue
        table = run_seed(config, data, pairs, seed, progress)
        atomic_write(path, lambda file: np.savez(file, **table))
        log(
            f"seed {seed}: "
            + ", ".join(
                f"{m} mean distance {np.mean(table[f'{m}_distance']):.3g} "
                f"({np.sum(table[f'{m}_outcome'] != 0)} not converged, "
                f"{float(table[f'{m}_seconds']):.0f} s)"
                for m in METHODS
            )
        )
    summary = analyse(output, config.num_seeds)
    log(f"{summary_line(config, summary)}; results in {output}")
    return summary


def summary_line(config: Config, summary: dict) -> str:
    """The run in one line, to set beside the paper's table: the setting, the
    mean CVs, the t-test and the CVs of the latent straight-line distances.

    **Arguments:**

    - `config`: the experiment's settings.
    - `summary`: from `analyse`.

    **Returns:** the line; numbers to 4 significant digits.
    """
    test = summary["t_test"]
    number = lambda x: "n/a" if x is None else f"{x:.4g}"  # noqa: E731
    classes = ",".join(map(str, config.classes))
    return (
        f"{config.dataset} classes {classes}, d = {config.latent_dim}, "
        f"K = {config.num_members}; solver {config.solver}, starts {config.starts}; "
        f"{summary['seeds']} seeds, {test['pairs']} of {summary['pairs']} pairs: "
        f"mean CV ensemble {number(summary['ensemble']['mean_cv'])}, "
        f"RBF {number(summary['rbf']['mean_cv'])}; "
        f"t = {number(test['t_statistic'])}, one-sided p = {number(test['p_value'])}; "
        "straight-line CV ensemble "
        f"{number(summary['ensemble']['mean_cv_of_latent_euclidean_distance'])}, "
        f"RBF {number(summary['rbf']['mean_cv_of_latent_euclidean_distance'])}"
    )


def parse_config(argv: Sequence[str] | None = None) -> tuple[Config, Path, bool]:
    """`(config, output folder, progress)` from the command line.

    **Arguments:**

    - `argv`: the arguments, default `sys.argv[1:]`.

    **Returns:** the preset (`--quick`, the default, or `--full`) with the options
    given replacing its values; the output folder defaults to
    `robustness-quick` or `robustness-full`.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    add = parser.add_argument
    add("--output", help="run folder (default robustness-MODE)")
    add("--no-progress", action="store_true", help="hide training progress bars")
    add("--dataset", choices=DATASETS, help="digits (8x8), mnist-subset or mnist-idx")
    add("--idx-path", help="folder of MNIST or Fashion-MNIST IDX files (mnist-idx)")
    add("--classes", type=int, nargs="+", help="labels to keep (0 1 2)")
    add("--test-fraction", type=float, help="held-out share (0.2; not for mnist-idx)")
    add("--latent-dim", type=int, help="latent dimension d (2)")
    add("--members", dest="num_members", type=int, help="ensemble size K (10)")
    add("--hidden", dest="hidden_sizes", type=int, nargs="+", help="decoder widths")
    add("--seeds", dest="num_seeds", type=int, help="seeds 0..S-1 (5 quick, 30 full)")
    add("--pairs", dest="num_pairs", type=int, help="test pairs (30 quick, 100 full)")
    add("--pair-seed", type=int, help="seed of the split and the pairs (0)")
    add("--lr", dest="learning_rate", type=float, help="Adam learning rate (1e-3)")
    add("--kl-weight", type=float, help="KL weight (0.05)")
    add("--batch-size", type=int, help="mini-batch size (128)")
    add("--epochs", dest="max_epochs", type=int, help="maximum epochs (500)")
    add("--patience", type=int, help="early-stopping patience in epochs (15)")
    add("--centers", dest="num_centers", type=int, help="RBF centres (10)")
    add("--solver", choices=SOLVERS, help="auto (default), lbfgs, lm or adam (paper)")
    add("--starts", choices=STARTS, help="straight (default) or shortest (+ graph)")
    add("--segments", dest="num_segments", type=int, help="spline segments (10)")
    add("--points", dest="num_points", type=int, help="energy points per curve (64)")
    add("--max-steps", type=int, help="solver iteration cap (1000)")
    args = vars(parser.parse_args(argv))
    mode = args.pop("mode") or "quick"
    output = Path(args.pop("output") or f"robustness-{mode}")
    progress = not args.pop("no_progress")
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    config = dataclasses.replace(
        PRESETS[mode], **{k: v for k, v in given.items() if v is not None}
    )
    return config, output, progress


if __name__ == "__main__":
    config, output, progress = parse_config()
    print(config)
    start = time.perf_counter()
    run(config, output, progress=progress)
    print(f"wall time {time.perf_counter() - start:.0f} s")
