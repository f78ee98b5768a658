import os

import jax
import pytest

# Compiling dominates the suite's time, and most of it is XLA's optimisation
# passes: without them the suite takes about a third less. The numbers the
# tests assert do not depend on them (every tolerance is the method's, not
# the compiler's). Also set in the environment, so that the processes tests
# start compile alike (their arrays are compared bit for bit).
# `LATENTGEO_TEST_OPTIMISED=1` compiles as users do (CI's float64 pass).
if os.environ.get("LATENTGEO_TEST_OPTIMISED") != "1":
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    jax.config.update("jax_disable_most_optimizations", True)

# Silent broadcasting and dtype promotion fail loudly in the test suite.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "notebooks: runs the example notebooks (slow too; run with -m notebooks)",
    )


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Free each test module's compiled programs when it ends. Every XLA CPU
    executable holds a few memory mappings; the whole suite compiles enough of
    them to pass Linux's limit of 65,530 mappings per process, where the next
    compilation fails with a segmentation fault."""
    yield
    jax.clear_caches()


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
