"""latentgeo: Riemannian geometry of learned latent spaces in JAX."""

from . import datasets as datasets, plot as plot, training as training
from ._curve import (
    AbstractCurve as AbstractCurve,
    CubicSpline as CubicSpline,
)
from ._decode import DecodedCurve as DecodedCurve, decode_along as decode_along
from ._discretisation import Discretisation as Discretisation
from ._energy import (
    AbstractEnergy as AbstractEnergy,
    DecorrelatedEnergy as DecorrelatedEnergy,
    ExpectedEnergy as ExpectedEnergy,
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
from ._lattice_graph import lattice_paths as lattice_paths
from ._metric import (
    AbstractMetric as AbstractMetric,
    AbstractPullbackMetric as AbstractPullbackMetric,
    AbstractTensorMetric as AbstractTensorMetric,
    ExpectedMetric as ExpectedMetric,
    PullbackMetric as PullbackMetric,
)
from ._objective import (
    AbstractCurveObjective as AbstractCurveObjective,
    AbstractLeastSquaresObjective as AbstractLeastSquaresObjective,
    AbstractStochasticObjective as AbstractStochasticObjective,
)
from ._pairwise import (
    pairwise_distances as pairwise_distances,
    pairwise_geodesics as pairwise_geodesics,
    pairwise_graph_estimate as pairwise_graph_estimate,
)
from ._pairwise_result import PairwiseResult as PairwiseResult
from ._rbf import RBFVarianceMetric as RBFVarianceMetric
from ._refined import Refined as Refined
from ._sampled_length import sampled_member_length as sampled_member_length
from ._serialisation import (
    load_checkpoint as load_checkpoint,
    read_checkpoint_header as read_checkpoint_header,
    save_checkpoint as save_checkpoint,
)
from ._solvers import (
    RESULTS as RESULTS,
    AbstractCurveSolver as AbstractCurveSolver,
    AbstractIterativeSolver as AbstractIterativeSolver,
    AutoSolver as AutoSolver,
    ConstantSpeedRestarts as ConstantSpeedRestarts,
    Escalating as Escalating,
    Evaluation as Evaluation,
    LatticeSearch as LatticeSearch,
    LevenbergMarquardt as LevenbergMarquardt,
    Minimisation as Minimisation,
    OptaxSolver as OptaxSolver,
    Preconditioned as Preconditioned,
    WarmStart as WarmStart,
)
from ._stability import (
    StabilityResult as StabilityResult,
    retraining_stability as retraining_stability,
)
from ._starts import (
    AbstractGraphStart as AbstractGraphStart,
    AbstractStart as AbstractStart,
    ConstantSpeedStart as ConstantSpeedStart,
    GivenCurves as GivenCurves,
    GraphStart as GraphStart,
    LatticeStart as LatticeStart,
    Probed as Probed,
    Screened as Screened,
    ShortestOf as ShortestOf,
    StraightStart as StraightStart,
    TwoRoutes as TwoRoutes,
)
from .training import (
    GaussianEncoder as GaussianEncoder,
    TrainedVAE as TrainedVAE,
    encode as encode,
    init_vae as init_vae,
    train_decoders as train_decoders,
    train_ensemble_vae as train_ensemble_vae,
)


def _installed_version() -> str:
    """The version pip installed (from `pyproject.toml`); a source tree that was
    never installed has none, and says so."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latentgeo")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()
