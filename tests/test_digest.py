"""Digests of runs: equal for equal values in any process, different whenever a
weight, a static field, a hyperparameter or a function differs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import latentgeo as lg
from latentgeo._digest import tree_digest

RUN = """
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import latentgeo as lg

def run(activation=jnp.tanh, learning_rate=1e-2, seed=0):
    ensemble = lg.EnsembleDecoder.init(
        lambda k: eqx.nn.MLP(2, 4, 8, 1, activation=activation, key=k),
        3,
        key=jax.random.key(seed),
    )
    solver = lg.WarmStart(lg.OptaxSolver(optax.adam(learning_rate)))
    return (lg.ExpectedMetric(ensemble), solver, jax.random.key(7))
"""


def _run(**kwargs):
    namespace = {}
    exec(RUN, namespace)
    return namespace["run"](**kwargs)


@pytest.fixture(scope="module")
def reference():
    return _run()


def test_digest_is_the_same_in_a_fresh_process(reference):
    script = RUN + textwrap.dedent(
        """
        from latentgeo._digest import tree_digest
        print(tree_digest(run()))
        """
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    # The fresh process computes in the same precision (the x64 pass sets it)
    # and with the same XLA options: the values, and so their digest, change
    # in their last bits with XLA's optimisation level (seen with
    # XLA_FLAGS=--xla_backend_optimization_level=0).
    inherited = ("JAX_ENABLE_X64", "XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS")
    settings = {k: v for k, v in os.environ.items() if k in inherited}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": src, "JAX_PLATFORMS": "cpu", "PATH": "", **settings},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == tree_digest(reference)


def test_equal_values_built_apart_have_one_digest(reference):
    copy = lambda x: jnp.array(x, copy=True) if eqx.is_array(x) else x  # noqa: E731
    copied = jax.tree.map(copy, reference)
    assert copied[0].ensemble.params.layers[0].weight is not (
        reference[0].ensemble.params.layers[0].weight
    )
    assert tree_digest(copied) == tree_digest(reference)
    assert tree_digest(optax.adam(1e-2)) == tree_digest(optax.adam(1e-2))
    assert tree_digest({"a": 1, "b": [2.0]}) == tree_digest({"b": [2.0], "a": 1})


def test_any_difference_changes_the_digest(reference):
    metric, solver, key = reference
    params = lambda m: m.ensemble.params  # noqa: E731
    noise = jax.random.normal(jax.random.key(1), (3, 8))
    retrained = eqx.tree_at(
        lambda m: params(m).layers[0].bias,
        metric,
        params(metric).layers[0].bias + noise,
    )
    barely = eqx.tree_at(
        lambda m: params(m).layers[0].bias,
        metric,
        params(metric).layers[0].bias.at[0, 0].add(1e-6),
    )
    relu = eqx.tree_at(lambda m: params(m).activation, metric, jax.nn.relu)
    others = [
        (retrained, solver, key),  # other weights
        (barely, solver, key),  # one weight, barely
        (relu, solver, key),  # another function
        (metric, lg.WarmStart(lg.OptaxSolver(optax.adam(1e-3))), key),  # optax closure
        (metric, lg.WarmStart(warmup_steps=50), key),  # a static field
        (metric, solver, jax.random.key(8)),  # another key
        (metric, solver, None),
    ]
    digests = {tree_digest(run) for run in [reference, *others]}
    assert len(digests) == 1 + len(others)
    x = np.arange(6.0, dtype=np.float32)
    arrays = [x, x.astype(np.float64), x.reshape(2, 3), jnp.asarray(x) + 1]
    assert len({tree_digest(a) for a in arrays}) == len(arrays)
    assert tree_digest((1, 2)) != tree_digest([1, 2])
    assert tree_digest(1) != tree_digest(1.0) != tree_digest(True)


def test_self_referencing_closures_end():
    def outer(scale):
        def recurse(n):
            return scale if n == 0 else recurse(n - 1)

        return recurse

    assert tree_digest(outer(2.0)) == tree_digest(outer(2.0))
    assert tree_digest(outer(2.0)) != tree_digest(outer(3.0))
