"""Device placement and the sharded solve of one chunk of pairs.

A chunk's pairs are laid out over a one-dimensional `jax.sharding.Mesh` (axis
`"pairs"`), the metric is replicated, and `jax.shard_map` runs the solve SPMD on
every device. Across hosts (after `jax.distributed.initialize()`) each process
supplies only its own devices' shards and gathers the whole chunk's results.
"""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike

from ._checks import select_tree
from ._curve import CubicSpline
from ._discretisation import Discretisation
from ._energy import AbstractEnergy
from ._geodesic import (
    GeodesicResult,
    curve_objective,
    geodesic,
    prepared_ends,
    solved,
)
from ._metric import AbstractMetric
from ._solvers import RESULTS, AbstractCurveSolver, iteration_of, refill_solve

_AXIS = "pairs"


class Placement(eqx.Module):
    """Where a chunk's pairs are solved: the mesh over `devices` and the number
    of pairs per device solved in lockstep (`vmap_size`, `None` for all)."""

    mesh: Mesh = eqx.field(static=True)
    vmap_size: int | None = eqx.field(static=True)

    def round_up(self, size: int) -> int:
        """`size` rounded up to a multiple of the number of devices."""
        num_devices = self.mesh.devices.size
        return -(-size // num_devices) * num_devices

    def replicate(self, metric: AbstractMetric) -> AbstractMetric:
        """`metric` with every array replicated on all devices of the mesh."""
        replicated = NamedSharding(self.mesh, PartitionSpec())
        dynamic, static = eqx.partition(metric, eqx.is_array)
        dynamic = jtu.tree_map(lambda x: _global_array(x, replicated), dynamic)
        return eqx.combine(dynamic, static)

    def shard(self, x: ArrayLike) -> jax.Array:
        """`x` split along its first axis over the devices of the mesh."""
        return _global_array(x, NamedSharding(self.mesh, PartitionSpec(_AXIS)))


def place(
    devices: Sequence[jax.Device] | None, vmap_size: int | None | Literal["auto"]
) -> Placement:
    """The `Placement` over `devices` (default `jax.devices()`); `"auto"`
    solves one pair after the other on CPUs and the whole share at once
    elsewhere."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("`devices` is empty.")
    if vmap_size == "auto":
        vmap_size = 1 if devices[0].platform == "cpu" else None
    elif vmap_size is not None and vmap_size < 1:
        raise ValueError(f"`vmap_size` must be None or >= 1, got {vmap_size}.")
    return Placement(Mesh(np.asarray(devices), (_AXIS,)), vmap_size)


def solve_chunk(
    placement: Placement,
    metric: AbstractMetric,
    starts: jax.Array,
    ends: jax.Array,
    init_params: jax.Array | None,
    solver: AbstractCurveSolver,
    energy: AbstractEnergy,
    discretisation: Discretisation,
    skip: jax.Array | None = None,
) -> dict[str, np.ndarray]:
    """Solve one chunk of pairs (`starts`, `ends`, `init_params` and `skip`
    sharded by `placement.shard`, `metric` by `placement.replicate`) and return
    its `lengths`, `converged`, `num_steps` and curve `params` on the host.

    A pair whose `skip` is true is not solved where pairs are solved one at a
    time (`vmap_size=1`) or in refilled lockstep slots (a solver that runs as
    one loop): it keeps its `init_params`, with NaN length, no steps and
    `converged` false. In lockstep groups of other solvers it is solved like
    the others (a batched branch runs both sides), so its `init_params` must
    be a usable start there too."""
    out = _solve_chunk(
        metric,
        starts,
        ends,
        init_params,
        skip,
        (solver, energy, discretisation),
        placement.mesh,
        placement.vmap_size,
    )
    return dict(
        lengths=_to_host(out.length),
        converged=_to_host(out.converged),
        num_steps=_to_host(out.num_steps),
        params=_to_host(out.curve.params),
    )


@eqx.filter_jit
def _solve_chunk(
    metric, starts, ends, init_params, skip, settings, mesh, vmap_size
) -> GeodesicResult:
    """The shards run SPMD on every device of `mesh` (`jax.shard_map`); each
    device loops until its own pairs converge, without waiting for the others.
    Within a shard, `vmap_size` pairs (all of them if `None`) are solved in
    lockstep under `jax.vmap`: where the solver runs as one loop (the
    default's `Escalating`, `LevenbergMarquardt`, `OptaxSolver`), in slots
    refilled with the next pair as each pair stops
    (`latentgeo._solvers._refill`); otherwise in groups, one after the other
    (`jax.lax.map`). A pair marked in `skip` is not solved one pair at a time
    or in refilled slots."""
    dynamic, static = eqx.partition(metric, eqx.is_array)
    solver, energy, discretisation = settings

    def solve_shard(dynamic, starts, ends, init_params, skip):
        local_metric = eqx.combine(dynamic, static)

        def solve(z0, z1, params):
            init = None if params is None else CubicSpline(z0, z1, params)
            return geodesic(
                local_metric,
                z0,
                z1,
                init=init,
                solver=solver,
                energy=energy,
                discretisation=discretisation,
                throw=False,
            )

        if vmap_size != 1:
            refilled = _solve_refilled(
                local_metric, starts, ends, init_params, skip, settings, vmap_size
            )
            if refilled is not None:
                return refilled
        if vmap_size is None:
            in_axes = (0, 0, None if init_params is None else 0)
            return jax.vmap(solve, in_axes=in_axes)(starts, ends, init_params)
        # One pair at a time keeps `lax.cond` a branch, not a `select` of both.
        group = None if vmap_size == 1 else vmap_size
        if skip is None or vmap_size != 1:
            pairs = (starts, ends, init_params)
            return jax.lax.map(lambda args: solve(*args), pairs, batch_size=group)

        def solve_or_keep(args):
            z0, z1, params, skip_pair = args
            return jax.lax.cond(skip_pair, _unsolved, solve, z0, z1, params)

        pairs = (starts, ends, init_params, skip)
        return jax.lax.map(solve_or_keep, pairs)

    pairs = PartitionSpec(_AXIS)
    return jax.shard_map(
        solve_shard,
        mesh=mesh,
        in_specs=(PartitionSpec(), pairs, pairs, pairs, pairs),
        out_specs=pairs,
        check_vma=False,
    )(dynamic, starts, ends, init_params, skip)


def _solve_refilled(
    metric, starts, ends, init_params, skip, settings, vmap_size
) -> GeodesicResult | None:
    """The shard's pairs solved in `vmap_size` lockstep slots (all pairs if
    `None`), each refilled as its pair stops; `None` if the solver does not
    run as one loop."""
    solver, energy, discretisation = settings

    def prepare(z0, z1, params):
        init = None if params is None else CubicSpline(z0, z1, params)
        return prepared_ends(metric, z0, z1, init, discretisation)

    in_axes = (0, 0, None if init_params is None else 0)
    z0s, z1s, params = jax.vmap(prepare, in_axes=in_axes)(starts, ends, init_params)
    times = discretisation.times(z0s.dtype)

    def make_objective(z0, z1):
        return curve_objective(metric, z0, z1, energy, times)

    found = iteration_of(
        solver, make_objective(z0s[0], z1s[0]), discretisation.max_steps
    )
    if found is None:
        return None
    iteration, max_steps = found
    num_pairs = z0s.shape[0]
    skip = jnp.zeros(num_pairs, bool) if skip is None else skip
    width = num_pairs if vmap_size is None else vmap_size
    with jax.default_matmul_precision("highest"):
        solutions = refill_solve(
            iteration, make_objective, z0s, z1s, params, skip, max_steps, width
        )
        results = jax.vmap(
            lambda z0, z1, solution: solved(
                metric, z0, z1, solution, energy, times, False
            )
        )(z0s, z1s, solutions)
    unsolved = jax.vmap(_unsolved)(z0s, z1s, params)
    return jax.vmap(select_tree)(skip, unsolved, results)


def _unsolved(z0, z1, params) -> GeodesicResult:
    """The result of a pair left unsolved: its starting curve, NaN length and
    energy, no steps, not converged."""
    nan = jnp.full((), jnp.nan, params.dtype)
    return GeodesicResult(
        curve=CubicSpline(z0, z1, params),
        length=nan,
        energy=nan,
        num_steps=jnp.zeros((), jnp.int32),
        num_evaluations=jnp.zeros((), jnp.int32),
        result=RESULTS.max_steps_reached,
    )


def _global_array(x, sharding: NamedSharding) -> jax.Array:
    """`x` as an array laid out by `sharding`; each process supplies only the
    shards of its own devices, so this works across hosts too."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _to_host(x: jax.Array) -> np.ndarray:
    if x.is_fully_addressable:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
