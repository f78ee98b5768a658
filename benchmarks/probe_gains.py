"""What each of the all-pairs default's sources gains and costs, pair by pair:
the data for the probe's rule (`latentgeo._probe`).

Runs one `lg.pairwise_geodesics` over the union of the 600-pair sample
(`reference.pair_sample`) and the probe of a whole 4,950-pair run, with the
sources of the default until 2026-12-07 (`pipelines.with_straight_line`;
today's has no straight line) unprobed (every source solved on every pair): the first
lattice route, the second route, the screened straight line, the
constant-speed restart and the refinement on 64 segments. Records, per source
and pair, the length of the source's own geodesic (NaN where it had none),
its solver steps and its CPU seconds (the refinement's and the unconverged
pairs' retry apart), in `benchmarks/results/probe_gains_<model>.npz`.

Then summarises each probed source as the probe sees it, in order: its gain
on a pair is how much shorter its geodesic is than the earlier sources' best
(0 where it is not shorter), its cost its share of the steps; over the 600
pairs and over each of the two probes (the 600-pair run's and the whole
run's 128 pairs). `--summarise` reprints that from the stored file.

    PYTHONPATH=src:benchmarks python benchmarks/probe_gains.py vae-relu
"""

import argparse
import json
import time
from pathlib import Path

import models
import numpy as np
import reference

import latentgeo as lg
import latentgeo._pairwise as pairwise
from latentgeo._probe import ProbedSource, probe_ids

RESULTS = Path(__file__).parent / "results"
SOURCES = ["first_route", "second_route", "straight", "restart", "refinement"]
PROBE_PAIRS = 128  # the default probes'


def probe_of(num_pairs: int) -> np.ndarray:
    """The pairs (indices into a run's `num_pairs`) the default's probe solves."""
    return probe_ids([ProbedSource(None, PROBE_PAIRS, 1)], num_pairs)


def unprobed_default() -> lg.Refined:
    """The 2-D default start until 2026-12-07 with every source solved on
    every pair."""
    search = lg.ShortestOf(
        lg.TwoRoutes(lg.LatticeStart(), probe_pairs=None),
        lg.Screened(lg.StraightStart()),
        lg.ConstantSpeedStart(),
    )
    return lg.Refined(search, probe_pairs=None)


class Recorder:
    """Wraps the driver's per-chunk functions to attribute each solve's steps
    and CPU seconds to the source it serves: the search's sources in order,
    then the refinement, then the retry of unconverged pairs (row S)."""

    def __init__(self, num_sources: int):
        self.num_sources = num_sources
        self.label = 0
        self.seconds = np.zeros(num_sources + 1)
        self.chunks = []  # (ids, lengths (S, B), steps (S + 1, B), seconds (S + 1,))

    def install(self):
        original = {
            name: getattr(pairwise, name)
            for name in (
                "_search",
                "_refine",
                "_retry_unconverged",
                "_starting_curves",
                "solve_chunk",
                "_solve_from_starts",
            )
        }
        recorder, steps_of = self, {}

        def starting_curves(source, ids, rows, cols, found):
            recorder.label = len(found)
            return original["_starting_curves"](source, ids, rows, cols, found)

        def solve_chunk(*args, **kwargs):
            begin = time.process_time()
            found = original["solve_chunk"](*args, **kwargs)
            recorder.seconds[recorder.label] += time.process_time() - begin
            return found

        def search(*args, **kwargs):
            found = original["_search"](*args, **kwargs)
            steps_of["search"] = [f["num_steps"] for f in found]
            recorder.label = recorder.num_sources  # the retry comes next
            return found

        def refine(*args, **kwargs):
            recorder.label = recorder.num_sources - 1
            refined = original["_refine"](*args, **kwargs)
            steps_of["refine"] = refined["num_steps"]
            return refined

        def retry(*args, **kwargs):
            steps_of["retry"] = original["_retry_unconverged"](*args, **kwargs)
            return steps_of["retry"]

        def solve_from_starts(*args, **kwargs):
            ids = args[7]
            recorder.seconds = np.zeros(recorder.num_sources + 1)
            steps_of.clear()
            result, lengths = original["_solve_from_starts"](*args, **kwargs)
            steps = np.zeros((recorder.num_sources + 1, len(ids)), int)
            steps[: len(steps_of["search"])] = np.stack(steps_of["search"])
            steps[recorder.num_sources - 1] = steps_of["refine"]
            steps[recorder.num_sources] = steps_of.get("retry", 0)
            recorder.chunks.append((ids, lengths, steps, recorder.seconds.copy()))
            return result, lengths

        pairwise._search = search
        pairwise._refine = refine
        pairwise._retry_unconverged = retry
        pairwise._starting_curves = starting_curves
        pairwise.solve_chunk = solve_chunk
        pairwise._solve_from_starts = solve_from_starts


