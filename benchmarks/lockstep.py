"""The default solver one pair at a time against pairs in lockstep.

Solves the same pairs with `lg.geodesic`'s default solver twice: one at a time
(`jax.lax.map`) and in lockstep (`jax.vmap` over all of them, as GPUs solve many
pairs). Prints, per model: seconds per pair (median of `--repeats` runs, compile
time excluded), curve evaluations per pair (the mean of `num_evaluations`), the
evaluations a lockstep run computes per pair (every pair runs every iteration of
the slowest pair's loops; see `lockstep_evaluations`), the share converged, and
whether the two runs' lengths and counts agree. Per-pair arrays go to `--out`
(`<out>/<model>.npz`) for comparing two versions of the library:

    PYTHONPATH=src:benchmarks python benchmarks/lockstep.py elu relu --out /tmp/new
    PYTHONPATH=src:benchmarks python benchmarks/lockstep.py elu relu --compare \
        /tmp/old /tmp/new
"""

import argparse
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import models
import numpy as np
import optax
import reference

import latentgeo as lg


def _solve(metric, z0, z1, solver=None, init=None, max_steps=None):
    options = {} if solver is None else {"solver": solver}
    if max_steps is not None:
        options["discretisation"] = lg.Discretisation(max_steps=max_steps)
    result = lg.geodesic(metric, z0, z1, init=init, throw=False, **options)
    return dict(
        params=result.curve.params,
        length=result.length,
        energy=result.energy,
        steps=result.num_steps,
        evaluations=result.num_evaluations,
        converged=result.converged,
    )


def _timed(run, args, repeats):
    """The outputs, and the median wall and process CPU seconds of a run (CPU
    time is the fairer measure on a shared machine)."""
    program = run.lower(*args).compile()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(program(*args))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return jax.tree.map(np.asarray, out), float(np.median(wall)), float(np.median(cpu))


def lockstep_evaluations(metric, z0, z1, steps) -> float:
    """Evaluations per pair that a lockstep run computes.

    The one-loop `Escalating` (one evaluation per iteration): `1 + max(steps)`.
    The former `Escalating` ran the fast solver, then under `vmap` (its
    `lax.cond` a `select`) both the robust restart (Adam warm-up, then
    Levenberg–Marquardt) and the continued fast solver for every pair, each
    loop as long as its slowest pair; its cost is computed from those parts,
    run here one at a time.
    """
    if hasattr(lg._solvers, "_escalating"):  # the one-loop version
        return 1.0 + float(np.max(steps))
    fast = lg.LevenbergMarquardt()
    adam = lg.OptaxSolver(optax.adam(5e-3), rtol=0.0, patience=10, chord_units=True)

    @eqx.filter_jit
    def parts(z0, z1):
        def one(a, b):
            first = lg.geodesic(
                metric,
                a,
                b,
                solver=fast,
                throw=False,
                discretisation=lg.Discretisation(max_steps=30),
            )
            warm = lg.geodesic(
                metric,
                a,
                b,
                solver=adam,
                throw=False,
                discretisation=lg.Discretisation(max_steps=30),
            )
            robust = lg.geodesic(
                metric, a, b, init=warm.curve, solver=fast, throw=False
            )
            continued = lg.geodesic(
                metric, a, b, init=first.curve, solver=fast, throw=False
            )
            return (
                first.num_evaluations,
                warm.num_evaluations,
                robust.num_evaluations,
                continued.num_evaluations,
            )

        return jax.lax.map(lambda x: one(*x), (z0, z1))

    counts = [np.asarray(c) for c in parts(z0, z1)]
    return float(sum(np.max(c) for c in counts))


