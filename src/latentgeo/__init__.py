"""latentgeo: Riemannian geometry of learned latent spaces in JAX."""

from . import datasets as datasets
from . import plot as plot
from ._curve import AbstractCurve as AbstractCurve
from ._curve import CubicSpline as CubicSpline
from ._encoder import GaussianEncoder as GaussianEncoder
from ._encoder import encode as encode
from ._encoder import init_vae as init_vae
from ._ensemble import EnsembleDecoder as EnsembleDecoder
from ._geodesic import (
    LENGTH_POINTS as LENGTH_POINTS,
)
from ._geodesic import (
    GeodesicResult as GeodesicResult,
)
from ._geodesic import (
    geodesic as geodesic,
)
from ._kmeans import KMeansResult as KMeansResult
from ._kmeans import kmeans as kmeans
from ._metric import (
    AbstractMetric as AbstractMetric,
)
from ._metric import (
    AbstractPullbackMetric as AbstractPullbackMetric,
)
from ._metric import (
    AbstractTensorMetric as AbstractTensorMetric,
)
from ._metric import (
    ExpectedMetric as ExpectedMetric,
)
from ._metric import (
    PullbackMetric as PullbackMetric,
)
from ._objective import CurveObjective as CurveObjective
from ._pairwise import (
    PairwiseResult as PairwiseResult,
)
from ._pairwise import (
    pairwise_distances as pairwise_distances,
)
from ._pairwise import (
    pairwise_geodesics as pairwise_geodesics,
)
from ._rbf import RBFVarianceMetric as RBFVarianceMetric
from ._serialisation import (
    load_checkpoint as load_checkpoint,
)
from ._serialisation import (
    read_checkpoint_header as read_checkpoint_header,
)
from ._serialisation import (
    save_checkpoint as save_checkpoint,
)
from ._solvers import (
    RESULTS as RESULTS,
)
from ._solvers import (
    AbstractCurveSolver as AbstractCurveSolver,
)
from ._solvers import (
    LevenbergMarquardt as LevenbergMarquardt,
)
from ._solvers import (
    Minimisation as Minimisation,
)
from ._solvers import (
    OptaxSolver as OptaxSolver,
)
from ._train import train_decoders as train_decoders
from ._vae import TrainedVAE as TrainedVAE
from ._vae import train_ensemble_vae as train_ensemble_vae

__version__ = "0.1.0"
