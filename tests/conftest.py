import os

import jax
import pytest

# Compiling dominates the suite's time. Most of it is XLA's optimisation passes
# and, on the CPU, code generation kernel by kernel with its fusion emitters
# (a default 2-D `geodesic` makes about 700 kernels). Without the passes the
# suite takes about a third less; generating code the older way
# (`--xla_cpu_use_fusion_emitters=false`) takes about a quarter off what remains
# (half on the solvers' modules), while optimised programs run 4-20% slower
# (docs/performance.md, "Compile time"). The numbers the tests assert depend
# on neither (every tolerance is the method's, not the compiler's). Both are
# set in the environment, so that the processes tests start compile alike
# (their arrays are compared bit for bit). `LATENTGEO_TEST_OPTIMISED=1`
# compiles as users do (CI's float64 pass and notebooks).
if os.environ.get("LATENTGEO_TEST_OPTIMISED") != "1":
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    jax.config.update("jax_disable_most_optimizations", True)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        flags = f"{flags} --xla_cpu_use_fusion_emitters=false".strip()
    os.environ["XLA_FLAGS"] = flags

# Silent broadcasting and dtype promotion fail loudly in the test suite.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "notebooks: runs the example notebooks (slow too; run with -m notebooks)",
    )


# A test module's compiled programs add a few thousand memory mappings (one
# module of the default solver's tests about 4,700).
MAX_MAPPINGS = 40_000


def _memory_mappings() -> int | None:
    """The process's memory mappings, or `None` where `/proc` does not say."""
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Free the compiled programs when a test module ends with many of them.
    Every XLA CPU executable holds a few memory mappings; the whole suite
    compiles enough of them to pass Linux's limit of 65,530 mappings per
    process, where the next compilation fails with a segmentation fault. Kept
    below `MAX_MAPPINGS`, the next modules reuse what they share (a tenth less
    time than freeing after every module)."""
    yield
    mappings = _memory_mappings()
    if mappings is None or mappings > MAX_MAPPINGS:
        jax.clear_caches()


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
