r"""Escalation in one loop: a fast solver, and where it has not converged, the
fast solver continued and a robust restart, keeping the lower energy.

Every pair carries its own phase, so one iteration costs one Gauss–Newton
system whatever the phase, and pairs solved in lockstep (`jax.vmap`) pay only
for the iterations of the slowest pair, not for every phase of every pair.
"""

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._checks import select_tree
from .._objective import AbstractCurveObjective
from ._base import RESULTS, AbstractCurveSolver, Evaluation, Minimisation, counter
from ._compose import WarmStart
from ._gauss_newton import GaussNewtonSystem, gauss_newton_system
from ._iterate import AbstractIterativeSolver, iterative_solve
from ._levenberg_marquardt import (
    LevenbergMarquardt,
    _LMState,
    newton_decrement,
    propose,
    require_least_squares,
)
from ._optax import OptaxSolver, _OptaxState, chord_adam


class _Phase(eqx.Enumeration):
    fast = "the fast solver from the starting curve, for `fast_steps` at most"
    continued = "the fast solver restarted where the first phase stopped"
    warmup = "the robust solver's first-order warm-up from the starting curve"
    robust = "the robust solver's Levenberg–Marquardt from the warm-up's best point"
    done = "finished"


class _EscalationState(eqx.Module):
    phase: _Phase
    steps: Int[Array, ""]  # iterations of the current phase
    lm: _LMState  # the current Levenberg–Marquardt run (`fast`, `continued`, `robust`)
    warm: _OptaxState  # the warm-up's optimiser state (fresh until it begins)
    anchor: Float[Array, "num_params d"]  # the starting curve; in the warm-up, its
    anchor_system: GaussNewtonSystem  # best point so far, the system there
    anchor_decrement: Float[Array, ""]  # and its Newton decrement
    outcome: RESULTS  # the outcome of the run chosen so far
    outcome_value: Float[Array, ""]  # and its energy


