"""Score geodesic methods on the benchmark models against the float64 reference.

A method is a function `(metric, z0, z1, init) -> lg.GeodesicResult` (`init` is
`None` for a straight start, or the pair's graph-path `lg.CubicSpline`), plus the
number of points its energy uses (to normalise cost) and its start. `METHODS`
names them; add entries there (e.g. a new solver) and run:

    PYTHONPATH=src:benchmarks python benchmarks/score.py relu default lbfgs lm
    PYTHONPATH=src:benchmarks python benchmarks/score.py elu lm --pairs all
    PYTHONPATH=src:benchmarks python benchmarks/score.py relu lm --vmap 16
    PYTHONPATH=src:benchmarks python benchmarks/score.py relu --table

Pairs: `--pairs 200` (default) is a seeded sample of the 4,950, the same one
`reference.py --pairs 200` solves; `--pairs all` takes all 4,950. The pairs run
one at a time inside one jitted `jax.lax.map` (`--vmap K`: in lockstep
`jax.vmap` groups of K), compiled ahead of time, then timed (the median of
`--repeats` runs, by default 3 when one run takes under 20 s, else 1).

Each run appends one summary row (JSON) to `benchmarks/results/<model>.jsonl`
and keeps its per-pair arrays (float64 length of the curve on 1025 points,
iterations, evaluations, converged) in `benchmarks/results/pairs/<model>/`
(git-ignored). The table uses the latest row per (method, pairs, vmap):
time per geodesic, curve evaluations ("evals", NaN when the result has no
`num_evaluations`), units (evals x points / 256: one unit is one
value-and-gradient on 256 points for one pair), iterations, length excess
against the reference and against the best known curve (min of the reference
and every method run so far on that pair), the share converged, and on how
many pairs the reference is longer than the method's curve (by > 1e-6).
A second report gives the share of pairs whose straight and graph starts end
more than 0.1% apart: from the reference's per-start lengths, and for every
method run from both starts (`X` and `X@graph`).
"""

import argparse
import dataclasses
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
import reference

import latentgeo as lg
from latentgeo._atomic import atomic_write
from latentgeo._solvers._optax import chord_adam

RESULTS = Path(__file__).parent / "results"
UNIT_POINTS = 256


@dataclasses.dataclass(frozen=True)
class Method:
    """`solve(metric, z0, z1, init)`, its energy's points, and its start."""

    solve: Callable
    num_points: int = 64
    start: str = "straight"  # or "graph": init is the graph path's spline


def _geodesic(**options):
    def solve(metric, z0, z1, init):
        return lg.geodesic(metric, z0, z1, init=init, throw=False, **options)

    return solve


def _finer(num_segments: int, num_points: int) -> lg.Discretisation:
    return lg.Discretisation(num_segments=num_segments, num_points=num_points)


METHODS = {
    "default": Method(_geodesic()),  # lg.AutoSolver()
    "warmstart": Method(_geodesic(solver=lg.WarmStart())),  # the 0.1 default
    "lbfgs": Method(_geodesic(solver=lg.OptaxSolver())),
    "lm": Method(_geodesic(solver=lg.LevenbergMarquardt())),  # with secant term
    "lm-plain": Method(_geodesic(solver=lg.LevenbergMarquardt(secant=False))),
    # The default's choice for sums of squares beyond `max_gauss_newton_dim`
    # (`Preconditioned`), at every dimension.
    "gradient": Method(_geodesic(solver=lg.AutoSolver(max_gauss_newton_dim=0))),
    # That choice before `Preconditioned`: 30 chord-scaled Adam steps, L-BFGS.
    "warm-lbfgs": Method(
        _geodesic(solver=lg.WarmStart(chord_adam(), lg.OptaxSolver(), warmup_steps=30))
    ),
    # The escalation's budget for the fast attempt (the default's is 20).
    "default-f30": Method(
        _geodesic(solver=lg.AutoSolver(lg.Escalating(fast_steps=30)))
    ),
    "default-f40": Method(
        _geodesic(solver=lg.AutoSolver(lg.Escalating(fast_steps=40)))
    ),
    # Finer curves: segments and energy points together.
    "default-s20": Method(_geodesic(discretisation=_finer(20, 128)), 128),
    "default-s32": Method(_geodesic(discretisation=_finer(32, 256)), 256),
    "lm-s20": Method(
        _geodesic(solver=lg.LevenbergMarquardt(), discretisation=_finer(20, 128)),
        128,
    ),
}
# Every method also from the graph start, as `<name>@graph`.
METHODS |= {
    f"{name}@graph": dataclasses.replace(m, start="graph")
    for name, m in list(METHODS.items())
}


