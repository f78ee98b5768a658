"""matplotlib, imported only when a figure is drawn, and the axes to draw on."""


def pyplot():
    """`matplotlib.pyplot`, imported on first use.

    **Returns:** the `matplotlib.pyplot` module.

    **Raises:** `ImportError` naming the `plot` extra when matplotlib is missing.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "latentgeo.plot needs matplotlib: `pip install latentgeo[plot]`."
        ) from error
    return plt


def new_axes(ax):
    """`ax` itself, or the axes of a new figure when `ax` is `None`.

    **Arguments:**

    - `ax`: a `matplotlib.axes.Axes`, or `None`.

    **Returns:** the `matplotlib.axes.Axes` to draw on.
    """
    if ax is None:
        _, ax = pyplot().subplots()
    return ax
