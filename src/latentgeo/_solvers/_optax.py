"""Gradient-based minimisation with any optax optimiser."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._checks import select_tree
from .._objective import AbstractCurveObjective
from ._base import RESULTS, Evaluation, counter
from ._iterate import AbstractIterativeSolver


@functools.cache
def shared_adam(learning_rate: float) -> optax.GradientTransformation:
    """One `optax.adam` instance per learning rate: optimisers are static fields
    of compiled solvers, hashed by identity, so building a fresh one per call
    would recompile `geodesic` every time."""
    return optax.adam(learning_rate)


@functools.cache
def shared_lbfgs() -> optax.GradientTransformation:
    """The one `optax.lbfgs()` instance the library's solvers use."""
    return optax.lbfgs()


class _OptaxState(eqx.Module):
    opt_state: PyTree
    step: Int[Array, ""]
    best_value: Float[Array, ""]
    stalled: Int[Array, ""]
    finite: Bool[Array, ""]


class OptaxSolver(AbstractIterativeSolver[_OptaxState]):
    r"""Gradient-based minimisation with any optax optimiser.

    Stops when the best objective value has not improved by more than
    `rtol * |best| + atol` for `patience` consecutive iterations; the best
    point evaluated is returned (first-order methods oscillate near the
    optimum), a line search's accepted point included.

    **Arguments:**

    - `optimiser`: an `optax.GradientTransformation`; default L-BFGS with a zoom
      line search (`optax.lbfgs()`). Create it once and reuse it: it is part of
      the compilation cache key, so a fresh instance per call recompiles.
      Optimisers that need the objective (`optax.lbfgs`, line searches) receive
      it through optax's extra arguments `value`, `grad`, `value_fn`.
    - `rtol`, `atol`: the relative and absolute improvement that counts (1e-6, 0).
    - `patience`: iterations without such improvement before stopping (5).
    - `chord_units`: scale every update by the end points' distance
      $\|z_1 - z_0\|$, so that a learning rate is a fraction of the chord
      rather than a latent length: the same optimiser then behaves the same for
      latent spaces of any scale (for fixed-step methods such as Adam; an
      optimiser with a line search is refused, as the scaled step would leave
      the point its search evaluated).

    For the paper's settings use
    [`OptaxSolver.paper_adam`][latentgeo.OptaxSolver.paper_adam].
    """

    optimiser: optax.GradientTransformation = eqx.field(
        static=True, default_factory=shared_lbfgs
    )
    rtol: float = eqx.field(static=True, default=1e-6)
    atol: float = eqx.field(static=True, default=0.0)
    patience: int = eqx.field(static=True, default=5)
    chord_units: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.patience < 1:
            raise ValueError(f"`patience` must be >= 1, got {self.patience}.")
        if self.rtol < 0 or self.atol < 0:
            raise ValueError("`rtol` and `atol` must be non-negative.")

    @classmethod
    def paper_adam(cls) -> "OptaxSolver":
        """The paper's optimiser: Adam, learning rate 0.01, stop after 100 steps
        without an energy improvement above 1e-4 (relative)."""
        return cls(shared_adam(1e-2), rtol=1e-4, patience=100)

    def _optimiser(self) -> optax.GradientTransformationExtraArgs:
        return optax.with_extra_args_support(self.optimiser)

    def init(
        self, objective: AbstractCurveObjective, params: PyTree
    ) -> tuple[_OptaxState, Evaluation]:
        dtype = jnp.result_type(*jtu.tree_leaves(params))
        opt_state = self._optimiser().init(params)
        if self.chord_units and optax.tree.get_all_with_path(opt_state, "value"):
            raise ValueError(
                "`chord_units` scales the optimiser's updates after its line "
                "search, away from the point the search evaluated: use it with "
                "fixed-step optimisers (e.g. `optax.adam`)."
            )
        state = _OptaxState(
            opt_state=opt_state,
            step=counter(0),
            best_value=jnp.array(jnp.inf, dtype),
            stalled=counter(0),
            finite=jnp.array(True),
        )
        return state, Evaluation(params, jnp.array(jnp.inf, dtype), jnp.array(0))

    def step(
        self, objective: AbstractCurveObjective, params: PyTree, state: _OptaxState
    ) -> tuple[PyTree, _OptaxState, Evaluation]:
        fn = jtu.Partial(objective, step=state.step)
        value, grad, computed = _value_and_grad(fn, params, state.opt_state)
        new_params, new_state = self.update(
            objective, params, state, value, grad, value_fn=fn
        )
        # A line search evaluates trial points and keeps where it ended (with
        # its value): the lower of that point and `params` is recorded, and
        # every trial counted.
        trials = optax.tree.get(new_state.opt_state, "num_linesearch_steps", 0)
        searched = optax.tree.get(new_state.opt_state, "value")
        point = (params, value)
        if searched is not None:
            point = select_tree(searched < value, (new_params, searched), point)
        evaluation = Evaluation(*point, computed + counter(trials))
        return new_params, new_state, evaluation

    def update(
        self,
        objective: AbstractCurveObjective,
        params: PyTree,
        state: _OptaxState,
        value: Float[Array, ""],
        grad: PyTree,
        **extra_args,
    ) -> tuple[PyTree, _OptaxState]:
        """The optimiser's step from `params`, where the objective has `value`
        and gradient `grad`, and the patience bookkeeping: the new parameters
        and state. `extra_args` (e.g. `value_fn` for line searches) go to the
        optimiser."""
        optimiser = self._optimiser()
        # optax's internals mix Python floats and int32 step counts; keep them
        # working when a user runs JAX with strict dtype promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimiser.update(
                grad, state.opt_state, params, value=value, grad=grad, **extra_args
            )
        # Before the first value the best is inf, and any finite value improves
        # on it (`rtol * inf` would make the threshold inf or NaN).
        best = state.best_value
        threshold = jnp.where(
            jnp.isfinite(best), self.rtol * jnp.abs(best) + self.atol, 0.0
        )
        improved = value < best - threshold
        new_state = _OptaxState(
            opt_state=opt_state,
            step=state.step + 1,
            best_value=jnp.minimum(value, best),
            stalled=jnp.where(improved, 0, state.stalled + 1),
            finite=jnp.isfinite(value),
        )
        if self.chord_units:
            chord = jnp.linalg.norm(objective.z1 - objective.z0)
            updates = jtu.tree_map(lambda u: chord * u, updates)
        return optax.apply_updates(params, updates), new_state

    def terminate(
        self, objective: AbstractCurveObjective, params: PyTree, state: _OptaxState
    ) -> tuple[Bool[Array, ""], RESULTS]:
        patient = state.stalled >= self.patience
        result = RESULTS.where(state.finite, RESULTS.successful, RESULTS.nonfinite)
        return patient | ~state.finite, result


def _value_and_grad(
    fn: jtu.Partial, params: PyTree, opt_state: PyTree
) -> tuple[Float[Array, ""], PyTree, Int[Array, ""]]:
    """The objective's value and gradient at `params`, and the evaluations they
    cost: those a line search stored where it ended (`params` now) when it keeps
    both and the value is finite (not before its first search), else computed."""
    value = optax.tree.get(opt_state, "value")
    grad = optax.tree.get(opt_state, "grad")
    if value is None or grad is None:
        return *jax.value_and_grad(fn)(params), counter(1)
    stored = jnp.isfinite(value)
    value, grad = jax.lax.cond(
        stored, lambda _: (value, grad), jax.value_and_grad(fn), params
    )
    return value, grad, counter(~stored)


def chord_adam() -> OptaxSolver:
    """The library's warm-up: Adam with a learning rate of 0.5% of the chord,
    stopping after 10 steps without improvement."""
    return OptaxSolver(shared_adam(5e-3), rtol=0.0, patience=10, chord_units=True)
