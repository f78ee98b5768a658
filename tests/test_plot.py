import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import matplotlib
import numpy as np
import pytest

import latentgeo as lg
from latentgeo.plot._grid import grid_map

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class ConstantMetric(lg.AbstractTensorMetric):
    matrix: jax.Array
    latent_dim: int

    def tensor(self, z):
        return self.matrix


class ExponentialMetric(lg.AbstractTensorMetric):
    """G(z) = exp(a . z) I, so log det G(z) = d (a . z)."""

    direction: jax.Array
    latent_dim: int

    def tensor(self, z):
        return jnp.exp(jnp.dot(self.direction, z)) * jnp.eye(self.latent_dim)


class VarianceStub(eqx.Module):
    """Per-output variances (z_1^2, 3 z_2^2): mean (z_1^2 + 3 z_2^2) / 2."""

    latent_dim: int = 2

    def variance(self, z):
        return jnp.stack([z[0] ** 2, 3 * z[1] ** 2])


def _two_layer(params, z):
    return jnp.tanh(z @ params["hidden"]) @ params["out"]


def _ensemble(latent_dim=2):
    """Three random two-layer decoders R^d -> R^5 (numpy weights: no compilation)."""
    rng = np.random.default_rng(latent_dim)
    params = {
        "hidden": rng.normal(size=(3, latent_dim, 8)).astype(np.float32),
        "out": rng.normal(size=(3, 8, 5)).astype(np.float32),
    }
    return lg.EnsembleDecoder.from_apply(_two_layer, params, latent_dim=latent_dim)


def _mesh_centres(mesh):
    """Cell centres (rows, cols, 2) of a pcolormesh QuadMesh, from its corners."""
    corners = mesh.get_coordinates()
    return 0.25 * (
        corners[:-1, :-1] + corners[1:, :-1] + corners[:-1, 1:] + corners[1:, 1:]
    )


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_import_does_not_load_matplotlib():
    code = (
        "import sys, latentgeo; assert 'matplotlib' not in sys.modules; latentgeo.plot"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install latentgeo\[plot\]"):
        lg.plot.cv_histogram(np.ones(3), np.ones(3))


def test_latents_scatter_labels_curves_and_straight_lines():
    points = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, -1.0], [0.5, 2.0]])
    labels = np.array([1, 0, 1, 0])
    z0, z1 = jnp.array([[0.0, 0.0], [1.0, 0.5]]), jnp.array([[2.0, -1.0], [0.5, 2.0]])
    params = jnp.linspace(-1.0, 1.0, 2 * 4 * 2).reshape(2, 4, 2)
    curves = jax.vmap(lg.CubicSpline)(z0, z1, params)  # two bent 3-segment curves
    ax = lg.plot.latents(points, labels, curves=curves)

    scatters = ax.collections
    assert len(scatters) == 2  # one per class
    for scatter, label in zip(scatters, [0, 1]):
        np.testing.assert_allclose(scatter.get_offsets(), points[labels == label])
        assert scatter.get_label() == str(label)
    assert not np.allclose(scatters[0].get_facecolor(), scatters[1].get_facecolor())

    straight = [line for line in ax.lines if line.get_linestyle() == "--"]
    bent = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(straight) == len(bent) == 2
    for i, (line, path) in enumerate(zip(straight, bent)):
        np.testing.assert_allclose(
            line.get_xydata(), np.stack([z0[i], z1[i]]), atol=1e-5
        )
        single = jax.tree.map(lambda x: x[i], curves)
        times = jnp.linspace(0.0, 1.0, path.get_xydata().shape[0])
        np.testing.assert_allclose(path.get_xydata(), single(times), atol=1e-5)
        assert not np.allclose(path.get_xydata()[1:-1], 0.0)
    assert ax.get_xlabel() == "$z_1$"
    ax.figure.canvas.draw()


def test_latents_accepts_one_curve_and_polylines():
    points = np.random.default_rng(0).normal(size=(5, 2))
    curve = lg.CubicSpline.straight(jnp.zeros(2), jnp.ones(2))
    ax = lg.plot.latents(points, curves=curve, straight=False)
    assert len(ax.lines) == 1
    polylines = np.stack([np.zeros((4, 2)), np.ones((4, 2))])
    ax = lg.plot.latents(points, curves=polylines)
    np.testing.assert_allclose(ax.lines[1].get_xydata(), polylines[0])


