"""latentgeo: Riemannian geometry of learned latent spaces in JAX."""

from . import datasets as datasets, plot as plot, training as training
from ._curve import (
    AbstractCurve as AbstractCurve,
    CubicSpline as CubicSpline,
)
from ._ensemble import EnsembleDecoder as EnsembleDecoder
from ._geodesic import (
    LENGTH_POINTS as LENGTH_POINTS,
    GeodesicResult as GeodesicResult,
    geodesic as geodesic,
)
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
from .training import (
    GaussianEncoder as GaussianEncoder,
    TrainedVAE as TrainedVAE,
    encode as encode,
    init_vae as init_vae,
    train_decoders as train_decoders,
    train_ensemble_vae as train_ensemble_vae,
)

__version__ = "0.1.0"
