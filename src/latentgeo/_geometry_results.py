"""Outcomes of the exponential map, the logarithm map and the Fréchet mean."""

from ._solvers import RESULTS


class GEOMETRY_RESULTS(RESULTS):
    """Outcome of [`exp_path`][latentgeo.exp_path],
    [`log_map`][latentgeo.log_map] and [`frechet_mean`][latentgeo.frechet_mean].

    It extends [`RESULTS`][latentgeo.RESULTS] (the outcomes of
    [`geodesic`][latentgeo.geodesic], which `log_map` and `frechet_mean` call),
    so a failed boundary-value solve keeps its own message. Compare items of this
    enumeration with each other (`res.result == lg.GEOMETRY_RESULTS.successful`),
    or use the results' `converged` property.
    """

    ode_max_steps = (
        "Integrating the geodesic equation took more than `max_steps` steps. Raise "
        "`max_steps`, loosen `rtol`/`atol`, or shorten `v`. If the step size "
        "collapsed instead, the metric tensor is singular or the decoder is not "
        "finite somewhere along the path: check `metric.tensor` there."
    )
    ode_failed = (
        "The ODE solver could not integrate the geodesic equation (see the solver "
        "`solver=` and its tolerances); the metric may be singular along the path."
    )
    shooting_failed = (
        "Shooting did not hit `z1` within `Shooting.max_steps` iterations (or "
        "stopped at a non-zero minimum of the miss). The decoder may not be twice "
        "continuously differentiable (ReLU, ELU: the geodesic ODE then stalls at "
        "the kinks; use tanh, softplus or SiLU, or `log_map` without shooting), "
        "`z1` may lie beyond a conjugate point of `z0`, or the boundary-value "
        "estimate it started from is poor: pass "
        "`discretisation=lg.Discretisation(num_segments=...)` with more segments "
        "(on strongly curved metrics the spline's initial direction needs them), "
        "or loosen `Shooting.atol`."
    )
    shooting_mismatch = (
        "Shooting hit `z1`, but along a geodesic whose length differs from "
        "the boundary-value solution's by more than `Shooting.length_rtol`. The "
        "decoder is probably not twice differentiable (a ReLU network's geodesic "
        "ODE sees straight lines and misses the bends at its kinks): use "
        "`log_map` without shooting, or a decoder with smooth activations."
    )
    mean_max_steps = (
        "The Fréchet mean iteration reached `max_steps` before the Riemannian "
        "gradient fell below `rtol` times the RMS distance. Raise `max_steps`, or "
        "loosen `rtol`: the gradient is only as accurate as the logarithm maps it "
        "averages (more segments, `discretisation=lg.Discretisation(num_segments="
        "...)`, or `shooting=lg.Shooting()` make them more accurate)."
    )
