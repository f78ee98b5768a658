"""Moving in latent space: exponential and logarithm maps and a Fréchet mean.

The circle of `examples/circle.py`: noisy 2-D codes on a circle, embedded in 16
dimensions, and an ensemble of 8 tanh decoders with a broad prior (weights 6x the
default), so that the expected metric is large in the hole and small on the
data. tanh decoders are smooth, as the geodesic ODE behind `exp_map` needs.

- Left: geodesics from one code in 16 directions, all with the same metric
  speed (`exp_path`): they run far along the data and stop short in the hole.
  In red, the geodesic to a target code found by `log_map` with Newton shooting,
  integrated forward by `exp_map`, lands on the target.
- Right: the Fréchet mean of five codes on the upper half of the circle, with
  its geodesics to them; their Euclidean mean lies inside the ring, off the data.

Run (about two minutes on a 2-core CPU):

    python examples/moving.py [--output docs/assets/moving.png]

It prints the numbers quoted on docs/moving.md and saves the figure there.
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg

PRIOR_SCALE = 6.0  # as in examples/circle.py: members disagree off the data
SPEED = 1.5  # metric length of every path of the fan
SOLVER = lg.LevenbergMarquardt()  # the expected metric is a sum of squares


def make_member(key, obs_dim: int):
    mlp = eqx.nn.MLP(2, obs_dim, 128, 2, activation=jnp.tanh, key=key)
    return jax.tree.map(lambda w: PRIOR_SCALE * w if eqx.is_array(w) else w, mlp)


def train(seed: int = 0):
    latents, observations = lg.datasets.make_circle(500, noise=0.05, seed=seed)
    keys = jax.random.split(jax.random.key(seed))
    ensemble = lg.EnsembleDecoder.init(
        lambda k: make_member(k, observations.shape[1]), 8, key=keys[0]
    )
    ensemble, _ = lg.train_decoders(
        ensemble, latents, observations, key=keys[1], num_steps=2000, progress=False
    )
    return latents, ensemble


def fan(metric, z0, num_directions: int = 16):
    """Geodesics from `z0` in evenly spaced directions, each of metric length
    `SPEED` (the velocity scaled by its metric norm at `z0`)."""
    angles = np.linspace(0, 2 * np.pi, num_directions, endpoint=False)
    directions = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    speeds = jax.vmap(lambda v: metric.norm(z0, v))(directions)
    velocities = SPEED * directions / speeds[:, None]
    return jax.vmap(lambda v: lg.exp_path(metric, z0, v, throw=False))(velocities)


def main(output: str) -> None:
    start = time.perf_counter()
    latents, ensemble = train()
    metric = lg.ExpectedMetric(ensemble)
    print(f"trained 8 decoders in {time.perf_counter() - start:.0f} s")

    z0 = jnp.array([1.0, 0.0])
    paths = fan(metric, z0)
    reach = np.linalg.norm(np.asarray(paths.points[:, -1] - z0), axis=1)
    print(
        f"fan: {int(paths.converged.sum())}/{len(reach)} paths integrated; "
        f"Euclidean reach of a metric length {SPEED}: "
        f"{reach.min():.2f} (shortest) to {reach.max():.2f} (longest)"
    )

    # On this strongly curved metric the spline's direction at t = 0 is only as
    # good as its resolution (`shooting=None`: the boundary-value estimate);
    # shooting, log_map's default, makes exp_map(v) hit the target.
    target = jnp.array([np.cos(1.0), np.sin(1.0)], jnp.float32)
    fine = lg.Discretisation(num_segments=40, num_points=160)
    velocities = {
        "10 segments": lg.log_map(metric, z0, target, solver=SOLVER, shooting=None),
        "40 segments": lg.log_map(
            metric, z0, target, solver=SOLVER, discretisation=fine, shooting=None
        ),
        "10 segments + Shooting()": lg.log_map(
            metric, z0, target, solver=SOLVER, shooting=lg.Shooting()
        ),
    }
    for name, v in velocities.items():
        miss = float(jnp.linalg.norm(lg.exp_map(metric, z0, v) - target))
        print(
            f"log_map, {name}: |v|_G = {float(metric.norm(z0, v)):.4f}, "
            f"|exp_map(v) - z1| = {miss:.1e} (|z1 - z0| = "
            f"{float(jnp.linalg.norm(target - z0)):.2f})"
        )
    to_target = lg.exp_path(metric, z0, velocities["10 segments + Shooting()"])

    angles = np.deg2rad([30.0, 60.0, 90.0, 120.0, 150.0])
    codes = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], 1), jnp.float32)
    start = time.perf_counter()
    mean = lg.frechet_mean(metric, codes, solver=SOLVER)
    euclidean = np.asarray(codes).mean(axis=0)
    print(
        f"Fréchet mean {np.round(np.asarray(mean.mean), 3)} (radius "
        f"{float(jnp.linalg.norm(mean.mean)):.3f}) in {int(mean.num_steps)} "
        f"iterations, {time.perf_counter() - start:.0f} s; Euclidean mean "
        f"{np.round(euclidean, 3)} (radius {np.linalg.norm(euclidean):.3f}); "
        f"RMS distance {float(jnp.sqrt(mean.variance)):.3f}"
    )
    plot(ensemble, latents, paths, to_target, target, codes, mean, euclidean, output)
    print(f"figure saved to {output}")


def plot(ensemble, latents, paths, to_target, target, codes, mean, euclidean, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    bounds = (-1.8, 1.8, -1.8, 1.8)
    for ax in (left, right):
        lg.plot.uncertainty_map(ensemble, bounds=bounds, log=True, ax=ax)
        ax.scatter(*np.asarray(latents).T, s=3, color="white", alpha=0.5)
    for points in np.asarray(paths.points):
        left.plot(*points.T, color="tab:cyan", lw=1)
    ends = np.asarray(paths.points[:, -1])
    left.plot(*ends.T, ".", color="tab:cyan", label=f"exp_map, metric length {SPEED}")
    left.plot(*np.asarray(to_target.points).T, color="tab:red", lw=2, label="log_map")
    left.plot(*np.asarray(target), "*", color="tab:red", ms=12)
    left.set_title("Exponential map: equal metric lengths")
    times = jnp.linspace(0, 1, 65)
    for points in np.asarray(jax.vmap(lambda c: c(times))(mean.curves)):
        right.plot(*points.T, color="tab:red", lw=1)
    right.plot(*np.asarray(codes).T, "o", color="tab:orange", label="codes")
    right.plot(*np.asarray(mean.mean), "*", color="tab:red", ms=14, label="Fréchet")
    right.plot(*euclidean, "X", color="black", ms=10, label="Euclidean mean")
    right.set_title("Fréchet mean and its geodesics")
    for ax in (left, right):
        ax.set_xlim(bounds[:2])
        ax.set_ylim(bounds[2:])
        ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    fig.savefig(output, dpi=100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="moving.png", help="figure path")
    main(parser.parse_args().output)