def sample(pairs):
    """Indices into the 4,950 pairs: `"all"`, or a seeded sample of that size
    (the same as `reference.py --pairs N`)."""
    return reference.pair_sample(None if pairs == "all" else int(pairs))


def graph_inits(metric, train, query, picks):
    """The graph-path splines (the library's own graph start) for the pairs."""
    rows, cols = models.pairs()
    graph = lg.graph_paths(metric, query, extra_points=train)
    return graph.init_curves(rows[picks], cols[picks]).params


def compiled(metric, method, z0, z1, params, vmap):
    """An ahead-of-time compiled solve of all pairs, and its compile time."""

    def one(args):
        a, b, p = args
        init = None if p is None else lg.CubicSpline(a, b, p)
        result = method.solve(metric, a, b, init)
        evaluations = getattr(result, "num_evaluations", None)
        evaluations = jnp.array(-1) if evaluations is None else evaluations
        return result.curve.params, result.num_steps, evaluations, result.converged

    run = eqx.filter_jit(lambda xs: jax.lax.map(one, xs, batch_size=vmap))
    start = time.perf_counter()
    program = run.lower((z0, z1, params)).compile()
    return program, time.perf_counter() - start


def fine_lengths(metric, z0, z1, params):
    """Float64 lengths on 1025 points of the spline curves."""
    with jax.enable_x64(True):
        metric64 = reference.to_float64(metric)
        t = jnp.linspace(0.0, 1.0, reference.FINE, dtype=jnp.float64)

        def length(a, b, p):
            curve = lg.CubicSpline(*(jnp.asarray(x, jnp.float64) for x in (a, b, p)))
            return metric64.curve_length(curve(t))

        run = jax.jit(lambda *xs: jax.lax.map(lambda x: length(*x), xs))
        return np.asarray(run(np.asarray(z0), np.asarray(z1), np.asarray(params)))


def measure(model, method_name, pairs="200", vmap=None, repeats=None):
    """Solve, time and score one method on one model; append the row."""
    method = METHODS[method_name]
    metric, train, query = models.load(model)
    picks = sample(pairs)
    rows, cols = models.pairs()
    z0, z1 = jnp.asarray(query[rows[picks]]), jnp.asarray(query[cols[picks]])
    params = None
    if method.start == "graph":
        params = graph_inits(metric, train, query, picks)
    program, compile_seconds = compiled(metric, method, z0, z1, params, vmap)
    times = []
    while True:
        start = time.perf_counter()
        out = jax.block_until_ready(program((z0, z1, params)))
        times.append(time.perf_counter() - start)
        wanted = repeats if repeats is not None else (3 if times[0] < 20 else 1)
        if len(times) >= wanted:
            break
    curve_params, steps, evaluations, converged = map(np.asarray, out)
    lengths = fine_lengths(metric, z0, z1, curve_params)
    evaluations = np.where(evaluations < 0, np.nan, evaluations.astype(float))
    key = f"{method_name}|{pairs}|vmap{vmap or 1}"
    stem = key.replace("|", "_").replace("@", "-at-")
    folder = RESULTS / "pairs" / model
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        pairs=picks,
        lengths=lengths,
        steps=steps,
        evaluations=evaluations,
        converged=converged,
    )
    atomic_write(folder / f"{stem}.npz", lambda f: f.write(buffer.getvalue()))
    row = dict(
        key=key,
        model=model,
        method=method_name,
        pairs=pairs,
        num_pairs=len(picks),
        vmap=vmap or 1,
        num_points=method.num_points,
        start=method.start,
        seconds_per_geodesic=float(np.median(times)) / len(picks),
        timings=times,
        compile_seconds=compile_seconds,
        load_average=os.getloadavg()[0],
        date=time.strftime("%F %T"),
        file=f"pairs/{model}/{stem}.npz",
    )
    with open(RESULTS / f"{model}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def latest_rows(model):
    path = RESULTS / f"{model}.jsonl"
    if not path.exists():
        return {}
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["key"]] = row
    return rows