class _Escalation(AbstractIterativeSolver[_EscalationState]):
    """[`Escalating`][latentgeo.Escalating]'s phases as one iterative solver, its
    step caps fixed (`fast_steps` already at most `max_steps`)."""

    fast: LevenbergMarquardt
    warmup: OptaxSolver
    robust: LevenbergMarquardt
    fast_steps: int = eqx.field(static=True)
    warmup_steps: int = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    @property
    def total_steps(self) -> int:
        """The loop's cap: the phases' caps together (never reached first)."""
        return self.fast_steps + 2 * self.max_steps + self.warmup_steps

    def init(
        self, objective: AbstractCurveObjective, params: Array
    ) -> tuple[_EscalationState, Evaluation]:
        require_least_squares(objective, "Escalating")
        warm, _ = self.warmup.init(objective, params)
        if optax.tree.get_all_with_path(warm.opt_state, "value"):
            raise ValueError(
                "`Escalating`'s robust warm-up must take plain gradient steps (e.g. "
                "`optax.adam`): an optimiser with a line search evaluates the "
                "objective more than once per iteration."
            )
        system = gauss_newton_system(objective, params)
        decrement = newton_decrement(system)
        state = _EscalationState(
            phase=_Phase.fast,
            steps=counter(0),
            lm=self.fast.fresh(system, decrement),
            warm=warm,
            anchor=params,
            anchor_system=system,
            anchor_decrement=decrement,
            outcome=RESULTS.successful,
            outcome_value=system.value,
        )
        # Every phase starts from `params` here, so a phase that ends at once
        # (a straight line that is already a geodesic) hands over in place.
        _, state = self._advance(objective, params, state)
        return state, Evaluation(params, system.value, counter(1))

    def step(
        self, objective: AbstractCurveObjective, params: Array, state: _EscalationState
    ) -> tuple[Array, _EscalationState, Evaluation]:
        # One Gauss–Newton system per iteration: at the Levenberg–Marquardt trial
        # point, or at the warm-up's iterate (whose gradient it holds).
        warming = state.phase == _Phase.warmup
        delta, trial = propose(params, state.lm)
        point = jnp.where(warming, params, trial)
        system = gauss_newton_system(objective, point)
        decrement = newton_decrement(system)
        # The cheap updates of every phase, the pair's own phase selected. (No
        # further linear solves: jaxlib's batched CPU kernels can deadlock when
        # two run at once, and the decrements that start a phase are known.)
        evaluated = (system, decrement)
        fast = self.fast.update(params, state.lm, delta, trial, *evaluated)
        robust = self.robust.update(params, state.lm, delta, trial, *evaluated)
        lm_params, lm = select_tree(state.phase == _Phase.robust, robust, fast)
        gradient = 2 * system.gradient  # `system` holds half the gradient
        warm_params, warm = self.warmup.update(
            objective, params, state.warm, system.value, gradient
        )
        lower = warming & (system.value < state.anchor_system.value)
        anchor, anchor_system, anchor_decrement = select_tree(
            lower,
            (params, *evaluated),
            (state.anchor, state.anchor_system, state.anchor_decrement),
        )
        new_params = jnp.where(warming, warm_params, lm_params)
        new_state = dataclasses.replace(
            state,
            steps=state.steps + 1,
            lm=select_tree(warming, state.lm, lm),
            warm=select_tree(warming, warm, state.warm),
            anchor=anchor,
            anchor_system=anchor_system,
            anchor_decrement=anchor_decrement,
        )
        new_params, new_state = self._advance(objective, new_params, new_state)
        return new_params, new_state, Evaluation(point, system.value, counter(1))

    def _advance(
        self, objective: AbstractCurveObjective, params: Array, state: _EscalationState
    ) -> tuple[Array, _EscalationState]:
        """Hand each finished phase over to the next, in order, so that the next
        iteration already works for the new phase (several may end at once)."""
        for handover in (
            self._after_fast,
            self._after_continued,
            self._after_warmup,
            self._after_robust,
        ):
            params, state = handover(objective, params, state)
        return params, state

    def _after_fast(self, objective, params, state):
        """The fast run: done if it converged, else restarted where it stopped
        (fresh damping, the energy there already known)."""
        stop, verdict = self.fast.verdict(state.lm)
        ended = (state.phase == _Phase.fast) & (stop | (state.steps >= self.fast_steps))
        converged = stop & (verdict == RESULTS.successful)
        handed = eqx.tree_at(
            lambda s: (s.phase, s.steps, s.lm),
            state,
            (
                _Phase.where(converged, _Phase.done, _Phase.continued),
                counter(0),
                self.fast.fresh(state.lm.system, state.lm.decrement),
            ),
        )
        return params, select_tree(ended, handed, state)

    def _after_continued(self, objective, params, state):
        """The continued run: its outcome is the one to beat; the warm-up starts
        from the starting curve, whose system (still the anchor's) gives its
        first step without an evaluation."""
        stop, verdict = self.fast.verdict(state.lm)
        ended = (state.phase == _Phase.continued) & (
            stop | (state.steps >= self.max_steps)
        )
        start, start_system = state.anchor, state.anchor_system
        first, warm, taken = start, state.warm, 0
        if self.warmup_steps > 0:
            gradient = 2 * start_system.gradient
            first, warm = self.warmup.update(
                objective, start, warm, start_system.value, gradient
            )
            taken = 1
        handed = eqx.tree_at(
            lambda s: (s.phase, s.steps, s.warm, s.outcome, s.outcome_value),
            state,
            (
                _Phase.warmup,
                counter(taken),
                warm,
                RESULTS.where(stop, verdict, RESULTS.max_steps_reached),
                state.lm.system.value,
            ),
        )
        return select_tree(ended, (first, handed), (params, state))

    def _after_warmup(self, objective, params, state):
        """The warm-up: the robust Levenberg–Marquardt starts from its best point,
        whose system the warm-up kept."""
        stop, _ = self.warmup.terminate(objective, params, state.warm)
        ended = (state.phase == _Phase.warmup) & (
            stop | (state.steps >= self.warmup_steps)
        )
        handed = eqx.tree_at(
            lambda s: (s.phase, s.steps, s.lm),
            state,
            (
                _Phase.robust,
                counter(0),
                self.robust.fresh(state.anchor_system, state.anchor_decrement),
            ),
        )
        return select_tree(ended, (state.anchor, handed), (params, state))

    def _after_robust(self, objective, params, state):
        """The robust run: its outcome is chosen if its energy is lower (a tie
        keeps the continued run's, as the loop's record keeps the first)."""
        stop, verdict = self.robust.verdict(state.lm)
        ended = (state.phase == _Phase.robust) & (
            stop | (state.steps >= self.max_steps)
        )
        value, best = state.lm.system.value, state.outcome_value
        lower = (value < best) | (jnp.isfinite(value) & ~jnp.isfinite(best))
        robust_outcome = RESULTS.where(stop, verdict, RESULTS.max_steps_reached)
        handed = eqx.tree_at(
            lambda s: (s.phase, s.outcome),
            state,
            (_Phase.done, RESULTS.where(lower, robust_outcome, state.outcome)),
        )
        return params, select_tree(ended, handed, state)

    def terminate(
        self, objective: AbstractCurveObjective, params: Array, state: _EscalationState
    ) -> tuple[Bool[Array, ""], RESULTS]:
        return state.phase == _Phase.done, state.outcome


def _robust_least_squares() -> WarmStart:
    return WarmStart(chord_adam(), LevenbergMarquardt(), warmup_steps=30)


