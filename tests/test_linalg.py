"""`latentgeo._linalg`: batched solves looped on CPUs, with the batched answers."""

import jax
import jax.numpy as jnp
import numpy as np

from latentgeo._linalg import solve
from latentgeo._solvers._levenberg_marquardt import _corrected_or_plain


def _systems(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(batch, size, size))
    matrices = a @ np.swapaxes(a, 1, 2) + size * np.eye(size)
    vectors = rng.normal(size=(batch, size))
    dtype = jnp.result_type(float)
    return matrices.astype(dtype), vectors.astype(dtype)


def test_batched_solve_matches_numpy_and_loops_on_cpu():
    matrices, vectors = _systems(6, 5)
    found = jax.jit(jax.vmap(solve))(matrices, vectors)
    expected = np.linalg.solve(
        matrices.astype(np.float64), vectors.astype(np.float64)[..., None]
    )[..., 0]
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)

    # On a CPU the LAPACK factorisation sees one matrix at a time (no batch
    # dimension), where `jnp.linalg.solve` alone would get the whole batch.
    def factorisations(function, *args):
        text = jax.jit(jax.vmap(function)).lower(*args).as_text()
        return [line for line in text.splitlines() if "getrf" in line]

    looped = factorisations(solve, matrices, vectors)
    batched = factorisations(jnp.linalg.solve, matrices, vectors[..., None])
    assert looped and all('num_batch_dims = "0"' in line for line in looped)
    assert batched and all('num_batch_dims = "1"' in line for line in batched)


def test_damped_step_takes_cholesky_or_falls_back_to_the_plain_solve():
    matrices, vectors = _systems(4, 3, seed=1)
    definite = np.zeros_like(matrices)
    # A correction that breaks positive definiteness on half the batch.
    indefinite = np.where(np.arange(4)[:, None, None] % 2 == 0, 0.0, -10.0 * matrices)
    for correction in (definite, indefinite.astype(matrices.dtype)):
        found = jax.vmap(_corrected_or_plain)(matrices, correction, vectors)
        m64, c64, v64 = (x.astype(np.float64) for x in (matrices, correction, vectors))
        definite_pair = np.all(np.linalg.eigvalsh(m64 + c64) > 0, axis=1)
        system = np.where(definite_pair[:, None, None], m64 + c64, m64)
        expected = -np.linalg.solve(system, v64[..., None])[..., 0]
        np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)
