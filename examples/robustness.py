"""Robustness of geodesic distances under retraining: ensemble versus RBF baseline.

The experiment of Syrota, Moreno-Muñoz & Hauberg (2024, sec. 5), under one of two
protocols (`--protocol`):

- `paper`: the paper's official code and configs (mustass/ensertainty): digits
  0, 5, 7; Gaussian sum-of-squares likelihood; Adam at 5e-5 with global-norm
  clipping at 0.01; every batch of 130 split across the 10 decoders; validation
  every 3 epochs on a split fixed across seeds; half random, half cross-class
  pairs; codes sampled from q(z|x); RBF centres from sampled codes. Its
  geodesics are the library's (the official decorrelated energy on 256 points,
  `--energy decorrelated --points 256`, cost at least 14 times more per seed
  here).
- `library`: the library's recipe: digits 0-2, Bernoulli likelihood, Adam at
  1e-3, one random decoder per batch, uniformly random pairs of posterior
  means, geodesics of the expected energy on 64 points.

For each seed:

1. train an ensemble VAE (one encoder, K decoders) and a K = 1 VAE with the same
   recipe, and fit the RBF variance (10 centres) to the K = 1 model;
2. encode a fixed set of test-image pairs (the same images for every seed) with
   each model's encoder, and find their geodesics under the ensemble's expected
   metric and under the RBF metric, both in data space: each pair starts from
   its path on one lattice over the test codes in 2-D (`--starts global`, the
   default; in more dimensions the shorter of the straight line and the path
   through the model's training codes, which `--starts shortest` gives in any
   dimension, `--starts straight` the line alone), then the library's local
   solver (`--solver local`: the default solver without its per-pair lattice
   check, which the global start makes redundant; `--solver auto` keeps it);
3. measure every geodesic twice: its Riemannian length, and the paper's
   official estimator (`lg.sampled_member_length`, 4096 points: one member drawn
   per point, the data-space steps summed; for the K = 1 model the decoder's
   own polyline);
4. write the seed's table to `OUTPUT/seed_XXX.npz` at once, so an interrupted
   run resumes by skipping finished seeds.

Then, per estimator, each pair's coefficient of variation across the seeds that
exist (CV = std / mean, sample std), the one-sided paired t-test of
CV_ensemble < CV_rbf over all pairs, cross-class pairs and same-class pairs
(`lg.retraining_stability`), histograms, `OUTPUT/summary.json` and a one-line
summary.

Run (see docs/robustness.md for timings):

    python examples/robustness.py --quick                      # 8x8 digits, 5 seeds
    python examples/robustness.py --full --protocol paper      # MNIST-3, 30 seeds
    python examples/robustness.py --full --dataset mnist-idx --idx-path ~/mnist
    python examples/robustness.py --analyse --output runs/mnist3  # summary only

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

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import Array

import latentgeo as lg
from latentgeo._atomic import atomic_write

METHODS = ("ensemble", "rbf")
ESTIMATORS = ("distance", "sampled_member")  # Riemannian length; official estimator
OUTCOMES = ("converged", "not_converged", "nonfinite")
SOLVERS = ("local", "auto", "lbfgs", "lm", "adam")
STARTS = ("global", "straight", "shortest")
DATASETS = ("digits", "mnist-subset", "mnist-idx")
PROTOCOLS = ("paper", "library")
SCHEDULES = ("one-per-batch", "split-batch")
PAIR_MIXES = ("random", "half-cross-class")
CODES = ("mean", "sampled")
ENERGIES = ("expected", "decorrelated")
SAMPLED_MEMBER_POINTS = 4096  # the official `n_t_lengths`


@dataclasses.dataclass(frozen=True)
class Config:
    """The experiment's settings. A protocol (`PROTOCOL_SETTINGS`) and a size
    (`SIZES`) are presets of it; the defaults are the library protocol's quick
    run."""

    protocol: str = "library"  # one of PROTOCOLS: which preset the rest came from
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
    pair_mix: str = "random"  # one of PAIR_MIXES
    likelihood: str = "bernoulli"  # "bernoulli" (logits) or "gaussian" (means)
    learning_rate: float = 1e-3
    clip_norm: float | None = None  # global-norm gradient clipping
    kl_weight: float = 0.05
    schedule: str = "one-per-batch"  # one of SCHEDULES
    batch_size: int = 128
    max_epochs: int = 500
    patience: int = 15
    validation_every: int = 1
    fixed_split: bool = False  # the same validation split for every seed
    codes: str = "mean"  # one of CODES: geodesic end points and RBF centres
    num_centers: int = 10
    energy: str = "expected"  # one of ENERGIES
    solver: str = "local"  # one of SOLVERS
    starts: str = "global"  # one of STARTS
    num_segments: int = 10
    num_points: int = 64
    max_steps: int = 1000


PROTOCOL_SETTINGS = {
    "library": {},
    # The official configs (mustass/ensertainty at 55ccc54, see
    # docs/robustness.md). The official loss is the sum of squares plus 0.05 KL,
    # twice the unit-variance Gaussian negative log-likelihood plus 0.025 KL;
    # Adam and global-norm clipping are unchanged by the factor. The official
    # code stops when more than 15 epochs passed since the best one, checked
    # every 3 epochs: after 18 epochs without improvement.
    "paper": dict(
        protocol="paper",
        classes=(0, 5, 7),
        pair_mix="half-cross-class",
        likelihood="gaussian",
        learning_rate=5e-5,
        clip_norm=0.01,
        kl_weight=0.025,
        schedule="split-batch",
        batch_size=130,
        patience=18,
        validation_every=3,
        fixed_split=True,
        codes="sampled",
        # The official geodesics minimise the decorrelated energy on 256 points;
        # on this CPU that took over 46 CPU-minutes for one seed's 100 ensemble
        # geodesics, so the runs use the library's geodesics (expected energy,
        # 64 points); `--energy decorrelated --points 256` gives the official
        # objective (docs/robustness.md, "Choices").
    ),
}

SIZES = {
    "quick": {},
    "full": dict(dataset="mnist-subset", num_seeds=30, num_pairs=100),
}


def preset(protocol: str = "library", size: str = "quick") -> Config:
    """The preset of `protocol` (one of `PROTOCOLS`) at `size` (quick, full)."""
    return Config(**PROTOCOL_SETTINGS[protocol], **SIZES[size])


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


def choose_pairs(
    labels: np.ndarray, num_pairs: int, seed: int, mix: str = "random"
) -> np.ndarray:
    """`num_pairs` distinct unordered pairs `(i, j)`, `i < j`, of test points.

    **Arguments:**

    - `labels`: `(N,)` the test points' labels.
    - `num_pairs`: pairs to draw.
    - `seed`: seed of the NumPy generator; the same seed gives the same pairs.
    - `mix`: `"random"`, uniformly random pairs; or `"half-cross-class"`, the
      official code's `pick_pairs`: half uniformly random pairs, half drawn from
      the cross-class pairs among `num_pairs // 2 // C` points per class ($C$
      classes), disjoint from the random half's points.

    **Returns:** an int64 array `(num_pairs, 2)`.
    """
    num_points = len(labels)
    if num_pairs > num_points * (num_points - 1) // 2:
        raise ValueError(f"{num_points} test points have fewer than {num_pairs} pairs.")
    rng = np.random.default_rng(seed)
    pairs: dict[tuple[int, int], None] = {}  # an insertion-ordered set
    num_random = num_pairs if mix == "random" else num_pairs - num_pairs // 2
    while len(pairs) < num_random:
        i, j = sorted(int(k) for k in rng.choice(num_points, 2, replace=False))
        pairs[(i, j)] = None
    if mix == "half-cross-class":
        pairs |= dict.fromkeys(
            _cross_class_pairs(labels, num_pairs - num_random, set(pairs), rng)
        )
    elif mix != "random":
        raise ValueError(f"`pair_mix` must be one of {PAIR_MIXES}, got {mix!r}.")
    return np.array(list(pairs), dtype=np.int64)


def _cross_class_pairs(labels, count: int, taken: set, rng) -> list[tuple[int, int]]:
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("Cross-class pairs need test points of two classes.")
    used = {i for pair in taken for i in pair}
    per_class = max(1, count // len(classes))
    chosen = []
    for label in classes:
        members = np.setdiff1d(np.flatnonzero(labels == label), list(used))
        size = min(per_class, len(members))
        chosen.append(np.sort(rng.choice(members, size, replace=False)))
    candidates = sorted(
        (int(min(i, j)), int(max(i, j)))
        for a in range(len(chosen))
        for b in range(a + 1, len(chosen))
        for i in chosen[a]
        for j in chosen[b]
    )
    candidates = [pair for pair in candidates if pair not in taken]
    if len(candidates) < count:
        raise ValueError(f"Only {len(candidates)} cross-class pairs for {count}.")
    picked = rng.choice(len(candidates), count, replace=False)
    return [candidates[k] for k in picked]


def _data_space(likelihood: str):
    """A member's output in data space: pixel probabilities from Bernoulli
    logits, the Gaussian mean as it is."""

    def apply(params, z: Array) -> Array:
        output = params(z)
        return jax.nn.sigmoid(output) if likelihood == "bernoulli" else output

    return apply


_DATA_SPACE = {name: _data_space(name) for name in ("bernoulli", "gaussian")}


# Optimisers, schedules, energies and solvers are static (hashed) arguments of
# the compiled training epoch, RBF fit and geodesic loop: one instance per setting
# lets later seeds reuse the compilations of the first.
@functools.cache
def _optimiser(learning_rate: float, clip_norm: float | None):
    adam = optax.adam(learning_rate)
    if clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(clip_norm), adam)


@functools.cache
def _schedule(name: str) -> lg.training.AbstractMemberSchedule:
    if name == "one-per-batch":
        return lg.training.OneDecoderPerBatch()
    if name == "split-batch":
        return lg.training.SplitBatch()
    raise ValueError(f"`schedule` must be one of {SCHEDULES}, got {name}.")


@functools.cache
def _solver(name: str) -> lg.AbstractCurveSolver:
    if name == "local":
        # The default solver without its per-pair lattice check, which the
        # global start makes redundant (docs/robustness.md, "Choices").
        return lg.AutoSolver(least_squares=lg.Escalating())
    if name == "auto":
        return lg.AutoSolver()
    if name == "lbfgs":
        return lg.OptaxSolver()
    if name == "lm":
        return lg.LevenbergMarquardt()
    if name == "adam":
        return lg.OptaxSolver.paper_adam()
    raise ValueError(f"`solver` must be one of {SOLVERS}, got {name}.")


def _energy(name: str, method: str) -> lg.AbstractEnergy:
    """The geodesic energy of `name` for `method`: the decorrelated energy is
    the ensemble's; the RBF metric has one decoder, whose energy is its own."""
    if name not in ENERGIES:
        raise ValueError(f"`energy` must be one of {ENERGIES}, got {name}.")
    if name == "decorrelated" and method == "ensemble":
        return lg.DecorrelatedEnergy()
    return lg.ExpectedEnergy()


