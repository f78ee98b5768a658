"""The robustness experiment's machinery (examples/robustness.py) on a tiny setup:
tables per seed, resuming, CVs and the t-test against independent computations,
the starts, the summary line."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

import latentgeo as lg

_PATH = Path(__file__).resolve().parents[1] / "examples" / "robustness.py"
_SPEC = importlib.util.spec_from_file_location("robustness", _PATH)
robustness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(robustness)

TINY = robustness.Config(
    num_members=2,
    hidden_sizes=(8,),
    num_seeds=2,
    num_pairs=3,
    max_epochs=2,
    patience=1,
    num_centers=3,
    num_segments=4,
    num_points=16,
    max_steps=10,
    solver="local",
    starts="straight",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("robustness")
    lines = []
    summary = robustness.run(TINY, output, progress=False, log=lines.append)
    return output, summary, lines


def test_one_table_per_seed(run_dir):
    output, summary, lines = run_dir
    names = sorted(path.name for path in output.iterdir())
    assert names == [
        "cv.npz",
        "cv_histogram.png",
        "seed_000.npz",
        "seed_001.npz",
        "setup.json",
        "summary.json",
    ]
    assert json.loads((output / "summary.json").read_text()) == summary
    for seed in range(2):
        with np.load(output / f"seed_{seed:03d}.npz") as table:
            for method in robustness.METHODS:
                distances = table[f"{method}_distance"]
                assert distances.shape == (3,)
                assert np.all(distances > 0) and np.all(np.isfinite(distances))
                assert table[f"{method}_outcome"].shape == (3,)
                # The official estimator of K = 2 members on 4096 points is
                # dominated by their disagreement: far above the length.
                sampled = table[f"{method}_sampled_member"]
                assert sampled.shape == (3,) and np.all(np.isfinite(sampled))
                assert int(table[f"{method}_epochs"]) <= TINY.max_epochs
                variances = table[f"{method}_code_variances"]
                assert variances.shape == (2,) and np.all(np.diff(variances) >= 0)
                parts = [
                    float(table[f"{method}_{part}_seconds"])
                    for part in ("train", "fit", "geodesic")
                ]
                assert min(parts) > 0
                assert float(table[f"{method}_seconds"]) == pytest.approx(sum(parts))
    # Different seeds train different models.
    tables = robustness.load_tables(output, [0, 1])
    assert not np.allclose(
        tables["ensemble_distance"][0], tables["ensemble_distance"][1]
    )
    assert sum(line.startswith("seed") for line in lines) == 2
    for method in robustness.METHODS:
        assert all(d in (1, 2) for d in summary[method]["active_latent_dims_per_seed"])


def test_resume_skips_finished_seeds(run_dir, monkeypatch):
    output, summary, _ = run_dir
    times = {path: path.stat().st_mtime_ns for path in output.glob("seed_*.npz")}
    run_seed = robustness.run_seed
    trained = []

    def recording_run_seed(config, data, pairs, seed, progress=False):
        trained.append(seed)
        return run_seed(config, data, pairs, seed, progress)

    monkeypatch.setattr(robustness, "run_seed", recording_run_seed)
    again = robustness.run(TINY, output, progress=False, log=lambda line: None)
    assert trained == []
    assert again == summary
    assert {path: path.stat().st_mtime_ns for path in times} == times
    # More seeds: only the new one is trained; the finished tables are kept.
    more = robustness.run(
        robustness.dataclasses.replace(TINY, num_seeds=3),
        output,
        progress=False,
        log=lambda line: None,
    )
    assert trained == [2]
    assert more["seeds"] == 3
    assert {path: path.stat().st_mtime_ns for path in times} == times
    # The analysis reads whichever seeds exist.
    (output / "seed_000.npz").rename(output / "seed_000.npz.bak")
    try:
        partial = robustness.analyse(output)
    finally:
        (output / "seed_000.npz.bak").rename(output / "seed_000.npz")
    assert partial["seed_ids"] == [1, 2] and partial["seeds"] == 2


def test_resume_refuses_other_settings(run_dir):
    output, _, _ = run_dir
    other = robustness.dataclasses.replace(TINY, num_pairs=4)
    with pytest.raises(ValueError, match="num_pairs, pairs"):
        robustness.run(other, output, progress=False, log=lambda line: None)
    other = robustness.dataclasses.replace(TINY, starts="shortest")
    with pytest.raises(ValueError, match=r"\(starts\)"):
        robustness.run(other, output, progress=False, log=lambda line: None)


def test_shortest_starts_are_no_longer_than_straight(run_dir):
    """The same seed trains the same models; adding the graph start to the
    straight one can only shorten each pair's geodesic."""
    output, _, _ = run_dir
    config = robustness.dataclasses.replace(TINY, starts="shortest")
    data = robustness.load_data(config)
    pairs = robustness.choose_pairs(data.test_labels, config.num_pairs, 0)
    shortest = robustness.run_seed(config, data, pairs, seed=0)
    with np.load(output / "seed_000.npz") as straight:
        for method in robustness.METHODS:
            np.testing.assert_array_equal(
                shortest[f"{method}_euclidean"], straight[f"{method}_euclidean"]
            )
            lengths = shortest[f"{method}_distance"]
            assert np.all(np.isfinite(lengths)) and np.all(lengths > 0)
            assert np.all(lengths <= straight[f"{method}_distance"] * (1 + 1e-6))
            # The steps count both solves, the straight one among them.
            steps = shortest[f"{method}_steps"]
            assert np.all(steps >= straight[f"{method}_steps"])


