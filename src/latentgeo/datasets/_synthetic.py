"""Synthetic 2-D latent codes with a smooth nonlinear embedding into observations."""

import numpy as np
from jaxtyping import Float

_EMBEDDING_WIDTH = 32


def _check_common(num_points: int, noise: float, obs_dim: int, obs_noise: float):
    if num_points < 1:
        raise ValueError(f"`num_points` must be at least 1, got {num_points}.")
    if noise < 0:
        raise ValueError(f"`noise` must be non-negative, got {noise}.")
    if obs_dim < 1:
        raise ValueError(f"`obs_dim` must be at least 1, got {obs_dim}.")
    if obs_noise < 0:
        raise ValueError(f"`obs_noise` must be non-negative, got {obs_noise}.")


def _generators(
    seed: int,
) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent streams for the latents, the embedding map and the observation
    noise, so that the map drawn for a seed does not depend on `num_points`."""
    latent_seq, map_seq, obs_seq = np.random.SeedSequence(seed).spawn(3)
    return (
        np.random.default_rng(latent_seq),
        np.random.default_rng(map_seq),
        np.random.default_rng(obs_seq),
    )


def _with_observations(
    latents: Float[np.ndarray, "n 2"],
    obs_dim: int,
    obs_noise: float,
    map_rng: np.random.Generator,
    obs_rng: np.random.Generator,
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, "n obs_dim"]]:
    r"""Embed with $x = W_2 \tanh(W_1 z + b_1) / \sqrt{H} + b_2$ plus noise; cast
    both to float32."""
    first_weight = map_rng.normal(size=(2, _EMBEDDING_WIDTH))
    first_bias = map_rng.normal(size=(_EMBEDDING_WIDTH,))
    second_weight = map_rng.normal(size=(_EMBEDDING_WIDTH, obs_dim))
    second_bias = map_rng.normal(scale=0.1, size=(obs_dim,))
    hidden = np.tanh(latents @ first_weight + first_bias)
    clean = hidden @ second_weight / np.sqrt(_EMBEDDING_WIDTH) + second_bias
    observations = clean + obs_noise * obs_rng.normal(size=clean.shape)
    return latents.astype(np.float32), observations.astype(np.float32)


def make_circle(
    num_points: int = 500,
    *,
    radius: float = 1.0,
    noise: float = 0.05,
    obs_dim: int = 16,
    obs_noise: float = 0.01,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, "n obs_dim"]]:
    r"""Noisy points on a circle, and their nonlinear embedding in `obs_dim` dimensions.

    The latents are $z_i = r(\cos\theta_i, \sin\theta_i) + \epsilon_i$ with
    $\theta_i$ uniform on $[0, 2\pi)$ and $\epsilon_i \sim N(0, \text{noise}^2 I)$.
    The observations are $x_i = f(z_i) + \eta_i$, where
    $f(z) = W_2 \tanh(W_1 z + b_1)/\sqrt{32} + b_2$ is a smooth map with 32 hidden
    units whose weights are drawn from `seed` (the same map for every dataset and
    `num_points` with that seed), and $\eta_i \sim N(0, \text{obs\_noise}^2 I)$.
    A decoder trained on latents -> observations learns $f$.

    **Arguments:**

    - `num_points`: number of points $n$. Default 500.
    - `radius`: circle radius $r$. Default 1.0.
    - `noise`: standard deviation of the Gaussian noise on the latents. Default 0.05.
    - `obs_dim`: observation dimension. Default 16.
    - `obs_noise`: standard deviation of the Gaussian noise on the observations.
        Default 0.01.
    - `seed`: seed of the `numpy.random.Generator`; equal seeds give equal data.

    **Returns:**

    A tuple `(latents, observations)` of float32 arrays with shapes `(n, 2)` and
    `(n, obs_dim)`.

    **Raises:**

    `ValueError` if a size is below 1, a noise level is negative or `radius` is
    not positive.

    !!! example

        ```python
        latents, observations = make_circle(200, obs_dim=8, seed=1)
        ```
    """
    _check_common(num_points, noise, obs_dim, obs_noise)
    if radius <= 0:
        raise ValueError(f"`radius` must be positive, got {radius}.")
    latent_rng, map_rng, obs_rng = _generators(seed)
    angles = latent_rng.uniform(0.0, 2 * np.pi, size=num_points)
    circle = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    latents = circle + noise * latent_rng.normal(size=circle.shape)
    return _with_observations(latents, obs_dim, obs_noise, map_rng, obs_rng)


def make_two_moons(
    num_points: int = 500,
    *,
    noise: float = 0.05,
    obs_dim: int = 16,
    obs_noise: float = 0.01,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, "n obs_dim"]]:
    r"""Two interleaved half circles, and their nonlinear embedding in `obs_dim`
    dimensions.

    The first $\lceil n/2 \rceil$ latents lie on the upper moon
    $(\cos t, \sin t)$, the others on the lower moon $(1 - \cos t, 1/2 - \sin t)$,
    with $t$ uniform on $[0, \pi]$, plus $N(0, \text{noise}^2 I)$ noise. The
    observations use the same seeded embedding as
    [`make_circle`][latentgeo.datasets.make_circle].

    **Arguments:**

    - `num_points`: number of points $n$. Default 500.
    - `noise`: standard deviation of the Gaussian noise on the latents. Default 0.05.
    - `obs_dim`: observation dimension. Default 16.
    - `obs_noise`: standard deviation of the Gaussian noise on the observations.
        Default 0.01.
    - `seed`: seed of the `numpy.random.Generator`; equal seeds give equal data.

    **Returns:**

    A tuple `(latents, observations)` of float32 arrays with shapes `(n, 2)` and
    `(n, obs_dim)`; rows `[: (n + 1) // 2]` form the upper moon.

    **Raises:**

    `ValueError` if a size is below 1 or a noise level is negative.
    """
    _check_common(num_points, noise, obs_dim, obs_noise)
    latent_rng, map_rng, obs_rng = _generators(seed)
    num_upper = (num_points + 1) // 2
    angles = latent_rng.uniform(0.0, np.pi, size=num_points)
    upper = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    lower = np.stack([1 - np.cos(angles), 0.5 - np.sin(angles)], axis=-1)
    moons = np.concatenate([upper[:num_upper], lower[num_upper:]])
    latents = moons + noise * latent_rng.normal(size=moons.shape)
    return _with_observations(latents, obs_dim, obs_noise, map_rng, obs_rng)


def make_gap_curve(
    num_points: int = 500,
    *,
    gap_width: float = 0.6,
    noise: float = 0.02,
    obs_dim: int = 16,
    obs_noise: float = 0.01,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, "n obs_dim"]]:
    r"""Points along a parabola with no data in its middle, and their nonlinear
    embedding in `obs_dim` dimensions.

    The latents are $(t, t^2)$ plus $N(0, \text{noise}^2 I)$ noise, with $t$
    uniform on $[-1, -w/2] \cup [w/2, 1]$ for the gap width $w$: the arc
    $|t| < w/2$ through the origin is empty, so a geodesic between the two branches
    must cross a region without data. The observations use the same seeded
    embedding as [`make_circle`][latentgeo.datasets.make_circle].

    **Arguments:**

    - `num_points`: number of points $n$. Default 500.
    - `gap_width`: width $w$ of the empty interval of $t$, in $[0, 2)$. Default 0.6.
    - `noise`: standard deviation of the Gaussian noise on the latents. Default 0.02.
    - `obs_dim`: observation dimension. Default 16.
    - `obs_noise`: standard deviation of the Gaussian noise on the observations.
        Default 0.01.
    - `seed`: seed of the `numpy.random.Generator`; equal seeds give equal data.

    **Returns:**

    A tuple `(latents, observations)` of float32 arrays with shapes `(n, 2)` and
    `(n, obs_dim)`.

    **Raises:**

    `ValueError` if a size is below 1, a noise level is negative, or `gap_width`
    is outside $[0, 2)$.
    """
    _check_common(num_points, noise, obs_dim, obs_noise)
    if not 0 <= gap_width < 2:
        raise ValueError(f"`gap_width` must lie in [0, 2), got {gap_width}.")
    latent_rng, map_rng, obs_rng = _generators(seed)
    distance = latent_rng.uniform(gap_width / 2, 1.0, size=num_points)
    params = latent_rng.choice([-1.0, 1.0], size=num_points) * distance
    curve = np.stack([params, params**2], axis=-1)
    latents = curve + noise * latent_rng.normal(size=curve.shape)
    return _with_observations(latents, obs_dim, obs_noise, map_rng, obs_rng)
