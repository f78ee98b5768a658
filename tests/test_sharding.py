"""Pairs sharded over several devices give the single-device matrix."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import latentgeo as lg

    assert jax.device_count() == 4, jax.devices()
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 5, 8, 1, activation=jnp.tanh, key=k),
        3,
        key=jax.random.key(0),
    )
    metric = lg.ExpectedMetric(ensemble)
    points = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(np.float32)
    options = dict(batch_size=6, progress=False, num_points=16, init="graph",
                   graph_neighbours=3)
    many = lg.pairwise_geodesics(metric, points, **options)
    one = lg.pairwise_geodesics(metric, points, devices=jax.devices()[:1], **options)
    np.testing.assert_allclose(many.distances, one.distances, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(many.num_steps, one.num_steps)
    assert bool(many.converged.all())
    print("sharded == single")
    """
)


def test_sharded_matrix_equals_single_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharded == single" in done.stdout
