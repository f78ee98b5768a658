r"""How stable are distances when the model is retrained? Per-pair CVs, rank
agreement between retrainings, and the paired test of two methods.

The robustness experiment of Syrota, Moreno-Muñoz & Hauberg (2024) asks whether
the distances between fixed data points survive retraining the model with
another seed. Given the distance tables of $S$ retrained models this module
measures it; the [robustness page](../robustness.md) applies it to the paper's
setting. The statistics are SciPy's (a dependency of JAX itself).
"""

import itertools

import equinox as eqx
import numpy as np
from jaxtyping import ArrayLike, Float


class StabilityResult(eqx.Module):
    """The outcome of [`retraining_stability`][latentgeo.retraining_stability].

    **Attributes:**

    - `cv`: `(P,)` each pair's coefficient of variation across the $S$ models,
      std / mean with the sample std ($S - 1$); NaN where a distance is not
      finite.
    - `mean_rank_correlation`: Spearman's rank correlation between the distance
      rows of two models, averaged over all $S (S - 1) / 2$ pairs of models,
      over the pairs finite in every model: 1 when every retraining orders the
      pairs alike.
    - `baseline_cv`, `baseline_mean_rank_correlation`: the same for the second
      method's tables (`None` without one).
    - `t_statistic`, `p_value`: the paired one-sided t-test of the hypothesis
      that the first method's CVs are lower (`scipy.stats.ttest_rel(cv,
      baseline_cv, alternative="less")`), over the pairs whose CVs are finite
      under both (`None` without a baseline).
    - `num_pairs`: pairs used by the test (or, without a baseline, with a
      finite CV).
    """

    cv: Float[np.ndarray, " P"]
    mean_rank_correlation: float
    baseline_cv: Float[np.ndarray, " P"] | None
    baseline_mean_rank_correlation: float | None
    t_statistic: float | None
    p_value: float | None
    num_pairs: int


def _checked_table(distances: ArrayLike, name: str) -> np.ndarray:
    table = np.asarray(distances, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(
            f"`{name}` has shape {table.shape}, expected (S, P): S retrained "
            "models (seeds) by P pairs."
        )
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise ValueError(
            f"`{name}` has shape {table.shape}: CVs and rank correlations need "
            "at least 2 models (rows) and 2 pairs (columns)."
        )
    if np.any(table < 0):
        raise ValueError(f"`{name}` holds negative distances.")
    return table


def coefficient_of_variation(table: Float[np.ndarray, "S P"]) -> np.ndarray:
    """Per column: sample std (ddof = 1) over the mean, NaN unless every entry is
    finite."""
    finite = np.all(np.isfinite(table), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.std(table, axis=0, ddof=1) / np.mean(table, axis=0)
    return np.where(finite, cv, np.nan)


def _mean_rank_correlation(table: np.ndarray) -> float:
    from scipy.stats import rankdata

    columns = np.all(np.isfinite(table), axis=0)
    if columns.sum() < 2:
        return float("nan")
    ranks = rankdata(table[:, columns], axis=1)  # ties share their average rank
    correlations = [
        np.corrcoef(ranks[a], ranks[b])[0, 1]
        for a, b in itertools.combinations(range(len(ranks)), 2)
    ]
    return float(np.mean(correlations))


def retraining_stability(
    distances: ArrayLike,
    baseline: ArrayLike | None = None,
) -> StabilityResult:
    r"""Stability of distances under retraining: per-pair CVs, the mean rank
    correlation between models and, given a second method, the paired one-sided
    t-test of the paper's robustness experiment.

    Train your model $S$ times with different seeds, measure the same $P$ pairs
    of data points in each (e.g. with
    [`pairwise_geodesics`][latentgeo.pairwise_geodesics]`(..., pairs=)` on each
    model's codes of the same data), and stack the distances into an `(S, P)`
    table. A stable distance has a small coefficient of variation (CV) across
    models and orders the pairs the same way in every model. With the table of
    a second method (e.g. the RBF baseline, on the same data pairs), the test
    asks whether the first method's CVs are lower.

    **Arguments:**

    - `distances`: `(S, P)` distances of `P` pairs under `S >= 2` retrained
      models; NaN or inf marks a pair not measured in that model, and leaves
      it out.
    - `baseline`: optional `(S', P)` table of a second method over the same
      pairs (the number of models may differ).

    **Returns:** a [`StabilityResult`][latentgeo.StabilityResult].

    **Raises:** `ValueError` for tables that are not two-dimensional, have fewer
    than two rows or columns, hold negative distances, or whose pairs differ in
    number; and when fewer than two pairs are finite under both methods.

    **Example:**

    ```python
    # ensemble_table, rbf_table: (30, 100) distances from 30 seeds
    result = lg.retraining_stability(ensemble_table, rbf_table)
    result.cv.mean(), result.baseline_cv.mean(), result.t_statistic, result.p_value
    ```
    """
    table = _checked_table(distances, "distances")
    cv = coefficient_of_variation(table)
    correlation = _mean_rank_correlation(table)
    if baseline is None:
        return StabilityResult(
            cv, correlation, None, None, None, None, int(np.isfinite(cv).sum())
        )
    other = _checked_table(baseline, "baseline")
    if other.shape[1] != table.shape[1]:
        raise ValueError(
            f"`distances` has {table.shape[1]} pairs and `baseline` "
            f"{other.shape[1]}: both must measure the same pairs."
        )
    other_cv = coefficient_of_variation(other)
    keep = np.isfinite(cv) & np.isfinite(other_cv)
    if keep.sum() < 2:
        raise ValueError(
            f"Only {keep.sum()} pairs have finite CVs under both methods; the "
            "t-test needs at least 2."
        )
    from scipy.stats import ttest_rel

    test = ttest_rel(cv[keep], other_cv[keep], alternative="less")
    t, p = float(test.statistic), float(test.pvalue)
    return StabilityResult(
        cv,
        correlation,
        other_cv,
        _mean_rank_correlation(other),
        t,
        p,
        int(keep.sum()),
    )
