import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest
from jaxtyping import Array, Float

import latentgeo as lg


def ensemble_skeleton(*, width=8, depth=2, members=3, **options):
    """An abstract ensemble of `eqx.nn.MLP(2, 5, width, depth)` members."""
    return eqx.filter_eval_shape(
        lg.EnsembleDecoder.init,
        lambda k: eqx.nn.MLP(2, 5, width, depth, key=k, **options),
        members,
        key=jax.random.key(0),
    )


def randomise(skeleton, seed):
    """Fill a skeleton's `jax.ShapeDtypeStruct`s with NumPy-random arrays (much
    faster than initialising with `jax.random` op by op)."""
    rng = np.random.default_rng(seed)

    def fill(leaf):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            return jnp.asarray(rng.normal(size=leaf.shape), leaf.dtype)
        return leaf

    return jtu.tree_map(fill, skeleton)


def make_ensemble(seed, **options):
    return randomise(ensemble_skeleton(**options), seed)


def bits(tree):
    """Every stored leaf as (type, dtype, shape, raw bytes): equal means bitwise."""
    return [
        (type(x), np.asarray(x).dtype, np.shape(x), np.asarray(x).tobytes())
        for x in jtu.tree_leaves(tree)
        if eqx.is_array_like(x)
    ]


class ToyRBFMetric(lg.AbstractTensorMetric):
    """A metric with a Python float leaf, like an RBF variance metric."""

    centres: Float[Array, "M d"]
    log_weights: Float[Array, " M"]
    bandwidth: float
    latent_dim: int = eqx.field(static=True)

    def tensor(self, z):
        squares = jnp.sum((self.centres - z[None]) ** 2, axis=-1)
        density = jnp.sum(jnp.exp(self.log_weights - self.bandwidth * squares))
        return jnp.eye(self.latent_dim) / (density + 1e-3)


class Mixed(eqx.Module):
    half: Array
    count: Array
    table: np.ndarray
    scale: float
    flag: bool
    name: str = eqx.field(static=True)


def make_mixed(seed=0):
    rng = np.random.default_rng(seed)
    return Mixed(
        half=jnp.asarray(rng.normal(size=(3, 2)), jnp.float16),
        count=jnp.arange(4, dtype=jnp.int32) * seed,
        table=rng.normal(size=(2, 2)),
        scale=float(rng.normal()),
        flag=bool(seed % 2),
        name="mixed",
    )


@pytest.mark.parametrize("abstract", [False, True])
def test_ensemble_round_trip_into_skeleton(tmp_path, getkey, abstract):
    path = tmp_path / "decoders.ckpt"
    ensemble = make_ensemble(1)
    lg.save_checkpoint(path, ensemble)
    if abstract:
        like = ensemble_skeleton()
    else:
        like = make_ensemble(2)
    loaded = lg.load_checkpoint(path, like)
    assert bits(loaded) == bits(ensemble)
    zs = jax.random.normal(getkey(), (4, 2))
    assert bits(jax.vmap(loaded)(zs)) == bits(jax.vmap(ensemble)(zs))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"depth": 0},
        {"activation": jax.nn.tanh, "final_activation": jax.nn.sigmoid},
        {"activation": jax.nn.softplus, "use_bias": False, "use_final_bias": False},
    ],
)
def test_mlp_ensemble_rebuilt_from_header(tmp_path, getkey, options):
    path = tmp_path / "decoders.ckpt"
    ensemble = make_ensemble(3, **options)
    lg.save_checkpoint(path, ensemble)
    loaded = lg.load_checkpoint(path)
    assert isinstance(loaded, lg.EnsembleDecoder)
    assert (loaded.latent_dim, loaded.out_shape, loaded.num_members) == (2, (5,), 3)
    assert bits(loaded) == bits(ensemble)
    z = jax.random.normal(getkey(), (2,))
    assert bits(loaded(z)) == bits(ensemble(z))


def test_from_apply_ensemble_round_trip(tmp_path):
    def apply(params, z):
        return jnp.tanh(params["w"] @ z + params["b"])

    def make(seed):
        rng = np.random.default_rng(seed)
        params = {"w": rng.normal(size=(4, 6, 2)), "b": rng.normal(size=(4, 6))}
        return lg.EnsembleDecoder.from_apply(
            apply, jtu.tree_map(jnp.float32, params), latent_dim=2
        )

    path = tmp_path / "flax.ckpt"
    ensemble = make(0)
    lg.save_checkpoint(path, ensemble)
    loaded = lg.load_checkpoint(path, make(1))
    z = jnp.array([0.3, -1.2])
    assert bits(loaded(z)) == bits(ensemble(z))
    with pytest.raises(ValueError, match="cannot be rebuilt from its header"):
        lg.load_checkpoint(path)


