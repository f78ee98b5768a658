"""Geodesics that go around a hole: the main job of latentgeo.

Noisy 2-D points on a circle serve as latent codes; a fixed nonlinear map embeds
them in a 16-dimensional observation space. An ensemble of small decoders is
trained on them; off the data (the hole in the middle) the members disagree, so
the expected metric grows there and geodesics between opposite points of the
circle go around the hole instead of through it.

The members are initialised with weights `PRIOR_SCALE` times larger than the
default: seen as posterior samples, the ensemble needs a broad prior to disagree
where no data constrains it. With the default scale, smooth members interpolate
across the hole almost identically and the metric there is barely larger than
on the data (measured: 1.0x-1.3x); with scale 6 it is about 5x, which is what
makes going around (length ~7) shorter than crossing (length ~22).

Run: `python examples/circle.py [--output circle.png]` (about a minute on a
laptop CPU). It prints geodesic and straight-line lengths, checks that every
geodesic avoids the hole, and saves a figure.
"""

import argparse
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg

PRIOR_SCALE = 6.0


def main(output: str, num_members: int, num_steps: int, seed: int) -> int:
    latents, observations = lg.datasets.make_circle(500, noise=0.05, seed=seed)
    key_init, key_train = jax.random.split(jax.random.key(seed))

    def make_member(key):
        mlp = eqx.nn.MLP(2, observations.shape[1], 128, 2, activation=jnp.tanh, key=key)
        return jax.tree.map(lambda w: PRIOR_SCALE * w if eqx.is_array(w) else w, mlp)

    ensemble = lg.EnsembleDecoder.init(make_member, num_members, key=key_init)
    start = time.perf_counter()
    ensemble, losses = lg.train_decoders(
        ensemble, latents, observations, key=key_train, num_steps=num_steps
    )
    print(
        f"trained {num_members} decoders in {time.perf_counter() - start:.1f} s, "
        f"final mean squared error {float(losses[-1]):.2e}"
    )

    metric = lg.ExpectedMetric(ensemble)
    angles = np.deg2rad([0.0, 45.0, 90.0, 135.0])
    z0 = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    z1 = -z0  # opposite points: the straight line crosses the centre
    start = time.perf_counter()
    solve = jax.vmap(lambda a, b: lg.geodesic(metric, a, b, throw=False))
    results = jax.block_until_ready(solve(jnp.asarray(z0), jnp.asarray(z1)))
    print(
        f"solved {len(z0)} geodesics in {time.perf_counter() - start:.1f} s "
        "(including compilation)"
    )

    times = jnp.linspace(0.0, 1.0, lg.LENGTH_POINTS)
    straight = jax.vmap(lambda a, b: a + times[:, None] * (b - a))(z0, z1)
    straight_lengths = jax.vmap(metric.curve_length)(straight)
    curves = jax.vmap(lambda c: c(times))(results.curve)  # (pairs, points, 2)
    closest = np.min(np.linalg.norm(np.asarray(curves), axis=-1), axis=1)
    print(f"{'pair':>4} {'geodesic':>9} {'straight':>9} {'min radius':>10} converged")
    for i in range(len(z0)):
        print(
            f"{i:>4} {float(results.length[i]):9.3f} {float(straight_lengths[i]):9.3f} "
            f"{closest[i]:10.2f} {bool(results.converged[i])}"
        )

    avoided = bool(np.all(closest > 0.5))
    shorter = bool(np.all(results.length < straight_lengths))
    converged = bool(np.all(results.converged))
    print(
        "All geodesics go around the hole (stay outside radius 0.5): "
        f"{'yes' if avoided else 'NO'}; shorter than straight lines: "
        f"{'yes' if shorter else 'NO'}; converged: {'yes' if converged else 'NO'}."
    )
    _plot(metric, latents, np.asarray(curves), np.asarray(straight), output)
    print(f"figure saved to {output}")
    return 0 if (avoided and shorter and converged) else 1


def _plot(metric, latents, curves, straight, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-1.8, 1.8, 120, dtype=np.float32)
    mesh = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    uncertainty = jax.vmap(metric.ensemble.uncertainty)(jnp.asarray(mesh))
    fig, ax = plt.subplots(figsize=(6, 5.4))
    image = ax.pcolormesh(
        grid,
        grid,
        np.log10(np.asarray(uncertainty)).reshape(120, 120),
        cmap="viridis",
        shading="auto",
    )
    fig.colorbar(image, ax=ax, label="log10 ensemble uncertainty")
    ax.scatter(latents[:, 0], latents[:, 1], s=4, c="white", alpha=0.6, label="data")
    for i, (curve, line) in enumerate(zip(curves, straight)):
        ax.plot(
            line[:, 0],
            line[:, 1],
            "--",
            c="lightgrey",
            lw=1,
            label="straight line" if i == 0 else None,
        )
        ax.plot(
            curve[:, 0],
            curve[:, 1],
            c="tab:red",
            lw=2,
            label="geodesic" if i == 0 else None,
        )
    ax.set_aspect("equal")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title("Expected-metric geodesics around the hole")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="circle.png", help="figure path")
    parser.add_argument("--members", type=int, default=8, help="ensemble size K")
    parser.add_argument("--steps", type=int, default=3000, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.exit(main(args.output, args.members, args.steps, args.seed))
