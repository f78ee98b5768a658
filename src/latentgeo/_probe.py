"""The probe of an all-pairs run: whether a source of starting curves that
costs another solve per pair pays on this run, decided on a sample of its
pairs.

[`TwoRoutes`][latentgeo.TwoRoutes]' second route shortens a few percent of the
geodesics of a ReLU decoder and almost none of a smooth one (measured on the
performance page). Rather than deciding by the decoder's activation, the run
measures it: the probe's pairs, spread evenly over the run's, are solved from
every source; a [`ProbedSource`][latentgeo._probe.ProbedSource] (`TwoRoutes`'
second route, every source of a [`Probed`][latentgeo.Probed] start) is kept
for the other pairs only if its geodesic came out shorter than the kept
sources' on at least `min_shorter` of them.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

SHORTER = 1e-3
"""A probed source counts as shorter on a pair where its length is below the
other sources' best by more than this fraction."""


@dataclasses.dataclass(frozen=True)
class ProbedSource:
    """A source of starting curves solved on the probe's pairs, and on the
    others only if it gave the shortest geodesic (by more than `SHORTER`) on at
    least `min_shorter` of the probe's pairs."""

    source: Callable  # a `latentgeo._starts.CurveSource`
    probe_pairs: int
    min_shorter: int

    def __call__(self, ids, rows, cols, best):
        return self.source(ids, rows, cols, best)


def check_probe_settings(probe_pairs: int | None, min_shorter: int) -> None:
    """Raise `ValueError` unless `probe_pairs` >= 1 (or `None`: no probe) and
    `min_shorter` >= 1."""
    if (probe_pairs is not None and probe_pairs < 1) or min_shorter < 1:
        raise ValueError(
            "Need `probe_pairs` >= 1 (or None) and `min_shorter` >= 1, got "
            f"{probe_pairs}, {min_shorter}."
        )


def probed(source: Callable, probe_pairs: int | None, min_shorter: int) -> Callable:
    """`source` as a `ProbedSource` with these settings; unchanged where
    `probe_pairs` is `None` (solved on every pair)."""
    if probe_pairs is None:
        return source
    return ProbedSource(source, probe_pairs, min_shorter)


def probe_ids(sources: list[Callable], num_pairs: int) -> np.ndarray:
    """The run's pairs (indices into its `pairs`) on which its probed sources
    are measured: the largest `probe_pairs` of them, spread evenly over the
    run (so not all at one end point); none without a probed source."""
    sizes = [s.probe_pairs for s in sources if isinstance(s, ProbedSource)]
    if not sizes:
        return np.zeros(0, int)
    count = min(max(sizes), num_pairs)
    return np.unique(np.round(np.linspace(0, num_pairs - 1, count)).astype(int))


def kept_sources(sources: list[Callable], lengths: np.ndarray) -> np.ndarray:
    """Which `sources` solve the pairs after the probe, from the probe's
    `lengths` `(S, P)` (source by pair; NaN where a source had no curve for a
    pair or its curve met NaN or inf): every source that is not probed (the
    first source when all are), then each probed one, in order, that was
    shorter than every source kept so far on at least its `min_shorter` pairs.
    Judged in order, two probed sources that find the same shorter geodesics
    are not both kept, nor both dropped."""
    finite = np.where(np.isnan(lengths), np.inf, lengths)
    probed = [isinstance(source, ProbedSource) for source in sources]
    keep = ~np.asarray(probed, bool)
    keep[0] |= all(probed)
    for index, source in enumerate(sources):
        if probed[index] and not keep[index]:
            best = finite[keep].min(axis=0)
            shorter = finite[index] < best * (1 - SHORTER)
            keep[index] = np.count_nonzero(shorter) >= source.min_shorter
    return keep