def test_encoder_round_trip(tmp_path, getkey):
    def make_encoder(key):
        k1, k2 = jax.random.split(key)
        return eqx.nn.Sequential(
            [
                eqx.nn.Conv2d(1, 4, 3, stride=2, key=k1),
                eqx.nn.Lambda(jnp.ravel),
                eqx.nn.Linear(4 * 3 * 3, 2, key=k2),
            ]
        )

    path = tmp_path / "encoder.ckpt"
    skeleton = eqx.filter_eval_shape(make_encoder, jax.random.key(0))
    encoder = randomise(skeleton, 0)
    lg.save_checkpoint(path, encoder)
    loaded = lg.load_checkpoint(path, skeleton)
    x = jax.random.normal(getkey(), (1, 7, 7))
    assert bits(loaded(x)) == bits(encoder(x))


def test_metric_round_trip(tmp_path):
    z = jnp.array([0.5, -0.25])
    expected = lg.ExpectedMetric(make_ensemble(4))
    lg.save_checkpoint(tmp_path / "expected.ckpt", expected)
    loaded = lg.load_checkpoint(
        tmp_path / "expected.ckpt", lg.ExpectedMetric(make_ensemble(5))
    )
    assert bits(loaded.tensor(z)) == bits(expected.tensor(z))

    def make_rbf(seed, bandwidth):
        rng = np.random.default_rng(seed)
        centres, log_weights = rng.normal(size=(6, 2)), rng.normal(size=6)
        return ToyRBFMetric(
            jnp.float32(centres), jnp.float32(log_weights), bandwidth, latent_dim=2
        )

    rbf = make_rbf(0, 0.7)
    lg.save_checkpoint(tmp_path / "rbf.ckpt", rbf)
    loaded = lg.load_checkpoint(tmp_path / "rbf.ckpt", make_rbf(1, 1.0))
    assert loaded.bandwidth == 0.7 and type(loaded.bandwidth) is float
    assert bits(loaded.tensor(z)) == bits(rbf.tensor(z))


def test_mixed_leaf_types_round_trip(tmp_path):
    lg.save_checkpoint(tmp_path / "mixed.ckpt", make_mixed(3))
    loaded = lg.load_checkpoint(tmp_path / "mixed.ckpt", make_mixed(0))
    assert bits(loaded) == bits(make_mixed(3))
    assert isinstance(loaded.table, np.ndarray) and loaded.flag is True


def test_float64_round_trip(tmp_path):
    path = tmp_path / "f64.ckpt"
    with jax.enable_x64(True):
        ensemble = make_ensemble(6, dtype=jnp.float64)
        lg.save_checkpoint(path, ensemble)
        loaded = lg.load_checkpoint(path)
        assert loaded.params.layers[0].weight.dtype == jnp.float64
        assert bits(loaded) == bits(ensemble)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        lg.load_checkpoint(path, make_ensemble(7))


def test_header(tmp_path):
    path = tmp_path / "decoders.ckpt"
    ensemble = make_ensemble(8, members=4)
    architecture = {"builder": "my_project.decoder", "width": 8, "layers": [1, 2]}
    lg.save_checkpoint(path, ensemble, architecture=architecture)
    header = lg.read_checkpoint_header(path)
    assert header["format"] == "latentgeo-checkpoint"
    assert header["kind"] == "EnsembleDecoder"
    assert header["latentgeo_version"] == lg.__version__
    assert (header["latent_dim"], header["num_members"]) == (2, 4)
    assert header["out_shape"] == [5]
    assert header["architecture"] == architecture
    assert header["leaves"][0] == {
        "path": ".params.layers[0].weight",
        "shape": [4, 8, 2],
        "dtype": "float32",
    }
    assert len(header["leaves"]) == 6
    # One JSON line, then exactly the equinox serialisation of the module.
    raw = path.read_bytes()
    line, payload = raw.split(b"\n", 1)
    assert json.loads(line) == header and len(payload) == header["payload_bytes"]
    eqx.tree_serialise_leaves(tmp_path / "plain.eqx", ensemble)
    assert payload == (tmp_path / "plain.eqx").read_bytes()
    # A user architecture is stored as given: no automatic rebuild.
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        lg.load_checkpoint(path)