class Escalating(AbstractCurveSolver):
    r"""A fast solver first; if it has not converged within `fast_steps`, both the
    fast solver continued to convergence and a robust solver from the same
    starting curve, keeping the lower energy.

    Smooth decoders give smooth, nearly quadratic energies where Gauss–Newton
    methods converge in a handful of iterations; decoders with ReLU activations
    give piecewise-quadratic energies with many shallow local minima, where a
    fast method wanders between pieces and settles in whichever it meets first.
    The fast attempt's iteration count tells the two apart at no extra cost. The
    robust attempt is a second, independent start; the continued fast attempt
    covers energies where Gauss–Newton steps are what leaves a poor start (the
    RBF metric's straight line through empty space, where first-order steps
    stall).

    All phases run in one loop, each pair in its own phase (fast; then
    continued, warm-up, robust), and every iteration evaluates one Gauss–Newton
    system: at a Levenberg–Marquardt trial point, or at the warm-up's iterate,
    whose gradient it holds. Nothing is evaluated twice: the continued run
    starts (with fresh damping) from the fast run's last system, the warm-up's
    first step from the starting curve's, and the robust Levenberg–Marquardt
    from the system at the warm-up's best point. Under `jax.vmap` over pairs a
    pair that converges fast therefore waits for the slowest pair but runs no
    other phase, and each pair follows the same steps as when solved alone (to
    the rounding of batched kernels; what lockstep costs is measured on the
    [performance page](../performance.md#batching)).

    **Arguments:**

    - `fast`: the first solver, a
      [`LevenbergMarquardt`][latentgeo.LevenbergMarquardt] (default: structured,
      `LevenbergMarquardt()`).
    - `robust`: a [`WarmStart`][latentgeo.WarmStart] of an
      [`OptaxSolver`][latentgeo.OptaxSolver] taking plain gradient steps (no
      line search) and a `LevenbergMarquardt` (default: 30 Adam steps with a
      learning rate of 0.5% of the chord $\|z_1 - z_0\|$, then structured
      Levenberg–Marquardt).
    - `fast_steps`: the fast solver's iteration budget (30; chosen on the
      [performance page](../performance.md)).

    Each part keeps its own cap: `fast_steps` (at most `max_steps`), then
    `max_steps` for the continued run, the warm-up's `warmup_steps` and
    `max_steps` for the robust run. `num_steps` (iterations of the one loop,
    one fewer than the parts' when the warm-up runs: its first step costs no
    evaluation) and `num_evaluations` count every phase; `result` is the chosen
    run's outcome (a tie in energy keeps the continued run).

    **Raises:** `TypeError` at construction if `fast` or `robust` is not of the
    kind above (other solvers cannot share the one loop: compose them with
    [`WarmStart`][latentgeo.WarmStart] or write an
    [`AbstractCurveSolver`][latentgeo.AbstractCurveSolver]).
    """

    fast: AbstractCurveSolver = eqx.field(default_factory=LevenbergMarquardt)
    robust: AbstractCurveSolver = eqx.field(default_factory=_robust_least_squares)
    fast_steps: int = eqx.field(static=True, default=30)

    def __check_init__(self):
        if self.fast_steps < 1:
            raise ValueError(f"`fast_steps` must be >= 1, got {self.fast_steps}.")
        if not isinstance(self.fast, LevenbergMarquardt):
            raise TypeError(
                "`Escalating` runs its phases in one loop; `fast` must be a "
                f"`LevenbergMarquardt`, got {type(self.fast).__name__}."
            )
        robust = self.robust
        if not (
            isinstance(robust, WarmStart)
            and isinstance(robust.warmup, OptaxSolver)
            and isinstance(robust.solver, LevenbergMarquardt)
        ):
            raise TypeError(
                "`Escalating` runs its phases in one loop; `robust` must be a "
                "`WarmStart(OptaxSolver(...), LevenbergMarquardt(...))`, got "
                f"{_describe(robust)}."
            )

    def minimise(
        self, objective: AbstractCurveObjective, params: PyTree, max_steps: int
    ) -> Minimisation:
        escalation, total_steps = self.iteration(max_steps)
        return iterative_solve(escalation, objective, params, total_steps)

    def iteration(self, max_steps: int) -> tuple[AbstractIterativeSolver, int]:
        """The one iteration that runs every phase under `max_steps`, and the
        loop's cap on its steps (for loops other than `minimise`'s, such as
        refilled lockstep slots)."""
        escalation = _Escalation(
            fast=self.fast,
            warmup=self.robust.warmup,
            robust=self.robust.solver,
            fast_steps=min(self.fast_steps, max_steps),
            warmup_steps=self.robust.warmup_steps,
            max_steps=max_steps,
        )
        return escalation, escalation.total_steps


def _describe(solver: AbstractCurveSolver) -> str:
    if isinstance(solver, WarmStart):
        parts = (type(solver.warmup).__name__, type(solver.solver).__name__)
        return f"WarmStart({parts[0]}, {parts[1]})"
    return type(solver).__name__
