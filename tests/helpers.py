"""Analytic manifolds and utilities shared by the tests."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import latentgeo as lg

# The default solver without its per-pair lattice check: for tests whose
# subject is not that check (each compile of the check costs seconds).
LOCAL = lg.AutoSolver(least_squares=lg.Escalating())


def float64():
    """Context manager enabling float64 (the API moved between JAX versions)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()


# A value a solver reports against the objective evaluated again, or two
# compiled programs' answers to the same steps: equal up to their rounding (XLA
# fuses them differently).
ROUNDING = 1e-6


def default_float():
    """JAX's default float dtype where it is called: float64 under x64
    (`JAX_ENABLE_X64=1`, or inside `float64()`), else float32. Test data made in
    it runs in float32 in the default pass and in float64 in the x64 pass."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


class Linear(eqx.Module):
    """$f(z) = A z$: $G = A^T A$, geodesics are straight lines."""

    matrix: jax.Array

    def __call__(self, z):
        return self.matrix @ z


class InverseStereographic(eqx.Module):
    r"""Chart of the unit sphere from $\mathbb{R}^2$ (the north pole at infinity)."""

    def __call__(self, z):
        squared = jnp.sum(z**2)
        return jnp.concatenate([2 * z, (squared - 1)[None]]) / (squared + 1)


class ConformalSphere(lg.AbstractTensorMetric):
    r"""The same sphere given only by its tensor $G = 4 / (1 + |z|^2)^2 I$."""

    latent_dim: int = 2

    def tensor(self, z):
        return 4.0 / (1.0 + jnp.sum(z**2)) ** 2 * jnp.eye(2, dtype=z.dtype)


def stereographic(x: np.ndarray) -> np.ndarray:
    """Sphere point -> chart coordinates (inverse of `InverseStereographic`)."""
    return x[:2] / (1.0 - x[2])


def sphere_pair(angle_degrees: float, azimuth: float = 1.0):
    """Two chart points at polar angle `angle_degrees / 2` from the south pole,
    `pi - azimuth` apart in longitude; returns `(z0, z1, great-circle distance)`
    (equal to `angle_degrees` for `azimuth = 0`), the points in the default
    float dtype."""
    half = np.deg2rad(angle_degrees) / 2
    p = np.array([np.sin(half), 0.0, -np.cos(half)])
    q = np.array(
        [
            -np.sin(half) * np.cos(azimuth),
            -np.sin(half) * np.sin(azimuth),
            -np.cos(half),
        ]
    )
    distance = np.arccos(np.clip(p @ q, -1.0, 1.0))
    return (
        jnp.asarray(stereographic(p), default_float()),
        jnp.asarray(stereographic(q), default_float()),
        float(distance),
    )


def small_mlp(key, out_size: int = 5, activation=jax.nn.elu):
    return eqx.nn.MLP(2, out_size, 8, 2, activation=activation, key=key)


def tree_allclose(x, y, *, rtol=1e-5, atol=1e-8):
    return eqx.tree_equal(x, y, typematch=True, rtol=rtol, atol=atol)


JUMP = 2.0  # the fold's slope: G = I + JUMP^2 e2 e2^T above z2 = 0, I below


class Fold(eqx.Module):
    """$f(z) = (z_1, z_2, c\\,\\mathrm{relu}(z_2))$: a flat metric below the
    line $z_2 = 0$ and a stretched one above, the simplest ReLU decoder."""

    def __call__(self, z):
        return jnp.stack([z[0], z[1], JUMP * jax.nn.relu(z[1])])


def snell_length(z0: np.ndarray, z1: np.ndarray) -> float:
    """The shortest length from `z0` (below the fold) to `z1` (above): straight
    in each half, crossing the fold where the total is least (Snell's law),
    found by a scalar minimisation independent of the library."""

    def length(x):
        below = np.hypot(x - z0[0], z0[1])
        above = np.sqrt((z1[0] - x) ** 2 + (1 + JUMP**2) * z1[1] ** 2)
        return below + above

    found = scipy.optimize.minimize_scalar(
        length,
        bounds=(z0[0] - 5, z1[0] + 5),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(found.fun)
