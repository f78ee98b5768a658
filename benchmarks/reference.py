"""A fine float64 reference length for every benchmark pair, resumable.

The reference is the shortest of two polylines: one from an independent solve
(below), and the `pairwise_geodesics` default's curve polished by the same
solver. Each curve is a polyline with free inner nodes and fixed ends (nodes
at `t = i / T`), and minimises the finite-difference energy
`T' * sum ||e(x_{j+1}) - e(x_j)||^2` of the polyline sampled at `T' + 1`
uniform points `x_j` (`metric.curve_energy`; `T' = samples * T`, the nodes
among them), in float64, with L-BFGS
(`optax.lbfgs`, zoom line search, inside one `lax.while_loop`) in hierarchical
(Faber-Schauder) coordinates, in which the Dirichlet energy's conditioning does
not grow with `T`. Coarse to fine, upsampling by linear interpolation:

1. the starts, each resampled to 17 nodes: the straight line; the shortest
   path in the graph over query and training codes
   (`lg.graph_paths(metric, query, extra_points=train_codes)`); the shortest
   path in the graph over the query codes alone; in 2-D, the shortest path on
   the 512-cell lattice over the query codes' box (`lg.lattice_paths`), which
   finds routes no neighbour graph has. Each is solved at 16 segments (energy
   on 65 points), then 32 (65 points);
2. the best of them (shortest at 32 segments) is refined at 64 segments (129
   points), 128 (129) and 256 (257), at most 300 iterations each;
3. three restarts at constant speed: the nodes are moved along the polyline
   to equal metric arc length (`constant_speed`) and solved again at 256
   segments, keeping the shortest. On a ReLU decoder a polyline stops where
   its nodes straddle activation boundaries at the wrong times (a kink pins it
   as it pins a spline); evening its speed moves them and lets it go on;
4. the library's curve (`pairwise_geodesics`, default call), sampled at 257
   nodes, is solved at 256 segments and restarted the same way. On a ReLU
   decoder no solve from a coarse start reaches the floor on every pair; a
   reference that the library's own answer can beat is no reference. The
   independent solve's length is stored beside the reference, so that how
   often the polishing decides is on record.

Every curve is scored by ONE length shared with the spline curves:
`metric.curve_length` of the curve sampled at 1025 uniform parameter values, in
float64. Stored per pair: the reference length, the independent solve's
length, the per-start lengths at 32 segments (for the start dependence),
iterations per level (the restarts' summed, the polishing's summed), and the
257 nodes.

Run (in the background, one process per core at most; a second process with
`--from-end` takes the chunks from the other end):

    PYTHONPATH=src:benchmarks nice -n 15 python benchmarks/reference.py relu
    PYTHONPATH=src:benchmarks nice -n 15 python benchmarks/reference.py relu --from-end
    PYTHONPATH=src:benchmarks python benchmarks/reference.py elu --pairs 200
    PYTHONPATH=src:benchmarks python benchmarks/reference.py relu --validate 50

Pairs are solved in a fixed random order (`pair_order()`), 25 per chunk; a run
with `--pairs N` does the first N, so every sample (a prefix of that order,
`pair_sample(N)`) is covered first. Output: one file per chunk,
`benchmarks/results/reference/<model>/chunk_<k>.npz` (about 100 kB each,
committed: a reference takes hours and no machine keeps an ignored cache),
written atomically; a rerun skips the chunks that exist and were solved by
this `VERSION` (an interrupt, even `kill -9`, loses at most the chunk in
progress). Progress and ETA: `benchmarks/results/reference/<model>.log`.
`--validate N` re-solves the first N pairs at doubled resolution and iterations
(512 segments, twice the iteration caps) and prints the relative change.
`load(model)` returns what is done so far.
"""

import argparse
import dataclasses
import io
import os
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
import optax

import latentgeo as lg
from latentgeo._atomic import atomic_write