def _percent(x):
    """`median | p90 | max` of relative excesses, in percent."""
    if x.size == 0:
        return " | | "
    return (
        f"{100 * np.median(x):.3f}% | {100 * np.quantile(x, 0.9):.3f}% | "
        f"{100 * np.max(x):.2f}%"
    )


def _evaluations(evals, num_points):
    """`median, max | units` of the curve evaluations (NaN when not counted)."""
    if np.all(np.isnan(evals)):
        return "n/a | n/a"
    median = np.nanmedian(evals)
    return (
        f"{median:.0f}, {np.nanmax(evals):.0f} | "
        f"{median * num_points / UNIT_POINTS:.1f}"
    )


def table(model):
    """Print the table of the latest rows and the start-dependence report."""
    rows = latest_rows(model)
    ref = reference.load(model) or {}
    data = {k: dict(np.load(RESULTS / r["file"])) for k, r in rows.items()}
    best = np.full(4950, np.inf)
    ref_len = np.full(4950, np.nan)
    if ref:
        ref_len[ref["pairs"]] = ref["length"]
        best[ref["pairs"]] = ref["length"]
    for d in data.values():
        best[d["pairs"]] = np.minimum(best[d["pairs"]], d["lengths"])
    done = int(np.sum(np.isfinite(ref_len)))
    print(
        f"\n{model}: reference on {done} pairs; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "| method | pairs | vmap | s / geodesic | evals (median, max) | units "
        "| iterations (median, max) | excess vs ref: median | p90 | max "
        "| vs best known: median | p90 | max | converged | ref longer (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, row in rows.items():
        d = data[key]
        pick, lengths = d["pairs"], d["lengths"]
        has_ref = np.isfinite(ref_len[pick])
        vs_ref = lengths[has_ref] / ref_len[pick][has_ref] - 1
        vs_best = lengths / best[pick] - 1
        longer = -vs_ref[vs_ref < -1e-6]
        print(
            f"| {row['method']} | {row['num_pairs']} ({has_ref.sum()} ref) "
            f"| {row['vmap']} | {row['seconds_per_geodesic']:.3f} "
            f"| {_evaluations(d['evaluations'], row['num_points'])} "
            f"| {np.median(d['steps']):.0f}, {np.max(d['steps'])} "
            f"| {_percent(vs_ref)} | {_percent(vs_best)} "
            f"| {np.mean(d['converged']):.3f} "
            f"| {longer.size} ({100 * longer.max() if longer.size else 0:.3f}%) |"
        )
    _start_report(ref, rows, data)


def _start_report(ref, rows, data):
    print("\nStraight and graph starts ending > 0.1% apart:")
    if ref:
        straight, graph = ref["start_lengths"][:, 0], ref["start_lengths"][:, 1]
        apart = np.abs(graph / straight - 1) > 1e-3
        print(
            f"- reference (per-start lengths at 33 nodes): {apart.mean():.3f} of "
            f"{apart.size} pairs (graph shorter on {np.sum(graph < straight * 0.999)},"
            f" longer on {np.sum(graph > straight * 1.001)})"
        )
    for key, row in rows.items():
        twin = key.replace(row["method"], row["method"] + "@graph", 1)
        if "@graph" in row["method"] or twin not in data:
            continue
        a, b = data[key], data[twin]
        common, ia, ib = np.intersect1d(a["pairs"], b["pairs"], return_indices=True)
        straight, graph = a["lengths"][ia], b["lengths"][ib]
        apart = np.abs(graph / straight - 1) > 1e-3
        print(
            f"- {row['method']} (vmap {row['vmap']}): {apart.mean():.3f} of "
            f"{common.size} pairs (graph shorter on "
            f"{np.sum(graph < straight * 0.999)}, longer on "
            f"{np.sum(graph > straight * 1.001)})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    parser.add_argument("methods", nargs="*", help=f"any of {', '.join(METHODS)}")
    parser.add_argument("--pairs", default="200", help="'all' or a sample size")
    parser.add_argument("--vmap", type=int, help="lockstep vmap group size")
    parser.add_argument("--repeats", type=int, help="timed runs (median)")
    parser.add_argument("--table", action="store_true", help="only print the table")
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if not args.table:
        for name in args.methods:
            row = measure(args.model, name, args.pairs, args.vmap, args.repeats)
            print(
                f"{name}: {row['seconds_per_geodesic']:.3f} s/geodesic "
                f"(compiled in {row['compile_seconds']:.0f} s)",
                flush=True,
            )
    table(args.model)