def measure(model, num_pairs, repeats):
    metric, _, query = models.load(model)
    rows, cols = models.pairs()
    picks = reference.pair_sample(num_pairs)
    z0 = jnp.asarray(query[rows[picks]])
    z1 = jnp.asarray(query[cols[picks]])
    solve = lambda a, b: _solve(metric, a, b)  # noqa: E731
    single = jax.jit(lambda a, b: jax.lax.map(lambda x: solve(*x), (a, b)))
    batched = jax.jit(jax.vmap(solve))
    one, one_seconds, one_cpu = _timed(single, (z0, z1), repeats)
    lock, lock_seconds, lock_cpu = _timed(batched, (z0, z1), repeats)
    lock_evals = lockstep_evaluations(metric, z0, z1, one["steps"])
    return dict(
        pairs=picks,
        one=one,
        lock=lock,
        one_seconds=one_seconds / len(picks),
        lock_seconds=lock_seconds / len(picks),
        one_cpu=one_cpu / len(picks),
        lock_cpu=lock_cpu / len(picks),
        lock_evaluations=lock_evals,
    )


def report(model, m):
    one, lock = m["one"], m["lock"]
    same_lengths = np.max(np.abs(one["length"] / lock["length"] - 1))
    same_counts = np.array_equal(one["evaluations"], lock["evaluations"])
    print(
        f"{model}: {len(m['pairs'])} pairs; one at a time "
        f"{m['one_seconds']:.3f} s/pair ({m['one_cpu']:.3f} CPU), "
        f"{np.mean(one['evaluations']):.1f} "
        f"evaluations/pair (median {np.median(one['evaluations']):.0f}, max "
        f"{np.max(one['evaluations'])}); lockstep {m['lock_seconds']:.3f} s/pair "
        f"({m['lock_cpu']:.3f} CPU), "
        f"{m['lock_evaluations']:.0f} evaluations/pair computed; ratio "
        f"{m['lock_seconds'] / m['one_seconds']:.2f} (time), "
        f"{m['lock_cpu'] / m['one_cpu']:.2f} (CPU time), "
        f"{m['lock_evaluations'] / np.mean(one['evaluations']):.2f} (evaluations); "
        f"converged {np.mean(one['converged']):.3f}; lockstep vs one at a time: "
        f"max relative length difference {same_lengths:.1e}, evaluation counts "
        f"{'identical' if same_counts else 'differ'}",
        flush=True,
    )


def save(path, m):
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {f"{k}_{name}": v for k in ("one", "lock") for name, v in m[k].items()}
    names = ("one_seconds", "lock_seconds", "one_cpu", "lock_cpu", "lock_evaluations")
    scalars = {f"summary_{k}": m[k] for k in names}
    np.savez(path, pairs=m["pairs"], **flat, **scalars)


def compare(model, old_dir, new_dir):
    old = dict(np.load(Path(old_dir) / f"{model}.npz"))
    new = dict(np.load(Path(new_dir) / f"{model}.npz"))
    both = old["one_converged"] & new["one_converged"]
    relative = new["one_length"] / old["one_length"] - 1
    print(
        f"{model}: new vs old lengths (one at a time): both converged on "
        f"{both.sum()} of {both.size}; max |relative difference| there "
        f"{np.max(np.abs(relative[both])) if both.any() else np.nan:.1e}; "
        f"new shorter by > 1e-5 on {np.sum(relative < -1e-5)}, longer by > 1e-5 "
        f"on {np.sum(relative > 1e-5)} (max {np.max(relative):.1e}); steps equal "
        f"on {np.sum(old['one_steps'] == new['one_steps'])}; evaluations saved "
        f"per pair {np.mean(old['one_evaluations'] - new['one_evaluations']):.2f}",
        flush=True,
    )
    for name, run in (("old", old), ("new", new)):
        one, lock = run["summary_one_seconds"], run["summary_lock_seconds"]
        one_cpu, lock_cpu = run["summary_one_cpu"], run["summary_lock_cpu"]
        print(
            f"  {name}: one at a time {one:.3f} s/pair ({one_cpu:.3f} CPU), "
            f"{np.mean(run['one_evaluations']):.1f} evaluations/pair; lockstep "
            f"{lock:.3f} s/pair ({lock_cpu:.3f} CPU), "
            f"{run['summary_lock_evaluations']:.0f} evaluations/pair"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=sorted(models.MODELS))
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="folder for the per-pair arrays")
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
    args = parser.parse_args()
    for name in args.models:
        if args.compare:
            compare(name, *args.compare)
            continue
        measured = measure(name, args.pairs, args.repeats)
        report(name, measured)
        if args.out:
            save(args.out / f"{name}.npz", measured)
