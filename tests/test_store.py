"""The all-pairs store survives `kill -9`: a rerun finishes the run, keeping
what the killed process stored, with the result of an uninterrupted run."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import latentgeo as lg

TESTS = Path(__file__).resolve().parent

PROBLEM = """
import jax.numpy as jnp
import numpy as np

import latentgeo as lg
from helpers import LOCAL, Linear

matrix = np.array([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]], np.float32)
metric = lg.PullbackMetric(Linear(jnp.asarray(matrix)))
points = np.random.default_rng(0).uniform(-1, 1, (20, 2)).astype(np.float32)
# The store is the subject: the straight start and the local solver suffice.
options = dict(
    progress=False,
    init=lg.StraightStart(),
    solver=LOCAL,
    discretisation=lg.Discretisation(max_steps=100),
)
"""


def _problem():
    namespace = {}
    exec(PROBLEM, namespace)
    return namespace


def _stored(path: Path) -> dict | None:
    try:
        with np.load(path) as data:
            return {key: data[key] for key in ("done", "lengths")}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # not written yet


def test_rerun_after_kill_9_finishes_with_the_uninterrupted_result(tmp_path):
    path = tmp_path / "run.npz"
    # One pair per chunk: hundreds of atomic writes, so the kill lands mid-run.
    script = PROBLEM + textwrap.dedent(
        f"""
        lg.pairwise_distances(
            metric, points, batch_size=1, checkpoint={str(path)!r}, **options
        )
        """
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    src = str(TESTS.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, str(TESTS)]))
    worker = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        stored = None
        while time.monotonic() < deadline and worker.poll() is None:
            stored = _stored(path)
            if stored is not None and stored["done"].any():
                break
            time.sleep(0.005)
        worker.kill()  # SIGKILL: no handler, no cleanup runs
        _, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -9, err[-3000:]
    stored = _stored(path)  # the file is whole: an old version or a new one
    assert stored is not None and stored["done"].any()
    assert not stored["done"].all(), "the worker finished before it was killed"

    problem = _problem()
    metric, points, options = problem["metric"], problem["points"], problem["options"]
    # The rerun resumes (the digests match across processes) in larger chunks.
    resumed = lg.pairwise_geodesics(
        metric, points, batch_size=64, checkpoint=path, **options
    )
    uninterrupted = lg.pairwise_geodesics(metric, points, batch_size=64, **options)
    np.testing.assert_allclose(
        resumed.distances, uninterrupted.distances, rtol=1e-6, atol=1e-7
    )
    # What the killed process stored was kept, not solved again.
    kept = stored["done"]
    np.testing.assert_array_equal(
        np.asarray(resumed.lengths)[kept], stored["lengths"][kept]
    )
    diff = points[:, None] - points[None]
    exact = np.linalg.norm(diff @ problem["matrix"].T, axis=-1)
    np.testing.assert_allclose(resumed.distances, exact, rtol=1e-4, atol=1e-6)
    assert bool(resumed.converged.all())