OUTPUT = Path(__file__).parent / "results" / "reference"
FINE = 1025
CHUNK = 25
START_NAMES = ("straight", "graph", "graph-query-only")
# Stored with every chunk; chunks of another version are solved again. 2: the
# lattice start, 300 iterations per refinement level, constant-speed restarts,
# the library's curve polished.
VERSION = 2


class Level(NamedTuple):
    """One L-BFGS solve: `segments` of the polyline, its energy sampled
    `samples` times per segment (so that coarse polylines cannot cut through
    high-metric regions between their nodes), at most `max_steps` iterations,
    stopping after `patience` iterations without a relative improvement of
    `rtol`."""

    segments: int
    samples: int
    max_steps: int
    rtol: float
    patience: int


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The levels every start runs (`explore`), those the best start runs
    after them (`refine`), and how many times the refined polyline is then
    restarted at constant speed (`constant_speed`) and solved again at the
    last level, keeping the shortest (`restarts`)."""

    explore: tuple = (Level(16, 4, 100, 1e-8, 5), Level(32, 2, 100, 1e-8, 5))
    refine: tuple = (
        Level(64, 2, 300, 1e-10, 10),
        Level(128, 1, 300, 1e-10, 10),
        Level(256, 1, 300, 1e-10, 10),
    )
    restarts: int = 3

    def doubled(self) -> "Schedule":
        """Twice the iterations per level and one finer level (512 segments)."""

        def more(levels):
            return tuple(v._replace(max_steps=2 * v.max_steps) for v in levels)

        last = self.refine[-1]
        finer = last._replace(segments=2 * last.segments, max_steps=2 * last.max_steps)
        return Schedule(more(self.explore), more(self.refine) + (finer,), self.restarts)


STANDARD = Schedule()


def to_float64(tree):
    return jax.tree.map(
        lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree
    )


def polyline_at(nodes, times):
    """The polyline through `nodes` `(T + 1, d)` (at `t = i / T`) at `times` `(n,)`
    in [0, 1]: `(n, d)`."""
    num_segments = nodes.shape[0] - 1
    t = times * num_segments
    index = jnp.clip(jnp.floor(t).astype(int), 0, num_segments - 1)
    fraction = (t - index.astype(t.dtype))[:, None]
    return nodes[index] * (1 - fraction) + nodes[index + 1] * fraction


def polyline(nodes, num=FINE):
    """`num` points of the polyline through `nodes` (at `t = i / T`), uniform in t."""
    return polyline_at(nodes, jnp.linspace(0.0, 1.0, num, dtype=nodes.dtype))


def constant_speed(metric, nodes, samples=FINE // 256):
    """The polyline's nodes moved along it to equal metric arc length, measured
    on `samples` steps per segment (`metric.edge_lengths`): the same path,
    traversed at nearly constant speed. `nodes` `(T + 1, d)` -> `(T + 1, d)`;
    the nodes themselves where the length is zero or not finite."""
    num = samples * (nodes.shape[0] - 1) + 1
    times = jnp.linspace(0.0, 1.0, num, dtype=nodes.dtype)
    consecutive = jnp.stack([jnp.arange(num - 1), jnp.arange(1, num)], 1)
    steps = metric.edge_lengths(polyline_at(nodes, times), consecutive)
    arc = jnp.concatenate([jnp.zeros(1, steps.dtype), jnp.cumsum(steps)])
    usable = jnp.isfinite(arc[-1]) & (arc[-1] > 0)
    targets = jnp.linspace(0.0, 1.0, nodes.shape[0], dtype=nodes.dtype) * arc[-1]
    moved = polyline_at(nodes, jnp.interp(targets, arc, times))
    return jnp.where(usable, moved.at[0].set(nodes[0]).at[-1].set(nodes[-1]), nodes)


def fine_length(metric, nodes):
    """The shared length measure: `metric.curve_length` on 1025 points."""
    return metric.curve_length(polyline(nodes))


def upsample(nodes):
    """Twice the segments: midpoints inserted (linear interpolation)."""
    middle = (nodes[1:] + nodes[:-1]) / 2
    both = jnp.stack([nodes[:-1], middle], axis=1).reshape(-1, nodes.shape[1])
    return jnp.concatenate([both, nodes[-1:]])


def analyse(nodes):
    """Hierarchical (Faber-Schauder) coordinates of a polyline of `2^L + 1`
    nodes: per level, the midpoints' offsets from their neighbours' mean,
    divided by `sqrt(h)` (`h` the level's node spacing), coarsest first. In
    these coordinates the straight line is zero and the Euclidean Dirichlet
    energy is diagonal with equal weights on every level (the hat functions
    are orthogonal in H^1 on an interval), so its condition number no longer
    grows like `T^2`."""
    details = []
    while nodes.shape[0] > 2:
        h = 1.0 / (nodes.shape[0] - 1)
        coarse = nodes[::2]
        middle = (coarse[1:] + coarse[:-1]) / 2
        details.append((nodes[1::2] - middle) / jnp.sqrt(h))
        nodes = coarse
    return tuple(details[::-1])


def synthesise(details, z0, z1):
    """The polyline of hierarchical coordinates `details` (see `analyse`)."""
    nodes = jnp.stack([z0, z1])
    for detail in details:
        h = 1.0 / (2 * (nodes.shape[0] - 1))
        middle = (nodes[1:] + nodes[:-1]) / 2 + jnp.sqrt(h) * detail
        both = jnp.stack([nodes[:-1], middle], axis=1).reshape(-1, nodes.shape[1])
        nodes = jnp.concatenate([both, nodes[-1:]])
    return nodes


def lbfgs(metric, nodes, samples, max_steps, rtol, patience):
    """Minimise the energy of the polyline sampled `samples` times per segment
    over its inner nodes, in hierarchical coordinates; returns the best nodes
    and the iterations taken."""
    z0, z1 = nodes[0], nodes[-1]
    num = samples * (nodes.shape[0] - 1) + 1

    def energy(details):
        return metric.curve_energy(polyline(synthesise(details, z0, z1), num))

    optimiser = optax.lbfgs(memory_size=20)
    value_and_grad = optax.value_and_grad_from_state(energy)
    x = analyse(nodes)
    state = optimiser.init(x)

    def cond(carry):
        _, _, step, _, _, stalled = carry
        return (step < max_steps) & (stalled < patience)

    def body(carry):
        x, state, step, best_x, best_value, stalled = carry
        value, grad = value_and_grad(x, state=state)
        # optax mixes Python floats and int32 counters (strict promotion).
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimiser.update(
                grad, state, x, value=value, grad=grad, value_fn=energy
            )
        improved = value < best_value * (1 - rtol)
        better = value < best_value
        best_x = jax.tree.map(lambda a, b: jnp.where(better, a, b), x, best_x)
        best_value = jnp.where(better, value, best_value)
        stalled = jnp.where(improved, 0, stalled + 1)
        x = optax.apply_updates(x, updates)
        return x, state, step + 1, best_x, best_value, stalled

    carry = (x, state, jnp.array(0), x, jnp.array(jnp.inf, nodes.dtype), jnp.array(0))
    _, _, steps, best, _, _ = jax.lax.while_loop(cond, body, carry)
    return synthesise(best, z0, z1), steps


def solve_levels(metric, nodes, levels):
    """Solve at each `Level`, upsampling in between."""
    steps = []
    for level in levels:
        while nodes.shape[0] - 1 < level.segments:
            nodes = upsample(nodes)
        nodes, taken = lbfgs(metric, nodes, *level[1:])
        steps.append(taken)
    return nodes, jnp.stack(steps)


def restart(metric, nodes, level, restarts):
    """`restarts` rounds: move the nodes to constant speed and solve again at
    `level`, keeping the shorter polyline. Returns `(nodes, fine_length,
    iterations)`."""

    def round_(carry, _):
        best, best_length = carry
        candidate, taken = lbfgs(metric, constant_speed(metric, best), *level[1:])
        length = fine_length(metric, candidate)
        shorter = length < best_length
        best = jnp.where(shorter, candidate, best)
        return (best, jnp.where(shorter, length, best_length)), taken

    (nodes, length), taken = jax.lax.scan(
        round_, (nodes, fine_length(metric, nodes)), length=restarts
    )
    return nodes, length, taken.sum()


class PairReference(NamedTuple):
    """One pair's reference: `length`, the shortest of the independent solve
    (`independent_length`) and the polished library curves; `start_lengths`
    `(S,)` at 32 segments; the shortest polyline's `nodes` `(T + 1, d)`; and
    `steps`, the iterations per explore and refine level, of the restarts and
    of the polishing."""

    length: jax.Array
    independent_length: jax.Array
    start_lengths: jax.Array
    nodes: jax.Array
    steps: jax.Array


def solve_pair(metric, starts, polish, schedule):
    """Reference for one pair from `starts` `(S, 17, d)`: the best start,
    refined and restarted at constant speed; then the curves in `polish`
    `(Q, T + 1, d)` (Q >= 0; T the last level's segments: other solvers'
    answers), each solved at the last level and restarted the same way. The
    shortest of them all is the reference."""

    last = schedule.refine[-1]
    if polish.shape[1] != last_nodes(schedule):
        raise ValueError(f"polish curves need {last_nodes(schedule)} nodes")

    def explore(start):
        nodes, steps = solve_levels(metric, start, schedule.explore)
        return nodes, fine_length(metric, nodes), steps

    def polished(curve):
        nodes, taken = lbfgs(metric, curve, *last[1:])
        nodes, length, more = restart(metric, nodes, last, schedule.restarts)
        return nodes, length, taken + more

    explored, start_lengths, explore_steps = jax.lax.map(explore, starts)
    best = explored[jnp.argmin(start_lengths)]
    nodes, refine_steps = solve_levels(metric, best, schedule.refine)
    nodes, independent, restart_steps = restart(metric, nodes, last, schedule.restarts)
    others, other_lengths, polish_steps = jax.lax.map(polished, polish)
    candidates = jnp.concatenate([nodes[None], others])
    lengths = jnp.concatenate([independent[None], other_lengths])
    steps = jnp.concatenate(
        [
            explore_steps.sum(0),
            refine_steps,
            restart_steps[None],
            polish_steps.sum(keepdims=True),
        ]
    )
    shortest = jnp.argmin(lengths)
    return PairReference(
        lengths[shortest], independent, start_lengths, candidates[shortest], steps
    )


def resample(path, along, num):
    """`num` points of the polyline `path` `(m, d)` at uniform `along` (its
    cumulative chord length, from 0 to 1)."""
    t = np.linspace(0.0, 1.0, num)
    return np.stack([np.interp(t, along, path[:, k]) for k in range(path.shape[1])], 1)


def graph_start(graph, i, j, num):
    """The graph path from query `i` to `j`, resampled at `num` points uniform in
    chord length."""
    path = graph.path(i, j).astype(np.float64)
    chords = np.linalg.norm(np.diff(path, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(chords)])
    return resample(path, along / along[-1], num)


def start_names(latent_dim):
    """The starts' names, in the order of `starting_curves` and of the stored
    `start_lengths`: the lattice start only in 2-D."""
    return START_NAMES + (("lattice",) if latent_dim == 2 else ())


def starting_curves(metric, train, query, rows, cols, num):
    """`(B, S, num, d)`: straight, graph (with training codes), graph (queries)
    and, in 2-D, the path on the lattice over the queries' box
    (`lg.lattice_paths`, 512 cells), as named by `start_names`."""
    graphs = [lg.graph_paths(metric, query, extra_points=train)]
    graphs.append(lg.graph_paths(metric, query))
    if query.shape[1] == 2:
        graphs.append(lg.lattice_paths(metric, query))
    t = np.linspace(0.0, 1.0, num)[:, None]
    q = query.astype(np.float64)
    curves = [
        [q[i] + t * (q[j] - q[i])] + [graph_start(g, i, j, num) for g in graphs]
        for i, j in zip(rows, cols)
    ]
    return np.asarray(curves)


def library_curves(metric, query, rows, cols, num):
    """`(B, 1, num, d)`: the `pairwise_geodesics` default's curve for each pair
    (all pairs in one call, so one graph or lattice serves them), sampled at
    `num` uniform times, to be polished by `solve_pair`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unconverged curve is still a start
        result = lg.pairwise_geodesics(
            metric, jnp.asarray(query), pairs=np.stack([rows, cols], 1), progress=False
        )
    times = jnp.linspace(0.0, 1.0, num)
    curves = jax.vmap(lambda a, b, p: lg.CubicSpline(a, b, p)(times))(
        jnp.asarray(query[rows]), jnp.asarray(query[cols]), result.curves.params
    )
    return np.asarray(curves, np.float64)[:, None]


def pair_order():
    """A fixed random order of the 4,950 pair indices. Samples are its prefixes
    (sorted), so a 50-pair sample lies inside the 200-pair one, and a reference
    run over all pairs covers the samples first."""
    return np.random.default_rng(0).permutation(models.pairs()[0].size)


def pair_sample(num_pairs=None):
    """Sorted indices into the 4,950 pairs: all (`None`), or the first
    `num_pairs` of `pair_order()`."""
    order = pair_order()
    return np.sort(order if num_pairs is None else order[:num_pairs])


def folder(model):
    return OUTPUT / model


def last_nodes(schedule):
    """Nodes of the polylines at `schedule`'s last level."""
    return schedule.refine[-1].segments + 1


def compiled_solver(metric, schedule):
    """`solve(starts, polish)`: `solve_pair` over a batch, compiled once."""

    @jax.jit
    def run(metric, starts, polish):
        return jax.lax.map(lambda x: solve_pair(metric, *x, schedule), (starts, polish))

    return lambda starts, polish: run(metric, jnp.asarray(starts), jnp.asarray(polish))


def save_chunk(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def run(model, num_pairs=None, schedule=STANDARD, from_end=False):
    """Solve the first `num_pairs` (all by default) of `pair_order()` in chunks
    of 25, skipping chunks already stored; `from_end`: the last chunk first,
    so that a second process (on the other core) meets the first in the
    middle."""
    metric, train, query = models.load(model)
    metric64 = to_float64(metric)
    order = pair_order()
    chunks = [order[k : k + CHUNK] for k in range(0, order.size, CHUNK)]
    chunks = chunks[: -(-(num_pairs or order.size) // CHUNK)]
    out = folder(model)
    out.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log").open("a")
    todo = [k for k in range(len(chunks)) if not current(out / f"chunk_{k:04d}.npz")]
    todo = todo[::-1] if from_end else todo
    total = sum(map(len, chunks))
    done_pairs = total - sum(len(chunks[k]) for k in todo)
    print(
        f"{time.strftime('%F %T')} {model}: {total} pairs in {len(chunks)} chunks, "
        f"{len(chunks) - len(todo)} done; pid {os.getpid()}",
        file=log,
        flush=True,
    )
    if not todo:
        return
    rows, cols = models.pairs()
    picks = np.concatenate([chunks[k] for k in todo])
    first = schedule.explore[0].segments + 1
    starts = starting_curves(metric, train, query, rows[picks], cols[picks], first)
    solver = compiled_solver(metric64, schedule)
    for k in todo:
        if current(out / f"chunk_{k:04d}.npz"):  # solved by the other process
            continue
        index = np.concatenate([np.flatnonzero(picks == p) for p in chunks[k]])
        start = time.perf_counter()
        polish = library_curves(
            metric, query, rows[chunks[k]], cols[chunks[k]], last_nodes(schedule)
        )
        found = jax.block_until_ready(solver(starts[index], polish))
        seconds = time.perf_counter() - start
        save_chunk(
            out / f"chunk_{k:04d}.npz",
            pairs=chunks[k],
            rows=rows[chunks[k]],
            cols=cols[chunks[k]],
            **{name: np.asarray(value) for name, value in found._asdict().items()},
            seconds=np.full(len(chunks[k]), seconds / len(chunks[k])),
            version=VERSION,
        )
        done_pairs += len(chunks[k])
        remaining = (total - done_pairs) * seconds / len(chunks[k])
        print(
            f"{time.strftime('%F %T')} chunk {k + 1}/{len(chunks)}: "
            f"{seconds / len(chunks[k]):.2f} s/pair"
            f"{' (with compilation)' if k == todo[0] else ''}, "
            f"{done_pairs}/{total} pairs, ETA "
            f"{remaining / 3600:.1f} h, load {os.getloadavg()[0]:.1f}",
            file=log,
            flush=True,
        )
    print(f"{time.strftime('%F %T')} {model}: finished", file=log, flush=True)


def current(path):
    """Whether the chunk at `path` exists and was solved by this `VERSION`."""
    if not path.exists():
        return False
    with np.load(path) as chunk:
        return "version" in chunk and int(chunk["version"]) == VERSION


def load(model):
    """What is done so far: a dict of arrays over the finished pairs, sorted by
    pair index (`pairs`, `rows`, `cols`, `length`, `independent_length`,
    `start_lengths` `(P, S)` in the order of `start_names`, `nodes`
    `(P, 257, d)`, `steps`, `seconds`)."""
    files = [f for f in sorted(folder(model).glob("chunk_*.npz")) if current(f)]
    if not files:
        return None
    parts = [dict(np.load(f)) for f in files]
    for part in parts:
        del part["version"]
    table = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(table["pairs"])
    return {k: v[order] for k, v in table.items()}


def validate(model, num_pairs):
    """The reference at doubled resolution and iterations (`Schedule.doubled`)
    on the first `num_pairs` of `pair_order()`, against the stored standard
    run (run `reference.py <model> --pairs N` first). The doubled lengths go to
    `<model>-validate.npz` next to the chunks; prints the relative changes."""
    stored = load(model)
    picks = pair_sample(num_pairs)
    if stored is None or not np.all(np.isin(picks, stored["pairs"])):
        raise SystemExit(f"run `reference.py {model} --pairs {num_pairs}` first")
    standard = stored["length"][np.searchsorted(stored["pairs"], picks)]
    metric, train, query = models.load(model)
    rows, cols = models.pairs()
    first = STANDARD.explore[0].segments + 1
    starts = starting_curves(metric, train, query, rows[picks], cols[picks], first)
    finer = STANDARD.doubled()
    solver = compiled_solver(to_float64(metric), finer)
    start = time.perf_counter()
    polish = library_curves(metric, query, rows[picks], cols[picks], last_nodes(finer))
    length, _, _, _, steps = jax.block_until_ready(solver(starts, polish))
    seconds = (time.perf_counter() - start) / num_pairs
    doubled = np.asarray(length)
    save_chunk(
        OUTPUT / f"{model}-validate.npz",
        pairs=picks,
        standard=standard,
        doubled=doubled,
        steps=np.asarray(steps),
    )
    change = doubled / standard - 1
    size = np.abs(change)
    print(
        f"{model}: doubled resolution and iterations ({seconds:.1f} s/pair with "
        f"compilation), relative change of the length over {num_pairs} pairs: "
        f"median {100 * np.median(size):.4f}%, p90 {100 * np.quantile(size, 0.9):.4f}%"
        f", max {100 * size.max():.4f}%; shorter on {np.sum(change < 0)} pairs "
        f"(median {100 * np.median(change):.4f}%); iterations per level (median) "
        f"{np.median(np.asarray(steps), axis=0).tolist()}",
        flush=True,
    )


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    parser.add_argument("--pairs", type=int, help="a seeded sample (default all)")
    parser.add_argument("--validate", type=int, metavar="N", help="validate on N")
    parser.add_argument(
        "--from-end", action="store_true", help="last chunk first (a second process)"
    )
    args = parser.parse_args()
    if args.validate:
        validate(args.model, args.validate)
    else:
        run(args.model, args.pairs, from_end=args.from_end)