def test_summary_line_holds_the_summary(run_dir):
    _, summary, lines = run_dir
    line = lines[-1]
    test = summary["t_test"]
    assert line.startswith(
        "library protocol, digits classes 0,1,2, d = 2, K = 2; solver local, "
    )
    assert f"{summary['seeds']} seeds, {test['pairs']} of 3 pairs" in line
    for value in (
        summary["ensemble"]["mean_cv"],
        summary["rbf"]["mean_cv"],
        test["t_statistic"],
        test["p_value"],
        summary["ensemble"]["mean_cv_of_latent_euclidean_distance"],
        summary["rbf"]["mean_cv_of_latent_euclidean_distance"],
    ):
        assert f" {value:.4g}" in line


def test_cv_and_t_test_match_independent_computation(run_dir):
    output, _, _ = run_dir
    summary = robustness.analyse(output)
    seeds = robustness.finished_seeds(output)  # 2, or 3 after the resume test
    cv = {}
    for method in robustness.METHODS:
        d = np.stack(
            [
                np.load(output / f"seed_{seed:03d}.npz")[f"{method}_distance"]
                for seed in seeds
            ]
        )
        s = len(seeds)
        mean = d.sum(axis=0) / s
        std = np.sqrt(((d - mean) ** 2).sum(axis=0) / (s - 1))
        cv[method] = std / mean
        # With two seeds, std / mean = |d0 - d1| / (sqrt(2) * mean).
        two = robustness.coefficient_of_variation(d[:2])
        np.testing.assert_allclose(
            two, np.abs(d[0] - d[1]) / (math.sqrt(2) * d[:2].mean(0)), rtol=1e-12
        )
        saved = np.load(output / "cv.npz")[f"{method}_distance"]
        np.testing.assert_allclose(saved, cv[method])
        assert summary[method]["mean_cv"] == pytest.approx(cv[method].mean())
    diff = cv["ensemble"] - cv["rbf"]
    n = diff.size
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(n))
    assert summary["t_test"]["pairs"] == n
    assert summary["t_test"]["t_statistic"] == pytest.approx(t, rel=1e-10)
    p = scipy.stats.t.cdf(t, df=n - 1)  # one-sided: H1 mean(diff) < 0
    assert summary["t_test"]["p_value"] == pytest.approx(p, rel=1e-8)


def test_pairs_are_fixed_distinct_and_ordered():
    labels = np.arange(10) % 3
    pairs = robustness.choose_pairs(labels, 20, seed=3)
    assert pairs.shape == (20, 2)
    assert np.all(pairs[:, 0] < pairs[:, 1]) and np.all(pairs < 10)
    assert len({tuple(p) for p in pairs.tolist()}) == 20
    np.testing.assert_array_equal(pairs, robustness.choose_pairs(labels, 20, seed=3))
    assert len(robustness.choose_pairs(labels[:4], 6, seed=0)) == 6  # all of them
    with pytest.raises(ValueError, match="fewer than 7 pairs"):
        robustness.choose_pairs(labels[:4], 7, seed=0)


