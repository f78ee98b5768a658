"""The pipelines the benchmarks of issue 15 set beside today's default: the
default when the issue was filed (the base of its cost targets) and the
candidate defaults measured against its targets."""

import latentgeo as lg

# The single-geodesic lattice check when issue 15 was filed: no middle tier.
ISSUE_CHECK = lg.LatticeSearch(lg.Escalating(), quick_steps=30, rough_steps=30)


def issue_pipeline() -> tuple[lg.AbstractStart, dict]:
    """The default when issue 15 was filed: its start and the other
    `pairwise_geodesics` keyword arguments it needs."""
    return lg.LatticeStart(cells=256), {
        "solver": lg.AutoSolver(least_squares=ISSUE_CHECK)
    }


def with_straight_line() -> lg.AbstractStart:
    """The default until 2026-12-07: with the probed (screened) straight line
    between the routes and the restart, and the refinement solved with the
    run's solver (`Escalating`) rather than plain Levenberg–Marquardt. The
    runs of `--candidate no-straight` on that day measured the default
    without the straight line (then refined with `Escalating`) against it
    (`*_no-straight.json`)."""
    return lg.Refined(
        lg.ShortestOf(
            lg.TwoRoutes(),
            lg.Probed(lg.Screened(lg.StraightStart())),
            lg.Probed(lg.ConstantSpeedStart()),
        ),
        solver=lg.AutoSolver(least_squares=lg.Escalating()),
    )


# `{candidate: (its init, the names of its sources in order)}`
CANDIDATES = {
    "default": (None, ["first_route", "second_route", "restart", "refinement"]),
    "with-straight": (
        with_straight_line(),
        ["first_route", "second_route", "straight", "restart", "refinement"],
    ),
}