def test_latents_projects_higher_dimensions_onto_the_pca_plane():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(3, 2)))[0].T  # (2, 3) orthonormal rows
    coords = rng.normal(size=(30, 2)) * np.array([3.0, 1.0])
    points = coords @ basis + np.array([1.0, -2.0, 0.5])  # a tilted plane in 3-D
    ax = lg.plot.latents(points, curves=points[None, :4])
    projected = ax.collections[0].get_offsets()
    # An orthogonal projection onto the points' own plane keeps all distances
    # (to float32 precision: points are taken in JAX's default float dtype).
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(
        np.linalg.norm(projected[:, None] - projected[None], axis=-1),
        distances,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(projected.mean(axis=0), 0.0, atol=1e-5)
    # The first axis carries the larger variance.
    assert projected[:, 0].var() > projected[:, 1].var()
    for label in (ax.get_xlabel(), ax.get_ylabel()):
        assert "PCA projection" in label and "3-D" in label
    np.testing.assert_allclose(ax.lines[-1].get_xydata(), projected[:4], atol=1e-5)


@pytest.mark.parametrize(
    "points, kwargs, match",
    [
        (np.zeros((4, 1)), {}, "d >= 2"),
        (np.zeros((4, 2)), {"labels": np.zeros(3)}, "labels"),
        (np.zeros((4, 2)), {"curves": np.zeros((2, 5, 3))}, "curves"),
        (np.zeros((4, 2)), {"curves": np.zeros((2, 1, 2))}, "curves"),
        (np.full((4, 2), np.nan), {}, "NaN"),
    ],
)
def test_latents_rejects_bad_shapes(points, kwargs, match):
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match=match):
        lg.plot.latents(points, **kwargs)


def test_uncertainty_map_equals_member_spread():
    ensemble = _ensemble()
    bounds = (-2.0, 1.0, -1.0, 3.0)
    # 7 x 7 = 49 points in chunks of 10: the last chunk is padded.
    ax = lg.plot.uncertainty_map(ensemble, bounds=bounds, resolution=7, batch_size=10)
    mesh = ax.collections[0]
    image = np.asarray(mesh.get_array()).reshape(7, 7)
    xs, ys = np.linspace(-2.0, 1.0, 7), np.linspace(-1.0, 3.0, 7)
    np.testing.assert_allclose(
        _mesh_centres(mesh), np.stack(np.meshgrid(xs, ys), axis=-1), atol=1e-12
    )
    grid = jnp.asarray(np.stack(np.meshgrid(xs, ys), axis=-1), jnp.float32)
    members = [jax.vmap(jax.vmap(ensemble.member(k)))(grid) for k in range(3)]
    expected = np.stack(members).std(axis=0).mean(axis=-1)  # eq. 13, population std
    np.testing.assert_allclose(image, expected, rtol=1e-4)
    assert ax.get_title() == "ensemble uncertainty"
    ax.figure.canvas.draw()


def test_uncertainty_map_bounds_from_points_and_log_scale():
    ensemble = _ensemble()
    points = np.array([[0.0, 0.0], [2.0, 1.0]])
    ax = lg.plot.uncertainty_map(ensemble, points=points, resolution=5, log=True)
    centres = _mesh_centres(ax.collections[0])
    np.testing.assert_allclose(centres[0, 0], [-0.2, -0.1], atol=1e-12)  # 10% margin
    np.testing.assert_allclose(centres[-1, -1], [2.2, 1.1], atol=1e-12)
    assert isinstance(ax.collections[0].norm, matplotlib.colors.LogNorm)


def test_magnification_map_is_log_det():
    direction = jnp.array([0.5, -1.0])
    ax = lg.plot.magnification_map(
        ExponentialMetric(direction, 2), bounds=(-1.0, 1.0, 0.0, 2.0), resolution=6
    )
    mesh = ax.collections[0]
    centres = _mesh_centres(mesh)
    expected = 2 * centres @ np.asarray(direction)  # log det(exp(a.z) I_2)
    image = np.asarray(mesh.get_array()).reshape(6, 6)
    np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-5)

    weight = np.random.default_rng(4).normal(size=(3, 2)).astype(np.float32)
    linear = lg.PullbackMetric(jax.tree_util.Partial(jnp.matmul, weight), latent_dim=2)
    ax = lg.plot.magnification_map(linear, bounds=(0.0, 1.0, 0.0, 1.0), resolution=4)
    log_det = np.linalg.slogdet(weight.T.astype(np.float64) @ weight)[1]
    np.testing.assert_allclose(ax.collections[0].get_array(), log_det, rtol=1e-4)
    ax.figure.canvas.draw()


