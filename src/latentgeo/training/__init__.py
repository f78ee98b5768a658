"""Training decoder ensembles and ensemble VAEs.

`init_vae` builds the paper's dense encoder and decoders, `train_ensemble_vae`
trains them the paper's way (one shared encoder, one random decoder per
mini-batch or, as the official code, every decoder on a share of each
mini-batch; early stopping), `encode` gives latent codes, and `train_decoders`
fits an ensemble to given latent codes. Every name is also available at the top
level (`latentgeo.train_ensemble_vae`).
"""

from ._decoders import train_decoders as train_decoders
from ._encoder import (
    GaussianEncoder as GaussianEncoder,
    encode as encode,
    init_vae as init_vae,
)
from ._schedule import (
    AbstractMemberSchedule as AbstractMemberSchedule,
    OneDecoderPerBatch as OneDecoderPerBatch,
    SplitBatch as SplitBatch,
)
from ._vae import (
    TrainedVAE as TrainedVAE,
    train_ensemble_vae as train_ensemble_vae,
)