def measure(model: str) -> dict:
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = np.union1d(reference.pair_sample(600), probe_of(rows.size))
    pairs = np.stack([rows[picks], cols[picks]], axis=1)
    recorder = Recorder(len(SOURCES))
    recorder.install()
    begin = time.process_time()
    result = lg.pairwise_geodesics(
        metric, query, pairs=pairs, init=unprobed_default(), progress=True
    )
    total = time.process_time() - begin
    order = np.concatenate([ids for ids, *_ in recorder.chunks])
    lengths = np.concatenate([chunk[1] for chunk in recorder.chunks], axis=1)
    steps = np.concatenate([chunk[2] for chunk in recorder.chunks], axis=1)
    seconds = np.stack([chunk[3] for chunk in recorder.chunks])  # (chunks, S + 1)
    sizes = np.array([np.unique(ids).size for ids, *_ in recorder.chunks])
    _, back = np.unique(order, return_index=True)  # padded chunks repeat a pair
    return dict(
        model=model,
        picks=picks,
        sources=np.array(SOURCES),
        lengths=lengths[:, back],
        steps=steps[:, back],
        chunk_seconds=seconds,
        chunk_sizes=sizes,
        total_seconds=total,
        result_lengths=np.asarray(result.lengths),
        converged=np.asarray(result.pair_converged),
    )


def pair_sets(picks: np.ndarray) -> dict[str, np.ndarray]:
    """Masks over `picks`: the 600-pair sample, its run's probe and the whole
    run's probe (`latentgeo._probe.probe_ids`' 128 pairs of each)."""
    num_pairs = models.pairs()[0].size
    sample = np.flatnonzero(np.isin(picks, reference.pair_sample(600)))
    return {
        "sample": np.isin(np.arange(picks.size), sample),
        "probe_of_600": np.isin(np.arange(picks.size), sample[probe_of(sample.size)]),
        "probe_of_4950": np.isin(picks, probe_of(num_pairs)),
    }


def summarise(stored: dict) -> dict:
    """Each probed source's gains and cost (module docstring), per pair set."""
    lengths = np.where(np.isnan(stored["lengths"]), np.inf, stored["lengths"])
    steps = stored["steps"][: len(SOURCES)]
    earlier_best = np.minimum.accumulate(lengths, axis=0)
    summary = {}
    for index in range(1, len(SOURCES)):
        gain = 1 - lengths[index] / earlier_best[index - 1]
        gain = np.where(np.isfinite(gain), np.clip(gain, 0, None), 0.0)
        summary[SOURCES[index]] = {
            name: {
                "pairs": int(mask.sum()),
                "shorter_by_0.1%": int(np.count_nonzero(gain[mask] > 1e-3)),
                "shorter_by_1%": int(np.count_nonzero(gain[mask] > 1e-2)),
                "mean_gain_%": 100 * float(gain[mask].mean()),
                "max_gain_%": 100 * float(gain[mask].max()),
                "cost_share_of_steps": float(
                    steps[index, mask].sum() / steps[:, mask].sum()
                ),
            }
            for name, mask in pair_sets(stored["picks"]).items()
        }
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    path = RESULTS / f"probe_gains_{args.model}.npz"
    if not args.summarise:
        np.savez(path, **measure(args.model))
    with np.load(path) as data:
        stored = dict(data)
    print(f"{args.model}: {float(stored['total_seconds']):.0f} CPU s", flush=True)
    print(json.dumps(summarise(stored), indent=1), flush=True)


if __name__ == "__main__":
    main()
