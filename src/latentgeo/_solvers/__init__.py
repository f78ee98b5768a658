"""Curve solvers: one protocol, one loop; strategies for `geodesic(..., solver=)`."""

from ._base import (
    RESULTS as RESULTS,
    AbstractCurveSolver as AbstractCurveSolver,
    Evaluation as Evaluation,
    Minimisation as Minimisation,
    counter as counter,
)
from ._compose import WarmStart as WarmStart
from ._constant_speed import ConstantSpeedRestarts as ConstantSpeedRestarts
from ._default import AutoSolver as AutoSolver
from ._escalating import Escalating as Escalating
from ._iterate import (
    AbstractIteration as AbstractIteration,
    AbstractIterativeSolver as AbstractIterativeSolver,
    iterative_solve as iterative_solve,
)
from ._lattice_search import LatticeSearch as LatticeSearch
from ._levenberg_marquardt import LevenbergMarquardt as LevenbergMarquardt
from ._optax import OptaxSolver as OptaxSolver
from ._preconditioned import Preconditioned as Preconditioned
from ._refill import iteration_of as iteration_of, refill_solve as refill_solve
