"""Summary statistics of experiments: the robustness experiment's histogram."""

from typing import TYPE_CHECKING

import numpy as np
from jaxtyping import ArrayLike, Float

from ._axes import new_axes

if TYPE_CHECKING:
    import matplotlib.axes


def cv_histogram(
    cv_a: Float[ArrayLike, " pairs_a"],
    cv_b: Float[ArrayLike, " pairs_b"],
    *,
    labels: tuple[str, str] = ("ensemble", "RBF"),
    bins: int = 20,
    ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
    """Histograms of two methods' coefficients of variation, on shared bins.

    In the robustness experiment each test pair's geodesic distance is computed
    under models retrained with different seeds; its coefficient of variation
    (CV = std / mean across seeds) measures how stable the distance is. Lower is
    better. Each method's mean CV is marked with a dashed line and given in the
    legend.

    **Arguments:**

    - `cv_a`, `cv_b`: `(pairs,)` CVs of the two methods (finite, non-empty).
    - `labels`: the methods' names (`("ensemble", "RBF")`).
    - `bins`: number of shared bins (20).
    - `ax`: the axes to draw on; default a new figure.

    **Returns:** the `matplotlib.axes.Axes`; `ax.containers` holds the two
    histograms' bars, in argument order.

    **Raises:** `ValueError` if a CV array is not 1-D, is empty or is not finite.
    """
    values = []
    for name, cv in (("cv_a", cv_a), ("cv_b", cv_b)):
        cv = np.asarray(cv, dtype=np.float64)
        if cv.ndim != 1 or cv.size == 0 or not np.all(np.isfinite(cv)):
            raise ValueError(
                f"`{name}` must be a non-empty 1-D array of finite CVs, got shape "
                f"{cv.shape}."
            )
        values.append(cv)
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
    ax = new_axes(ax)
    for cv, label, colour in zip(values, labels, ("tab:blue", "tab:orange")):
        mean = cv.mean()
        ax.hist(
            cv, bins=edges, color=colour, alpha=0.6, label=f"{label} (mean {mean:.3g})"
        )
        ax.axvline(mean, color=colour, ls="--", lw=1.5)
    ax.set_xlabel("coefficient of variation across seeds (std / mean)")
    ax.set_ylabel("test pairs")
    ax.legend(loc="upper right")  # "best" is slow, and warns, on many bars
    return ax