def _nearest_neighbour_accuracy(train_codes, train_labels, test_codes, test_labels):
    """Share of test codes whose nearest training code has the same label."""
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(1).fit(np.asarray(train_codes), train_labels)
    return np.asarray(classifier.score(np.asarray(test_codes), test_labels))


def train_model(
    config: Config, data: Data, num_members: int, key, progress: bool
) -> lg.training.TrainedVAE:
    """One VAE with `num_members` decoders (the ensemble, or K = 1 for the
    baseline), trained with the protocol's recipe.

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
    split_key = jax.random.key(config.pair_seed) if config.fixed_split else None
    return lg.training.train_ensemble_vae(
        encoder,
        ensemble,
        data.train,
        key=train_key,
        likelihood=config.likelihood,
        kl_weight=config.kl_weight,
        optimiser=_optimiser(config.learning_rate, config.clip_norm),
        schedule=_schedule(config.schedule),
        batch_size=config.batch_size,
        max_epochs=config.max_epochs,
        patience=config.patience,
        validation_every=config.validation_every,
        split_key=split_key,
        progress=progress,
    )


def data_space_decoders(config: Config, vae: lg.training.TrainedVAE):
    """The trained decoders as an `EnsembleDecoder` into data space."""
    return lg.EnsembleDecoder.from_apply(
        _DATA_SPACE[config.likelihood],
        vae.ensemble.params,
        latent_dim=config.latent_dim,
    )


def fit_metric(
    method: str,
    config: Config,
    data: Data,
    decoders: lg.EnsembleDecoder,
    train_codes: Array,
    key,
) -> lg.AbstractMetric:
    """The metric of `method` on the trained model, in data space.

    **Arguments:**

    - `method`: `"ensemble"` (the expected metric of the decoders) or `"rbf"`
      (the RBF-variance metric fitted to the single decoder and `train_codes`).
    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `decoders`: from `data_space_decoders`.
    - `train_codes`: `(M, d)` the training images' codes (posterior means or
      samples, by `config.codes`).
    - `key`: PRNG key of the RBF fit (its k-means).

    **Returns:** the metric.
    """
    if method == "ensemble":
        return lg.ExpectedMetric(decoders)
    return lg.RBFVarianceMetric.fit(
        decoders.member(0),
        train_codes,
        data.train.reshape(len(data.train), -1),
        num_centers=config.num_centers,
        key=key,
        optimiser=_optimiser(0.05, None),  # fit's default, one instance
    )


def _start(name: str, train_codes: Array) -> lg.AbstractStart:
    """The starting curves of `name` (one of `STARTS`)."""
    if name == "global" and train_codes.shape[1] == 2:
        # One lattice over the test codes serves all pairs; 256 cells, the 0.2
        # default, as every committed run used.
        return lg.LatticeStart(cells=256)
    if name == "straight":
        return lg.StraightStart()
    if name in ("shortest", "global"):
        # 30 neighbours: with 10, a VAE whose codes form separate clusters can
        # leave the graph in pieces (seen on the 8x8 digits), and it has no path.
        graph = lg.GraphStart(neighbours=30, extra_points=train_codes)
        return lg.ShortestOf(lg.StraightStart(), graph)
    raise ValueError(f"`starts` must be one of {STARTS}, got {name}.")


class Measured(NamedTuple):
    """One method's geodesics of one seed, each `(P,)`: the Riemannian lengths,
    the official estimator's values, the solver iterations of all starts, and
    the outcomes (indices into `OUTCOMES`)."""

    lengths: np.ndarray
    sampled_member: np.ndarray
    steps: np.ndarray
    outcomes: np.ndarray


@eqx.filter_jit
def _sampled_member_lengths(decoders, curves, num_points, key):
    keys = jax.random.split(key, curves.params.shape[0])
    return jax.lax.map(
        lambda args: lg.sampled_member_length(
            decoders, args[0], num_points, key=args[1]
        ),
        (curves, keys),
    )


def measure_geodesics(
    config: Config,
    method: str,
    metric: lg.AbstractMetric,
    decoders: lg.EnsembleDecoder,
    codes: Array,
    pairs: np.ndarray,
    train_codes: Array,
    key,
) -> Measured:
    """The geodesics between the codes of `pairs` under `metric`, as one chunk of
    `lg.pairwise_geodesics` (compiled once per metric and start, for all
    seeds), each measured by its Riemannian length and by the official
    estimator.

    **Arguments:**

    - `config`: the experiment's settings (solver, energy, starts, segments,
      points, steps).
    - `method`: one of `METHODS`.
    - `metric`: the method's metric.
    - `decoders`: the method's decoders in data space (for the official
      estimator).
    - `codes`: `(N, d)` the test codes.
    - `pairs`: `(P, 2)` indices into `codes`.
    - `train_codes`: `(M, d)` the training codes, nodes of the graph of the
      `"shortest"` starts (and of the `"global"` ones above 2-D).
    - `key`: PRNG key of the official estimator's member draws.

    **Returns:** a `Measured`; of several starts, the shortest curve's.
    """
    with warnings.catch_warnings():  # the table records every pair's outcome
        warnings.filterwarnings("ignore", r"\d+ of \d+ geodesics", RuntimeWarning)
        result = lg.pairwise_geodesics(
            metric,
            codes,
            pairs=pairs,
            init=_start(config.starts, train_codes),
            solver=_solver(config.solver),
            energy=_energy(config.energy, method),
            discretisation=lg.Discretisation(
                config.num_segments, config.num_points, config.max_steps
            ),
            batch_size=len(pairs),
            progress=False,
        )
    lengths = np.asarray(result.lengths, np.float64)
    sampled = _sampled_member_lengths(
        decoders, result.curves, SAMPLED_MEMBER_POINTS, key
    )
    outcomes = np.where(result.pair_converged, 0, np.where(np.isnan(lengths), 2, 1))
    return Measured(
        lengths, np.asarray(sampled, np.float64), np.asarray(result.num_steps), outcomes
    )


def _timed(function, *args):
    """`function(*args)` once its arrays are ready, and the seconds it took."""
    start = time.perf_counter()
    result = jax.block_until_ready(function(*args))
    return result, time.perf_counter() - start


def _codes(config: Config, vae, images, key) -> Array:
    """The codes of `images`: posterior means, or one sample each."""
    return lg.training.encode(
        vae.encoder, images, key=key if config.codes == "sampled" else None
    )


class Model(NamedTuple):
    """One method's trained model of one seed: the VAE, its training and test
    codes (`(M, d)`, `(N, d)`), its decoders in data space, its metric, the
    key of the official estimator's draws, and the seconds of its parts
    (`train`, `fit`: the metric and the codes)."""

    vae: lg.training.TrainedVAE
    train_codes: Array
    test_codes: Array
    decoders: lg.EnsembleDecoder
    metric: lg.AbstractMetric
    length_key: Array
    seconds: dict[str, float]


def train_method(
    config: Config, data: Data, seed: int, method: str, progress: bool = False
) -> Model:
    """Train `method`'s model (one of `METHODS`) with `seed`, code the images and
    fit its metric: the part of a seed before the geodesics.

    **Arguments:**

    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `seed`: the seed of every random choice in training, coding and fitting.
    - `method`: `"ensemble"` ($K$ = `config.num_members`) or `"rbf"` ($K = 1$).
    - `progress`: show the training progress bar.

    **Returns:** a `Model`.
    """
    index = METHODS.index(method)
    keys = jax.random.split(jax.random.key(seed), 6)
    train_key, code_key, length_key = jax.random.split(keys[index], 3)
    num_members = config.num_members if method == "ensemble" else 1
    vae, train_seconds = _timed(
        train_model, config, data, num_members, train_key, progress
    )
    (train_codes, test_codes), encode_seconds = _timed(
        lambda: tuple(
            _codes(config, vae, images, key)
            for images, key in zip((data.train, data.test), jax.random.split(code_key))
        )
    )
    decoders = data_space_decoders(config, vae)
    metric, fit_seconds = _timed(
        fit_metric, method, config, data, decoders, train_codes, keys[2]
    )
    seconds = {"train": train_seconds, "fit": fit_seconds + encode_seconds}
    return Model(vae, train_codes, test_codes, decoders, metric, length_key, seconds)


def run_seed(
    config: Config, data: Data, pairs: np.ndarray, seed: int, progress: bool = False
) -> dict[str, np.ndarray]:
    """Train both models with `seed` and measure the pairs' geodesic distances.

    **Arguments:**

    - `config`: the experiment's settings.
    - `data`: from `load_data`.
    - `pairs`: `(P, 2)` indices into `data.test`.
    - `seed`: the seed of every random choice in training, coding and fitting.
    - `progress`: show the training progress bars.

    **Returns:** the seed's table: `cross_class`, `(P,)` whether a pair's images
    have different labels; for `m` in `METHODS`, `m_distance` (Riemannian
    length), `m_sampled_member` (the official estimator), `m_steps`,
    `m_outcome` (indices into `OUTCOMES`) and `m_euclidean` (the latent
    straight-line distance), each `(P,)` as from `measure_geodesics`; and
    scalars `m_epochs`, `m_best_epoch`, `m_validation_loss`, `m_nn_accuracy`
    (1-nearest-neighbour label accuracy of the test codes against the
    training codes), `m_seconds` (in all) with its parts `m_train_seconds`,
    `m_fit_seconds` (the metric and the codes) and `m_geodesic_seconds`; and
    `m_code_variances`, `(d,)` eigenvalues of the covariance of the training
    codes, ascending (a VAE may leave latent directions unused).
    """
    labels = data.test_labels
    table = {"cross_class": labels[pairs[:, 0]] != labels[pairs[:, 1]]}
    for method in METHODS:
        model = train_method(config, data, seed, method, progress)
        vae, train_codes, test_codes = model.vae, model.train_codes, model.test_codes
        measured, geodesic_seconds = _timed(
            measure_geodesics,
            config,
            method,
            model.metric,
            model.decoders,
            test_codes,
            pairs,
            train_codes,
            model.length_key,
        )
        seconds = model.seconds | {"geodesic": geodesic_seconds}
        z0, z1 = test_codes[pairs[:, 0]], test_codes[pairs[:, 1]]
        validation = np.asarray(vae.validation_loss, np.float64)
        table |= {
            f"{method}_distance": measured.lengths,
            f"{method}_sampled_member": measured.sampled_member,
            f"{method}_steps": measured.steps,
            f"{method}_outcome": measured.outcomes,
            f"{method}_euclidean": np.linalg.norm(np.asarray(z1 - z0), axis=1),
            f"{method}_epochs": np.asarray(vae.num_epochs),
            f"{method}_best_epoch": np.asarray(vae.best_epoch),
            f"{method}_validation_loss": validation[vae.best_epoch],
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

    **Returns:** `(P,)` CVs, as `lg.retraining_stability` gives them. (The t-test
    is unchanged by the choice of ddof, which scales every CV alike.)
    """
    return np.std(distances, axis=0, ddof=1) / np.mean(distances, axis=0)


