"""`latentgeo._linalg`: batched solves looped on CPUs, with the batched answers."""

import jax
import jax.numpy as jnp
import numpy as np

from latentgeo._linalg import positive_definite_solve, solve
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


def test_positive_definite_solve_loops_and_differentiates_like_the_batched_solve():
    matrices, vectors = _systems(5, 3, seed=2)
    found = jax.vmap(positive_definite_solve)(matrices, vectors)
    expected = np.linalg.solve(
        matrices.astype(np.float64), vectors.astype(np.float64)[..., None]
    )[..., 0]
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)

    # Reverse mode (both arguments) and forward mode against jax's own
    # differentiation of `jnp.linalg.solve`, an independent rule.
    def loss(solver):
        return lambda m, v: jnp.sum(jnp.sin(solver(m, v)))

    ours = jax.jit(jax.vmap(jax.grad(loss(positive_definite_solve), argnums=(0, 1))))
    theirs = jax.vmap(jax.grad(loss(jnp.linalg.solve), argnums=(0, 1)))
    for a, b in zip(ours(matrices, vectors), theirs(matrices, vectors)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    forward = jax.vmap(jax.jacfwd(positive_definite_solve))(matrices, vectors)
    reference = jax.vmap(jax.jacfwd(jnp.linalg.solve))(matrices, vectors)
    np.testing.assert_allclose(forward, reference, rtol=1e-4, atol=1e-5)

    # The gradient's program, too, factorises one matrix at a time.
    text = ours.lower(matrices, vectors).as_text()
    factorisations = [line for line in text.splitlines() if "potrf" in line]
    assert factorisations
    assert all('num_batch_dims = "0"' in line for line in factorisations)

    # Not positive definite: NaN, as from Cholesky, not a plausible number.
    indefinite, vector = jnp.asarray(-matrices[0]), jnp.asarray(vectors[0])
    assert np.all(np.isnan(positive_definite_solve(indefinite, vector)))
