r"""Plots of learned latent spaces: points and geodesics, background maps over a
latent grid, metric indicatrices, and the robustness experiment's histogram.

matplotlib is an optional dependency (`pip install latentgeo[plot]`), imported
only when a function here is called. Every function draws on `ax` when given and
on a new figure otherwise, and returns the `matplotlib.axes.Axes`, so plots can
be layered:

```python
ax = lg.plot.uncertainty_map(ens, points=Z, log=True)
lg.plot.latents(Z, y, curves=result.curves, ax=ax)
```

**Latent dimension.** Everything is drawn in a plane. For $d = 2$ it is the
latent space itself. For $d > 2$ it is the plane through the mean of the given
`points` spanned by their first two principal components (PCA): points and
curves are projected orthogonally onto it, while background maps and
indicatrices are evaluated *on* the plane, a 2-D slice of the latent space. The
axis labels (`PC 1`, `PC 2`) and the map titles say so. The same `points` give
the same plane, so layered plots line up.
"""

from ._images import image_strips as image_strips
from ._indicatrices import indicatrices as indicatrices
from ._latents import latents as latents
from ._maps import (
    magnification_map as magnification_map,
    uncertainty_map as uncertainty_map,
    variance_map as variance_map,
)
from ._statistics import cv_histogram as cv_histogram
