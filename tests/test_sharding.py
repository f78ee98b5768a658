"""Pairs sharded over several devices, and over several processes, give the
single-device matrix. Devices are simulated CPUs, set up before jax is imported,
so each case runs in fresh processes."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import latentgeo as lg
from helpers import InverseStereographic, default_float

PROBLEM = """
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import latentgeo as lg

ensemble = lg.EnsembleDecoder.init(
    lambda k: eqx.nn.MLP(2, 5, 8, 1, activation=jnp.tanh, key=k),
    3,
    key=jax.random.key(0),
)
metric = lg.ExpectedMetric(ensemble)
points = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(jnp.result_type(float))
options = dict(
    batch_size=6,
    progress=False,
    discretisation=lg.Discretisation(num_points=16),
    init=lg.GraphStart(neighbours=3),
    # The sharding is the subject, not the solver's per-pair lattice check.
    solver=lg.AutoSolver(least_squares=lg.Escalating()),
)
"""


def _environment(devices_per_process):
    env = dict(os.environ)
    devices = f"--xla_force_host_platform_device_count={devices_per_process}"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _run_script(script: str, num_devices: int, timeout: int) -> str:
    """Run `script` in a fresh process on `num_devices` CPU devices; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_environment(num_devices),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _single_device_distances():
    namespace = {}
    exec(PROBLEM, namespace)
    return np.asarray(
        lg.pairwise_distances(
            namespace["metric"], namespace["points"], **namespace["options"]
        )
    )


def test_sharded_matrix_equals_single_device():
    script = PROBLEM + textwrap.dedent(
        """
        assert jax.device_count() == 4, jax.devices()
        many = lg.pairwise_geodesics(metric, points, **options)
        one = lg.pairwise_geodesics(
            metric, points, devices=jax.devices()[:1], **options
        )
        np.testing.assert_allclose(many.distances, one.distances, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(many.num_steps, one.num_steps)
        assert bool(many.converged.all())
        print("sharded == single")
        """
    )
    assert "sharded == single" in _run_script(script, 4, timeout=600)


# two processes; one process over two devices stays in the default run.
@pytest.mark.slow
def test_two_processes_equal_single_device(tmp_path):
    """The `jax.distributed` recipe: two processes of two devices each, one call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = (
        textwrap.dedent(
            f"""
        import sys
        import jax
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            "127.0.0.1:{port}", num_processes=2, process_id=int(sys.argv[1])
        )
        """
        )
        + PROBLEM
        + textwrap.dedent(
            f"""
        assert jax.device_count() == 4 and jax.local_device_count() == 2
        distances = lg.pairwise_distances(metric, points, **options)
        np.save("{tmp_path}/d" + sys.argv[1] + ".npy", np.asarray(distances))
        """
        )
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)],
            env=_environment(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    expected = _single_device_distances()
    for i in range(2):
        np.testing.assert_allclose(
            np.load(tmp_path / f"d{i}.npy"), expected, rtol=1e-5, atol=1e-6
        )


def test_refilled_lockstep_slots_equal_one_pair_at_a_time():
    # The sphere's geodesics, from straight lines: pairs of different lengths
    # take different numbers of steps, so slots are refilled while others run.
    sphere = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.9, 0.9, (6, 2)).astype(default_float())
    options = dict(
        init=lg.StraightStart(),
        solver=lg.AutoSolver(least_squares=lg.Escalating()),
        progress=False,
        batch_size=15,
    )
    one = lg.pairwise_geodesics(sphere, points, vmap_size=1, **options)
    slots = lg.pairwise_geodesics(sphere, points, vmap_size=4, **options)
    assert len(set(np.asarray(one.num_steps).tolist())) > 1
    np.testing.assert_array_equal(slots.num_steps, one.num_steps)
    np.testing.assert_allclose(slots.lengths, one.lengths, rtol=1e-5)
    z = points.astype(np.float64)
    on_sphere = np.concatenate([2 * z, np.sum(z**2, 1, keepdims=True) - 1], 1)
    on_sphere /= np.sum(z**2, 1, keepdims=True) + 1
    exact = np.arccos(np.clip(on_sphere @ on_sphere.T, -1, 1))
    np.testing.assert_allclose(slots.distances, exact, rtol=1e-3, atol=1e-6)
    assert bool(slots.converged.all())


def test_lockstep_on_two_cpu_devices_finishes_with_the_great_circle():
    # Two CPU devices on a two-core machine, each solving its pairs in lockstep:
    # with jaxlib's batched LAPACK kernels every pool thread waited on the
    # others and the run hung (latentgeo._linalg). A run that hangs again fails
    # on the timeout.
    script = textwrap.dedent(
        """
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        import numpy as np

        import latentgeo as lg

        class InverseStereographic(eqx.Module):
            def __call__(self, z):
                squared = jnp.sum(z**2)
                return jnp.concatenate([2 * z, (squared - 1)[None]]) / (squared + 1)

        assert jax.device_count() == 2, jax.devices()
        sphere = lg.PullbackMetric(InverseStereographic(), latent_dim=2)
        points = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
        init = lg.TwoRoutes(lg.LatticeStart(cells=32))
        for vmap_size in (None, 2):
            result = lg.pairwise_geodesics(
                sphere, points, init=init, vmap_size=vmap_size, progress=False
            )
            z = points.astype(np.float64)
            squared = np.sum(z**2, 1, keepdims=True)
            on_sphere = np.concatenate([2 * z, squared - 1], 1) / (squared + 1)
            exact = np.arccos(np.clip(on_sphere @ on_sphere.T, -1, 1))
            np.testing.assert_allclose(result.distances, exact, rtol=1e-3, atol=1e-6)
            assert bool(result.converged.all())
        print("two devices in lockstep: great circles")
        """
    )
    assert "two devices in lockstep: great circles" in _run_script(
        script, 2, timeout=300
    )