def test_unknown_activation_needs_skeleton(tmp_path):
    path = tmp_path / "decoders.ckpt"
    ensemble = make_ensemble(9, activation=lambda x: x * jax.nn.sigmoid(x))
    lg.save_checkpoint(path, ensemble)
    assert lg.read_checkpoint_header(path)["architecture"] is None
    with pytest.raises(ValueError, match="pass `like=`"):
        lg.load_checkpoint(path)
    like = eqx.filter_eval_shape(lambda: ensemble)
    assert bits(lg.load_checkpoint(path, like)) == bits(ensemble)


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """A saved 3-member ensemble; deserialising is forbidden in these tests, so
    every check must fail before any weight is read."""
    path = tmp_path / "decoders.ckpt"
    lg.save_checkpoint(path, make_ensemble(10))

    def forbidden(*args, **kwargs):
        raise AssertionError("deserialised despite a failed check")

    monkeypatch.setattr(eqx, "tree_deserialise_leaves", forbidden)
    return path


@pytest.mark.parametrize(
    "make_like, match",
    [
        (
            lambda: ensemble_skeleton(width=16),
            r"stores `\.params\.layers\[0\]\.weight` with shape \(3, 8, 2\) and dtype "
            r"float32, but `like\.params\.layers\[0\]\.weight` has shape \(3, 16, 2\)",
        ),
        (
            lambda: ensemble_skeleton(dtype=jnp.float16),
            r"float32, but `like\.params\.layers\[0\]\.weight` has .* dtype float16",
        ),
        (
            lambda: ensemble_skeleton(depth=3),
            r"stores `\.params\.layers\[2\]\.weight` with shape \(3, 5, 8\)",
        ),
        (lambda: ensemble_skeleton(members=2), "num_members 3, but `like` has 2"),
        (
            lambda: ensemble_skeleton(use_final_bias=False),
            r"stores 6 arrays and `like` has 5; the checkpoint also has "
            r"`\.params\.layers\[2\]\.bias`",
        ),
        (
            lambda: eqx.filter_eval_shape(
                eqx.nn.MLP, 2, 5, 8, 2, key=jax.random.key(0)
            ),
            "holds a checkpoint of class `EnsembleDecoder`, but `like` is of class "
            "`MLP`",
        ),
    ],
)
def test_mismatched_skeleton(saved, make_like, match):
    with pytest.raises(ValueError, match=match) as error:
        lg.load_checkpoint(saved, make_like())
    assert str(saved) in str(error.value)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda raw: raw[:-10], "is truncated"),
        (lambda raw: raw[: raw.index(b"\n")], "truncated or corrupted header"),
        (lambda raw: raw[:50], "truncated or corrupted header"),
        (lambda raw: raw + b"\0", "has trailing bytes"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "SHA-256"),
        (lambda raw: b"", "not a latentgeo checkpoint"),
        (lambda raw: b"hello\n" + raw, "not a latentgeo checkpoint"),
        (
            lambda raw: raw.replace(b'"format_version": 1', b'"format_version": 2'),
            "format version 2",
        ),
        (
            lambda raw: raw.replace(b'"leaves"', b'"arrays"'),
            r"corrupted header: it lacks \['leaves'\]",
        ),
    ],
)
def test_damaged_file(saved, damage, match):
    saved.write_bytes(damage(saved.read_bytes()))
    for like in (make_ensemble(11), None):
        with pytest.raises(ValueError, match=match) as error:
            lg.load_checkpoint(saved, like)
        assert str(saved) in str(error.value)


def test_plain_equinox_file_is_refused(tmp_path):
    path = tmp_path / "plain.eqx"
    ensemble = make_ensemble(12)
    eqx.tree_serialise_leaves(path, ensemble)
    with pytest.raises(ValueError, match="eqx.tree_deserialise_leaves") as error:
        lg.load_checkpoint(path, ensemble)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="not a latentgeo checkpoint"):
        lg.read_checkpoint_header(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "decoders.ckpt"
    ensemble = make_ensemble(13)
    lg.save_checkpoint(path, ensemble)
    lg.save_checkpoint(path, ensemble)  # overwrites in place
    before = path.read_bytes()
    assert os.listdir(tmp_path) == ["decoders.ckpt"]

    with pytest.raises(TypeError, match="`architecture` is not JSON-able"):
        lg.save_checkpoint(path, make_ensemble(14), architecture={"f": print})

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lg.save_checkpoint(path, make_ensemble(15))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["decoders.ckpt"]


def test_save_refuses_abstract_arrays(tmp_path):
    abstract = ensemble_skeleton()
    with pytest.raises(ValueError, match=r"`obj\.params\.layers\[0\]\.weight` is a"):
        lg.save_checkpoint(tmp_path / "x.ckpt", abstract)
    assert os.listdir(tmp_path) == []
