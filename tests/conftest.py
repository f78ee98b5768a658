import jax
import pytest

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