def test_magnification_map_on_the_pca_plane_of_three_dimensions():
    # Points in the plane through the origin normal to n, and G(z) = exp(n.z) I_3.
    rng = np.random.default_rng(2)
    normal = np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0)
    in_plane = np.stack([np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0), [0.0, 0.0, 1.0]])
    points = rng.normal(size=(20, 2)) @ in_plane
    metric = ExponentialMetric(jnp.asarray(normal, jnp.float32), 3)
    ax = lg.plot.magnification_map(metric, points=points, resolution=5)
    # log det G = 3 n.z vanishes on the plane, though the grid spans +-2 on it.
    np.testing.assert_allclose(ax.collections[0].get_array(), 0.0, atol=1e-5)
    assert "PCA plane" in ax.get_title() and "3-D" in ax.get_title()
    assert "PCA projection" in ax.get_xlabel()


def test_variance_map_averages_any_variance_method():
    ax = lg.plot.variance_map(
        VarianceStub(), bounds=(-1.0, 2.0, -3.0, 1.0), resolution=4
    )
    mesh = ax.collections[0]
    centres = _mesh_centres(mesh)
    expected = (centres[..., 0] ** 2 + 3 * centres[..., 1] ** 2) / 2
    np.testing.assert_allclose(
        np.asarray(mesh.get_array()).reshape(4, 4), expected, rtol=1e-5
    )


def test_variance_map_of_an_ensemble_matches_uncertainty_definition():
    ensemble = _ensemble()
    ax = lg.plot.variance_map(ensemble, bounds=(0.0, 1.0, 0.0, 1.0), resolution=3)
    z = jnp.array([0.5, 0.5])
    outputs = np.stack([np.asarray(ensemble.member(k)(z)) for k in range(3)])
    image = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(image[1, 1], outputs.var(axis=0).mean(), rtol=1e-4)


