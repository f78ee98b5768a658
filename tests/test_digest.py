"""Digests of runs: equal for equal values in any process, different whenever a
weight, a static field, a hyperparameter or a function differs."""

import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import latentgeo as lg
from latentgeo._digest import tree_digest

RUN = """
import equinox as eqx
import jax
import jax.numpy as jnp
import optax

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


def test_digest_is_the_same_in_a_fresh_process():
    script = RUN + textwrap.dedent(
        """
        from latentgeo._digest import tree_digest
        print(tree_digest(run()))
        """
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": src, "JAX_PLATFORMS": "cpu", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == tree_digest(_run())


def test_equal_values_built_apart_have_one_digest():
    assert tree_digest(_run()) == tree_digest(_run())
    assert tree_digest(optax.adam(1e-2)) == tree_digest(optax.adam(1e-2))
    assert tree_digest({"a": 1, "b": [2.0]}) == tree_digest({"b": [2.0], "a": 1})


def test_any_difference_changes_the_digest():
    reference = _run()
    metric, solver, key = reference
    perturbed = eqx.tree_at(
        lambda m: m.ensemble.params.layers[0].bias,
        metric,
        metric.ensemble.params.layers[0].bias.at[0, 0].add(1e-6),
    )
    others = [
        _run(seed=1),  # retrained: other weights
        _run(activation=jax.nn.relu),  # another function
        _run(learning_rate=1e-3),  # a hyperparameter inside an optax closure
        (perturbed, solver, key),  # one weight, barely
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