def test_half_cross_class_pairs():
    # The official `pick_pairs`: half random, half among num_pairs // 2 // C
    # points per class, all cross-class and disjoint from the random half.
    labels = np.repeat([0, 5, 7], 40)
    pairs = robustness.choose_pairs(labels, 100, seed=1, mix="half-cross-class")
    assert len({tuple(p) for p in pairs.tolist()}) == 100
    random, cross = pairs[:50], pairs[50:]
    assert np.all(labels[cross[:, 0]] != labels[cross[:, 1]])
    assert not set(cross.ravel()) & set(random.ravel())
    for label in (0, 5, 7):  # at most 16 points of each class
        assert len(set(cross.ravel()) & set(np.flatnonzero(labels == label))) <= 16
    # The random half has same-class pairs as often as chance has them.
    assert 0 < np.mean(labels[random[:, 0]] == labels[random[:, 1]]) < 0.7
    with pytest.raises(ValueError, match="pair_mix"):
        robustness.choose_pairs(labels, 10, seed=1, mix="cross")


def test_paper_protocol_runs_and_reports_both_estimators(tmp_path):
    config = robustness.dataclasses.replace(
        robustness.preset("paper"),
        **{
            k: getattr(TINY, k)
            for k in ("num_members", "hidden_sizes", "num_seeds", "max_epochs")
            + ("num_centers", "num_segments", "max_steps", "starts")
        },
        num_pairs=6,
        patience=3,
        batch_size=16,
        num_points=32,
    )
    summary = robustness.run(config, tmp_path, progress=False, log=lambda line: None)
    assert summary["setting"] == {
        "protocol": "paper",
        "dataset": "digits",
        "classes": [0, 5, 7],
        "latent_dim": 2,
        "num_members": 2,
    }
    for prefix in ("t_test", "t_test_sampled_member"):
        for part in ("", "_cross_class", "_same_class"):
            assert summary[prefix + part]["pairs"] >= 2 or part
    with np.load(tmp_path / "seed_000.npz") as table:
        cross = table["cross_class"]
        assert cross[3:].all()  # the second half, and any random pair
        assert summary["t_test_cross_class"]["pairs"] == cross.sum()
        assert summary["t_test_same_class"]["pairs"] == (~cross).sum()
        assert int(table["ensemble_epochs"]) == TINY.max_epochs


def test_presets_and_overrides():
    config, output, progress, analyse_only, seeds = robustness.parse_config([])
    assert config == robustness.preset("library", "quick")
    assert (config.solver, config.starts) == ("local", "global")
    assert (config.dataset, config.num_seeds, config.num_pairs) == ("digits", 5, 30)
    assert output == Path("robustness-library-quick") and progress
    assert not analyse_only and seeds is None
    config, output, *_ = robustness.parse_config(
        ["--full", "--seeds", "10", "--classes", "3", "5", "--output", "runs/a"]
    )
    assert (config.dataset, config.num_seeds, config.num_pairs) == (
        "mnist-subset",
        10,
        100,
    )
    assert config.classes == (3, 5) and config.num_members == 10
    assert config.hidden_sizes == (64, 128, 256, 512)
    assert output == Path("runs/a")
    config, *_ = robustness.parse_config(["--solver", "lm", "--starts", "shortest"])
    assert (config.solver, config.starts) == ("lm", "shortest")
    for wrong in (["--quick", "--full"], ["--solver", "bfgs"], ["--starts", "graph"]):
        with pytest.raises(SystemExit):
            robustness.parse_config(wrong)


def test_paper_preset():
    config, output, *_ = robustness.parse_config(["--full", "--protocol", "paper"])
    assert config.classes == (0, 5, 7) and config.num_seeds == 30
    assert (config.schedule, config.codes, config.energy) == (
        "split-batch",
        "sampled",
        "expected",
    )
    assert (config.learning_rate, config.clip_norm, config.batch_size) == (
        5e-5,
        0.01,
        130,
    )
    assert output == Path("robustness-paper-full")


def test_global_start_is_one_lattice_in_2d_and_the_data_graph_above():
    """`--starts global` is the 0.2 all-pairs default start in 2-D (one
    256-cell lattice over the codes, as the committed runs used); above 2-D it
    adds the path through the training codes to the straight line; `--solver
    local` drops the per-pair lattice check only."""
    lattice = robustness._start("global", np.zeros((4, 2)))
    assert isinstance(lattice, lg.LatticeStart) and lattice.cells == 256
    codes = np.arange(12.0).reshape(4, 3)
    start = robustness._start("global", codes)
    assert isinstance(start, lg.ShortestOf)
    graph = [s for s in start.starts if isinstance(s, lg.GraphStart)]
    np.testing.assert_array_equal(graph[0].extra_points, codes)
    solver = robustness._solver("local")
    assert isinstance(solver.least_squares, lg.Escalating)
    assert solver.gradient_solver == lg.AutoSolver().gradient_solver
    assert solver.preconditioned == lg.AutoSolver().preconditioned
