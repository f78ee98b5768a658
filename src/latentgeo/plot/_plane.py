"""The drawing plane: the latent space itself for $d = 2$, the PCA plane of the
given points for $d > 2$, and the axis labels and titles that say which."""

from typing import NamedTuple

import numpy as np


class Plane(NamedTuple):
    """The drawing plane: `origin + u * basis[0] + v * basis[1]`."""

    origin: np.ndarray  # (d,)
    basis: np.ndarray  # (2, d), orthonormal rows

    @property
    def latent_dim(self) -> int:
        return self.basis.shape[1]

    def project(self, x: np.ndarray) -> np.ndarray:
        """Plane coordinates `(..., 2)` of latent points `x` `(..., d)`."""
        return (x - self.origin) @ self.basis.T

    def lift(self, uv: np.ndarray) -> np.ndarray:
        """Latent points `(..., d)` at plane coordinates `uv` `(..., 2)`."""
        return self.origin + uv @ self.basis


def drawing_plane(latent_dim: int, points: np.ndarray | None) -> Plane:
    r"""The plane to draw a `latent_dim`-dimensional latent space in.

    **Arguments:**

    - `latent_dim`: the latent dimension $d$.
    - `points`: `(N, d)` checked host points, or `None`; needed (with $N \ge 2$)
      for $d > 2$, where their mean and first two principal components span the
      plane.

    **Returns:** the `Plane`; for $d = 2$ the latent space itself.

    **Raises:** `ValueError` for $d < 2$, or $d > 2$ without enough `points`.
    """
    if latent_dim < 2:
        raise ValueError(
            f"Latent plots need d >= 2, got d = {latent_dim}; plot a 1-D latent "
            "space against another quantity directly."
        )
    if latent_dim == 2:
        return Plane(np.zeros(2), np.eye(2))
    if points is None or points.shape[0] < 2:
        raise ValueError(
            f"The latent space has d = {latent_dim} > 2: pass `points` (N >= 2) "
            "whose first two principal components define the plane to draw."
        )
    origin = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - origin, full_matrices=False)
    return Plane(origin, vt[:2])


def label_axes(ax, plane: Plane) -> None:
    """Label `ax`'s axes with the plane's coordinates and give it equal aspect."""
    d = plane.latent_dim
    if d == 2:
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    else:
        ax.set_xlabel(f"PC 1 (PCA projection of the {d}-D latents)")
        ax.set_ylabel(f"PC 2 (PCA projection of the {d}-D latents)")
    ax.set_aspect("equal")


def plane_title(quantity: str, plane: Plane) -> str:
    """A map's title: `quantity`, plus a note on the slice for $d > 2$."""
    if plane.latent_dim == 2:
        return quantity
    return f"{quantity}\non the PCA plane (2-D slice of the {plane.latent_dim}-D space)"
