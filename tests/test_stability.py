import numpy as np
import pytest
from scipy import stats

import latentgeo as lg


def _tables(seed=0, num_seeds=12, num_pairs=40):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(1, 5, num_pairs)
    stable = truth * (1 + 0.05 * rng.standard_normal((num_seeds, num_pairs)))
    noisy = truth * (1 + 0.2 * rng.standard_normal((num_seeds, num_pairs)))
    return np.abs(stable), np.abs(noisy)


def test_cv_and_t_test_match_scipy():
    stable, noisy = _tables()
    result = lg.retraining_stability(stable, noisy)
    cv = stats.variation(stable, axis=0, ddof=1)
    other = stats.variation(noisy, axis=0, ddof=1)
    np.testing.assert_allclose(result.cv, cv, rtol=1e-12)
    np.testing.assert_allclose(result.baseline_cv, other, rtol=1e-12)
    # Paired t by hand; one-sided p from Student's t CDF.
    diff = cv - other
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))
    np.testing.assert_allclose(result.t_statistic, t, rtol=1e-10)
    np.testing.assert_allclose(result.p_value, stats.t.cdf(t, df=39), rtol=1e-8)
    assert result.num_pairs == 40
    # The other direction: p near 1.
    reverse = lg.retraining_stability(noisy, stable)
    np.testing.assert_allclose(reverse.p_value, stats.t.sf(t, df=39), rtol=1e-8)


def test_rank_correlation_matches_spearman():
    stable, noisy = _tables(1, num_seeds=5)
    result = lg.retraining_stability(stable, noisy)
    for table, value in (
        (stable, result.mean_rank_correlation),
        (noisy, result.baseline_mean_rank_correlation),
    ):
        rho = stats.spearmanr(table.T).statistic  # (S, S) matrix
        mean = rho[np.triu_indices(len(table), 1)].mean()
        np.testing.assert_allclose(value, mean, rtol=1e-12)
    assert result.mean_rank_correlation > result.baseline_mean_rank_correlation


def test_ties_share_their_rank():
    table = np.array([[1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0]])
    rho = stats.spearmanr(table[0], table[1]).statistic
    np.testing.assert_allclose(
        lg.retraining_stability(table).mean_rank_correlation, rho, rtol=1e-12
    )


def test_non_finite_pairs_are_left_out():
    stable, noisy = _tables(2)
    stable[3, 7] = np.nan
    noisy[0, 9] = np.inf
    result = lg.retraining_stability(stable, noisy)
    assert np.isnan(result.cv[7]) and np.isnan(result.baseline_cv[9])
    keep = np.setdiff1d(np.arange(40), [7, 9])
    diff = result.cv[keep] - result.baseline_cv[keep]
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))
    np.testing.assert_allclose(result.t_statistic, t, rtol=1e-10)
    assert result.num_pairs == 38


def test_single_method():
    stable, _ = _tables(3)
    result = lg.retraining_stability(stable)
    assert result.t_statistic is None and result.baseline_cv is None
    assert result.num_pairs == 40


def test_bad_tables():
    stable, noisy = _tables()
    with pytest.raises(ValueError, match=r"expected \(S, P\)"):
        lg.retraining_stability(stable[0])
    with pytest.raises(ValueError, match="at least 2 models"):
        lg.retraining_stability(stable[:1])
    with pytest.raises(ValueError, match="same pairs"):
        lg.retraining_stability(stable, noisy[:, :30])
    with pytest.raises(ValueError, match="negative"):
        lg.retraining_stability(-stable)
    with pytest.raises(ValueError, match="finite CVs"):
        lg.retraining_stability(stable[:, :2], np.full((12, 2), np.nan))