def _seed_path(output: Path, seed: int) -> Path:
    return output / f"seed_{seed:03d}.npz"


def finished_seeds(output: str | os.PathLike) -> list[int]:
    """The seeds whose tables exist in `output`, ascending."""
    return sorted(int(path.stem[5:]) for path in Path(output).glob("seed_*.npz"))


def load_tables(
    output: str | os.PathLike, seeds: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """The tables of `seeds` (default: every finished seed), each entry stacked
    over seeds.

    **Arguments:**

    - `output`: the run's folder.
    - `seeds`: the seeds to read.

    **Returns:** a dict like `run_seed`'s, every array with a leading seed axis.
    """
    seeds = finished_seeds(output) if seeds is None else seeds
    tables = []
    for seed in seeds:
        with np.load(_seed_path(Path(output), seed)) as file:
            tables.append(dict(file))
    # Tables of older versions may lack newer entries (the seconds per part).
    keys = set.intersection(*(set(table) for table in tables))
    return {key: np.stack([table[key] for table in tables]) for key in sorted(keys)}


def _t_test(tables: dict, estimator: str, keep: np.ndarray) -> dict:
    """The paired one-sided test of `estimator`'s CVs over the pairs `keep`."""
    if keep.sum() < 2:
        return {"pairs": int(keep.sum()), "t_statistic": None, "p_value": None}
    result = lg.retraining_stability(
        tables[f"ensemble_{estimator}"][:, keep], tables[f"rbf_{estimator}"][:, keep]
    )
    return {
        "pairs": result.num_pairs,
        "t_statistic": result.t_statistic,
        "p_value": result.p_value,
        "mean_cv": {
            "ensemble": float(np.nanmean(result.cv)),
            "rbf": float(np.nanmean(result.baseline_cv)),
        },
        "mean_rank_correlation": {
            "ensemble": result.mean_rank_correlation,
            "rbf": result.baseline_mean_rank_correlation,
        },
    }


def _active_dims(variances: np.ndarray) -> list[int]:
    """Per seed, the latent directions whose code variance is at least 1% of the
    largest; a collapsed direction carries (almost) no information."""
    return np.sum(variances >= 0.01 * variances[:, -1:], axis=1).tolist()


def _setting(config: dict) -> dict:
    return {
        "protocol": config.get("protocol", "library"),
        "dataset": config["dataset"],
        "classes": list(config["classes"]),
        "latent_dim": config["latent_dim"],
        "num_members": config["num_members"],
    }


def analyse(output: str | os.PathLike) -> dict:
    """CVs, the one-sided paired t-tests, the histograms and `summary.json`, from
    every seed table in `output`.

    The tests are `lg.retraining_stability(ensemble, rbf)`, i.e. scipy's
    `ttest_rel(cv_ensemble, cv_rbf, alternative="less")`: paired, because both
    methods measure the same pairs, and one-sided, because the claim is that
    the ensemble's CV is lower. Pairs whose CV is not finite under either
    method are left out (`pairs` counts those used). Each test is done for both
    estimators (`t_test`: the Riemannian length; `t_test_sampled_member`: the
    official estimator), over all pairs, the cross-class pairs and the
    same-class pairs, and over the pairs whose geodesics converged under every
    seed and both methods.

    **Arguments:**

    - `output`: the run's folder, holding `setup.json` and at least two
      `seed_XXX.npz`.

    **Returns:** the summary written to `OUTPUT/summary.json`; the CVs go to
    `OUTPUT/cv.npz` and the histograms to `OUTPUT/cv_histogram.png`.
    """
    output = Path(output)
    seeds = finished_seeds(output)
    if len(seeds) < 2:
        raise ValueError(f"CVs need at least 2 finished seeds, {output} has {seeds}.")
    setup = json.loads((output / "setup.json").read_text())
    tables = load_tables(output, seeds)
    everything = np.ones(tables["ensemble_distance"].shape[1], bool)
    converged = np.all(
        [np.all(tables[f"{m}_outcome"] == 0, axis=0) for m in METHODS], axis=0
    )
    cross = tables["cross_class"][0] if "cross_class" in tables else None
    summary = {"setting": _setting(setup), "seeds": len(seeds), "seed_ids": seeds}
    summary["pairs"] = int(everything.size)
    for estimator, suffix in zip(ESTIMATORS, ("", "_sampled_member")):
        if f"ensemble_{estimator}" not in tables:  # tables of older versions
            continue
        summary[f"t_test{suffix}"] = _t_test(tables, estimator, everything)
        summary[f"t_test{suffix}_converged_pairs"] = _t_test(
            tables, estimator, converged
        )
        if cross is not None:
            summary[f"t_test{suffix}_cross_class"] = _t_test(tables, estimator, cross)
            summary[f"t_test{suffix}_same_class"] = _t_test(tables, estimator, ~cross)
    cv = {
        f"{m}_{estimator}": coefficient_of_variation(tables[f"{m}_{estimator}"])
        for m in METHODS
        for estimator in ESTIMATORS
        if f"{m}_{estimator}" in tables
    }
    finite = np.isfinite(cv["ensemble_distance"]) & np.isfinite(cv["rbf_distance"])
    summary["fraction_of_pairs_ensemble_cv_lower"] = float(
        np.mean(cv["ensemble_distance"][finite] < cv["rbf_distance"][finite])
    )
    for m in METHODS:
        summary[m] = _method_summary(tables, m, cv[f"{m}_distance"][finite])
    atomic_write(output / "cv.npz", lambda file: np.savez(file, **cv))
    text = json.dumps(summary, indent=1).encode()
    atomic_write(output / "summary.json", lambda file: file.write(text))
    _histograms(cv, summary, output / "cv_histogram.png")
    return summary


def _method_summary(tables: dict, m: str, cv: np.ndarray) -> dict:
    outcomes = tables[f"{m}_outcome"]
    euclidean_cv = coefficient_of_variation(tables[f"{m}_euclidean"])
    summary = {
        "mean_cv": float(np.mean(cv)),
        "median_cv": float(np.median(cv)),
        "mean_distance": float(np.mean(tables[f"{m}_distance"])),
        "mean_cv_of_latent_euclidean_distance": float(np.mean(euclidean_cv)),
        "outcomes": {
            name: int(np.sum(outcomes == index)) for index, name in enumerate(OUTCOMES)
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
    if f"{m}_sampled_member" in tables:
        summary["mean_sampled_member"] = float(np.mean(tables[f"{m}_sampled_member"]))
    return summary


def _histograms(cv: dict, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimators = [e for e in ESTIMATORS if f"ensemble_{e}" in cv]
    titles = {"distance": "Riemannian length", "sampled_member": "official estimator"}
    fig, axes = plt.subplots(1, len(estimators), figsize=(6 * len(estimators), 4))
    for ax, estimator in zip(np.atleast_1d(axes), estimators):
        ensemble, rbf = cv[f"ensemble_{estimator}"], cv[f"rbf_{estimator}"]
        keep = np.isfinite(ensemble) & np.isfinite(rbf)
        lg.plot.cv_histogram(ensemble[keep], rbf[keep], ax=ax)
        suffix = "" if estimator == "distance" else "_sampled_member"
        test = summary[f"t_test{suffix}"]
        if test["t_statistic"] is not None:
            ax.set_title(
                f"{titles[estimator]}: {summary['seeds']} seeds, {test['pairs']} "
                f"pairs, t = {test['t_statistic']:.2f}"
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


def _open_run(config: Config, output: Path, pairs: np.ndarray) -> None:
    """Record the setup in `output/setup.json`, or check a saved one matches."""
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


def run(
    config: Config,
    output: str | os.PathLike,
    *,
    progress: bool = True,
    seeds: Sequence[int] | None = None,
    log=print,
) -> dict:
    """Run (or resume) the experiment in `output`, then analyse it.

    Seeds whose table `output/seed_XXX.npz` exists are skipped; a table is
    written (atomically) as soon as its seed finishes. `output/setup.json`
    records the settings and pairs; resuming with different ones raises.

    **Arguments:**

    - `config`: the experiment's settings.
    - `output`: the run's folder, created if missing.
    - `progress`: show training progress bars.
    - `seeds`: the seeds to run (default `0 .. num_seeds - 1`); two processes
      can share a run by taking different seeds.
    - `log`: called with one line of text per seed and for the summary.

    **Returns:** the summary of `analyse` (over every finished seed).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    data = load_data(config)
    pairs = choose_pairs(
        data.test_labels, config.num_pairs, config.pair_seed, config.pair_mix
    )
    _open_run(config, output, pairs)
    for seed in range(config.num_seeds) if seeds is None else seeds:
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
            ),
        )
    summary = analyse(output)
    log(f"{summary_line(config, summary)}; results in {output}")
    return summary


def summary_line(config: Config, summary: dict) -> str:
    """The run in one line, to set beside the paper's table: the setting, the
    mean CVs and t-test under each estimator, and the CVs of the latent
    straight-line distances.

    **Arguments:**

    - `config`: the experiment's settings.
    - `summary`: from `analyse`.

    **Returns:** the line; numbers to 4 significant digits.
    """
    number = lambda x: "n/a" if x is None else f"{x:.4g}"  # noqa: E731
    classes = ",".join(map(str, config.classes))
    parts = [
        f"{config.protocol} protocol, {config.dataset} classes {classes}, "
        f"d = {config.latent_dim}, K = {config.num_members}; solver "
        f"{config.solver}, starts {config.starts}; {summary['seeds']} seeds, "
        f"{summary['t_test']['pairs']} of {summary['pairs']} pairs"
    ]
    for suffix, name in (("", "Riemannian"), ("_sampled_member", "official")):
        test = summary.get(f"t_test{suffix}")
        if test is None:
            continue
        mean_cv = test.get("mean_cv", {})
        parts.append(
            f"{name}: mean CV ensemble {number(mean_cv.get('ensemble'))}, "
            f"RBF {number(mean_cv.get('rbf'))}, t = {number(test['t_statistic'])}, "
            f"one-sided p = {number(test['p_value'])}"
        )
    parts.append(
        "straight-line CV ensemble "
        f"{number(summary['ensemble']['mean_cv_of_latent_euclidean_distance'])}, "
        f"RBF {number(summary['rbf']['mean_cv_of_latent_euclidean_distance'])}"
    )
    return "; ".join(parts)


def parse_config(
    argv: Sequence[str] | None = None,
) -> tuple[Config, Path, bool, bool, list[int] | None]:
    """`(config, output folder, progress, analyse only, seeds)` from the command
    line.

    **Arguments:**

    - `argv`: the arguments, default `sys.argv[1:]`.

    **Returns:** the preset of `--protocol` (default `library`) at the size of
    `--quick` (the default) or `--full`, with the options given replacing its
    values; the output folder defaults to `robustness-PROTOCOL-SIZE`.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    add = parser.add_argument
    add("--protocol", choices=PROTOCOLS, help="paper or library (default) recipe")
    add("--output", help="run folder (default robustness-PROTOCOL-SIZE)")
    add("--analyse", action="store_true", help="only summarise the finished seeds")
    add("--only-seeds", type=int, nargs="+", help="run just these seeds")
    add("--no-progress", action="store_true", help="hide training progress bars")
    add("--dataset", choices=DATASETS, help="digits (8x8), mnist-subset or mnist-idx")
    add("--idx-path", help="folder of MNIST or Fashion-MNIST IDX files (mnist-idx)")
    add("--classes", type=int, nargs="+", help="labels to keep")
    add("--test-fraction", type=float, help="held-out share (0.2; not for mnist-idx)")
    add("--latent-dim", type=int, help="latent dimension d (2)")
    add("--members", dest="num_members", type=int, help="ensemble size K (10)")
    add("--hidden", dest="hidden_sizes", type=int, nargs="+", help="decoder widths")
    add("--seeds", dest="num_seeds", type=int, help="seeds 0..S-1 (5 quick, 30 full)")
    add("--pairs", dest="num_pairs", type=int, help="test pairs (30 quick, 100 full)")
    add("--pair-seed", type=int, help="seed of the split and the pairs (0)")
    add("--pair-mix", choices=PAIR_MIXES, help="random or half-cross-class")
    add("--likelihood", choices=("bernoulli", "gaussian"))
    add("--lr", dest="learning_rate", type=float, help="Adam learning rate")
    add("--clip-norm", type=float, help="global-norm gradient clipping")
    add("--kl-weight", type=float, help="KL weight")
    add("--schedule", choices=SCHEDULES, help="decoders trained per batch")
    add("--batch-size", type=int, help="mini-batch size")
    add("--epochs", dest="max_epochs", type=int, help="maximum epochs (500)")
    add("--patience", type=int, help="early-stopping patience in epochs")
    add("--validation-every", type=int, help="epochs between validations")
    add("--codes", choices=CODES, help="posterior means or samples")
    add("--centers", dest="num_centers", type=int, help="RBF centres (10)")
    add("--energy", choices=ENERGIES, help="expected or decorrelated")
    add("--solver", choices=SOLVERS, help="local (default), auto, lbfgs, lm, adam")
    add("--starts", choices=STARTS, help="global (default), straight or shortest")
    add("--segments", dest="num_segments", type=int, help="spline segments (10)")
    add("--points", dest="num_points", type=int, help="energy points per curve")
    add("--max-steps", type=int, help="solver iteration cap (1000)")
    args = vars(parser.parse_args(argv))
    size = args.pop("size") or "quick"
    protocol = args.pop("protocol") or "library"
    output = Path(args.pop("output") or f"robustness-{protocol}-{size}")
    progress = not args.pop("no_progress")
    analyse_only = args.pop("analyse")
    seeds = args.pop("only_seeds")
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    config = dataclasses.replace(
        preset(protocol, size), **{k: v for k, v in given.items() if v is not None}
    )
    return config, output, progress, analyse_only, seeds


if __name__ == "__main__":
    config, output, progress, analyse_only, seeds = parse_config()
    if analyse_only:
        saved = json.loads((output / "setup.json").read_text())
        saved = {k: v for k, v in saved.items() if k in Config.__dataclass_fields__}
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        print(summary_line(Config(**saved), analyse(output)))
    else:
        print(config)
        start = time.perf_counter()
        run(config, output, progress=progress, seeds=seeds)
        print(f"wall time {time.perf_counter() - start:.0f} s")
