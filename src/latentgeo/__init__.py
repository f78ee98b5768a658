"""latentgeo: Riemannian geometry of learned latent spaces in JAX."""

from . import datasets as datasets, plot as plot
from ._curve import (
    AbstractCurve as AbstractCurve,
    CubicSpline as CubicSpline,
)
from ._decode import DecodedCurve as DecodedCurve, decode_along as decode_along
from ._encoder import (
    GaussianEncoder as GaussianEncoder,
    encode as encode,
    init_vae as init_vae,
)
from ._ensemble import EnsembleDecoder as EnsembleDecoder
from ._exp_log import Shooting as Shooting, log_map as log_map
from ._frechet import FrechetResult as FrechetResult, frechet_mean as frechet_mean
from ._geodesic import (
    LENGTH_POINTS as LENGTH_POINTS,
    GeodesicResult as GeodesicResult,
    geodesic as geodesic,
)
from ._geodesic_ode import (
    ExpPath as ExpPath,
    exp_map as exp_map,
    exp_path as exp_path,
    geodesic_acceleration as geodesic_acceleration,
)
from ._geometry_results import GEOMETRY_RESULTS as GEOMETRY_RESULTS
from ._graph import (
    GraphPaths as GraphPaths,
    graph_paths as graph_paths,
)
from ._kmeans import (
    KMeansResult as KMeansResult,
    kmeans as kmeans,
)
from ._metric import (
    AbstractMetric as AbstractMetric,
    AbstractPullbackMetric as AbstractPullbackMetric,
    AbstractTensorMetric as AbstractTensorMetric,
    ExpectedMetric as ExpectedMetric,
    PullbackMetric as PullbackMetric,
)
from ._objective import CurveObjective as CurveObjective
from ._pairwise import (
    PairwiseResult as PairwiseResult,
    pairwise_distances as pairwise_distances,
    pairwise_geodesics as pairwise_geodesics,
)
from ._rbf import RBFVarianceMetric as RBFVarianceMetric
from ._serialisation import (
    load_checkpoint as load_checkpoint,
    read_checkpoint_header as read_checkpoint_header,
    save_checkpoint as save_checkpoint,
)
from ._solvers import (
    RESULTS as RESULTS,
    AbstractCurveSolver as AbstractCurveSolver,
    LevenbergMarquardt as LevenbergMarquardt,
    Minimisation as Minimisation,
    OptaxSolver as OptaxSolver,
    WarmStart as WarmStart,
)
from ._train import train_decoders as train_decoders
from ._vae import (
    TrainedVAE as TrainedVAE,
    train_ensemble_vae as train_ensemble_vae,
)

__version__ = "0.1.0"