def test_map_errors():
    ensemble = _ensemble()
    with pytest.raises(ValueError, match="`points`"):
        lg.plot.uncertainty_map(ensemble)
    with pytest.raises(ValueError, match="empty"):
        lg.plot.uncertainty_map(ensemble, bounds=(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="EnsembleDecoder"):
        lg.plot.uncertainty_map(
            lg.ExpectedMetric(ensemble), bounds=(0.0, 1.0, 0.0, 1.0)
        )
    with pytest.raises((ValueError, jaxtyping.TypeCheckError)):
        lg.plot.uncertainty_map(ensemble, points=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="d = 3 > 2"):
        lg.plot.uncertainty_map(_ensemble(3), bounds=(0.0, 1.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="variance"):
        lg.plot.variance_map(ConstantMetric(jnp.eye(2), 2), bounds=(0.0, 1.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="AbstractMetric"):
        lg.plot.magnification_map(ensemble, bounds=(0.0, 1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="batch_size"):
        lg.plot.magnification_map(
            ConstantMetric(jnp.eye(2), 2), bounds=(0.0, 1.0, 0.0, 1.0), batch_size=0
        )


class OffsetCentre(eqx.Module):
    """Latent points z of dimension 3 with a quantity |z - centre|^2 + z_3."""

    centre: jax.Array
    latent_dim: int = 3


def _offset_square(model, z):
    return jnp.sum((z - model.centre) ** 2) + z[2]


def test_grid_map_equals_direct_evaluation_on_the_pca_plane():
    # Points spread in the plane z_3 = 1 of R^3; their PCA plane is that plane,
    # with origin their mean c. At plane coordinates (u, v) the latent point is
    # c + u b_1 + v b_2 (orthonormal b_i in the plane), so the quantity is
    # u^2 + v^2 + 1 whatever the basis' signs and order.
    rng = np.random.default_rng(5)
    points = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)
    model = OffsetCentre(jnp.asarray(points.mean(axis=0), jnp.float32))
    # 5 x 5 = 25 grid points in chunks of 4: the last chunk is padded.
    ax = grid_map(
        _offset_square,
        model,
        points=points,
        bounds=None,
        resolution=5,
        batch_size=4,
        log=False,
        title="offset square",
        label="value",
        ax=None,
    )
    mesh = ax.collections[0]
    centres = _mesh_centres(mesh)
    expected = centres[..., 0] ** 2 + centres[..., 1] ** 2 + 1.0
    image = np.asarray(mesh.get_array()).reshape(5, 5)
    np.testing.assert_allclose(image, expected, rtol=1e-5)
    assert ax.get_title().startswith("offset square") and "3-D" in ax.get_title()
    assert mesh.colorbar.ax.get_ylabel() == "value"
    ax.figure.canvas.draw()


def _ellipses(ax):
    """Centred vertices (n, m, 2) of the indicatrix polygons and their centres."""
    polygons = [path.vertices[:-1] for path in ax.collections[-1].get_paths()]
    polygons = np.stack(polygons)  # the closing vertex repeats the first one
    centres = polygons.mean(axis=1)
    return polygons - centres[:, None], centres


@pytest.mark.parametrize("angle", [0.0, np.pi / 6])
def test_indicatrix_of_a_constant_metric(angle):
    rotation = _rotation(angle)
    matrix = rotation @ np.diag([4.0, 1.0]) @ rotation.T
    metric = ConstantMetric(jnp.asarray(matrix, jnp.float32), 2)
    ax = lg.plot.indicatrices(
        metric, bounds=(0.0, 4.0, 0.0, 4.0), resolution=3, scale=1.0
    )
    offsets, centres = _ellipses(ax)
    assert offsets.shape[0] == 9
    grid = np.stack(np.meshgrid([0.0, 2.0, 4.0], [0.0, 2.0, 4.0]), -1).reshape(-1, 2)
    np.testing.assert_allclose(centres, grid, atol=1e-6)
    # Every vertex is a unit vector of G, and the semi-axes are 1/2 and 1 along
    # G's eigenvectors.
    speeds = np.einsum("nmi,ij,nmj->nm", offsets, matrix, offsets)
    np.testing.assert_allclose(speeds, 1.0, rtol=1e-5)
    radii = np.linalg.norm(offsets, axis=-1)
    np.testing.assert_allclose(radii.max(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(radii.min(axis=1), 0.5, rtol=1e-5)
    long_axis = offsets[0, np.argmax(radii[0])]
    np.testing.assert_allclose(abs(long_axis @ rotation[:, 1]), 1.0, rtol=1e-5)
    ax.figure.canvas.draw()


def test_indicatrix_default_scale_fits_the_grid():
    metric = ExponentialMetric(jnp.array([1.0, 0.0]), 2)
    ax = lg.plot.indicatrices(metric, bounds=(0.0, 1.0, 0.0, 2.0), resolution=5)
    offsets, centres = _ellipses(ax)
    radii = np.linalg.norm(offsets, axis=-1).max(axis=1)
    np.testing.assert_allclose(radii.max(), 0.45 * 0.25, rtol=1e-5)  # spacing 0.25
    # G = exp(z_1) I: circles shrinking as exp(-z_1 / 2) along z_1.
    np.testing.assert_allclose(
        radii / radii.max(), np.exp(-centres[:, 0] / 2), rtol=1e-4
    )
    (legend,) = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "scaled by 0.11" in legend  # 0.45 * 0.25 / 1


def test_indicatrix_on_the_pca_plane_restricts_the_metric():
    points = np.array(
        [[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 1.0], [4.0, 0.0, 1.0]]
    )
    metric = ConstantMetric(jnp.diag(jnp.array([4.0, 100.0, 1.0])), 3)
    ax = lg.plot.indicatrices(metric, points=points, resolution=2, scale=1.0)
    offsets, _ = _ellipses(ax)
    radii = np.linalg.norm(offsets, axis=-1)
    # The plane is spanned by e_1 and e_3: restricted metric diag(4, 1).
    np.testing.assert_allclose(radii.max(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(radii.min(axis=1), 0.5, rtol=1e-5)
    assert "3-D" in ax.get_xlabel()


def test_indicatrix_skips_singular_metrics_and_checks_scale():
    metric = ConstantMetric(jnp.diag(jnp.array([1.0, 0.0])), 2)
    ax = lg.plot.indicatrices(metric, bounds=(0.0, 1.0, 0.0, 1.0), resolution=2)
    assert len(ax.collections[-1].get_paths()) == 0
    with pytest.raises(ValueError, match="scale"):
        lg.plot.indicatrices(metric, bounds=(0.0, 1.0, 0.0, 1.0), scale=0.0)


def test_cv_histogram_counts_on_shared_bins():
    rng = np.random.default_rng(3)
    cv_a, cv_b = rng.uniform(0.0, 0.2, 50), rng.uniform(0.1, 0.5, 50)
    ax = lg.plot.cv_histogram(cv_a, cv_b, bins=8)
    edges = np.linspace(cv_a.min(), cv_b.max(), 9)
    for bars, cv in zip(ax.containers, (cv_a, cv_b)):
        np.testing.assert_allclose(
            [bar.get_height() for bar in bars], np.histogram(cv, edges)[0]
        )
        np.testing.assert_allclose([bar.get_x() for bar in bars], edges[:-1])
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert texts == [
        f"ensemble (mean {cv_a.mean():.3g})",
        f"RBF (mean {cv_b.mean():.3g})",
    ]
    ax.figure.canvas.draw()


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 2)), np.zeros(0), np.array([1.0, np.inf])]
)
def test_cv_histogram_rejects_bad_input(bad):
    with pytest.raises((ValueError, jaxtyping.TypeCheckError)):
        lg.plot.cv_histogram(bad, np.ones(3))


def test_plot_draws_on_given_axes():
    _, ax = plt.subplots()
    assert lg.plot.cv_histogram(np.ones(3), np.ones(3), ax=ax) is ax


PATTERN = np.arange(24, dtype=np.float32).reshape(4, 6) / 24
PATTERN2 = np.cos(np.arange(24, dtype=np.float32)).reshape(4, 6)


def _shifted(params, z):
    """Member k outputs PATTERN (z_1 + offset_k) + PATTERN2 z_2, shape (4, 6)."""
    return PATTERN * (z[0] + params["offset"]) + PATTERN2 * z[1]


def _image_ensemble(apply=_shifted):
    params = {"offset": np.array([-0.5, 0.5], np.float32)}
    return lg.EnsembleDecoder.from_apply(apply, params, latent_dim=2)


def test_image_strips_show_the_mean_along_the_curve_and_the_line():
    ensemble = _image_ensemble()
    params = np.zeros((5, 2), np.float32)
    params[2] = [0.3, -0.8]
    curve = lg.CubicSpline(
        jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.5]), jnp.asarray(params)
    )
    ax = lg.plot.image_strips(ensemble, curve, num_images=5, spread=True)
    assert len(ax.images) == 4 * 5  # curve, its spread, line, its spread
    times = np.linspace(0, 1, 5)
    on_curve = np.asarray(curve(jnp.asarray(times)))
    on_line = np.array([-1.0, 0.0]) + times[:, None] * np.array([2.0, 0.5])
    tiles = [np.asarray(image.get_array()) for image in ax.images]
    for i in range(5):
        # The members' mean drops the offsets; their spread is 0.5 |PATTERN|.
        expected = PATTERN * on_curve[i, 0] + PATTERN2 * on_curve[i, 1]
        np.testing.assert_allclose(tiles[i], expected, atol=1e-5)
        np.testing.assert_allclose(tiles[5 + i], 0.5 * PATTERN, atol=1e-5)
        expected = PATTERN * on_line[i, 0] + PATTERN2 * on_line[i, 1]
        np.testing.assert_allclose(tiles[10 + i], expected, atol=1e-5)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == [
        "geodesic",
        "geodesic: spread",
        "straight line",
        "straight line: spread",
    ]
    # Mean rows share one grey scale covering all their values.
    low, high = ax.images[0].get_clim()
    assert low <= min(t.min() for t in tiles[:5] + tiles[10:])
    assert high >= max(t.max() for t in tiles[:5] + tiles[10:])


def test_image_strips_reshape_flat_and_channels_first_outputs():
    flat = _image_ensemble(lambda params, z: jnp.ravel(_shifted(params, z)))
    points = jnp.array([[0.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    ax = lg.plot.image_strips(flat, points, reshape=(4, 6), straight=False)
    assert len(ax.images) == 3
    expected = PATTERN * 0.5 + PATTERN2 * 0.5
    np.testing.assert_allclose(ax.images[1].get_array(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="reshape"):
        lg.plot.image_strips(flat, points)
    with pytest.raises(ValueError, match="has 20 entries"):
        lg.plot.image_strips(flat, points, reshape=(4, 5))

    def rgb(params, z):  # channels first, in [0, 1]
        return jnp.stack([jnp.full((4, 5), c) for c in (0.2, 0.5, z[0])])

    coloured = _image_ensemble(rgb)
    ax = lg.plot.image_strips(
        coloured, points, reshape=lambda x: x.transpose(1, 2, 0), straight=False
    )
    np.testing.assert_allclose(ax.images[2].get_array()[0, 0], [0.2, 0.5, 1.0])
