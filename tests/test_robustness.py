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
    tables = robustness.load_tables(output, 2)
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
    pairs = robustness.choose_pairs(len(data.test), config.num_pairs, 0)
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
    assert line.startswith("digits classes 0,1,2, d = 2, K = 2; solver auto, ")
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
    summary = robustness.analyse(output, 2)
    cv = {}
    for method in robustness.METHODS:
        d = np.stack(
            [
                np.load(output / f"seed_{seed:03d}.npz")[f"{method}_distance"]
                for seed in range(2)
            ]
        )
        mean = d.sum(axis=0) / 2
        std = np.sqrt(((d - mean) ** 2).sum(axis=0) / (2 - 1))
        cv[method] = std / mean
        # With two seeds, std / mean = |d0 - d1| / (sqrt(2) * mean).
        np.testing.assert_allclose(
            cv[method], np.abs(d[0] - d[1]) / (math.sqrt(2) * mean), rtol=1e-12
        )
        np.testing.assert_allclose(np.load(output / "cv.npz")[method], cv[method])
        assert summary[method]["mean_cv"] == pytest.approx(cv[method].mean())
    diff = cv["ensemble"] - cv["rbf"]
    n = diff.size
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(n))
    assert summary["t_test"]["pairs"] == n
    assert summary["t_test"]["t_statistic"] == pytest.approx(t, rel=1e-10)
    p = scipy.stats.t.cdf(t, df=n - 1)  # one-sided: H1 mean(diff) < 0
    assert summary["t_test"]["p_value"] == pytest.approx(p, rel=1e-8)


def test_pairs_are_fixed_distinct_and_ordered():
    pairs = robustness.choose_pairs(10, 20, seed=3)
    assert pairs.shape == (20, 2)
    assert np.all(pairs[:, 0] < pairs[:, 1]) and np.all(pairs < 10)
    assert len({tuple(p) for p in pairs.tolist()}) == 20
    np.testing.assert_array_equal(pairs, robustness.choose_pairs(10, 20, seed=3))
    assert len(robustness.choose_pairs(4, 6, seed=0)) == 6  # all of them
    with pytest.raises(ValueError, match="fewer than 7 pairs"):
        robustness.choose_pairs(4, 7, seed=0)


def test_presets_and_overrides():
    config, output, progress = robustness.parse_config([])
    assert config == robustness.PRESETS["quick"]
    assert (config.solver, config.starts) == ("auto", "straight")
    assert (config.dataset, config.num_seeds, config.num_pairs) == ("digits", 5, 30)
    assert output == Path("robustness-quick") and progress
    config, output, _ = robustness.parse_config(
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
    config, _, _ = robustness.parse_config(["--solver", "lm", "--starts", "shortest"])
    assert (config.solver, config.starts) == ("lm", "shortest")
    for wrong in (["--quick", "--full"], ["--solver", "bfgs"], ["--starts", "graph"]):
        with pytest.raises(SystemExit):
            robustness.parse_config(wrong)
