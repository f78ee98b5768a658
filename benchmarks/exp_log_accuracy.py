"""Accuracy of the logarithm map (boundary-value estimate and Newton shooting) and
of the exponential map, against closed forms and against each other.

Run (about 3 minutes on a 2-core CPU):

    PYTHONPATH=src:tests python benchmarks/exp_log_accuracy.py

1. The unit sphere's chart (`tests/helpers.InverseStereographic`): random pairs
   20-160 degrees apart; error of `log_map` against the closed form, relative to
   the true velocity's Euclidean size; `exp_map` against the closed form.
2. A trained ensemble (four tanh decoders fitted to `make_circle` in R^5):
   no closed form, so the two solvers are compared: how far `exp_map` of the
   boundary-value velocity lands from `z1` (relative to |z1 - z0|), how far the
   shooting velocity moves from it, and how close shooting lands.
Numbers are medians and maxima over the pairs; the table is on docs/moving.md.
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import InverseStereographic, stereographic


def sphere_pairs(num_pairs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    chart = InverseStereographic()
    z0s, z1s, logs = [], [], []
    for _ in range(num_pairs):
        p = rng.normal(size=3)
        p[2] = -abs(p[2]) - 0.5  # southern hemisphere, away from the pole
        p /= np.linalg.norm(p)
        angle = np.deg2rad(rng.uniform(20, 160))
        tangent = np.cross(p, rng.normal(size=3))
        tangent *= angle / np.linalg.norm(tangent)
        q = np.cos(angle) * p + np.sin(angle) * tangent / angle
        z0 = stereographic(p)
        jacobian = np.asarray(jax.jacfwd(chart)(jnp.asarray(z0, jnp.float32)))
        logs.append(np.linalg.lstsq(jacobian, tangent, rcond=None)[0])
        z0s.append(z0)
        z1s.append(stereographic(q))
    as32 = lambda x: jnp.asarray(np.stack(x), jnp.float32)  # noqa: E731
    return as32(z0s), as32(z1s), np.stack(logs)


def summary(errors) -> str:
    errors = np.asarray(errors)
    return f"median {np.median(errors):.1e}, max {np.max(errors):.1e}"


def batched_log(metric, z0s, z1s, **options):
    solve = eqx.filter_jit(
        jax.vmap(lambda a, b: lg.log_map(metric, a, b, throw=False, **options))
    )
    solve(z0s, z1s).block_until_ready()  # compile
    start = time.perf_counter()
    v = solve(z0s, z1s).block_until_ready()
    return np.asarray(v), time.perf_counter() - start


def sphere(num_pairs: int = 24) -> None:
    metric = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
    z0s, z1s, truth = sphere_pairs(num_pairs)
    size = np.linalg.norm(truth, axis=1)
    print(f"Sphere chart, {num_pairs} pairs 20-160 degrees apart, float32")
    fine = lg.Discretisation(num_segments=20, num_points=128)
    cases = {
        "geodesic (default, 10 segments)": {"shooting": None},
        "geodesic (20 segments, 128 points)": {
            "shooting": None,
            "discretisation": fine,
        },
        "geodesic + Shooting() (the default)": {"shooting": lg.Shooting()},
    }
    for name, options in cases.items():
        v, seconds = batched_log(metric, z0s, z1s, **options)
        error = np.linalg.norm(v - truth, axis=1) / size
        print(f"  log_map, {name}: {summary(error)}  ({seconds:.2f} s)")
    ends = jax.vmap(lambda a, v: lg.exp_map(metric, a, v))(z0s, jnp.asarray(truth))
    error = np.linalg.norm(np.asarray(ends) - np.asarray(z1s), axis=1)
    print(f"  exp_map end point, |error| in the chart: {summary(error)}")


def ensemble(num_pairs: int = 12) -> None:
    latents, data = lg.datasets.make_circle(256, obs_dim=5, seed=0)
    members = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 5, 16, 2, activation=jax.nn.tanh, key=k),
        4,
        key=jax.random.key(0),
    )
    members, _ = lg.train_decoders(
        members, latents, data, key=jax.random.key(1), num_steps=1500, progress=False
    )
    metric = lg.ExpectedMetric(members)
    rng = np.random.default_rng(1)
    angles = rng.uniform(0, 2 * np.pi, size=(num_pairs, 2))
    z0s = jnp.asarray(np.stack([np.cos(angles[:, 0]), np.sin(angles[:, 0])], 1))
    z1s = jnp.asarray(np.stack([np.cos(angles[:, 1]), np.sin(angles[:, 1])], 1))
    chord = np.linalg.norm(np.asarray(z1s - z0s), axis=1)
    print(f"Trained tanh ensemble (K = 4, circle in R^5), {num_pairs} pairs, float32")
    estimate, seconds = batched_log(metric, z0s, z1s, shooting=None)
    refined, shot_seconds = batched_log(metric, z0s, z1s, shooting=lg.Shooting())
    exp = jax.vmap(lambda a, v: lg.exp_map(metric, a, v, throw=False))
    miss = np.linalg.norm(np.asarray(exp(z0s, jnp.asarray(estimate)) - z1s), axis=1)
    print(f"  |exp(log_map) - z1| / |z1 - z0|, boundary value: {summary(miss / chord)}")
    miss = np.linalg.norm(np.asarray(exp(z0s, jnp.asarray(refined)) - z1s), axis=1)
    print(f"  |exp(log_map) - z1| / |z1 - z0|, with shooting: {summary(miss / chord)}")
    change = np.linalg.norm(refined - estimate, axis=1)
    change /= np.linalg.norm(refined, axis=1)
    print(f"  |v_shooting - v_boundary| / |v_shooting|: {summary(change)}")
    print(f"  time for the batch: {seconds:.2f} s, with shooting {shot_seconds:.2f} s")


if __name__ == "__main__":
    sphere()
    ensemble()
