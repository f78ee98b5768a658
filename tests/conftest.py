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


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
