import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentgeo as lg

torch = pytest.importorskip("torch")
from latentgeo._torch import members_from_torch  # noqa: E402

nn = torch.nn


def mlp_decoder():
    return nn.Sequential(
        nn.Linear(2, 16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.ELU(alpha=0.7),
        nn.Linear(16, 16),
        nn.LeakyReLU(0.2),
        nn.Linear(16, 8),
        nn.Softplus(beta=2.0, threshold=0.2),  # both branches are hit
        nn.Linear(8, 6, bias=False),
        nn.ReLU(),
        nn.Linear(6, 5),
    )


def conv_decoder():
    return nn.Sequential(
        nn.Linear(2, 8 * 4 * 4),
        nn.ReLU(),
        nn.Unflatten(1, (8, 4, 4)),
        nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1),
        nn.Sequential(nn.ELU(), nn.Sigmoid()),  # nested, flattened on import
        nn.ConvTranspose2d(
            6,
            4,
            (3, 4),
            stride=(2, 1),
            padding=(1, 2),
            output_padding=(1, 0),
            dilation=(1, 2),
            groups=2,
            bias=False,
        ),
        nn.LeakyReLU(0.05),
        nn.Conv2d(
            4, 4, 3, padding="same", dilation=2, groups=2, padding_mode="reflect"
        ),
        nn.Softplus(),
        nn.Conv2d(4, 2, 3, stride=2, padding=1, padding_mode="circular"),
        nn.Flatten(start_dim=2),
    )


def flatten_decoder():
    """Negative `Unflatten`/`Flatten` dims, counted on the batched tensor."""
    return nn.Sequential(
        nn.Linear(3, 24),
        nn.Unflatten(-1, (2, 3, 4)),
        nn.Conv2d(2, 3, 2, padding=(1, 0), padding_mode="replicate"),
        nn.Flatten(-2, -1),
        nn.Tanh(),
        nn.Flatten(),
    )


def torch_outputs(members, zs):
    with torch.no_grad():
        outputs = [member(torch.from_numpy(zs)).numpy() for member in members]
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize(
    "make, latent_dim, out_shape",
    [
        (mlp_decoder, 2, (5,)),
        (conv_decoder, 2, (2, 40)),
        (flatten_decoder, 3, (36,)),
    ],
)
def test_matches_torch(make, latent_dim, out_shape):
    torch.manual_seed(0)
    members = [make() for _ in range(3)]
    ensemble = lg.EnsembleDecoder.from_torch(members)
    assert ensemble.num_members == 3
    assert (ensemble.latent_dim, ensemble.out_shape) == (latent_dim, out_shape)
    zs = np.random.default_rng(0).normal(size=(6, latent_dim)).astype(np.float32)
    expected = torch_outputs(members, zs)
    outputs = np.asarray(jax.jit(jax.vmap(ensemble))(jnp.asarray(zs)))
    assert outputs.shape == expected.shape == (6, 3, *out_shape)
    assert np.std(expected) > 0.05  # a non-trivial comparison
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)


def test_matches_torch_float64():
    torch.manual_seed(1)
    members = [mlp_decoder().double() for _ in range(2)]
    zs = np.random.default_rng(1).normal(size=(4, 2))
    with jax.enable_x64(True):
        ensemble = lg.EnsembleDecoder.from_torch(members)
        outputs = np.asarray(jax.vmap(ensemble)(jnp.asarray(zs)))
    assert outputs.dtype == np.float64
    np.testing.assert_allclose(outputs, torch_outputs(members, zs), rtol=0, atol=1e-12)


def test_members_from_torch():
    """Plain equinox members, one per decoder, each matching its own decoder;
    architectures may differ (stacking them is the ensemble's job)."""
    torch.manual_seed(2)
    decoders = [mlp_decoder(), conv_decoder(), flatten_decoder()]
    members = members_from_torch(decoders)
    assert members_from_torch([]) == []
    assert len(members) == 3
    rng = np.random.default_rng(2)
    for decoder, member, latent_dim in zip(decoders, members, (2, 2, 3)):
        assert isinstance(member, eqx.nn.Sequential)
        zs = rng.normal(size=(4, latent_dim)).astype(np.float32)
        expected = torch_outputs([decoder], zs)[:, 0]
        outputs = np.asarray(jax.vmap(member)(jnp.asarray(zs)))
        assert np.std(expected) > 0.05  # a non-trivial comparison
        np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "members, error, match",
    [
        (
            [nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))],
            ValueError,
            r"members\[0\]\[1\] is torch\.nn\.BatchNorm1d, which `from_torch` cannot "
            r"convert; supported layers: Conv2d, ConvTranspose2d, ELU",
        ),
        (
            [
                nn.Sequential(nn.Linear(2, 4)),
                nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.ReLU(), nn.Dropout())),
            ],
            ValueError,
            r"members\[1\]\[1\]\[1\] is torch\.nn\.Dropout",
        ),
        (
            [nn.Sequential(nn.Linear(2, 6), nn.Flatten(0))],
            ValueError,
            r"members\[0\]\[1\] \(torch\.nn\.Flatten\) cannot be converted: "
            "start_dim=0 would flatten the batch axis",
        ),
        (
            [nn.Sequential(nn.ConvTranspose2d(2, 2, 3, dilation=2, output_padding=1))],
            ValueError,
            r"members\[0\]\[0\] \(torch\.nn\.ConvTranspose2d\) cannot be converted",
        ),
        (
            [nn.Sequential(nn.Linear(2, 6), nn.Unflatten(1, (2, 3)), nn.Flatten(-3))],
            ValueError,
            "Flatten with dim -3 acts on the batch axis",
        ),
        (
            [nn.Sequential(nn.Linear(2, 4)), nn.Sequential(nn.Linear(2, 5))],
            ValueError,
            r"members\[1\] has a different structure from members\[0\]",
        ),
        (
            [nn.Sequential(nn.ELU(0.5)), nn.Sequential(nn.ELU(1.0))],
            ValueError,
            r"members\[1\] has a different structure from members\[0\]",
        ),
        ([nn.Linear(2, 4)], TypeError, r"members\[0\] is a Linear, not a"),
        (
            nn.Sequential(nn.Linear(2, 4)),
            TypeError,
            r"pass a list of K `torch\.nn\.Sequential` decoders",
        ),
    ],
)
def test_refuses(members, error, match):
    with pytest.raises(error, match=match):
        lg.EnsembleDecoder.from_torch(members, latent_dim=2)


def test_torch_stays_optional():
    script = (
        "import sys\n"
        "import latentgeo\n"
        "assert 'torch' not in sys.modules, 'importing latentgeo imported torch'\n"
        "sys.modules['torch'] = None  # as if PyTorch were not installed\n"
        "try:\n"
        "    latentgeo.EnsembleDecoder.from_torch([])\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "needs PyTorch: `pip install 'latentgeo[torch]'`" in result.stdout
